"""What each ERNIE-M architecture is, in one table: the class a checkpoint's config.json names, its head, its Auto
class, its counterpart in HF transformers, the Taskflow task that serves it and its outputs. The package's exports,
the Auto classes, the command line, the converters, inference and Taskflow read it from here, and name a class by
its head (`with_head("token_classification")`), never by hand.

This module imports nothing heavy: `import ernie_m` reads it to know its names before Paddle loads."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

__all__ = ["Architecture", "ARCHITECTURES", "architecture_named", "saved_architecture", "with_head",
           "serving_taskflow_task"]


@dataclass(frozen=True)
class Architecture:
    name: str  # our class, as config.json's `architectures` names it (PaddleNLP's names)
    head: str  # what sits on the encoder: how the rest of the package asks for this class
    hf_name: Optional[str] = None  # the HF transformers class; None: no counterpart there
    hf_has_pooler: bool = True  # HF's class keeps the pooler (its token-level heads drop it)
    taskflow_task: Optional[str] = None  # the PaddleNLP Taskflow task that serves fine-tuned checkpoints
    outputs: Tuple[str, ...] = ()  # what `return_dict=False` returns, by name (an exported program's outputs)
    auto_class: Optional[str] = None  # the `ernie_m.AutoModelFor...` class that always builds this one

    @property
    def model_class(self):
        from . import modeling

        return getattr(modeling, self.name)


ARCHITECTURES: Dict[str, Architecture] = {a.name: a for a in (
    Architecture("ErnieMModel", "encoder", "ErnieMModel", outputs=("last_hidden_state", "pooler_output")),
    Architecture("ErnieMForSequenceClassification", "sequence_classification", "ErnieMForSequenceClassification",
                 taskflow_task="text_classification", outputs=("logits",),
                 auto_class="AutoModelForSequenceClassification"),
    Architecture("ErnieMForTokenClassification", "token_classification", "ErnieMForTokenClassification",
                 hf_has_pooler=False, taskflow_task="ner", outputs=("logits",),
                 auto_class="AutoModelForTokenClassification"),
    Architecture("ErnieMForQuestionAnswering", "question_answering", "ErnieMForQuestionAnswering",
                 hf_has_pooler=False, outputs=("start_logits", "end_logits"),
                 auto_class="AutoModelForQuestionAnswering"),
    Architecture("ErnieMForMultipleChoice", "multiple_choice", "ErnieMForMultipleChoice", outputs=("logits",),
                 auto_class="AutoModelForMultipleChoice"),
    Architecture("UIEM", "information_extraction", "ErnieMForInformationExtraction",
                 taskflow_task="information_extraction", outputs=("start_prob", "end_prob")),
    Architecture("ErnieMForPretraining", "pretraining", auto_class="AutoModelForPretraining"),
)}


def with_head(head: str) -> Architecture:
    """The architecture whose head is `head` ("encoder", "token_classification", ...)."""
    return _the_one(lambda a: a.head == head, f"head {head!r}")


def serving_taskflow_task(task: str) -> Architecture:
    """The architecture PaddleNLP's Taskflow task `task` serves ("text_classification", "ner", ...)."""
    return _the_one(lambda a: a.taskflow_task == task, f"Taskflow task {task!r}")


def _the_one(matches, what: str) -> Architecture:
    found = [a for a in ARCHITECTURES.values() if matches(a)]
    if not found:
        raise KeyError(f"no ERNIE-M architecture has {what}")
    return found[0]


def architecture_named(name: str) -> Optional[Architecture]:
    """The architecture of our class name or of its HF transformers name; None for anything else."""
    if name in ARCHITECTURES:
        return ARCHITECTURES[name]
    return next((a for a in ARCHITECTURES.values() if a.hf_name == name), None)


def saved_architecture(directory: str) -> Optional[str]:
    """The first class named by `directory/config.json`'s `architectures` (ErnieMModel when it names none); None
    without a config.json. Raises ValueError for a config.json that is not JSON."""
    path = os.path.join(directory, "config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        try:
            config = json.load(handle)
        except ValueError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(config).__name__}")
    architectures = config.get("architectures") or [with_head("encoder").name]
    if not isinstance(architectures, list) or not isinstance(architectures[0], str):
        raise ValueError(f"{path}: 'architectures' must be a list of class names, found {architectures!r}")
    return architectures[0]
