"""ERNIE-M for PaddlePaddle: model, heads, tokenizer and pretraining objectives.

Checkpoints are interchangeable with PaddleNLP's `ErnieM*` classes (see docs/compatibility.md).

Importing the package changes nothing in the process (no environment variable, no logger level) and loads Paddle
only when a name below is first used, so programs can make their process-wide settings first
(`ernie_m.cpu.configure_process`).
"""
import importlib
import warnings

from .architectures import ARCHITECTURES

__version__ = "0.1.0"

# name -> the module that defines it; every architecture's class and its Auto class come from the table
_EXPORTS = {
    "ErnieMConfig": "configuration",
    "PRESETS": "configuration",
    "ErnieMPretrainedModel": "modeling",
    **{name: "modeling" for name in ARCHITECTURES},
    "build_attention_bias": "modeling",
    "ErnieMTokenizer": "tokenizer",
    "load_state_dict": "weights",
    "save_state_dict": "weights",
    "parameter_digest": "weights",
    "CheckpointFormatError": "weights",
    "UnsafeCheckpointError": "weights",
    "AutoModel": "auto",
    **{a.auto_class: "auto" for a in ARCHITECTURES.values() if a.auto_class},
    "AutoTokenizer": "auto",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ernie_m' has no attribute {name!r}")
    with warnings.catch_warnings():
        # Importing Paddle and PaddleNLP warns that ccache is missing (it matters only when compiling custom
        # operators) and that setuptools replaces distutils: noise for every user of this library.
        warnings.filterwarnings("ignore", message="No ccache found")
        warnings.filterwarnings("ignore", message="Setuptools is replacing distutils")
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
