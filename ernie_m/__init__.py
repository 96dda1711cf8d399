"""ERNIE-M for PaddlePaddle: model, heads, tokenizer and pretraining objectives.

Checkpoints are interchangeable with PaddleNLP's `ErnieM*` classes (see docs/compatibility.md).
"""
import logging
import warnings

from .cpu import prefer_fast_mkl_kernels

prefer_fast_mkl_kernels()  # before anything imports Paddle: MKL reads its CPU setting once, at load

# PaddleNLP imports `datasets`, whose config logs "PyTorch version ... available." at INFO under PaddleNLP's
# logging setup whenever torch is installed: noise on stderr for every import and every `ernie-m` command.
logging.getLogger("datasets").setLevel(logging.WARNING)

with warnings.catch_warnings():
    # Importing Paddle and PaddleNLP warns that ccache is missing (it matters only when compiling custom operators)
    # and that setuptools replaces distutils: noise on every import of this library and every `ernie-m` command.
    warnings.filterwarnings("ignore", message="No ccache found")
    warnings.filterwarnings("ignore", message="Setuptools is replacing distutils")
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
