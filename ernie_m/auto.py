"""Auto classes over this project's models, as PaddleNLP's and HF's are used: `AutoModel.from_pretrained(path)`
builds the class `path/config.json` names, a task's Auto class builds that task's head.

PaddleNLP's own `AutoModel*` map `model_type: ernie_m` to PaddleNLP's ErnieM classes, which mask token id 0 and have
no language embedding; these build ours.
"""
from __future__ import annotations

import os

from .architectures import ARCHITECTURES, saved_architecture, with_head

__all__ = ["AutoModel", *(a.auto_class for a in ARCHITECTURES.values() if a.auto_class), "AutoTokenizer"]


class _AutoModel:
    architecture = None  # the class a task's Auto class always builds; None: the one config.json names

    def __init__(self):
        raise TypeError(f"{type(self).__name__} is built with from_pretrained(name_or_path)")

    @classmethod
    def class_for(cls, name_or_path: str):
        if cls.architecture is not None:
            return ARCHITECTURES[cls.architecture].model_class
        saved = saved_architecture(name_or_path) if os.path.isdir(name_or_path) else None
        if saved is not None and saved not in ARCHITECTURES:
            raise ValueError(f"{name_or_path}/config.json names {saved!r}, not an ERNIE-M architecture "
                             f"({', '.join(ARCHITECTURES)})")
        return ARCHITECTURES[saved].model_class if saved else with_head("encoder").model_class

    @classmethod
    def from_pretrained(cls, name_or_path: str, *args, **kwargs):
        return cls.class_for(name_or_path).from_pretrained(name_or_path, *args, **kwargs)


class AutoModel(_AutoModel):
    """The class the checkpoint was saved from (an encoder for a released name)."""


def _auto_class(architecture):
    return type(architecture.auto_class, (_AutoModel,), {
        "__doc__": f"Always builds `{architecture.name}` (its {architecture.head.replace('_', ' ')} head).",
        "__module__": __name__, "architecture": architecture.name})


# One per architecture with an Auto class in the table: AutoModelForSequenceClassification, ...
for _architecture in ARCHITECTURES.values():
    if _architecture.auto_class:
        globals()[_architecture.auto_class] = _auto_class(_architecture)
del _architecture


class AutoTokenizer:
    @staticmethod
    def from_pretrained(name_or_path: str, *args, **kwargs):
        from .tokenizer import ErnieMTokenizer

        return ErnieMTokenizer.from_pretrained(name_or_path, *args, **kwargs)
