"""ernie_m.training: layer-wise learning-rate decay, the optimizer groups Paddle really applies, mixed-precision
settings on a CPU, the guarded update and the run log."""
import json
import os

import numpy as np
import paddle
import pytest

from ernie_m.training import (
    RunLog, amp_dtype, apply_update, build_optimizer, layer_scale, step_finite, weights_finite,
)


def test_layer_scales_follow_the_original_code():
    """PaddlePaddle/ERNIE ernie-m/model/optimization.py: encoder_layer_i (from 0) of n_layers gets
    decay ** (n_layers - i), so even the top layer is decayed once; embeddings decay ** (n_layers + 1), the rest
    the full rate."""
    # L = 2, d = 0.8: top layer 0.8, layer below 0.8^2, embeddings 0.8^3, heads and pooler 1.
    assert layer_scale("ernie_m.encoder.layers.1.linear1.weight", 2, 0.8) == pytest.approx(0.8)
    assert layer_scale("ernie_m.encoder.layers.0.self_attn.q_proj.weight", 2, 0.8) == pytest.approx(0.64)
    assert layer_scale("ernie_m.embeddings.word_embeddings.weight", 2, 0.8) == pytest.approx(0.512)
    assert layer_scale("ernie_m.pooler.dense.weight", 2, 0.8) == 1.0
    assert layer_scale("classifier.weight", 2, 0.8) == 1.0


def test_optimizer_applies_the_layer_scales(tiny_model_dir):
    """Adam's first step moves a weight by about lr x its multiplier: Paddle really scales each group."""
    from ernie_m import ErnieMForSequenceClassification

    model = ErnieMForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3)
    optimizer, _ = build_optimizer(model, 1e-3, total_steps=10, warmup=0.0, weight_decay=0.0, layer_decay=0.5)
    names = {"top": "ernie_m.encoder.layers.1.linear1.weight", "lower": "ernie_m.encoder.layers.0.linear1.weight",
             "embeddings": "ernie_m.embeddings.position_embeddings.weight", "head": "classifier.weight"}
    parameters = dict(model.named_parameters())
    before = {key: parameters[name].numpy().copy() for key, name in names.items()}
    ids = paddle.to_tensor(np.arange(3, 19, dtype=np.int64).reshape([2, 8]))
    model(ids, labels=paddle.to_tensor([0, 2]), return_dict=True).loss.backward()
    optimizer.step()
    moved = {key: np.abs(parameters[names[key]].numpy() - before[key]).max() for key in names}
    # Without warm-up the schedule starts at the full rate.
    assert moved["top"] == pytest.approx(5e-4, rel=0.05) and moved["head"] == pytest.approx(1e-3, rel=0.05)
    assert moved["lower"] == pytest.approx(2.5e-4, rel=0.05)
    assert moved["embeddings"] == pytest.approx(1e-3 * 0.5 ** 3, rel=0.05)


def test_no_weight_decay_on_biases_and_norms(tiny_model_dir):
    from ernie_m import ErnieMModel

    model = ErnieMModel.from_pretrained(tiny_model_dir)
    optimizer, _ = build_optimizer(model, 1e-3, 10, 0.0, weight_decay=0.5)
    decays = {name: optimizer._apply_decay_param_fun(p.name) for name, p in model.named_parameters()}
    assert not decays["encoder.layers.0.linear1.bias"] and not decays["encoder.layers.0.norm1.weight"]
    assert decays["encoder.layers.0.linear1.weight"] and decays["embeddings.word_embeddings.weight"]


def test_mixed_precision_is_a_gpu_path():
    assert amp_dtype(None) is None and amp_dtype("fp32") is None
    expected = "bfloat16" if paddle.is_compiled_with_cuda() and not paddle.device.get_device().startswith("cpu") \
        else None
    assert amp_dtype("bf16") == expected
    with pytest.raises(ValueError, match="amp must be bf16, fp16 or none, got 'fp8'"):
        amp_dtype("fp8")


