"""The pretraining run driven in process: steps, resume, what a resume refuses, the language map it saves."""
import json
import os

import pytest

from ernie_m.pretraining.config import PretrainingConfig, load_config
from ernie_m.pretraining.trainer import Pretraining, RunError, btmlm_target_languages

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, "pretrain", "configs", "smoke.yaml")


def smoke_config(corpus, tokenizer_dir, *overrides):
    return load_config(SMOKE, [f"tokenizer={tokenizer_dir}", f"data.parallel_dir={corpus / 'parallel'}",
                               f"data.monolingual_dir={corpus / 'mono'}", "data.num_workers=0", *overrides])


def learning_rates(output_dir):
    with open(os.path.join(output_dir, "log_rank0.jsonl")) as handle:
        records = [json.loads(line) for line in handle]
    return {r["step"]: r["lr"] for r in records if "step" in r}


def test_btmlm_translates_by_default_into_the_languages_of_the_parallel_data(tmp_path):
    (tmp_path / "en-de.tsv").write_text("a\tb\n")

    def config(**btmlm):
        return PretrainingConfig.from_dict({"tokenizer": "t", "data": {"parallel_dir": str(tmp_path)},
                                            "btmlm": btmlm, "stages": [{"name": "s", "steps": 1,
                                                                        "objectives": {"btmlm": 1}}]})

    ids = {"en": 0, "de": 1, "it": 2}
    assert btmlm_target_languages(config(), ids) == [0, 1]  # never Italian: no pairs
    no_pairs = config()
    no_pairs.data.parallel_dir = None
    assert btmlm_target_languages(no_pairs, ids) == [0, 1, 2]
    assert btmlm_target_languages(config(target_languages=["it", "en"]), ids) == [0, 2]
    with pytest.raises(RunError, match=r"btmlm.target_languages: \['xx'\] not among"):
        btmlm_target_languages(config(target_languages=["xx"]), ids)


def test_a_step_in_process_and_a_resume_that_keeps_the_schedule(corpus, tokenizer_dir, tmp_path):
    whole = Pretraining(smoke_config(corpus, tokenizer_dir), str(tmp_path / "whole"))
    name, metrics = whole.train_step(0)
    assert name in ("camlm", "mmlm") and metrics["tokens"] > 0 and metrics[f"{name}_loss"] > 0
    whole.close()
    whole = Pretraining(smoke_config(corpus, tokenizer_dir), str(tmp_path / "whole"))
    whole.train()
    # Stopped at step 4 with --max_steps, then resumed: the schedule is the stages' 12 steps both times, so the
    # learning rate of every step equals the uninterrupted run's (it used to be a 4-step schedule, then a jump).
    Pretraining(smoke_config(corpus, tokenizer_dir), str(tmp_path / "split"), stop_at=4).train()
    assert "pretraining_config.json" in os.listdir(tmp_path / "split" / "checkpoint-4")
    Pretraining(smoke_config(corpus, tokenizer_dir), str(tmp_path / "split"), resume=True).train()
    assert learning_rates(tmp_path / "split") == learning_rates(tmp_path / "whole")
    assert max(learning_rates(tmp_path / "whole")) == 12


@pytest.mark.parametrize("override, message", [
    ("stages.1.steps=20", "schedule length (the sum of stages.*.steps) was 12 in the saved run and is 26 now"),
    ("languages=[ru, de, en]", "languages was ['en', 'de', 'ru'] in the saved run and is ['ru', 'de', 'en'] now"),
    ("model.overrides.intermediate_size=32", "model was "),
])
def test_a_resume_refuses_what_must_not_change_in_one_line(corpus, tokenizer_dir, tmp_path, override, message):
    out = str(tmp_path / "out")
    Pretraining(smoke_config(corpus, tokenizer_dir), out, stop_at=4).train()
    with pytest.raises(RunError) as caught:
        Pretraining(smoke_config(corpus, tokenizer_dir, override), out, resume=True)
    text = str(caught.value)
    assert text.startswith(f"cannot resume from {out}/checkpoint-4: {message}") and "\n" not in text
    assert text.endswith("or start a new --output_dir")
    with pytest.raises(RunError, match=r"--max_steps 13 is outside the schedule \(1-12 steps"):
        Pretraining(smoke_config(corpus, tokenizer_dir), out, resume=True, stop_at=13)


def test_the_checkpoint_tokenizer_carries_the_training_language_ids_into_fine_tuning(corpus, tokenizer_dir,
                                                                                     tmp_path):
    """Trained with languages [ru, de, en] (the tokenizer's own order is en, de, ru): the checkpoint's tokenizer
    gives Russian id 0, so a fine-tuning pipeline reading the checkpoint uses the ids the model was trained with."""
    from ernie_m import ErnieMTokenizer
    from finetune.classification import encode
    from finetune.readers import PairExample

    assert ErnieMTokenizer.from_pretrained(tokenizer_dir).languages == ["en", "de", "ru"]
    out = tmp_path / "out"
    Pretraining(smoke_config(corpus, tokenizer_dir, "languages=[ru, de, en]"), str(out), stop_at=2).train()
    tokenizer = ErnieMTokenizer.from_pretrained(str(out / "checkpoint-2"))
    assert tokenizer.languages == ["ru", "de", "en"]
    examples = [PairExample("Мы изучаем модели.", None, "0", "ru"), PairExample("A fox.", None, "0", "en")]
    russian, english = encode(tokenizer, examples, 32, with_language_ids=True)
    assert set(russian["language_ids"]) == {0} and set(english["language_ids"]) == {2}
