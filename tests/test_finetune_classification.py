"""The fine-tuning core (layer-wise learning rates, best checkpoint) and the classification pipeline end to end on
fixtures in the XNLI and PAWS-X layouts."""
import json
import os

import pytest

from finetune import classification
from tests.helpers import one_line_exit, write_xnli


@pytest.mark.parametrize("mode", ["transfer", "translate-train-all"])
def test_xnli_pipeline_end_to_end(tiny_model_dir, tmp_path, mode):
    write_xnli(tmp_path)
    out = tmp_path / "out"
    classification.main(["--task", "xnli", "--data_dir", str(tmp_path), "--train_file",
                         str(tmp_path / "multinli_1.0_train.txt"), "--model", tiny_model_dir, "--output_dir", str(out),
                         "--mode", mode, "--languages", "en", "de", "--max_steps", "6", "--eval_steps", "3",
                         "--batch_size", "4", "--learning_rate", "1e-3", "--max_length", "32"])
    results = json.loads((out / "results.json").read_text())
    assert set(results["test_accuracy"]) == {"en", "de", "average"}
    assert all(0.0 <= value <= 1.0 for value in results["test_accuracy"].values())
    # Transfer selects on English dev only; translate-train-all on every language.
    assert set(results["best_dev"]) == ({"en", "average"} if mode == "transfer" else {"en", "de", "average"})
    history = json.loads((out / "dev_results.json").read_text())["history"]
    assert [record["step"] for record in history] == [3, 6]
    assert results["best_step"] in (3, 6)
    assert max(record["average"] for record in history) == results["best_dev"]["average"]
    assert os.path.isfile(out / "best" / "model_state.pdparams") and not os.path.exists(out / "best.tmp")


def test_pawsx_pipeline_and_a_missing_file(tiny_model_dir, tmp_path, capsys):
    for language in ("en", "de"):
        (tmp_path / language).mkdir()
        rows = "".join(f"{i}\tSatz {i}\tSatz {i % 3}\t{int(i % 3 == i)}\n" for i in range(8))
        for split in ("train", "dev_2k", "test_2k"):
            (tmp_path / language / f"{split}.tsv").write_text("id\tsentence1\tsentence2\tlabel\n" + rows)
    out = tmp_path / "out"
    classification.main(["--task", "pawsx", "--data_dir", str(tmp_path), "--model", tiny_model_dir,
                         "--output_dir", str(out), "--languages", "en", "de", "--max_steps", "2", "--batch_size", "4"])
    assert set(json.loads((out / "results.json").read_text())["test_accuracy"]) == {"en", "de", "average"}
    os.remove(tmp_path / "de" / "test_2k.tsv")
    line = one_line_exit(capsys, classification.main, [
        "--task", "pawsx", "--data_dir", str(tmp_path), "--model", tiny_model_dir, "--output_dir", str(out),
        "--languages", "en", "de", "--max_steps", "1", "--overwrite"])
    assert "de/test_2k.tsv: file not found (expected PAWS-X" in line


def test_two_cpu_ranks_fine_tune_in_step(tiny_model_dir, tmp_path):
    """finetune/run.py under paddle.distributed.launch: 2 gloo ranks, sharded batches, identical final weights."""
    import subprocess
    import sys

    write_xnli(tmp_path)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
               str(tmp_path / "logs"), os.path.join(root, "finetune", "run.py"), "classification", "--task", "xnli",
               "--data_dir", str(tmp_path), "--train_file", str(tmp_path / "multinli_1.0_train.txt"), "--model",
               tiny_model_dir, "--output_dir", str(out), "--languages", "en", "de", "--max_steps", "3",
               "--batch_size", "2", "--max_length", "32"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=root)
    logs = "".join(p.read_text(errors="replace")[-1500:] for p in (tmp_path / "logs").glob("workerlog.*"))
    assert result.returncode == 0, result.stderr[-1500:] + logs
    finals = [json.loads((out / f"final_rank{rank}.json").read_text()) for rank in (0, 1)]
    assert finals[0]["world_size"] == 2
    assert finals[0]["final_parameter_sha256"] == finals[1]["final_parameter_sha256"]
    assert set(json.loads((out / "results.json").read_text())["test_accuracy"]) == {"en", "de", "average"}


def test_a_row_longer_than_the_models_positions_is_cut(tokenizer_dir, tmp_path, capfd, monkeypatch):
    """A checkpoint with 20 positions (18 tokens) and the default --max_length 256: before, one long training row
    ended the run with a ValueError from the position embedding."""
    import paddle

    from ernie_m import ErnieMConfig, ErnieMModel, ErnieMTokenizer, configuration

    monkeypatch.setattr(configuration, "_CAPS_SAID", set())  # the line is said once a process: this test's own
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    paddle.seed(5)
    ErnieMModel(ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=len(tokenizer),
                                         max_position_embeddings=20)).save_pretrained(str(tmp_path / "model"))
    tokenizer.save_pretrained(str(tmp_path / "model"))
    data = tmp_path / "data"
    data.mkdir()
    long_row = " ".join(["We cook pasta with tomatoes and basil every Sunday evening."] * 8)
    (data / "train.tsv").write_text("label\ttext\n" + f"food\t{long_row}\nsport\tWe play football.\n" * 2)
    (data / "dev.tsv").write_text("label\ttext\nfood\tWe eat bread.\nsport\tWe play.\n")
    (data / "test.tsv").write_text("label\ttext\nfood\tWir essen Brot.\nsport\tWir spielen Fußball.\n")
    out = tmp_path / "out"
    classification.main(["--task", "custom", "--train_file", str(data / "train.tsv"), "--dev_file",
                         str(data / "dev.tsv"), "--test_file", str(data / "test.tsv"), "--language", "en",
                         "--model", str(tmp_path / "model"), "--output_dir", str(out), "--max_steps", "2",
                         "--batch_size", "2"])
    assert set(json.loads((out / "results.json").read_text())["test_accuracy"]) == {"en", "average"}
    assert "max_length 256 is more than this model's 20 positions hold; inputs are cut at 18 tokens" in \
        capfd.readouterr().err
