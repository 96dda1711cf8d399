"""CPU implementations behind `ernie_m.kernels`: same values as Paddle's ops within float32 rounding, faster on a
CPU at the model's shapes. Why each one is faster, with figures: docs/benchmarks.md, "What made it fast"."""
from __future__ import annotations

import math

import numpy as np
import paddle
import paddle.nn.functional as F


def linear(x, weight, bias):
    """x @ weight + bias with the bias added inside the multiply (addmm), not in a second pass."""
    out = paddle.addmm(bias.unsqueeze(0), x.reshape([-1, x.shape[-1]]), weight)
    return out.reshape(list(x.shape[:-1]) + [weight.shape[1]])


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
    if bias is not None:  # [batch, 1 or heads, 1 or seq, seq] -> [1 or heads, batch, ...]
        scores = scores + bias.transpose([1, 0, 2, 3])
    probs = F.softmax(scores, axis=-1)
    context = paddle.matmul(dropout_probs(probs).reshape([heads * batch, seq_len, seq_len]), v)
    context = context.reshape([heads, batch * seq_len, head_dim]).transpose([1, 0, 2])
    return context.reshape([batch, seq_len, heads, head_dim]), probs.transpose([1, 0, 2, 3])
