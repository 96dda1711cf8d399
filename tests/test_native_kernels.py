"""ernie_m/kernels/native: the C++ CPU operators are built by the install command, give Paddle's values within
float32 rounding (forward and gradients, at widths that are and are not multiples of the vector width, with and
without attention masks), and when they are missing the model says so in one line and runs Paddle's ops."""
import os
import shutil
import subprocess
import sys

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

import ernie_m
from ernie_m import kernels
from ernie_m.kernels import native
from ernie_m.objectives import masked_lm_loss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTOL, ATOL = 1e-5, 1e-5


@pytest.fixture(scope="module")
def ops():
    found = native.ops()
    assert found is not None, f"native kernels unavailable here: {native.unavailable_reason()}"
    return found


def _leaf(rng, shape, scale=1.0):
    return paddle.to_tensor((rng.standard_normal(shape) * scale).astype("float32"), stop_gradient=False)


def _forward_and_grads(function, inputs, upstream):
    for tensor in inputs:
        tensor.clear_gradient()
    out = function(*inputs)
    out.backward(upstream)
    return [out.numpy()] + [tensor.grad.numpy().copy() for tensor in inputs]


def _assert_same(mine, reference):
    for got, want in zip(mine, reference):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL * max(1.0, float(np.abs(want).max())))


def test_built_by_the_install_command_and_loadable():
    assert native.unavailable_reason() is None


@pytest.mark.parametrize("width", [64, 37])
@pytest.mark.parametrize("with_residual", [False, True])
def test_layer_norm_equals_paddle(ops, width, with_residual):
    rng = np.random.default_rng(width)
    x, residual = _leaf(rng, (3, 11, width), 2.0), _leaf(rng, (3, 11, width))
    weight, bias = _leaf(rng, (width,)), _leaf(rng, (width,))
    upstream = paddle.to_tensor(rng.standard_normal((3, 11, width)).astype("float32"))
    if with_residual:
        inputs = [x, residual, weight, bias]
        mine = _forward_and_grads(lambda a, r, w, b: ops.add_layer_norm(a, r, w, b, 1e-5), inputs, upstream)
        reference = _forward_and_grads(lambda a, r, w, b: F.layer_norm(a + r, [width], w, b, 1e-5), inputs, upstream)
    else:
        inputs = [x, weight, bias]
        mine = _forward_and_grads(lambda a, w, b: ops.layer_norm(a, w, b, 1e-5), inputs, upstream)
        reference = _forward_and_grads(lambda a, w, b: F.layer_norm(a, [width], w, b, 1e-5), inputs, upstream)
    _assert_same(mine, reference)


def test_gelu_equals_paddle_over_its_range(ops):
    x = paddle.to_tensor(np.linspace(-12, 12, 4099).astype("float32").reshape(1, -1), stop_gradient=False)
    upstream = paddle.to_tensor(np.random.default_rng(0).standard_normal((1, 4099)).astype("float32"))
    _assert_same(_forward_and_grads(ops.gelu, [x], upstream), _forward_and_grads(F.gelu, [x], upstream))


@pytest.mark.parametrize("bias_shape", [None, (2, 1, 1, 9), (2, 1, 9, 9), (2, 3, 9, 9)])
def test_attention_softmax_equals_paddle(ops, bias_shape):
    rng = np.random.default_rng(1)
    scores = _leaf(rng, (3, 2, 9, 9), 3.0)  # [heads, batch, query, key]
    upstream = paddle.to_tensor(rng.standard_normal((3, 2, 9, 9)).astype("float32"))
    bias = None
    if bias_shape is not None:
        hidden = rng.random(bias_shape) < 0.3
        hidden[..., 0] = False
        bias = paddle.to_tensor(np.where(hidden, -1e9, 0.0).astype("float32"))
    mine = _forward_and_grads(lambda s: ops.attention_softmax(s, paddle.empty([0]) if bias is None else bias),
                              [scores], upstream)
    reference = _forward_and_grads(
        lambda s: F.softmax(s if bias is None else s + bias.transpose([1, 0, 2, 3]), axis=-1), [scores], upstream)
    _assert_same(mine, reference)
    if bias is not None:  # a hidden key gets no weight at all
        hidden_keys = np.broadcast_to(bias.numpy().transpose(1, 0, 2, 3) < 0, mine[0].shape)
        assert np.all(mine[0][hidden_keys] == 0.0)


