"""finetune/trainer.py: batches padded with their language, the task's optimizer, the best checkpoint saved whole."""
import os

import numpy as np
import pytest

from finetune.arguments import FineTuningArguments
from finetune.trainer import FineTuning, pad_inputs, save_model


def fine_tune(model, tokenizer, features, collate, evaluate, args):
    with FineTuning(args) as run:
        run.setup(model, tokenizer, features, collate, evaluate)
        return run.train()


def test_padding_takes_the_rows_language_and_masks_only_real_tokens():
    batch = pad_inputs([{"input_ids": [0, 5, 2], "language_ids": [3, 3, 3]},
                        {"input_ids": [0, 2], "language_ids": [1, 1]}], pad_id=1)
    assert batch["input_ids"].tolist() == [[0, 5, 2], [0, 2, 1]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["language_ids"].tolist() == [[3, 3, 3], [1, 1, 1]]
    assert "language_ids" not in pad_inputs([{"input_ids": [0, 2]}], pad_id=1)


def test_the_task_optimizer_uses_its_layer_decay_and_epsilon(tiny_model_dir, tmp_path):
    from ernie_m import ErnieMForSequenceClassification, ErnieMTokenizer

    model = ErnieMForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3)
    args = FineTuningArguments(output_dir=str(tmp_path), learning_rate=1e-3, layer_decay=0.5, adam_epsilon=1e-7)
    with FineTuning(args) as run:
        run.setup(model, ErnieMTokenizer.from_pretrained(tiny_model_dir), [{"input_ids": [0, 2], "labels": 0}],
                  None, None)
        scales = sorted({group["learning_rate"] for group in run.optimizer._param_groups})
        assert np.allclose(scales, [0.5 ** 3, 0.5 ** 2, 0.5, 1.0]) and run.optimizer._epsilon == 1e-7  # L = 2


def test_save_model_replaces_the_directory_whole(tiny_model_dir, tmp_path):
    from ernie_m import ErnieMModel, ErnieMTokenizer

    model, tokenizer = ErnieMModel.from_pretrained(tiny_model_dir), ErnieMTokenizer.from_pretrained(tiny_model_dir)
    best = tmp_path / "best"
    best.mkdir()
    (best / "stale.txt").write_text("from an older run")
    save_model(model, tokenizer, str(best))
    assert "config.json" in os.listdir(best) and "stale.txt" not in os.listdir(best)
    assert sorted(os.listdir(tmp_path)) == ["best"]


def test_non_finite_gradients_are_never_applied_and_a_streak_stops_the_run(tiny_model_dir, tmp_path):
    from ernie_m import ErnieMForSequenceClassification, ErnieMTokenizer
    from finetune.trainer import TrainingError

    class Poisoned(ErnieMForSequenceClassification):
        def forward(self, **inputs):  # a finite loss whose gradient is NaN (sqrt at 0)
            output = super().forward(**inputs)
            output.loss = output.loss + (self.classifier.weight * 0.0).sqrt().sum()
            return output

    model = Poisoned.from_pretrained(tiny_model_dir, num_labels=2)
    tokenizer = ErnieMTokenizer.from_pretrained(tiny_model_dir)
    before = {name: p.numpy().copy() for name, p in model.named_parameters()}
    features = [{"input_ids": [0, 5 + i, 2], "labels": i % 2} for i in range(8)]

    def collate(batch):
        out = pad_inputs(batch, tokenizer.pad_token_id)
        out["labels"] = np.array([f["labels"] for f in batch], dtype=np.int64)
        return out

    args = FineTuningArguments(output_dir=str(tmp_path), per_device_train_batch_size=2, num_train_epochs=3,
                               max_nonfinite_steps=3, progress=False)
    with pytest.raises(TrainingError, match=r"3 non-finite steps in a row \(loss or gradients; steps 1-3; "
                                            r"max_nonfinite_steps=3\): stopped. The best checkpoint so far is none"):
        fine_tune(model, tokenizer, features, collate, lambda m: {"en": 0.0}, args)
    assert all(np.array_equal(before[name], p.numpy()) for name, p in model.named_parameters())


@pytest.mark.parametrize("flag, value, message", [
    ("--batch_size", "-3", "argument --per_device_train_batch_size/--batch_size: must be at least 1, got -3"),
    ("--max_steps", "0", "argument --max_steps: must be at least 1, got 0"),
    ("--learning_rate", "nan", "argument --learning_rate: must be in (0, 1], got nan"),
    ("--max_length", "2", "argument --max_length/--max_seq_length: must be at least 3, got 2"),
])
def test_bad_numbers_are_refused_before_any_work_with_status_2(tmp_path, capsys, flag, value, message):
    from finetune import classification

    with pytest.raises(SystemExit) as caught:
        classification.main(["--model", "m", "--output_dir", str(tmp_path), "--data_dir", str(tmp_path), flag, value])
    assert caught.value.code == 2 and message in capsys.readouterr().err.strip().splitlines()[-1]


