"""The fine-tuning core (layer-wise learning rates, best checkpoint) and the classification pipeline end to end on
fixtures in the XNLI and PAWS-X layouts."""
import json
import os

import numpy as np
import paddle
import pytest

from finetune import classification
from finetune.trainer import TrainingArguments, build_optimizer, layer_scale
from tests.test_finetune_readers import XNLI_HEADER, _xnli_row


def test_layer_scales_follow_the_released_recipe():
    # L = 2, d = 0.8: top layer 1, layer below 0.8, embeddings 0.8^3, heads and pooler 1.
    assert layer_scale("ernie_m.encoder.layers.1.linear1.weight", 2, 0.8) == 1.0
    assert layer_scale("ernie_m.encoder.layers.0.self_attn.q_proj.weight", 2, 0.8) == pytest.approx(0.8)
    assert layer_scale("ernie_m.embeddings.word_embeddings.weight", 2, 0.8) == pytest.approx(0.512)
    assert layer_scale("ernie_m.pooler.dense.weight", 2, 0.8) == 1.0
    assert layer_scale("classifier.weight", 2, 0.8) == 1.0


def test_optimizer_applies_the_layer_scales(tiny_model_dir, tmp_path):
    """Adam's first step moves a weight by about lr x its multiplier: Paddle really scales each group."""
    from ernie_m import ErnieMForSequenceClassification

    model = ErnieMForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3)
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-3, layer_decay=0.5, warmup=0.0)
    optimizer, _ = build_optimizer(model, args, total_steps=10)
    names = {"top": "ernie_m.encoder.layers.1.linear1.weight", "lower": "ernie_m.encoder.layers.0.linear1.weight",
             "embeddings": "ernie_m.embeddings.position_embeddings.weight", "head": "classifier.weight"}
    parameters = dict(model.named_parameters())
    before = {key: parameters[name].numpy().copy() for key, name in names.items()}
    ids = paddle.to_tensor(np.arange(3, 19, dtype=np.int64).reshape([2, 8]))
    model(ids, labels=paddle.to_tensor([0, 2]), return_dict=True).loss.backward()
    optimizer.step()
    moved = {key: np.abs(parameters[names[key]].numpy() - before[key]).max() for key in names}
    # Without warm-up the schedule starts at the full rate.
    assert moved["top"] == pytest.approx(1e-3, rel=0.05) and moved["head"] == pytest.approx(1e-3, rel=0.05)
    assert moved["lower"] == pytest.approx(5e-4, rel=0.05)
    assert moved["embeddings"] == pytest.approx(1e-3 * 0.5 ** 3, rel=0.05)


def _write_xnli(directory):
    english = [("A man eats bread.", "A person eats.", "entailment"),
               ("A man eats bread.", "Nobody eats.", "contradiction"),
               ("A woman sings.", "A woman sings loudly.", "neutral")]
    german = [("Ein Mann isst Brot.", "Eine Person isst.", "entailment"),
              ("Ein Mann isst Brot.", "Niemand isst.", "contradiction")]
    rows = [_xnli_row("en", label, a, b) for a, b, label in english] + \
           [_xnli_row("de", label, a, b) for a, b, label in german]
    for split in ("dev", "test"):
        (directory / f"xnli.{split}.tsv").write_text(XNLI_HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    header = "gold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\t" \
             "sentence1\tsentence2\tpromptID\tpairID\tgenre"
    train = [f"{label}\t\t\t\t\t{a}\t{b}\t1\t1\tgov" for a, b, label in english * 6]
    (directory / "multinli_1.0_train.txt").write_text(header + "\n" + "\n".join(train) + "\n", encoding="utf-8")
    (directory / "XNLI-Translated").mkdir()
    (directory / "XNLI-Translated" / "en-de-translated.tsv").write_text(
        "".join(f"{a}\t{b}\t{'contradictory' if label == 'contradiction' else label}\n" for a, b, label in german))


@pytest.mark.parametrize("mode", ["transfer", "translate-train-all"])
def test_xnli_pipeline_end_to_end(tiny_model_dir, tmp_path, mode):
    _write_xnli(tmp_path)
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


def test_pawsx_pipeline_and_a_missing_file(tiny_model_dir, tmp_path):
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
    with pytest.raises(SystemExit, match=r"de/test_2k.tsv: file not found \(expected PAWS-X"):
        classification.main(["--task", "pawsx", "--data_dir", str(tmp_path), "--model", tiny_model_dir,
                             "--output_dir", str(out), "--languages", "en", "de", "--max_steps", "1"])


def test_two_cpu_ranks_fine_tune_in_step(tiny_model_dir, tmp_path):
    """finetune/run.py under paddle.distributed.launch: 2 gloo ranks, sharded batches, identical final weights."""
    import subprocess
    import sys

    _write_xnli(tmp_path)
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
