"""`import ernie_m`: no process-wide side effects, Paddle loaded only when a name is used, and the order of imports
does not matter."""
import functools
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = """
import logging, os, sys
{before}
environment = dict(os.environ)
datasets_level = logging.getLogger("datasets").level
import ernie_m
assert dict(os.environ) == environment, set(os.environ.items()) ^ set(environment.items())
assert logging.getLogger("datasets").level == datasets_level
print("paddle loaded:", "paddle" in sys.modules)
import numpy as np, paddle
paddle.seed(0)
model = ernie_m.ErnieMModel(ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=50))
model.eval()
print(float(model(paddle.to_tensor(np.arange(2, 12).reshape([1, 10])))[0].sum()))
"""


@functools.lru_cache(maxsize=None)
def _probe(before: str = ""):
    env = {k: v for k, v in os.environ.items() if k != "MKL_DEBUG_CPU_TYPE"}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run([sys.executable, "-c", PROBE.format(before=before)], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return tuple(result.stdout.split("\n"))


def test_import_changes_nothing_in_the_process_and_loads_paddle_only_when_used():
    assert _probe()[0] == "paddle loaded: False"


def test_import_order_does_not_matter():
    first = _probe()
    after = _probe("import paddle")
    assert after[0] == "paddle loaded: True"
    assert first[1] == after[1]  # the same model output either way


def test_every_public_name_resolves():
    """Each public name is the object its module defines (a lazy table pointing at the wrong place would give
    another or none), and the names PaddleNLP's users look for are there."""
    import importlib

    import ernie_m

    for name in ernie_m.__all__:
        value = getattr(ernie_m, name)
        if not callable(value):  # a table (PRESETS): it must hold something
            assert isinstance(value, dict) and value, name
            continue
        module = importlib.import_module(value.__module__)
        assert module.__name__.startswith("ernie_m.") and getattr(module, name, None) is value, name
    expected = {"ErnieMConfig", "ErnieMModel", "ErnieMTokenizer", "ErnieMForSequenceClassification",
                "ErnieMForTokenClassification", "ErnieMForQuestionAnswering", "ErnieMForMultipleChoice", "UIEM",
                "ErnieMForPretraining", "AutoModel", "AutoTokenizer"}
    assert expected <= set(ernie_m.__all__) and expected <= set(dir(ernie_m))


IMPORT_EVERYTHING = """
import copy, importlib, logging, os, pkgutil, sys, warnings
import paddle, paddlenlp.taskflow  # their own import-time effects are not ours
from paddlenlp.transformers import model_utils
from paddlenlp.taskflow import taskflow as registry

def snapshot():
    levels = {name: logger.level for name, logger in logging.Logger.manager.loggerDict.items()
              if isinstance(logger, logging.Logger)}
    return {"environment": dict(os.environ), "logger levels": levels, "warning filters": list(warnings.filters),
            "PaddleNLP's load_state_dict": model_utils.load_state_dict,
            "Taskflow's tasks": copy.deepcopy({name: sorted(task.get("modes", {})) for name, task in registry.TASKS.items()}),
            "Taskflow's task methods": {(cls.__name__, name): value for cls in __import__("paddlenlp").taskflow.task.Task.__subclasses__()
                                        for name, value in vars(cls).items() if callable(value)}}

before = snapshot()
names = []
for package in ("ernie_m", "finetune"):
    module = importlib.import_module(package)
    names += [package] + [info.name for info in pkgutil.walk_packages(module.__path__, package + ".")]
names.append("pretrain.run_pretrain")
for name in names:
    importlib.import_module(name)
after = snapshot()
for what in before:
    if what == "logger levels":
        changed = {name: (level, after[what][name]) for name, level in before[what].items() if after[what][name] != level}
        changed.update({name: (None, level) for name, level in after[what].items() if name not in before[what] and level})
    elif what == "Taskflow's task methods":  # new subclasses are ours to add; PaddleNLP's must be as they were
        changed = {key for key, value in before[what].items() if after[what].get(key) is not value}
    else:
        changed = before[what] != after[what]
    print(f"{what}: {'changed ' + str(changed) if changed else 'unchanged'}")
print("modules imported:", len(names))
"""


def test_importing_every_module_changes_nothing_in_the_process():
    """Every module of ernie_m and finetune, and the pretraining entry, imported in a fresh process (after Paddle and
    PaddleNLP): the environment, logger levels, warning filters, PaddleNLP's loader and Taskflow are as they were."""
    env = {k: v for k, v in os.environ.items() if k != "MKL_DEBUG_CPU_TYPE"}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert [line for line in lines if not line.endswith("unchanged") and "modules imported" not in line] == []
    assert int(lines[-1].split()[-1]) > 50


def test_no_file_edits_the_import_path():
    """Entry files run as installed code (ernie_m, finetune) or as modules from the repository (`python -m tools...`),
    so none of them puts a directory on sys.path itself."""
    edit = re.compile(r"sys\.path\.(insert|append|extend)\(|sys\.path\s*(\+=|=[^=])")
    offenders = []
    for top in ("ernie_m", "finetune", "pretrain", "tools", "tests"):
        for directory, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    with open(path, encoding="utf-8") as handle:
                        offenders += [f"{os.path.relpath(path, ROOT)}:{number}" for number, line in
                                      enumerate(handle, 1) if edit.search(line) and "edit = re.compile" not in line]
    assert offenders == []


def test_the_pretraining_entry_runs_from_another_directory(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "pretrain", "run_pretrain.py"), "--help"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0 and "--branch_from" in result.stdout, result.stderr[-2000:]