def test_a_row_with_every_key_hidden_is_what_paddle_gives(ops):
    scores = paddle.to_tensor(np.random.default_rng(2).standard_normal((1, 1, 2, 4)).astype("float32"))
    bias = paddle.to_tensor(np.full((1, 1, 2, 4), -1e9, dtype="float32"))
    np.testing.assert_allclose(ops.attention_softmax(scores, bias).numpy(),
                               F.softmax(scores + bias, axis=-1).numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("transposed", [False, True])
def test_linear_equals_paddle(ops, transposed):
    rng = np.random.default_rng(3)
    x = _leaf(rng, (2, 7, 24))
    weight = _leaf(rng, (40, 24) if transposed else (24, 40), 0.2)
    bias = _leaf(rng, (40,))
    upstream = paddle.to_tensor(rng.standard_normal((2, 7, 40)).astype("float32"))
    mine = _forward_and_grads(lambda a, w, b: ops.linear(a, w, b, transposed), [x, weight, bias], upstream)
    reference = _forward_and_grads(lambda a, w, b: paddle.matmul(a, w, transpose_y=transposed) + b,
                                   [x, weight, bias], upstream)
    _assert_same(mine, reference)


def test_cross_entropy_and_argmax_equal_paddle(ops):
    rng = np.random.default_rng(4)
    logits = _leaf(rng, (33, 1001), 4.0)
    labels_np = rng.integers(0, 1001, 33)
    labels_np[5] = -100  # ignored: loss and gradient 0, as Paddle's ignore_index
    labels = paddle.to_tensor(labels_np)
    weights = paddle.to_tensor(rng.random(33).astype("float32"))
    loss, argmax = ops.cross_entropy(logits, labels)
    (loss * weights).sum().backward()
    mine = [loss.numpy(), logits.grad.numpy().copy()]
    logits.clear_gradient()
    reference_loss = F.cross_entropy(logits, labels, reduction="none", ignore_index=-100).reshape([-1])
    (reference_loss * weights).sum().backward()
    _assert_same(mine, [reference_loss.numpy(), logits.grad.numpy()])
    assert np.array_equal(argmax.numpy(), logits.numpy().argmax(axis=-1))


def test_argmax_takes_the_first_of_tied_maxima_and_a_nan_row_gives_a_nan_loss(ops):
    logits = np.zeros((2, 300), dtype="float32")
    logits[0, [7, 130, 250]] = 5.0
    logits[1, 3] = np.nan
    loss, argmax = ops.cross_entropy(paddle.to_tensor(logits), paddle.to_tensor(np.array([1, 1])))
    assert argmax.numpy()[0] == 7
    assert np.isfinite(loss.numpy()[0]) and np.isnan(loss.numpy()[1])


def test_pretraining_step_gradients_equal_paddles_ops():
    """The whole model, through every fast path (native and not) against Paddle's own ops: loss, metrics and every
    parameter's gradient within float32 rounding."""
    from tools.bench.pretraining import _camlm_batch

    config = ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=500, hidden_dropout_prob=0.0,
                                              attention_probs_dropout_prob=0.0, num_languages=3)
    batch = _camlm_batch(config, 6, 24, 0.5)
    batch.input_ids[0, 20:] = config.pad_token_id  # some padding, so that masks are exercised

    def run():
        paddle.seed(0)
        model = ernie_m.ErnieMForPretraining(config)
        model.train()
        loss, metrics = masked_lm_loss(model, batch)
        loss.backward()
        return float(loss), metrics, {n: p.grad.numpy() for n, p in model.named_parameters() if p.grad is not None}

    fast = run()
    kernels.set_cpu_fast_paths(False)
    try:
        slow = run()
    finally:
        kernels.set_cpu_fast_paths(True)
    assert fast[0] == pytest.approx(slow[0], rel=1e-5)
    assert fast[1].keys() == slow[1].keys()
    for key in fast[1]:
        assert fast[1][key] == pytest.approx(slow[1][key], rel=1e-5, abs=1e-6)
    assert fast[2].keys() == slow[2].keys() and len(fast[2]) > 20
    for name, gradient in fast[2].items():
        scale = max(1e-3, float(np.abs(slow[2][name]).max()))
        np.testing.assert_allclose(gradient, slow[2][name], rtol=1e-4, atol=1e-4 * scale, err_msg=name)


