"""The original static-graph checkpoints (PaddlePaddle/ERNIE, ernie-m/) converted to our layout.

The test releases are written with Paddle's own variable-file writer (`core.save_dense_tensor`, the serializer
behind fluid's save_persistables) under the original names, written out here by hand from the original code.
"""
import json
import os

import numpy as np
import paddle
import pytest
from paddle.base import core

from ernie_m import (ErnieMConfig, ErnieMForQuestionAnswering, ErnieMForSequenceClassification,
                     ErnieMForTokenClassification, ErnieMModel)
from ernie_m.convert.hf import ConversionError
from ernie_m.convert.static import from_static, read_tensor_file

LAYER_NAMES = {  # ours (under encoder.layers.{i}.) -> original (after encoder_layer_{i}_)
    "self_attn.q_proj.weight": "multi_head_att_query_fc.w_0", "self_attn.q_proj.bias": "multi_head_att_query_fc.b_0",
    "self_attn.k_proj.weight": "multi_head_att_key_fc.w_0", "self_attn.k_proj.bias": "multi_head_att_key_fc.b_0",
    "self_attn.v_proj.weight": "multi_head_att_value_fc.w_0", "self_attn.v_proj.bias": "multi_head_att_value_fc.b_0",
    "self_attn.out_proj.weight": "multi_head_att_output_fc.w_0",
    "self_attn.out_proj.bias": "multi_head_att_output_fc.b_0",
    "norm1.weight": "post_att_layer_norm_scale", "norm1.bias": "post_att_layer_norm_bias",
    "linear1.weight": "ffn_fc_0.w_0", "linear1.bias": "ffn_fc_0.b_0",
    "linear2.weight": "ffn_fc_1.w_0", "linear2.bias": "ffn_fc_1.b_0",
    "norm2.weight": "post_ffn_layer_norm_scale", "norm2.bias": "post_ffn_layer_norm_bias",
}
TOP_NAMES = {
    "embeddings.word_embeddings.weight": "word_embedding", "embeddings.position_embeddings.weight": "pos_embedding",
    "embeddings.layer_norm.weight": "pre_encoder_layer_norm_scale",
    "embeddings.layer_norm.bias": "pre_encoder_layer_norm_bias",
    "pooler.dense.weight": "pooled_fc.w_0", "pooler.dense.bias": "pooled_fc.b_0",
}


def _original_name(ours: str, head: str):
    ours = ours[len("ernie_m."):] if ours.startswith("ernie_m.") else ours
    if ours.startswith("classifier."):
        return f"{head}_{'w' if ours.endswith('weight') else 'b'}"
    if ours.startswith("encoder.layers."):
        layer, rest = ours[len("encoder.layers."):].split(".", 1)
        return f"encoder_layer_{layer}_{LAYER_NAMES[rest]}"
    return TOP_NAMES[ours]


def _write_variable(path, array):
    tensor = core.DenseTensor()
    tensor.set(np.ascontiguousarray(array), core.CPUPlace())
    core.save_dense_tensor(tensor, str(path))


def write_release(model, directory, head=None, without=()):
    """The model's weights as an original release: a params directory and ernie_m_config.json."""
    params = directory / "params"
    params.mkdir(parents=True)
    for name, value in model.state_dict().items():
        original = _original_name(name, head)
        if original not in without:
            _write_variable(params / original, value.numpy())
    # What save_persistables also writes: optimizer state, the schedule, a pretraining head.
    _write_variable(params / "word_embedding_moment1_0", np.zeros([2, 2], np.float32))
    _write_variable(params / "learning_rate_0", np.zeros([1], np.float32))
    _write_variable(params / "mask_lm_trans_fc.w_0", np.zeros([2, 2], np.float32))
    config = model.config
    (directory / "ernie_m_config.json").write_text(json.dumps({
        "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "hidden_size": config.hidden_size, "initializer_range": 0.02,
        "max_position_embeddings": config.max_position_embeddings,
        "num_attention_heads": config.num_attention_heads, "num_hidden_layers": config.num_hidden_layers,
        "vocab_size": config.vocab_size}))
    return str(params), str(directory / "ernie_m_config.json")


def _config(**kwargs):
    return ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=300, **kwargs)


def _ids(seed=0):
    rng = np.random.RandomState(seed)
    ids = rng.randint(4, 299, size=(2, 9))
    ids[:, 0], ids[:, -1] = 0, 2
    return paddle.to_tensor(ids)


