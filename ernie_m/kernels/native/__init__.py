"""The C++ CPU operators of `ernie_m_ops.cc`: built once by the install command, loaded on first use.

    python -m ernie_m.kernels.native          # build (the README's install command runs it); prints where

The build goes into `build/` beside this file (or `$ERNIE_M_NATIVE_DIR`), stamped with the source's hash, the flags
and the Paddle and Python versions; a stale or missing build is never used. When the operators cannot be loaded,
`ops()` returns None, the model runs Paddle's own ops instead (the same values), and one line on stderr says why,
once per process.
"""
from __future__ import annotations

import hashlib
import os
import sys
from typing import Optional

NAME = "ernie_m_ops"
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{NAME}.cc")
# Optimised and vectorisable, with OpenMP; linked to the OpenMP runtime MKL uses in this process (Intel's libiomp5,
# shipped in Paddle's libs), listed before Paddle so that the OpenMP calls bind to it and not to libgomp.
CXX_FLAGS = ["-O3", "-fopenmp", "-fno-math-errno", "-DNDEBUG"]


def _link_flags():
    import paddle

    libs = os.path.join(os.path.dirname(paddle.__file__), "libs")
    return [f"-L{libs}", "-Wl,--no-as-needed", "-l:libiomp5.so"]


_state = {"loaded": False, "ops": None, "reason": None, "record_events": False}


def build_directory() -> str:
    return os.environ.get("ERNIE_M_NATIVE_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "build")


def _fingerprint() -> str:
    import paddle

    digest = hashlib.sha256()
    with open(SOURCE, "rb") as handle:
        digest.update(handle.read())
    digest.update(" ".join(CXX_FLAGS + _link_flags()).encode())
    digest.update(paddle.__version__.encode())
    digest.update(sys.version.split()[0].encode())
    return digest.hexdigest()


def _library() -> str:
    return os.path.join(build_directory(), NAME, f"{NAME}.so")


def _stamp() -> str:
    return os.path.join(build_directory(), f"{NAME}.stamp")


def build(verbose: bool = False) -> str:
    """Compile the operators (about 20 s) and stamp the build; returns the library's path."""
    from paddle.utils.cpp_extension import load

    directory = build_directory()
    os.makedirs(directory, exist_ok=True)
    load(name=NAME, sources=[SOURCE], build_directory=directory, extra_cxx_cflags=CXX_FLAGS,
         extra_ldflags=_link_flags(), verbose=verbose)
    with open(_stamp(), "w") as handle:
        handle.write(_fingerprint())
    _state.update(loaded=False, ops=None, reason=None)
    return _library()


def _why_unusable() -> Optional[str]:
    if not os.path.exists(_library()) or not os.path.exists(_stamp()):
        return f"not built in {build_directory()}"
    with open(_stamp()) as handle:
        if handle.read().strip() != _fingerprint():
            return f"the build in {build_directory()} is for another source, flags, Paddle or Python version"
    return None


class _Ops:
    """The registered operators, called through Paddle's custom-op runner (dynamic graph)."""

    def __init__(self):
        from paddle import _C_ops
        from paddle.profiler import RecordEvent

        self._run_op, self._event = _C_ops._run_custom_op, RecordEvent

    def _run(self, name, *args):
        if _state["record_events"]:  # Paddle's profiler does not see custom operators' forward calls by itself
            with self._event(name):
                return self._run_op(name, *args)
        return self._run_op(name, *args)

    def layer_norm(self, x, weight, bias, epsilon: float):
        return self._run("ernie_m_layer_norm", x, weight, bias, float(epsilon))[0]

    def add_layer_norm(self, x, residual, weight, bias, epsilon: float):
        return self._run("ernie_m_add_layer_norm", x, residual, weight, bias, float(epsilon))[0]

    def gelu(self, x):
        return self._run("ernie_m_gelu", x)[0]

    def attention_softmax(self, scores, bias):
        return self._run("ernie_m_attention_softmax", scores, bias)[0]

    def linear(self, x, weight, bias, transposed: bool = False):
        return self._run("ernie_m_linear", x, weight, bias, bool(transposed))[0]

    def greedy_ids(self, hidden, embedding, bias, penalty):
        return self._run("ernie_m_greedy_ids", hidden, embedding, bias, penalty)[0]

    def cross_entropy(self, logits, labels, ignore_index: int = -100):
        loss, argmax, _ = self._run("ernie_m_cross_entropy", logits, labels, int(ignore_index))
        return loss, argmax


def ops() -> Optional[_Ops]:
    """The operators, or None (with one line on stderr, once) when they are not built or cannot be loaded."""
    if not _state["loaded"]:
        _state["loaded"] = True
        reason = _why_unusable()
        if reason is None:
            try:
                from paddle.utils.cpp_extension.extension_utils import load_op_meta_info_and_register_op

                load_op_meta_info_and_register_op(_library())
                _state["ops"] = _Ops()
            except Exception as error:  # a broken or foreign library: fall back, say why
                reason = f"could not load {_library()}: {str(error).strip().splitlines()[0] if str(error) else error}"
        if reason is not None:
            _state["reason"] = reason
            print(f"ernie_m: native CPU kernels unavailable ({reason}); using Paddle's ops (same results, slower). "
                  f"Build them with: python -m ernie_m.kernels.native", file=sys.stderr)
    return _state["ops"]


def record_events(enabled: bool) -> None:
    """Mark every forward call of the operators as a profiler event (tools/bench/profile_step.py)."""
    _state["record_events"] = bool(enabled)


def unavailable_reason() -> Optional[str]:
    ops()
    return _state["reason"]
