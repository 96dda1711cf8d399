"""CPU implementations behind `ernie_m.kernels`: same values as Paddle's ops within float32 rounding, faster on a
CPU at the model's shapes. Where the C++ operators of `native/` are built, the element-wise work (LayerNorm, GELU,
the attention softmax, bias gradients, the loss) runs there; without them, Paddle's ops in a faster arrangement.
Why each one is faster, with figures: docs/benchmarks.md, "What made it fast"."""
from __future__ import annotations

import math

import numpy as np
import paddle
import paddle.nn.functional as F

from . import native


def _native(x):
    """The C++ operators when they are built and `x` is float32, else None."""
    return native.ops() if x.dtype == paddle.float32 else None


def linear(x, weight, bias):
    """x @ weight + bias: the C++ operator (its bias gradient a fast column sum), else the bias added inside the
    multiply (addmm), not in a second pass."""
    ops = _native(x)
    if ops is not None:
        return ops.linear(x, weight, bias)
    out = paddle.addmm(bias.unsqueeze(0), x.reshape([-1, x.shape[-1]]), weight)
    return out.reshape(list(x.shape[:-1]) + [weight.shape[1]])


def tied_projection(x, embedding, bias):
    """x @ embedding^T + bias (the LM head's projection onto the vocabulary), or None without the C++ operators."""
    ops = _native(x)
    return None if ops is None else ops.linear(x, embedding, bias, transposed=True)


def layer_norm(x, residual, weight, bias, epsilon: float):
    """LayerNorm over the last dimension of x (+ residual) in one pass, or None without the C++ operators."""
    ops = _native(x)
    if ops is None:
        return None
    if residual is None:
        return ops.layer_norm(x, weight, bias, epsilon)
    return ops.add_layer_norm(x, residual, weight, bias, epsilon)


def gelu(x):
    """GELU (the erf form), or None without the C++ operators."""
    ops = _native(x)
    return None if ops is None else ops.gelu(x)


def token_cross_entropy(logits, labels):
    """(cross-entropy per row, argmax per row) in one pass over the logits, or None without the C++ operators."""
    ops = _native(logits)
    return None if ops is None else ops.cross_entropy(logits, labels)


def greedy_ids(x, embedding, bias, penalty):
    """argmax per row of x @ embedding^T + bias + penalty without keeping the logits, or None without the C++
    operators."""
    ops = _native(x)
    return None if ops is None else ops.greedy_ids(x, embedding, bias, penalty)


def dropout(x, p: float):
    """Dropout with the mask drawn by NumPy. Each mask's seed comes from Paddle's generator, so `paddle.seed`
    still fixes the masks and recompute replays them."""
    seed = int(paddle.randint(0, 2**31 - 1, [1]).item())
    mask = np.random.default_rng(seed).random(x.shape, dtype=np.float32)
    np.greater_equal(mask, np.float32(p), out=mask, casting="unsafe")  # 1.0 kept, 0.0 dropped, in place
    mask *= np.float32(1.0 / (1.0 - p))  # kept values scaled up, as Paddle's "upscale_in_train"
    return x * paddle.to_tensor(mask)


def attention(q, k, v, bias, dropout_probs):
    """Attention over [batch, seq, heads, head_dim], computed head-major ([heads x batch, seq, head_dim], reached by
    3-D permutes, which Paddle's CPU runs far faster than the 4-D one), with 1/sqrt(d) applied to q rather than to
    the larger scores. Returns the context as [batch, seq, heads, head_dim] and the probabilities as
    [batch, heads, seq, seq]."""
    batch, seq_len, heads, head_dim = q.shape

    def heads_first(x):
        x = x.reshape([batch * seq_len, heads, head_dim]).transpose([1, 0, 2])
        return x.reshape([heads * batch, seq_len, head_dim])

    q, k, v = heads_first(q * (1.0 / math.sqrt(head_dim))), heads_first(k), heads_first(v)
    scores = paddle.matmul(q, k, transpose_y=True).reshape([heads, batch, seq_len, seq_len])
    ops = _native(scores) if bias is None or _bias_layout_fits(bias, batch, heads, seq_len) else None
    if ops is not None:  # the bias is read in its own [batch, 1 or heads, ...] layout, added inside the softmax
        probs = ops.attention_softmax(scores, _empty() if bias is None else bias.astype("float32"))
    else:
        if bias is not None:  # [batch, 1 or heads, 1 or seq, seq] -> [1 or heads, batch, ...]
            scores = scores + bias.transpose([1, 0, 2, 3])
        probs = F.softmax(scores, axis=-1)
    context = paddle.matmul(dropout_probs(probs).reshape([heads * batch, seq_len, seq_len]), v)
    context = context.reshape([heads, batch * seq_len, head_dim]).transpose([1, 0, 2])
    return context.reshape([batch, seq_len, heads, head_dim]), probs.transpose([1, 0, 2, 3])


def _bias_layout_fits(bias, batch: int, heads: int, seq_len: int) -> bool:
    shape = list(bias.shape)
    return len(shape) == 4 and shape[0] == batch and shape[1] in (1, heads) and shape[2] in (1, seq_len) \
        and shape[3] == seq_len


def _empty():
    return paddle.empty([0], dtype="float32")
