"""An objective is one file: an objective defined and registered here, with an option of its own, trains from a
YAML configuration without any other module knowing its name."""
import dataclasses
import json
from collections import Counter

import numpy as np
import pytest

from ernie_m.objectives import REGISTRY, Monolingual, Objective, ObjectiveOptions, register
from ernie_m.objectives.batch import MAIN, Row, full_attention, languages_of, positions_of, segment
from ernie_m.pretraining.config import ConfigError, PretrainingConfig, load_config
from ernie_m.pretraining.trainer import Pretraining


@dataclasses.dataclass
class FirstTokenOptions(ObjectiveOptions):
    """How many leading tokens to hide and predict."""

    hidden: int = 1

    def validate(self, path: str) -> None:
        if self.hidden < 1:
            raise ValueError(f"{path}.hidden: must be at least 1, got {self.hidden}")


class FirstTokens(Objective):
    """A toy: predict a sentence's first `hidden` tokens, shown as [MASK], with full attention."""

    name = "first_tokens"
    data_kind = "monolingual"
    Options = FirstTokenOptions

    def __init__(self, *args, hidden: int = FirstTokenOptions.hidden, **kwargs):
        super().__init__(*args, **kwargs)
        self.hidden = hidden

    @classmethod
    def from_options(cls, options: FirstTokenOptions, context):
        return cls(context.special, context.vocab_size, context.max_length, hidden=options.hidden)

    def rows(self, example: Monolingual, rng, stats: Counter):
        tokens = np.asarray(example.tokens, dtype=np.int64)[: self.max_length - 2]
        if len(tokens) <= self.hidden:
            stats["dropped_short"] += 1
            return []
        shown = tokens.copy()
        shown[: self.hidden] = self.special.mask
        row = segment(shown, True, self.special)
        return [Row(input_ids=row, position_ids=positions_of([row]),
                    language_ids=languages_of([row], [example.language]), attention=full_attention(len(row)),
                    predict_positions=np.arange(1, self.hidden + 1), predict_labels=tokens[: self.hidden],
                    predict_groups=np.full(self.hidden, MAIN))]


@pytest.fixture
def registered():
    register(FirstTokens)
    try:
        yield FirstTokens
    finally:
        REGISTRY.pop(FirstTokens.name)


def _yaml(tmp_path, corpus, tokenizer_dir, hidden):
    path = tmp_path / "toy.yaml"
    path.write_text(f"""
tokenizer: {tokenizer_dir}
model: {{preset: ernie-m-tiny}}
data: {{monolingual_dir: {corpus / 'mono'}, num_workers: 0}}
stages:
  - {{name: toy, steps: 2, objectives: {{first_tokens: 1}}, max_length: 32, batch_size: 4}}
train: {{save_steps: 2}}
first_tokens:
  hidden: {hidden}
""")
    return str(path)


def test_an_objective_registered_from_a_test_file_trains_two_steps_with_its_yaml_option(
        registered, corpus, tokenizer_dir, tmp_path):
    config = load_config(_yaml(tmp_path, corpus, tokenizer_dir, hidden=3))
    assert config.first_tokens == FirstTokenOptions(hidden=3)
    run = Pretraining(config, str(tmp_path / "out"))
    try:
        assert run.objective("first_tokens", 32).hidden == 3
        run.train()
    finally:
        run.close()
    log = [json.loads(line) for line in (tmp_path / "out" / "log_rank0.jsonl").read_text().splitlines()]
    steps = [record for record in log if "step" in record]
    assert [record["objective"] for record in steps] == ["first_tokens", "first_tokens"]
    assert all(np.isfinite(record["first_tokens_loss"]) for record in steps)
    saved = json.loads((tmp_path / "out" / "checkpoint-2" / "pretraining_config.json").read_text())
    assert saved["first_tokens"] == {"hidden": 3}


def test_an_objectives_option_is_checked_and_named_by_its_own_section(registered, corpus, tokenizer_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"^first_tokens\.hidden: must be at least 1, got 0$"):
        load_config(_yaml(tmp_path, corpus, tokenizer_dir, hidden=0))
    with pytest.raises(ConfigError, match=r"^first_tokens\.hiden: unknown field; did you mean hidden\?$"):
        load_config(_yaml(tmp_path, corpus, tokenizer_dir, hidden=1), ["first_tokens.hiden=2"])


def test_the_configuration_has_a_section_for_each_registered_objective_and_no_other(registered):
    stages = [{"name": "s", "steps": 1, "objectives": {"mmlm": 1}}]
    config = PretrainingConfig.from_dict({"tokenizer": "t", "stages": stages})
    assert set(REGISTRY) <= set(config.to_dict())
    assert config.to_dict()["first_tokens"] == {"hidden": 1}
    REGISTRY.pop(FirstTokens.name)
    try:
        with pytest.raises(ConfigError, match=r"^first_tokens: unknown field"):
            PretrainingConfig.from_dict({"tokenizer": "t", "stages": stages, "first_tokens": {"hidden": 2}})
    finally:
        register(FirstTokens)


def test_a_name_is_registered_once():
    class Again(Objective):
        name = "camlm"

    with pytest.raises(ValueError, match="'camlm' is already registered"):
        register(Again)
