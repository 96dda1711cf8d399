"""The typed pretraining configuration: defaults in one place, unknown keys and bad values refused by name, dotted
overrides, the copy saved with each checkpoint and what a resume may not change."""
import glob
import os

import pytest

from ernie_m.pretraining.config import (
    ConfigError, PretrainingConfig, TrainSection, apply_override, load_config, resume_changes, resume_conflict,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, "pretrain", "configs", "smoke.yaml")


def test_config_overrides():
    config = {"train": {"seed": 1}, "stages": [{"steps": 5}]}
    apply_override(config, "train.seed=7")
    apply_override(config, "stages.0.steps=20")
    apply_override(config, "optimizer.lr=2e-4")
    assert config == {"train": {"seed": 7}, "stages": [{"steps": 20}], "optimizer": {"lr": 2e-4}}
    with pytest.raises(ConfigError, match="not of the form"):
        apply_override(config, "train.seed")
    with pytest.raises(ConfigError, match="no such field"):
        apply_override(config, "stages.3.steps=1")


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "pretrain", "configs", "*.yaml"))))
def test_every_shipped_config_loads(path):
    config = load_config(path, ["tokenizer=some/dir"])
    assert config.schedule_steps == sum(stage.steps for stage in config.stages) > 0
    assert isinstance(config.optimizer.lr, float)  # "2e-4" in YAML 1.1 is a string: converted


def test_defaults_live_in_the_dataclasses():
    config = PretrainingConfig.from_dict({"tokenizer": "t", "stages": [{"name": "a", "steps": 3,
                                                                        "objectives": {"mmlm": 1}}]})
    assert config.train.seed == TrainSection().seed == 42
    assert (config.optimizer.beta2, config.camlm.mask_prob, config.data.alpha) == (0.98, 0.15, 0.3)


@pytest.mark.parametrize("override, message", [
    ("optimizer.lrr=1", "optimizer.lrr: unknown field; did you mean lr?"),
    ("train.sed=1", "train.sed: unknown field; did you mean seed?"),
    ("trian.seed=1", "trian: unknown field; did you mean train?"),
    ("train.seed=abc", "train.seed: expected an integer, got 'abc'"),
    ("train.recompute=3", "train.recompute: expected true or false, got 3"),
    ("optimizer.lr=-1", "optimizer.lr: must be positive, got -1.0"),
    ("optimizer.lr=nan", "optimizer.lr: expected a finite number, got nan"),
    ("optimizer.max_grad_norm=.inf", "optimizer.max_grad_norm: expected a finite number, got inf"),
    ("train.save_steps=0", "train.save_steps: must be positive, got 0"),
    ("train.accumulate_steps=0", "train.accumulate_steps: must be positive, got 0"),
    ("data.alpha=0", "data.alpha: must be in (0, 1], got 0.0"),
    ("train.amp=fp8", "train.amp: must be bf16, fp16 or null, got 'fp8'"),
    ("stages.0.steps=0", "stages.0: stage 'align': steps must be positive, got 0"),
    ("stages.0.batch_size=1000000", "stages.0: stage 'align': batch_size must be at most 65536"),
    ("data.pool_size=0", "data.pool_size: must be in [1, 10000000]"),
    ("stages.0.objectives.xlm=1", "unknown objectives ['xlm']"),
    ("languages=[en]", "languages: configure at least two languages"),
    ("btmlm.target_languages=en", "btmlm.target_languages: expected a list, got 'en'"),
])
def test_bad_fields_are_refused_by_name(override, message):
    with pytest.raises(ConfigError) as caught:
        load_config(SMOKE, ["tokenizer=t", override])
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_typo_stops_the_entry_before_training(tmp_path, capsys):
    from pretrain import run_pretrain

    with pytest.raises(SystemExit) as caught:
        run_pretrain.main(["--config", SMOKE, "--output_dir", str(tmp_path / "out"), "tokenizer=t", "optimizer.lrr=1"])
    assert caught.value.code == 2
    assert capsys.readouterr().err == "run_pretrain: optimizer.lrr: unknown field; did you mean lr?\n"
    assert not (tmp_path / "out").exists()