def test_an_earlier_run_is_not_replaced_unless_asked_and_do_eval_scores_a_checkpoint(tiny_model_dir, tmp_path,
                                                                                     capsys):
    """Re-running into the same directory is refused unless --overwrite_output_dir (a better best/ is never
    replaced by a worse one), and --do_eval alone scores a fine-tuned checkpoint without training it again."""
    import json

    from finetune import classification
    from tests.helpers import write_xnli

    write_xnli(tmp_path)
    out = tmp_path / "out"
    common = ["--task", "xnli", "--data_dir", str(tmp_path), "--train_file", str(tmp_path / "multinli_1.0_train.txt"),
              "--languages", "en", "de", "--batch_size", "4"]
    classification.main([*common, "--model", tiny_model_dir, "--output_dir", str(out), "--max_steps", "2"])
    trained = json.loads((out / "results.json").read_text())
    capsys.readouterr()
    with pytest.raises(SystemExit) as caught:
        classification.main([*common, "--model", tiny_model_dir, "--output_dir", str(out), "--max_steps", "1"])
    error = capsys.readouterr().err
    assert caught.value.code == 2 and "holds an earlier run" in error and "--overwrite_output_dir to delete it" in error
    assert len(error.strip().splitlines()) == 1
    assert json.loads((out / "results.json").read_text()) == trained  # untouched
    # --do_eval --do_predict on the fine-tuned checkpoint: the same test scores, no training step.
    classification.main([*common, "--model", str(out / "best"), "--output_dir", str(tmp_path / "eval"),
                         "--do_eval", "--do_predict"])
    evaluated = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert evaluated["test_accuracy"] == trained["test_accuracy"] and "best_step" not in evaluated
    assert evaluated["dev_accuracy"] == trained["dev_accuracy"]


class _Crash(Exception):
    pass


def _resumable_run(tiny_model_dir, output_dir, resume=False, crash_at_evaluation=None, overwrite=False):
    """A tiny classifier fine-tuned for 3 epochs of 4 steps, evaluated every 3 steps (so a checkpoint falls inside
    an epoch); the evaluation can crash the run (before its checkpoint is written). Returns (model, history)."""
    import paddle

    from ernie_m import ErnieMForSequenceClassification, ErnieMTokenizer
    paddle.seed(3)
    model = ErnieMForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)  # dropout on: RNG matters
    tokenizer = ErnieMTokenizer.from_pretrained(tiny_model_dir)
    features = [{"input_ids": [0, 5 + i, 9 + i % 3, 2], "labels": i % 2} for i in range(8)]
    calls = {"n": 0}

    def evaluate(trained):
        calls["n"] += 1
        if calls["n"] == crash_at_evaluation:
            raise _Crash()
        return {"en": float(trained.classifier.weight.numpy().sum())}

    def collate(batch):
        out = pad_inputs(batch, tokenizer.pad_token_id)
        out["labels"] = np.array([f["labels"] for f in batch], dtype=np.int64)
        return out

    args = FineTuningArguments(output_dir=str(output_dir), per_device_train_batch_size=2, num_train_epochs=3,
                               eval_steps=3, progress=False, learning_rate=1e-3, resume=resume,
                               overwrite_output_dir=overwrite)
    result = fine_tune(model, tokenizer, features, collate, evaluate, args)
    return model, result["history"]


def test_resume_continues_from_the_last_checkpoint_as_if_never_stopped(tiny_model_dir, tmp_path):
    """A run stopped at its third evaluation (step 9, mid-epoch 3) resumes from checkpoint-6 with --resume and ends
    with the weights and history of the run never stopped."""
    from ernie_m import parameter_digest
    from finetune.trainer import SetupError

    whole, whole_history = _resumable_run(tiny_model_dir, tmp_path / "whole")
    with pytest.raises(_Crash):
        _resumable_run(tiny_model_dir, tmp_path / "split", crash_at_evaluation=3)
    assert sorted(p for p in os.listdir(tmp_path / "split") if p.startswith("checkpoint-")) == ["checkpoint-6"]
    resumed, resumed_history = _resumable_run(tiny_model_dir, tmp_path / "split", resume=True)
    assert [h["step"] for h in resumed_history] == [3, 6, 9, 12] == [h["step"] for h in whole_history]
    assert parameter_digest(resumed) == parameter_digest(whole)
    assert resumed_history == whole_history

    with pytest.raises(SetupError, match="has no checkpoint-<step> to continue from"):
        _resumable_run(tiny_model_dir, tmp_path / "empty", resume=True)
    # A new run over a finished one (--overwrite) removes its checkpoints: a later --resume cannot mix the two.
    with pytest.raises(_Crash):
        _resumable_run(tiny_model_dir, tmp_path / "whole", crash_at_evaluation=1, overwrite=True)
    assert not [p for p in os.listdir(tmp_path / "whole") if p.startswith("checkpoint-")]
