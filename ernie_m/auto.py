"""Auto classes over this project's models, as PaddleNLP's and HF's are used: `AutoModel.from_pretrained(path)`
builds the class `path/config.json` names, a task's Auto class builds that task's head.

PaddleNLP's own `AutoModel*` map `model_type: ernie_m` to PaddleNLP's ErnieM classes, which mask token id 0 and have
no language embedding; these build ours.
"""
from __future__ import annotations

import os

from .architectures import ARCHITECTURES, saved_architecture

__all__ = ["AutoModel", "AutoModelForSequenceClassification", "AutoModelForTokenClassification",
           "AutoModelForQuestionAnswering", "AutoModelForMultipleChoice", "AutoModelForPretraining", "AutoTokenizer"]


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
        return ARCHITECTURES[saved or "ErnieMModel"].model_class

    @classmethod
    def from_pretrained(cls, name_or_path: str, *args, **kwargs):
        return cls.class_for(name_or_path).from_pretrained(name_or_path, *args, **kwargs)


class AutoModel(_AutoModel):
    """The class the checkpoint was saved from (an encoder for a released name)."""


class AutoModelForSequenceClassification(_AutoModel):
    architecture = "ErnieMForSequenceClassification"


class AutoModelForTokenClassification(_AutoModel):
    architecture = "ErnieMForTokenClassification"


class AutoModelForQuestionAnswering(_AutoModel):
    architecture = "ErnieMForQuestionAnswering"


class AutoModelForMultipleChoice(_AutoModel):
    architecture = "ErnieMForMultipleChoice"


class AutoModelForPretraining(_AutoModel):
    architecture = "ErnieMForPretraining"


class AutoTokenizer:
    @staticmethod
    def from_pretrained(name_or_path: str, *args, **kwargs):
        from .tokenizer import ErnieMTokenizer

        return ErnieMTokenizer.from_pretrained(name_or_path, *args, **kwargs)
