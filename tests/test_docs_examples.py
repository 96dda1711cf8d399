"""Every `python` and `bash` block of docs/inference.md and docs/finetuning.md, run as written.

The blocks run in a directory holding the tiny checkpoints and fixture data the examples name, with this
repository's `tools/`, `finetune/` and `pretrain/` linked in and the installed `ernie-m` on the PATH. `text` blocks
are synopses (placeholders, alternatives in brackets) and are not run.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ("docs/inference.md", "docs/finetuning.md")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def code_blocks(doc):
    """(language, code) of each fenced block, in order."""
    with open(os.path.join(ROOT, doc), encoding="utf-8") as handle:
        return FENCE.findall(handle.read())


@pytest.mark.parametrize("doc", DOCS)
def test_every_block_is_an_example_or_a_synopsis(doc):
    languages = [language for language, _ in code_blocks(doc)]
    assert set(languages) <= {"python", "bash", "text"}, languages
    assert "bash" in languages and (doc != "docs/inference.md" or "python" in languages)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tokenizer_dir):
    import paddle

    from ernie_m import (UIEM, ErnieMConfig, ErnieMForSequenceClassification, ErnieMForTokenClassification,
                         ErnieMModel, ErnieMTokenizer)
    from tests.helpers import save_language_model, write_xnli

    root = tmp_path_factory.mktemp("docs_examples")
    for name in ("tools", "finetune", "pretrain"):
        os.symlink(os.path.join(ROOT, name), root / name)
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)

    def save(model, directory):
        model.save_pretrained(str(root / directory))
        tokenizer.save_pretrained(str(root / directory))

    def config(**fields):
        return ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=len(tokenizer), **fields)

    paddle.seed(41)
    save(ErnieMModel(config()), "models/tiny")
    save(ErnieMForSequenceClassification(config(num_labels=3, id2label={0: "contradiction", 1: "entailment",
                                                                          2: "neutral"})), "out/xnli/best")
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    save(ErnieMForTokenClassification(config(num_labels=len(tags), id2label=dict(enumerate(tags)))), "out/conll/best")
    save(UIEM(config()), "my_uie_m")
    save_language_model(ErnieMForSequenceClassification, tokenizer, root / "out/topics/best", seed=42, num_labels=2)
    save_language_model(ErnieMModel, tokenizer, root / "models/tiny-multilingual", seed=43)
    (root / "XNLI-1.0").mkdir()
    write_xnli(root / "XNLI-1.0")
    return root


def _run(command, cwd, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command[:2]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def _run_blocks(doc, workspace):
    """The doc's python blocks as one script (later blocks use earlier names), then each bash block."""
    blocks = code_blocks(doc)
    python = "\n\n".join(code for language, code in blocks if language == "python")
    if python:
        _run([sys.executable, "-c", python], workspace)
    return [_run(["bash", "-euo", "pipefail", "-c", code], workspace).stdout
            for language, code in blocks if language == "bash"]


def test_the_inference_examples_run(workspace):
    _run_blocks("docs/inference.md", workspace)
    assert {"model.json", "model.onnx", "tokenizer_config.json"} <= set(os.listdir(workspace / "out/xnli/static"))
    predictions = [json.loads(line) for line in (workspace / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 2 and all(p["label"] in ("contradiction", "entailment", "neutral")
                                         for p in predictions)
    assert np.load(workspace / "vectors.npy").shape == (2, 64)
    assert os.path.isfile(workspace / "out/xnli-back/config.json")


def test_the_finetuning_examples_run(workspace):
    outputs = _run_blocks("docs/finetuning.md", workspace)
    trained = json.loads((workspace / "out/xnli-transfer/results.json").read_text())
    evaluated = json.loads((workspace / "out/xnli-eval/results.json").read_text())
    assert evaluated["test_accuracy"] == trained["test_accuracy"] and "best_step" not in evaluated
    mine = json.loads((workspace / "out/mine/results.json").read_text())
    assert set(mine["test_accuracy"]) == {"en", "de", "average"} and set(mine["best_dev"]) == {"en", "average"}
    assert json.loads((workspace / "out/mine/best/config.json").read_text())["id2label"] == {"0": "food",
                                                                                            "1": "sport"}
    assert os.path.isfile(workspace / "out/trainer/final/model_state.pdparams")
    printed = "\n".join(outputs)
    assert "paddle.distributed.launch" in printed and "--batch_size 16" in printed  # 128 over 8 ranks
