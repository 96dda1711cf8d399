"""The operations the model's forward is written in, each dispatched to a CPU fast path or to Paddle's own op.

The CPU paths (`kernels/fast_paths.py`) compute the same values within float32 rounding; they exist because several of
Paddle's CPU kernels are slow at the model's shapes (figures in docs/benchmarks.md). One switch turns them all off:
`ERNIE_M_CPU_FAST_PATHS=0` in the environment, or `set_cpu_fast_paths(False)`. Static graphs (export) and
accelerators always take Paddle's own ops.
"""
from __future__ import annotations

import math
import os
from typing import Optional, Tuple

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle import Tensor

from . import fast_paths

__all__ = ["linear", "tied_projection", "layer_norm", "activation", "token_cross_entropy", "greedy_ids", "dropout",
           "Dropout", "attention", "nothing_hidden", "set_cpu_fast_paths", "cpu_fast_paths"]

_enabled = os.environ.get("ERNIE_M_CPU_FAST_PATHS", "1") != "0"


def set_cpu_fast_paths(enabled: bool) -> None:
    global _enabled
    _enabled = bool(enabled)


def cpu_fast_paths() -> bool:
    return _enabled


def _fast(x: Tensor) -> bool:
    return _enabled and paddle.in_dynamic_mode() and x.place.is_cpu_place()


def _on_cpu(x: Tensor, function, *args):
    """`function(*args)` from `fast_paths`, where the fast paths apply to `x`; None elsewhere, and where that function
    has nothing faster (it returns None without the C++ operators)."""
    return function(*args) if _fast(x) else None


def linear(layer: nn.Layer, x: Tensor) -> Tensor:
    """`layer(x)`."""
    if _fast(x) and type(layer) is nn.Linear and layer.bias is not None:  # not subclasses or wrappers (LoRA)
        return fast_paths.linear(x, layer.weight, layer.bias)
    return layer(x)


def tied_projection(x: Tensor, embedding: Tensor, bias: Tensor) -> Tensor:
    """`x @ embedding^T + bias`: the LM head's projection onto a vocabulary tied to the word embeddings."""
    out = _on_cpu(x, fast_paths.tied_projection, x, embedding, bias)
    return out if out is not None else paddle.matmul(x, embedding, transpose_y=True) + bias


def layer_norm(layer: nn.Layer, x: Tensor, residual: Optional[Tensor] = None) -> Tensor:
    """`layer(x + residual)` (or `layer(x)`) for an `nn.LayerNorm` over the last dimension."""
    if type(layer) is nn.LayerNorm and len(layer._normalized_shape) == 1 and layer.weight is not None \
            and layer.bias is not None:
        out = _on_cpu(x, fast_paths.layer_norm, x, residual, layer.weight, layer.bias, layer._epsilon)
        if out is not None:
            return out
    return layer(x if residual is None else x + residual)


def _gelu(x: Tensor) -> Tensor:
    out = _on_cpu(x, fast_paths.gelu, x)
    return out if out is not None else F.gelu(x)


def activation(name: str):
    """The activation function called `name` in `paddle.nn.functional` (a config's `hidden_act`); GELU through the
    CPU fast path."""
    return _gelu if name == "gelu" else getattr(F, name)


def token_cross_entropy(logits: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor]:
    """(cross-entropy of each row of `logits` [n, vocab] against `labels` [n], the argmax of each row)."""
    out = _on_cpu(logits, fast_paths.token_cross_entropy, logits, labels)
    if out is not None:
        return out
    return F.cross_entropy(logits, labels, reduction="none").reshape([-1]), logits.argmax(axis=-1)


def greedy_ids(x: Tensor, embedding: Tensor, bias: Tensor, penalty: Tensor) -> Tensor:
    """`(tied_projection(x, embedding, bias) + penalty).argmax(-1)`: the best-scoring vocabulary id of each row of
    `x` under a tied LM head; ids with a -inf penalty are never chosen."""
    out = _on_cpu(x, fast_paths.greedy_ids, x, embedding, bias, penalty)
    return out if out is not None else (tied_projection(x, embedding, bias) + penalty).argmax(axis=-1)


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """`F.dropout(x, p, training)` (element-wise, upscale in training)."""
    if not training or p == 0.0:
        return x
    if _fast(x) and p < 1.0 and x.dtype == paddle.float32 and x.ndim > 0:
        return fast_paths.dropout(x, p)
    return F.dropout(x, p, training=training)


class Dropout(nn.Dropout):
    """`nn.Dropout` through `dropout`."""

    def forward(self, x):
        return dropout(x, self.p, self.training)


def nothing_hidden(hidden: Tensor) -> bool:
    """True when a padding mask hides nothing, so that no bias need be added; answered only where it costs no
    device synchronisation (the CPU), else False."""
    return _fast(hidden) and not bool(hidden.any())


def attention(q: Tensor, k: Tensor, v: Tensor, bias: Optional[Tensor], dropout_p: float, training: bool,
              need_probs: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
    """Scaled dot-product attention over [batch, seq, heads, head_dim] inputs; returns the context in that layout
    and, when `need_probs`, the probabilities as [batch, heads, query, key]."""
    if _fast(q):
        context, probs = fast_paths.attention(q, k, v, bias, lambda p: dropout(p, dropout_p, training))
        return context, probs if need_probs else None
    if need_probs:
        return reference_attention(q, k, v, bias, dropout_p, training)
    # The fused (flash) kernel where the device has one.
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p, training=training), None


def reference_attention(q, k, v, bias, dropout_p: float, training: bool):
    """softmax(q k^T / sqrt(d) + bias) v, written out (for the probabilities, and as the reference)."""
    q, k, v = (x.transpose([0, 2, 1, 3]) for x in (q, k, v))
    scores = paddle.matmul(q, k, transpose_y=True) / math.sqrt(q.shape[-1])
    if bias is not None:
        scores = scores + bias
    probs = F.softmax(scores, axis=-1)
    context = paddle.matmul(F.dropout(probs, dropout_p, training=training), v)
    return context.transpose([0, 2, 1, 3]), probs
