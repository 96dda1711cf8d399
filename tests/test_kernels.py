"""ernie_m.kernels: the CPU fast paths give the values of Paddle's own ops (dropout with Paddle's semantics and
NumPy-drawn masks, the fused-bias linear, head-major attention), and one switch turns them all off."""
import numpy as np
import paddle
import pytest

import ernie_m
from ernie_m import kernels
from ernie_m.kernels import Dropout, dropout


def _dropped(p=0.1, shape=(64, 128, 128), seed=0):
    paddle.seed(seed)
    x = paddle.to_tensor(np.random.default_rng(1).uniform(1.0, 2.0, shape).astype("float32"), stop_gradient=False)
    return x, dropout(x, p, training=True)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_drops_at_the_rate_and_scales_the_kept_values_up(p):
    x, y = _dropped(p)
    x, y = x.numpy(), y.numpy()
    dropped = y == 0.0
    n = dropped.size
    assert abs(dropped.mean() - p) < 5 * np.sqrt(p * (1 - p) / n)  # 5 standard deviations of a binomial rate
    np.testing.assert_allclose(y[~dropped], x[~dropped] / (1.0 - p), rtol=1e-6)


def test_the_gradient_is_the_mask():
    x, y = _dropped(0.1, (32, 48))
    (y * 3.0).sum().backward()
    kept = y.numpy() != 0.0
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, 3.0 / 0.9, 0.0), rtol=1e-6)


def test_paddle_seed_fixes_the_mask_and_successive_calls_differ():
    _, first = _dropped(seed=7)
    _, again = _dropped(seed=7)
    _, other = _dropped(seed=8)
    assert np.array_equal(first.numpy(), again.numpy())
    assert not np.array_equal(first.numpy(), other.numpy())
    paddle.seed(7)
    x = paddle.ones([256, 256])
    assert not np.array_equal(dropout(x, 0.1, True).numpy(), dropout(x, 0.1, True).numpy())


def test_identity_in_eval_and_at_zero_and_paddle_for_what_numpy_does_not_take():
    x = paddle.ones([8, 8])
    assert dropout(x, 0.5, training=False) is x and dropout(x, 0.0, training=True) is x
    assert float(dropout(x, 1.0, training=True).abs().sum()) == 0.0
    doubles = dropout(paddle.ones([4096], dtype="float64"), 0.5, training=True)  # Paddle's own kernel
    assert doubles.dtype == paddle.float64 and 0 < float((doubles == 0).astype("float32").mean()) < 1
    assert float(dropout(paddle.to_tensor(2.0), 0.5, training=True)) in (0.0, 4.0)  # a 0-d tensor: Paddle's kernel


def test_the_layer_is_an_nn_dropout_and_follows_train_and_eval():
    layer = Dropout(0.3)
    assert isinstance(layer, paddle.nn.Dropout) and layer.p == 0.3
    x = paddle.ones([128, 128])
    layer.eval()
    assert np.array_equal(layer(x).numpy(), x.numpy())
    layer.train()
    assert 0.2 < float((layer(x) == 0).astype("float32").mean()) < 0.4


def test_the_model_runs_it_deterministically_under_paddle_seed():
    config = ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=300)
    ids = paddle.to_tensor(np.random.default_rng(0).integers(3, 300, (2, 16)))
    paddle.seed(0)
    model = ernie_m.ErnieMModel(config)

    def output(seed, training=True):
        model.train() if training else model.eval()
        paddle.seed(seed)
        return model(ids)[0].numpy()

    assert np.array_equal(output(3), output(3))
    assert not np.array_equal(output(3), output(4))
    assert not np.allclose(output(3), output(3, training=False), atol=1e-3)


def test_fast_paths_equal_paddle_own_ops():
    rng = np.random.default_rng(0)
    linear = paddle.nn.Linear(16, 24)
    x = paddle.to_tensor(rng.standard_normal((3, 5, 16)).astype("float32"))
    np.testing.assert_allclose(kernels.linear(linear, x).numpy(), linear(x).numpy(), rtol=1e-5, atol=1e-6)
    q, k, v = (paddle.to_tensor(rng.standard_normal((2, 7, 3, 8)).astype("float32")) for _ in range(3))
    bias = paddle.to_tensor(np.where(rng.random((2, 1, 7, 7)) < 0.2, -1e4, 0.0).astype("float32"))
    fast, fast_probs = kernels.attention(q, k, v, bias, 0.0, False, need_probs=True)
    reference, probs = kernels.reference_attention(q, k, v, bias, 0.0, False)
    np.testing.assert_allclose(fast.numpy(), reference.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast_probs.numpy(), probs.numpy(), rtol=1e-5, atol=1e-6)


def test_one_switch_turns_every_fast_path_off_and_the_model_agrees(monkeypatch):
    config = ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=300)
    ids = paddle.to_tensor(np.random.default_rng(0).integers(3, 300, (2, 16)))
    paddle.seed(0)
    model = ernie_m.ErnieMModel(config)
    model.eval()
    fast = model(ids, output_attentions=True)
    called = []
    for name in ("linear", "attention", "layer_norm", "gelu", "tied_projection", "token_cross_entropy", "dropout"):
        monkeypatch.setattr(kernels.fast_paths, name, lambda *a, name=name: called.append(name))
    kernels.set_cpu_fast_paths(False)
    try:
        slow = model(ids, output_attentions=True)
    finally:
        kernels.set_cpu_fast_paths(True)
    assert called == []
    np.testing.assert_allclose(fast[0].numpy(), slow[0].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast[2][0].numpy(), slow[2][0].numpy(), rtol=1e-4, atol=1e-5)