def test_a_non_finite_step_changes_nothing_and_clears_the_gradients():
    layer = paddle.nn.Linear(3, 2)
    optimizer = paddle.optimizer.SGD(learning_rate=0.1, parameters=layer.parameters())
    before = layer.weight.numpy().copy()
    layer(paddle.ones([1, 3])).sum().backward()
    assert not step_finite(float("nan"), layer.parameters(), world=1) and step_finite(1.0, layer.parameters(), 1)
    apply_update(optimizer, finite=False)
    assert np.array_equal(layer.weight.numpy(), before) and not layer.weight.grad.numpy().any()
    layer(paddle.ones([1, 3])).sum().backward()
    apply_update(optimizer, finite=True)
    assert not np.array_equal(layer.weight.numpy(), before)


def test_the_run_log_writes_json_lines_on_every_rank_and_visualdl_on_rank_zero(tmp_path):
    for rank in (0, 1):
        log = RunLog(str(tmp_path), rank, total=2, jsonl=f"log_rank{rank}.jsonl", progress=False)
        log.record({"step": 1, "loss": 2.5})
        log.scalars({"loss": 2.5}, 1, prefix="train/")
        log.advance()
        log.close()
    assert [json.loads(line) for line in open(tmp_path / "log_rank1.jsonl")] == [{"step": 1, "loss": 2.5}]
    assert os.path.isdir(tmp_path / "visualdl") and os.listdir(tmp_path / "visualdl")


def test_a_finite_loss_with_nan_gradients_is_not_a_finite_step():
    layer = paddle.nn.Linear(3, 2)
    loss = layer(paddle.ones([1, 3])).sum() + (layer.weight * 0.0).sqrt().sum()  # value + 0, gradient NaN
    loss.backward()
    assert np.isfinite(float(loss))
    assert not step_finite(float(loss), layer.parameters(), world=1)
    assert step_finite(float(loss), layer.parameters(), world=1, check_gradients=False)  # fp16: the scaler checks
    assert weights_finite(layer)
    layer.weight.set_value(paddle.full([3, 2], float("nan")))
    assert not weights_finite(layer)


def test_loading_to_train_refuses_a_checkpoint_missing_encoder_weights(tiny_model_dir, tmp_path):
    """A checkpoint missing encoder weights is refused for training (PaddleNLP only warns, and the layers would start
    from random weights)."""
    import shutil

    from ernie_m import ErnieMForPretraining, ErnieMForSequenceClassification
    from ernie_m.training.loading import from_pretrained_for_training
    from ernie_m.weights import load_state_dict, save_state_dict

    # A head and the pretraining model over a complete encoder: the head and language embedding may be new.
    assert from_pretrained_for_training(ErnieMForSequenceClassification, tiny_model_dir, num_labels=3) is not None
    assert from_pretrained_for_training(ErnieMForPretraining, tiny_model_dir, num_languages=3) is not None
    partial = tmp_path / "partial"
    shutil.copytree(tiny_model_dir, partial)
    state = load_state_dict(str(partial / "model_state.pdparams"))
    save_state_dict({k: v for k, v in state.items() if ".layers.1." not in k}, str(partial / "model_state.pdparams"))
    with pytest.raises(ValueError, match=r"partial/model_state.pdparams: no weight 'ernie_m.encoder.layers.1.* more\) for "
                                         r"ErnieMForSequenceClassification: it would start from random weights"):
        from_pretrained_for_training(ErnieMForSequenceClassification, str(partial), num_labels=3)


def test_strict_loading_checks_the_file_paddlenlp_loads(tiny_model_dir, tmp_path):
    """The completeness check reads the file PaddleNLP loads (model.safetensors before model_state.pdparams), so a
    safetensors file lacking encoder layer 1 is refused even with a complete .pdparams beside it."""
    import shutil

    from ernie_m import ErnieMForSequenceClassification
    from ernie_m.training.loading import from_pretrained_for_training
    from ernie_m.weights import load_state_dict, save_state_dict

    both = tmp_path / "both"
    shutil.copytree(tiny_model_dir, both)
    state = load_state_dict(str(both / "model_state.pdparams"))  # complete
    save_state_dict({k: v for k, v in state.items() if ".layers.1." not in k}, str(both / "model.safetensors"))
    with pytest.raises(ValueError, match=r"model.safetensors: no weight 'ernie_m.encoder.layers.1."):
        from_pretrained_for_training(ErnieMForSequenceClassification, str(both), num_labels=3)
