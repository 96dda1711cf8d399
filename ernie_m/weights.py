"""Reading and writing weight files without running code from them.

`.pdparams` files are Python pickles: `paddle.load` would call whatever a crafted file names. `load_pdparams` uses
an unpickler that rebuilds only what `paddle.save` writes for a state dict (dicts, strings, numbers, numpy arrays)
and refuses any other global before calling it. `save_state_dict` writes safetensors (or `.pdparams`).
"""
from __future__ import annotations

import collections
import contextlib
import os
import pickle
import threading
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from .atomic import atomic_file

__all__ = ["UnsafeCheckpointError", "CheckpointFormatError", "load_pdparams", "load_state_dict", "save_state_dict",
           "parameter_digest", "state_dict_mismatch", "WEIGHT_FILES", "find_weight_file", "pdparams_read_safely_by_paddlenlp"]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The file asks to call something a weight file has no reason to call."""


class CheckpointFormatError(ValueError):
    """The file is not a readable weight file (truncated, corrupted, or of another kind)."""


# (module, name) pairs that a state dict saved by paddle.save (numpy 1.x or 2.x, pickle protocol 2 or later) needs,
# and nothing else. `ndarray`, `dtype` and `encode` come back guarded (`_StateDictUnpickler.find_class`).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # protocol 2 stores an array's bytes as a latin-1 string
}


class _ArrayType:
    """What the file gets for `numpy.ndarray`: a name to pass to numpy's guarded `_reconstruct`, never a
    constructor (a direct `ndarray(shape, dtype)` would allocate whatever shape the file declares)."""

    def __init__(self, path: str):
        self.path = path

    def __call__(self, *args, **kwargs):
        raise UnsafeCheckpointError(f"{self.path}: refused to load: the file calls numpy.ndarray directly, which "
                                    "paddle.save never does (it may be crafted to exhaust memory)")

# paddle.save adds this bookkeeping entry (structured name -> parameter name); it is not a weight.
_PADDLE_NAME_TABLE = "StructuredToParameterName@@"


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, file, path: str):
        super().__init__(file)
        self._path = path
        self._array_type = _ArrayType(path)

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            if name == "ndarray":
                return self._array_type
            found = super().find_class(module, name)
            guards = {"_reconstruct": self._empty_array_only, "dtype": self._numeric_dtype_only,
                      "encode": self._latin1_only}
            return guards[name](found) if name in guards else found
        raise UnsafeCheckpointError(
            f"{self._path}: refused to load: the file asks for '{module}.{name}', which a weight file never needs "
            "(it may be crafted to run code). Only numpy arrays in dicts are accepted."
        )

    def _empty_array_only(self, reconstruct):
        """numpy pickles an array as an empty one (shape (0,)) filled by its state, whose data must then match the
        declared shape; any other shape would allocate what the file declares, not what it holds."""
        path = self._path

        def guarded(subtype, shape, dtype):
            if tuple(shape) != (0,):
                raise CheckpointFormatError(f"{path}: an array is declared with shape {tuple(shape)} outside its "
                                            "data; numpy never writes that (the file may be crafted)")
            return reconstruct(np.ndarray if isinstance(subtype, _ArrayType) else subtype, shape, dtype)

        return guarded

    def _numeric_dtype_only(self, dtype):
        """Weights are numbers: an object dtype would make numpy unpickle arbitrary Python objects, item by item."""
        path = self._path

        def guarded(*args, **kwargs):
            made = dtype(*args, **kwargs)
            if made.hasobject:
                raise UnsafeCheckpointError(f"{path}: refused to load: an array of Python objects (dtype "
                                            f"{made}), which a weight file never holds")
            return made

        return guarded

    def _latin1_only(self, encode):
        path = self._path

        def guarded(text, encoding="utf-8", *rest):
            if not isinstance(text, str) or str(encoding).lower().replace("-", "") != "latin1" or rest:
                raise UnsafeCheckpointError(f"{path}: refused to load: _codecs.encode is used by weight files "
                                            "only to turn a latin-1 string into an array's bytes")
            return encode(text, "latin1")

        return guarded

    def persistent_load(self, pid):
        raise UnsafeCheckpointError(f"{self._path}: refused to load: persistent ids are not used by weight files")


def load_pdparams(path: str) -> Dict[str, np.ndarray]:
    """Read a `.pdparams` state dict as numpy arrays, never executing code from the file.

    bfloat16 tensors come back as uint16 arrays, as paddle.save stores them.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weight file not found: {path}")
    try:
        with open(path, "rb") as handle:
            obj = _StateDictUnpickler(handle, path).load()
    except (UnsafeCheckpointError, CheckpointFormatError):
        raise
    except Exception as error:  # truncated or corrupt pickles raise many different types
        raise CheckpointFormatError(
            f"{path}: not a readable .pdparams state dict ({type(error).__name__}: {error}); "
            "the file may be truncated or corrupted"
        ) from error
    if not isinstance(obj, Mapping):
        raise CheckpointFormatError(f"{path}: expected a dict of arrays, found {type(obj).__name__}")
    state = collections.OrderedDict()
    for key, value in obj.items():
        if key == _PADDLE_NAME_TABLE:
            continue
        if not isinstance(key, str) or not isinstance(value, np.ndarray):
            raise CheckpointFormatError(
                f"{path}: entry {key!r} is a {type(value).__name__}, expected a numpy array under a string key"
            )
        state[key] = value
    return state


