"""What each ERNIE-M architecture is, in one table: the class a checkpoint's config.json names, its head, its
counterpart in HF transformers, and the Taskflow task that serves it. The command line, the converters and
Taskflow read it from here."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from .configuration import RELEASED_CONFIGS

__all__ = ["Architecture", "ARCHITECTURES", "RELEASED_MODELS", "architecture_named", "saved_architecture"]


@dataclass(frozen=True)
class Architecture:
    name: str  # our class, as config.json's `architectures` names it (PaddleNLP's names)
    head: str  # what sits on the encoder
    hf_name: Optional[str] = None  # the HF transformers class; None: no counterpart there
    hf_has_pooler: bool = True  # HF's class keeps the pooler (its token-level heads drop it)
    taskflow_task: Optional[str] = None  # the PaddleNLP Taskflow task that serves fine-tuned checkpoints
    outputs: Tuple[str, ...] = ()  # what `return_dict=False` returns, by name (an exported program's outputs)

    @property
    def model_class(self):
        from . import modeling

        return getattr(modeling, self.name)


ARCHITECTURES: Dict[str, Architecture] = {a.name: a for a in (
    Architecture("ErnieMModel", "encoder", "ErnieMModel", outputs=("last_hidden_state", "pooler_output")),
    Architecture("ErnieMForSequenceClassification", "sequence_classification", "ErnieMForSequenceClassification",
                 taskflow_task="text_classification", outputs=("logits",)),
    Architecture("ErnieMForTokenClassification", "token_classification", "ErnieMForTokenClassification",
                 hf_has_pooler=False, taskflow_task="ner", outputs=("logits",)),
    Architecture("ErnieMForQuestionAnswering", "question_answering", "ErnieMForQuestionAnswering",
                 hf_has_pooler=False, outputs=("start_logits", "end_logits")),
    Architecture("ErnieMForMultipleChoice", "multiple_choice", "ErnieMForMultipleChoice", outputs=("logits",)),
    Architecture("UIEM", "information_extraction", "ErnieMForInformationExtraction",
                 taskflow_task="information_extraction", outputs=("start_prob", "end_prob")),
    Architecture("ErnieMForPretraining", "pretraining"),
)}

# Names PaddleNLP publishes weights under (`from_pretrained(name)` downloads them through PaddleNLP).
RELEASED_MODELS = tuple(RELEASED_CONFIGS)


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
    architectures = config.get("architectures") or ["ErnieMModel"]
    if not isinstance(architectures, list) or not isinstance(architectures[0], str):
        raise ValueError(f"{path}: 'architectures' must be a list of class names, found {architectures!r}")
    return architectures[0]