def test_missing_file_and_sections_written_as_null(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(str(tmp_path / "nope.yaml"))
    path = tmp_path / "c.yaml"
    path.write_text("tokenizer: t\ntrain: null\nstages: [{name: a, steps: 2, objectives: {mmlm: 1}}]\n")
    assert load_config(str(path), ["train.seed=3"]).train.seed == 3
    path.write_text("tokenizer: t\nstages: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(path))


def test_the_saved_config_round_trips_and_names_what_a_resume_may_not_change(tmp_path):
    config = load_config(SMOKE, ["tokenizer=t", "languages=[en, de, ru]"])
    config.save(str(tmp_path))
    saved = PretrainingConfig.from_saved(str(tmp_path))
    assert saved == config and resume_conflict(saved, config) is None
    assert PretrainingConfig.from_saved(str(tmp_path / "elsewhere")) is None
    # What may change, each change named: how often to save, the number of reader processes, the per-rank batch.
    conflict, accepted = resume_changes(saved, load_config(SMOKE, [
        "tokenizer=t", "languages=[en, de, ru]", "train.save_steps=2", "data.num_workers=0", "stages.0.batch_size=3"]))
    assert conflict is None and accepted == [
        "data.num_workers was 1 in the saved run and is 0 now",
        "stages.0.batch_size was 4 in the saved run and is 3 now", "train.save_steps was 4 in the saved run and is 2 now"]
    # Anything else is another run: refused, named (seed, learning rate, masking, sampling, objectives, the corpus).
    for override, name in (("train.seed=7", "train.seed"), ("optimizer.lr=0.5", "optimizer.lr"),
                           ("camlm.mask_prob=0.3", "camlm.mask_prob"), ("data.alpha=0.9", "data.alpha"),
                           ("data.parallel_dir=elsewhere", "data.parallel_dir"),
                           ("stages.0.objectives={mmlm: 1.0}", "stages.0.objectives")):
        changed = load_config(SMOKE, ["tokenizer=t", "languages=[en, de, ru]", override])
        assert resume_conflict(saved, changed).startswith(f"{name}"), override
    longer = load_config(SMOKE, ["tokenizer=t", "languages=[en, de, ru]", "stages.1.steps=60"])
    assert resume_conflict(saved, longer) == ("schedule length (the sum of stages.*.steps) was 12 in the saved run "
                                              "and is 66 now")
    reordered = load_config(SMOKE, ["tokenizer=t", "languages=[de, en, ru]"])
    assert "languages was ['en', 'de', 'ru'] in the saved run and is ['de', 'en', 'ru'] now" == \
        resume_conflict(saved, reordered)
    wider = load_config(SMOKE, ["tokenizer=t", "languages=[en, de, ru]", "model.overrides.hidden_size=128"])
    assert resume_conflict(saved, wider).startswith("model was ")


def test_a_model_override_that_is_no_config_field_is_refused_with_the_closest_name():
    """`model.overrides.hiden_size=128` is refused with the closest field, hidden_size (ErnieMConfig would keep it as
    an unused attribute and a 64-wide model would train)."""
    with pytest.raises(ConfigError, match=r"^model.overrides.hiden_size: not an ErnieMConfig field; did you mean "
                                          r"hidden_size\?$"):
        load_config(SMOKE, ["tokenizer=t", "model.overrides.hiden_size=128"])
    assert load_config(SMOKE, ["tokenizer=t", "model.overrides.hidden_size=128"]).model.overrides["hidden_size"] == 128


def test_the_configuration_accepts_exactly_the_amp_settings_the_training_core_runs():
    from ernie_m.training.precision import AMP_DTYPES, AMP_OFF, amp_dtype

    stages = [{"name": "s", "steps": 1, "objectives": {"mmlm": 1}}]
    for value in (v for v in (*AMP_OFF, *AMP_DTYPES) if v is None or isinstance(v, str)):  # YAML `false` is no str
        assert PretrainingConfig.from_dict({"tokenizer": "t", "stages": stages, "train": {"amp": value}}).train.amp \
            == value
        amp_dtype(value)  # the core takes it too
    for value in ("fp8", "half", "int8"):
        with pytest.raises(ConfigError, match=f"train.amp: must be bf16, fp16 or null, got '{value}'"):
            PretrainingConfig.from_dict({"tokenizer": "t", "stages": stages, "train": {"amp": value}})
        with pytest.raises(ValueError, match=f"amp must be bf16, fp16 or none, got '{value}'"):
            amp_dtype(value)
