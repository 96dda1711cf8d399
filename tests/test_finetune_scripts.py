"""One script per benchmark: the released recipes reach the command line, and a script runs end to end."""
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import write_xnli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "finetune", "scripts")


def dry_run(script, *args, nproc=1):
    env = dict(os.environ, DRY_RUN="1", NPROC=str(nproc), PYTHON=sys.executable)
    return subprocess.run(["bash", os.path.join(SCRIPTS, script), *args], capture_output=True, text=True, env=env,
                          timeout=60)


@pytest.mark.parametrize("script, args, nproc, expected", [
    ("xnli.sh", ["transfer", "M", "D", "T", "O"], 1,
     "--learning_rate 5e-5 --layer_decay 0.8 --weight_decay 0 --warmup 0.1 --epochs 5 --batch_size 32 "
     "--max_length 256"),
    ("xnli.sh", ["translate-train-all", "M", "D", "T", "O", "large"], 8, "--epochs 1 --batch_size 16"),
    ("xnli.sh", ["translate-train-all", "M", "D", "T", "O", "base"], 1, "--epochs 2 --batch_size 128"),
    ("conll.sh", ["english", "M", "D", "O"], 1, "--learning_rate 4e-4 --layer_decay 0.8 --weight_decay 0.01"),
    ("conll.sh", ["all", "M", "D", "O", "large"], 1, "--learning_rate 2e-4 --layer_decay 0.9"),
    ("conll.sh", ["all", "M", "D", "O"], 1, "--learning_rate 3e-4 --layer_decay 0.8"),
    ("mlqa.sh", ["M", "S", "D", "O", "large"], 1, "--learning_rate 8e-5 --layer_decay 0.9 --weight_decay 0"),
    ("mlqa.sh", ["M", "S", "D", "O"], 4, "--batch_size 8 --max_length 384 --doc_stride 128"),
    ("pawsx.sh", ["transfer", "M", "D", "O"], 1, "--task pawsx --mode transfer"),
    ("xquad.sh", ["M", "S", "V", "X", "O", "large"], 1, "--dev en:V --test en:X/xquad.en.json"),
    ("tatoeba.sh", ["M", "D", "O", "deu"], 1, "--task tatoeba"),
    ("bucc.sh", ["M", "D", "O"], 1, "--split test --languages de fr ru zh"),
])
def test_recipes_reach_the_command(script, args, nproc, expected):
    result = dry_run(script, *args, nproc=nproc)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert ("paddle.distributed.launch --nproc_per_node" in result.stdout) == (nproc > 1 and script not in (
        "tatoeba.sh", "bucc.sh"))


@pytest.mark.parametrize("script, arguments", [("conll.sh", ("english", "M", "D", "O")),
                                               ("mlqa.sh", ("M", "SQUAD", "MLQA", "O", "base")),
                                               ("xnli.sh", ("transfer", "M", "D", "T", "O"))])
def test_a_batch_that_does_not_divide_stops_the_script_before_any_command(script, arguments):
    """A global batch that the ranks do not divide stops the script with its message before any command runs."""
    result = dry_run(script, *arguments, nproc=3)
    assert result.returncode == 2 and "does not divide over NPROC=3" in result.stderr
    assert "finetune/run.py" not in result.stdout
    bad = dry_run(script, *arguments, nproc="x")
    assert bad.returncode == 2 and "NPROC must be a positive integer, got 'x'" in bad.stderr


def test_bad_arguments_are_refused():
    assert "does not divide over NPROC=3" in dry_run("xnli.sh", "transfer", "M", "D", "T", "O", nproc=3).stderr
    assert "size must be base or large" in dry_run("conll.sh", "all", "M", "D", "O", "huge").stderr
    assert "mode must be transfer or translate-train-all" in dry_run("xnli.sh", "zero", "M", "D", "T", "O").stderr


def test_xnli_script_runs(tiny_model_dir, tmp_path):
    write_xnli(tmp_path)
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="2")
    result = subprocess.run(
        ["bash", os.path.join(SCRIPTS, "xnli.sh"), "transfer", tiny_model_dir, str(tmp_path),
         str(tmp_path / "multinli_1.0_train.txt"), str(tmp_path / "out"), "base", "--languages", "en", "de",
         "--max_steps", "2"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(json.loads((tmp_path / "out" / "results.json").read_text())["test_accuracy"]) == {"en", "de",
                                                                                                  "average"}
