"""Static-graph export and Paddle Inference against the dynamic graph (oneDNN off: the comparison is exact)."""
import numpy as np
import paddle
import pytest

from ernie_m import (
    ErnieMConfig, ErnieMForQuestionAnswering, ErnieMForSequenceClassification, ErnieMModel,
)
from ernie_m.inference import OnnxPredictor, StaticPredictor, export, export_onnx


def _inputs(batch, length, vocab, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, vocab, size=(batch, length)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[-1, length // 2:] = 0  # a padded row
    ids[mask == 0] = 1
    return ids, mask, np.broadcast_to(np.arange(length, dtype=np.int64), ids.shape).copy()


@pytest.mark.parametrize("model_class, kwargs", [
    (ErnieMModel, {}), (ErnieMForSequenceClassification, {"num_labels": 3}), (ErnieMForQuestionAnswering, {}),
    (ErnieMModel, {"num_languages": 3}),
])
def test_static_graph_and_paddle_inference_equal_the_dynamic_graph(tmp_path, model_class, kwargs):
    paddle.seed(3)
    config = ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=120, **kwargs)
    model = model_class(config)
    model.eval()
    prefix = export(model, str(tmp_path / "static"))
    loaded = paddle.jit.load(prefix)
    predictor = StaticPredictor(str(tmp_path / "static"))
    for batch, length, seed in ((2, 7, 0), (3, 11, 1)):  # one program, any batch and length
        ids, mask, positions = _inputs(batch, length, 120, seed)
        extra = {}
        if config.num_languages:
            extra["language_ids"] = np.full_like(ids, 2)
        tensors = {k: paddle.to_tensor(v) for k, v in extra.items()}
        dynamic = model(paddle.to_tensor(ids), position_ids=paddle.to_tensor(positions),
                        attention_mask=paddle.to_tensor(mask), return_dict=False, **tensors)
        dynamic = [t.numpy() for t in (dynamic if isinstance(dynamic, (tuple, list)) else (dynamic,))]
        static = loaded(paddle.to_tensor(ids), paddle.to_tensor(mask), paddle.to_tensor(positions), *tensors.values())
        static = static if isinstance(static, (tuple, list)) else [static]  # jit.load unwraps a single output
        inferred = predictor(ids, mask, positions, **extra)
        assert len(dynamic) == len(inferred)
        for want, got_static, got_inference in zip(dynamic, static, inferred):
            np.testing.assert_allclose(got_static.numpy(), want, atol=1e-5, rtol=0)
            np.testing.assert_allclose(got_inference, want, atol=1e-5, rtol=0)
    # Defaults: the mask from the pad id, positions from 0.
    ids, mask, positions = _inputs(2, 9, 120, 5)
    if not config.num_languages:
        np.testing.assert_array_equal(predictor(ids)[0], predictor(ids, mask, positions)[0])
    else:
        with pytest.raises(ValueError, match="pass language_ids"):
            predictor(ids)


def test_a_directory_without_an_export_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no exported model"):
        StaticPredictor(str(tmp_path))


def test_onnx_runtime_equals_the_dynamic_graph(tmp_path):
    """paddle2onnx on the exported program, run by ONNX Runtime: the same outputs within 1e-5."""
    pytest.importorskip("paddle2onnx")
    pytest.importorskip("onnxruntime")
    paddle.seed(4)
    model = ErnieMForSequenceClassification(ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=120, num_labels=3))
    model.eval()
    export(model, str(tmp_path / "static"))
    export_onnx(str(tmp_path / "static"))
    predictor = OnnxPredictor(str(tmp_path / "static"))
    for batch, length, seed in ((2, 7, 0), (3, 11, 1)):
        ids, mask, positions = _inputs(batch, length, 120, seed)
        want = model(paddle.to_tensor(ids), position_ids=paddle.to_tensor(positions),
                     attention_mask=paddle.to_tensor(mask), return_dict=False).numpy()
        got, = predictor(ids, mask, positions)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    with pytest.raises(FileNotFoundError, match="no model.onnx"):
        OnnxPredictor(str(tmp_path))


@pytest.mark.parametrize("model_class, names", [(ErnieMForSequenceClassification, ["logits"]),
                                                (ErnieMModel, ["last_hidden_state", "pooler_output"])])
def test_onnx_outputs_carry_the_model_output_names_and_export_writes_the_tokenizer(tmp_path, tokenizer_dir,
                                                                                 model_class, names):
    """ONNX outputs carry the model's output names (not `fetch_name_0`, ...), and `export()` writes the tokenizer as
    `ernie-m export` does."""
    pytest.importorskip("paddle2onnx")
    onnx = pytest.importorskip("onnx")
    from ernie_m import ErnieMTokenizer

    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    model = model_class(ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=len(tokenizer), num_labels=3))
    export(model, str(tmp_path / "static"), tokenizer)
    assert ErnieMTokenizer.from_pretrained(str(tmp_path / "static")).encode("hello")["input_ids"] == \
        tokenizer.encode("hello")["input_ids"]
    path = export_onnx(str(tmp_path / "static"))
    assert [output.name for output in onnx.load(path).graph.output] == names
    ids, mask, positions = _inputs(2, 7, len(tokenizer), 0)
    assert len(OnnxPredictor(str(tmp_path / "static"))(ids, mask, positions)) == len(names)


@pytest.mark.parametrize("predictor_class", [StaticPredictor, OnnxPredictor])
def test_ids_longer_than_the_positions_are_cut_with_one_line(tmp_path, capfd, predictor_class):
    """A model with 20 positions (18 tokens) given 30 ids: before, Paddle's position embedding failed
    ("expected < 20"); now the ids are cut at 18, the cut row ends in [SEP], and one line says so, once."""
    paddle.seed(4)
    model = ErnieMForSequenceClassification(ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=120, num_labels=2,
                                                                     max_position_embeddings=20))
    model.eval()

    class Tokenizer:  # what export reads of a tokenizer: its [SEP] id and a save_pretrained
        sep_token_id = 2

        def save_pretrained(self, directory):
            pass

    export(model, str(tmp_path / "static"), tokenizer=Tokenizer())
    if predictor_class is OnnxPredictor:
        export_onnx(str(tmp_path / "static"))
    predictor = predictor_class(str(tmp_path / "static"))
    ids, mask, _ = _inputs(2, 30, 120, 7)
    first = predictor(ids, mask)[0]
    predictor(ids, mask)
    cut = ids[:, :18].copy()
    cut[0, 17] = 2  # the full row ends in [SEP]; the padded one (15 real tokens) is untouched
    expected = model(paddle.to_tensor(cut), attention_mask=paddle.to_tensor(mask[:, :18])).numpy()
    np.testing.assert_allclose(first, expected, atol=1e-5, rtol=0)
    lines = [line for line in capfd.readouterr().err.splitlines() if "positions hold" in line]
    assert lines == ["inputs of 30 tokens are more than this model's 20 positions hold; they are cut at 18 tokens"]
