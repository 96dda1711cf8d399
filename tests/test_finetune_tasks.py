"""finetune.tasks: each task module registers its reader, head and metric, and finetune/run.py runs what is
registered."""
import os
import subprocess
import sys

import pytest

from ernie_m.architectures import ARCHITECTURES
from finetune import run as run_entry
from finetune.tasks import TASKS, Task, load_tasks, register

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_task_module_registers_its_head_reader_and_metric():
    tasks = load_tasks()
    assert {"classification", "ner", "qa", "retrieval"} <= set(tasks)
    for name, task in tasks.items():
        module = sys.modules[f"finetune.{name}"]
        assert module.TASK is task and task.main is module.main and task.read is module.read_data
        assert task.head_class() is next(a for a in ARCHITECTURES.values() if a.head == task.head).model_class
    assert [TASKS[name].head_class().__name__ for name in ("classification", "ner", "qa", "retrieval")] == [
        "ErnieMForSequenceClassification", "ErnieMForTokenClassification", "ErnieMForQuestionAnswering", "ErnieMModel"]
    assert TASKS["ner"].metric([["B-PER", "O"]], [["B-PER", "O"]]) == 1.0
    assert TASKS["classification"].metric([1, 0], [1, 1]) == 0.5


def test_a_head_outside_the_architectures_is_refused():
    with pytest.raises(ValueError, match="head 'translation' is not one of ernie_m.ARCHITECTURES'"):
        register(Task("translation", "translation", read=list, metric=len, main=print))


def test_the_entry_file_runs_any_registered_task(monkeypatch):
    seen = []
    register(Task("echo", "encoder", read=list, metric=len, main=seen.append))
    try:
        with pytest.raises(SystemExit) as stop:
            run_entry.main(["echo", "--x", "1"])
        assert stop.value.code == 0 and seen == [["--x", "1"]]
        with pytest.raises(SystemExit, match=r"usage: finetune/run.py \{classification,echo,ner,qa,retrieval\}"):
            run_entry.main(["translation"])
    finally:
        TASKS.pop("echo")


def test_the_entry_file_runs_from_another_directory_without_a_path_edit(tmp_path):
    """The script imports `finetune` as an installed package, as paddle.distributed.launch runs it."""
    result = subprocess.run([sys.executable, os.path.join(ROOT, "finetune", "run.py"), "nothing"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1].startswith(
        "usage: finetune/run.py {classification,ner,qa,retrieval}"), result.stderr[-2000:]