def test_the_encoder_converts_and_reads_positions_as_the_original_did(tmp_path):
    paddle.seed(21)
    model = ErnieMModel(_config())
    model.eval()
    params, config_file = write_release(model, tmp_path)
    architecture, skipped = from_static(params, str(tmp_path / "out"), config_file)
    assert architecture == "ErnieMModel"
    assert skipped == ["mask_lm_trans_fc.w_0"]  # optimizer state and the schedule are not even listed
    converted = ErnieMModel.from_pretrained(str(tmp_path / "out"))
    converted.eval()
    ids = _ids()
    expected, got = model(ids, return_dict=True), converted(ids, output_hidden_states=True, return_dict=True)
    np.testing.assert_array_equal(expected.last_hidden_state.numpy(), got.last_hidden_state.numpy())

    # The original reader fed positions 2..n+1 into pos_embedding: our embeddings of positions 0..n-1 are those.
    word = read_tensor_file(os.path.join(params, "word_embedding"))
    position = read_tensor_file(os.path.join(params, "pos_embedding"))
    scale = read_tensor_file(os.path.join(params, "pre_encoder_layer_norm_scale"))
    bias = read_tensor_file(os.path.join(params, "pre_encoder_layer_norm_bias"))
    summed = word[ids.numpy()] + position[np.arange(2, ids.shape[1] + 2)]
    normed = (summed - summed.mean(-1, keepdims=True)) / np.sqrt(summed.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(got.hidden_states[0].numpy(), normed * scale + bias, atol=1e-5)


@pytest.mark.parametrize("model_class, head, kwargs, without", [
    (ErnieMForSequenceClassification, "cls_out", {"num_labels": 3}, ()),
    # The original sequence-labelling and MRC programs never built pooled_fc: their checkpoints lack it.
    (ErnieMForTokenClassification, "cls_seq_label_out", {"num_labels": 7}, ("pooled_fc.w_0", "pooled_fc.b_0")),
    (ErnieMForQuestionAnswering, "cls_mrc_out", {}, ("pooled_fc.w_0", "pooled_fc.b_0")),
])
def test_fine_tuned_heads_convert(tmp_path, model_class, head, kwargs, without):
    paddle.seed(22)
    model = model_class(_config(**kwargs))
    model.eval()
    params, config_file = write_release(model, tmp_path, head, without)
    architecture, _ = from_static(params, str(tmp_path / "out"), config_file)
    assert architecture == model_class.__name__
    converted = model_class.from_pretrained(str(tmp_path / "out"))
    converted.eval()
    assert converted.config.num_labels == model.config.num_labels
    for expected, got in zip(model(_ids(1)), converted(_ids(1))):
        np.testing.assert_array_equal(expected.numpy(), got.numpy())


@pytest.mark.parametrize("array", [
    np.arange(6, dtype=np.float16).reshape(2, 3),
    np.arange(24, dtype=np.int64).reshape(2, 3, 4) - 5,
    np.array([3.5], dtype=np.float64),
])
def test_the_variable_file_reader_agrees_with_paddles_writer(tmp_path, array):
    _write_variable(tmp_path / "v", array)
    got = read_tensor_file(str(tmp_path / "v"))
    assert got.dtype == array.dtype
    np.testing.assert_array_equal(got, array)


def test_bad_releases_are_named(tmp_path):
    paddle.seed(23)
    model = ErnieMModel(_config())
    params, config_file = write_release(model, tmp_path / "a")
    good = open(os.path.join(params, "pos_embedding"), "rb").read()
    with open(os.path.join(params, "pos_embedding"), "wb") as handle:
        handle.write(good[:-10])  # truncated
    with pytest.raises(ConversionError, match=r"pos_embedding: not a Paddle static-graph variable file .*bytes"):
        from_static(params, str(tmp_path / "out"), config_file)

    params, config_file = write_release(model, tmp_path / "b", without=("encoder_layer_1_ffn_fc_0.w_0",))
    with pytest.raises(ConversionError, match=r"no variable for our encoder.layers.1.linear1.weight"):
        from_static(params, str(tmp_path / "out"), config_file)

    params, config_file = write_release(model, tmp_path / "c")
    config = json.load(open(config_file))
    config["num_hidden_layers"] = 1
    json.dump(config, open(config_file, "w"))
    with pytest.raises(ConversionError, match=r"encoder.layers.1.* has no place in the model"):
        from_static(params, str(tmp_path / "out"), config_file)
    config["num_hidden_layers"], config["hidden_size"] = 2, 32
    json.dump(config, open(config_file, "w"))
    with pytest.raises(ConversionError, match=r"has shape \[300, 64\]; .* implies \[300, 32\]"):
        from_static(params, str(tmp_path / "out"), config_file)


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero"])
def test_a_parameter_directory_with_a_fifo_or_a_device_is_refused_without_reading_it(tmp_path, kind):
    """Only regular files are read: a FIFO would block the conversion forever and a link to /dev/zero would be read
    until memory ran out."""
    paddle.seed(25)
    params, config_file = write_release(ErnieMModel(_config()), tmp_path)
    trap = os.path.join(params, "zz_trap")
    if kind == "fifo":
        os.mkfifo(trap)
    else:
        os.symlink("/dev/zero", trap)
    with pytest.raises(ConversionError, match=r"zz_trap: not a regular file \(a FIFO, device or socket\)"):
        from_static(params, str(tmp_path / "out"), config_file)


def test_the_command_line_converts_and_errors_in_one_line(tmp_path, tokenizer_dir, capsys):
    from ernie_m import cli
    from tests.helpers import one_line_exit

    paddle.seed(24)
    params, config_file = write_release(ErnieMModel(_config()), tmp_path)
    capsys.readouterr()
    cli.main(["convert", "from-static", params, str(tmp_path / "out"), "--config", config_file, "--tokenizer",
              tokenizer_dir])
    printed = capsys.readouterr().out
    assert "ErnieMModel written to" in printed and "left out: mask_lm_trans_fc.w_0" in printed
    assert os.path.isfile(tmp_path / "out" / "sentencepiece.bpe.model")

    line = one_line_exit(capsys, cli.main, ["convert", "from-static", params, str(tmp_path / "out2")])
    assert line == "ernie-m convert: error: from-static needs --config (the release's ernie_m_config.json)"