def load_state_dict(path: str) -> Dict[str, np.ndarray]:
    """Read weights from `.safetensors` or `.pdparams` into numpy arrays."""
    if path.endswith(".safetensors"):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"weight file not found: {path}")
        from safetensors.numpy import load_file

        try:
            return collections.OrderedDict(load_file(path))
        except Exception as error:
            raise CheckpointFormatError(
                f"{path}: not a readable safetensors file ({type(error).__name__}: {error})"
            ) from error
    return load_pdparams(path)


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    return value.numpy()  # paddle.Tensor; bfloat16 comes out as uint16, matching paddle.save


def save_state_dict(state_dict: Mapping, path: str) -> None:
    """Write a state dict as safetensors (by the `.safetensors` ending, PaddleNLP's numpy format) or `.pdparams`.

    The file appears under its name only once complete: a crash mid-write leaves any previous file intact.
    """
    arrays = collections.OrderedDict((key, np.ascontiguousarray(_to_numpy(v))) for key, v in state_dict.items())
    with atomic_file(path) as temporary:
        if path.endswith(".safetensors"):
            from safetensors.numpy import save_file

            save_file(arrays, temporary, metadata={"format": "np"})
        else:
            with open(temporary, "wb") as handle:
                pickle.dump(arrays, handle, protocol=4)


# A `save_pretrained` directory's weight file, in the order `from_pretrained` looks for them
# (`safe_serialization=True` writes the second).
# In the order PaddleNLP's `from_pretrained` looks for them (safetensors first): whatever checks a directory's
# weights must check the file that will be loaded.
WEIGHT_FILES = ("model.safetensors", "model_state.pdparams")


def find_weight_file(directory: str) -> Optional[str]:
    """The weight file of a `save_pretrained` directory, or None."""
    return next((os.path.join(directory, name) for name in WEIGHT_FILES
                 if os.path.isfile(os.path.join(directory, name))), None)


def state_dict_mismatch(expected: Mapping[str, Sequence[int]], loaded: Mapping[str, np.ndarray]) -> Optional[str]:
    """The first difference between a model's keys and shapes (`expected`) and a loaded state dict, in words; None
    when they match exactly. Training resumes only from an exact match: Paddle merely warns otherwise and the
    unmatched weights would restart from random."""
    missing = [key for key in expected if key not in loaded]
    if missing:
        return f"missing key {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
    unexpected = [key for key in loaded if key not in expected]
    if unexpected:
        return f"unexpected key {unexpected[0]!r}" + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1
                                                       else "")
    for key, shape in expected.items():
        if list(loaded[key].shape) != list(shape):
            return f"{key!r} has shape {list(loaded[key].shape)}, the model {list(shape)}"
    return None


def parameter_digest(model) -> str:
    """SHA-256 over every parameter's name and bytes: data-parallel replicas must agree on it."""
    import hashlib

    digest = hashlib.sha256()
    for name, parameter in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(parameter.numpy().tobytes())
    return digest.hexdigest()


_PADDLENLP_LOADING = threading.RLock()


@contextlib.contextmanager
def pdparams_read_safely_by_paddlenlp():
    """While open, PaddleNLP's `model_utils.load_state_dict` reads `.pdparams` through `load_pdparams` instead of
    `paddle.load` (safetensors as before). PaddleNLP's `from_pretrained` resolves the files (local or downloaded),
    then calls that one function, so swapping it keeps every other behaviour. Only our `from_pretrained` opens the
    context, around its own call; a lock keeps two threads' loads from restoring each other's function."""
    import paddle
    from paddlenlp.transformers import model_utils

    def to_tensor(array: np.ndarray):
        tensor = paddle.to_tensor(array, place=paddle.CPUPlace())
        return tensor.view(paddle.bfloat16) if array.dtype == np.uint16 else tensor  # paddle.save's bfloat16 bits

    with _PADDLENLP_LOADING:
        original = model_utils.load_state_dict

        def read_safely(checkpoint_file, *args, **kwargs):
            if str(checkpoint_file).endswith(".safetensors"):
                return original(checkpoint_file, *args, **kwargs)
            return {key: to_tensor(value) for key, value in load_pdparams(str(checkpoint_file)).items()}

        model_utils.load_state_dict = read_safely
        try:
            yield
        finally:
            model_utils.load_state_dict = original
