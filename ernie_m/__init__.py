"""ERNIE-M for PaddlePaddle: model, heads, tokenizer and pretraining objectives.

Checkpoints are interchangeable with PaddleNLP's `ErnieM*` classes (see docs/compatibility.md).
"""
from .checkpoint import (
    CheckpointFormatError, UnsafeCheckpointError, load_state_dict, parameter_digest, save_state_dict,
)
from .configuration import PRESETS, ErnieMConfig
from .modeling import (
    UIEM,
    ErnieMForMultipleChoice,
    ErnieMForPretraining,
    ErnieMForQuestionAnswering,
    ErnieMForSequenceClassification,
    ErnieMForTokenClassification,
    ErnieMModel,
    ErnieMPretrainedModel,
    build_attention_bias,
)
from .tokenizer import ErnieMTokenizer

__version__ = "0.1.0"

__all__ = [
    "ErnieMConfig",
    "PRESETS",
    "ErnieMPretrainedModel",
    "ErnieMModel",
    "ErnieMForSequenceClassification",
    "ErnieMForTokenClassification",
    "ErnieMForQuestionAnswering",
    "ErnieMForMultipleChoice",
    "UIEM",
    "ErnieMForPretraining",
    "ErnieMTokenizer",
    "build_attention_bias",
    "load_state_dict",
    "save_state_dict",
    "parameter_digest",
    "CheckpointFormatError",
    "UnsafeCheckpointError",
]
