"""The fine-tuning tasks by name. A task is one module of this package that registers a `Task`: how it reads its
data, the `ernie_m` head it trains, the metric it scores with, and its command line. `finetune/run.py TASK` and
`python -m finetune.TASK` run it; adding a task is adding its module."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable, Dict

__all__ = ["Task", "TASKS", "register", "load_tasks"]


@dataclass(frozen=True)
class Task:
    name: str  # `finetune/run.py NAME`
    head: str  # the head it fine-tunes (or embeds with), as ernie_m.ARCHITECTURES names heads
    read: Callable  # the command's arguments -> the task's examples
    metric: Callable  # the score of one language's predictions; the best checkpoint is chosen on its average
    main: Callable  # the command line: main(argv)

    def head_class(self):
        from ernie_m.architectures import with_head

        return with_head(self.head).model_class


TASKS: Dict[str, Task] = {}


def register(task: Task) -> Task:
    from ernie_m.architectures import ARCHITECTURES

    if task.name in TASKS and TASKS[task.name] != task:
        raise ValueError(f"fine-tuning task {task.name!r} is already registered")
    heads = [architecture.head for architecture in ARCHITECTURES.values()]
    if task.head not in heads:
        raise ValueError(f"fine-tuning task {task.name!r}: head {task.head!r} is not one of ernie_m.ARCHITECTURES' "
                         f"({', '.join(heads)})")
    TASKS[task.name] = task
    return task


def load_tasks() -> Dict[str, Task]:
    """Every task of this package: each module is imported, and the task modules register themselves."""
    for module in pkgutil.iter_modules(importlib.import_module(__package__).__path__):
        if module.name != "run":  # the launcher's script, not a module of tasks
            importlib.import_module(f"{__package__}.{module.name}")
    return TASKS