_PROBE = ("import numpy as np, paddle, ernie_m; paddle.seed(0); "
          "m = ernie_m.ErnieMModel(ernie_m.ErnieMConfig.from_preset('ernie-m-tiny', vocab_size=100)); m.eval(); "
          "ids = paddle.to_tensor(np.arange(3, 35).reshape(2, 16)); m(ids); "
          "np.save('out.npy', m(ids)[0].numpy())")


def _probe(tmp_path, directory):
    env = dict(os.environ, ERNIE_M_NATIVE_DIR=str(directory), PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "ernie_m:" in line]
    return lines, np.load(tmp_path / "out.npy")


def test_without_a_build_paddles_ops_run_and_one_line_says_so(tmp_path):
    (tmp_path / "built").mkdir()
    (tmp_path / "none").mkdir()
    shutil.copytree(native.build_directory(), tmp_path / "built", dirs_exist_ok=True)
    quiet, with_native = _probe(tmp_path, tmp_path / "built")
    assert quiet == []
    said, without = _probe(tmp_path, tmp_path / "none")
    assert len(said) == 1 and "native CPU kernels unavailable" in said[0] and "python -m ernie_m.kernels.native" \
        in said[0]
    np.testing.assert_allclose(with_native, without, rtol=1e-5, atol=1e-5)


def test_a_stale_build_is_not_used(tmp_path, monkeypatch):
    shutil.copytree(native.build_directory(), tmp_path, dirs_exist_ok=True)
    (tmp_path / f"{native.NAME}.stamp").write_text("a build of another source")
    monkeypatch.setenv("ERNIE_M_NATIVE_DIR", str(tmp_path))
    assert "another source" in native._why_unusable()


def test_greedy_ids_equal_the_argmax_of_paddles_logits_and_never_pick_a_penalised_id(ops):
    """Over several tiles of rows and of the vocabulary (256 x 4096), ties across tiles going to the first id."""
    rng = np.random.default_rng(5)
    vocab = 9001
    embedding_np = rng.standard_normal((vocab, 16)).astype("float32")
    bias_np = rng.standard_normal(vocab).astype("float32")
    embedding_np[5000], bias_np[5000] = embedding_np[10], bias_np[10]  # a tie wherever 10 wins: 10, as argmax
    hidden_np = rng.standard_normal((300, 16)).astype("float32")
    hidden_np[:150] += 3 * embedding_np[10]  # the first half of the rows prefer 10 (and 5000)
    hidden = paddle.to_tensor(hidden_np)
    bias_np[6000] = 1e3  # every row's favourite, but penalised
    penalty = np.zeros(vocab, dtype="float32")
    penalty[[0, 1, 2, 3, 6000]] = -np.inf
    embedding, bias = paddle.to_tensor(embedding_np), paddle.to_tensor(bias_np)
    got = ops.greedy_ids(hidden, embedding, bias, paddle.to_tensor(penalty)).numpy()
    logits = (paddle.matmul(hidden, embedding, transpose_y=True) + bias).numpy() + penalty
    assert np.array_equal(got, logits.argmax(axis=-1))
    assert (got[:150] == 10).all() and not np.isin(got, [0, 1, 2, 3, 5000, 6000]).any()


def test_the_model_greedy_tokens_equal_the_argmax_of_its_logits():
    config = ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=300)
    paddle.seed(0)
    model = ernie_m.ErnieMForPretraining(config)
    model.eval()
    ids = paddle.to_tensor(np.random.default_rng(6).integers(5, 300, (3, 12)))
    positions = paddle.to_tensor(np.array([1, 5, 14, 30, 35]))
    logits = model(ids, masked_positions=positions).numpy()  # [positions, vocab]
    logits[:, [0, 299]] = -np.inf
    for fast in (True, False):
        kernels.set_cpu_fast_paths(fast)
        try:
            got = model.most_likely_tokens(ids, positions, excluded_ids=[0, 299]).numpy()
        finally:
            kernels.set_cpu_fast_paths(True)
        assert np.array_equal(got, logits.argmax(axis=-1))


def test_the_build_command_without_a_compiler_says_so_in_one_line(tmp_path):
    env = dict(os.environ, ERNIE_M_NATIVE_DIR=str(tmp_path), PATH=str(tmp_path / "no-tools"), PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-m", "ernie_m.kernels.native"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("ernie_m:")]
    assert len(said) == 1 and "did not build" in said[0] and "Paddle's ops will be used" in said[0]
    assert not (tmp_path / f"{native.NAME}.stamp").exists()  # nothing half-built is ever loaded
