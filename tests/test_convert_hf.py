"""Our layout <-> HF transformers' ErnieM: exact round trips, and the same outputs in transformers as here."""
import json

import numpy as np
import paddle
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from ernie_m import (  # noqa: E402
    ErnieMConfig, ErnieMForQuestionAnswering, ErnieMForSequenceClassification, ErnieMModel, load_state_dict,
)
from ernie_m.convert import hf as convert_hf  # noqa: E402


def _inputs():
    ids = np.array([[0, 17, 25, 33, 2, 1, 1], [0, 40, 41, 42, 43, 44, 2]], dtype=np.int64)
    return ids, (ids != 1).astype(np.int64)


@pytest.mark.parametrize("model_class, hf_name, kwargs", [
    (ErnieMModel, "ErnieMModel", {}),
    (ErnieMForSequenceClassification, "ErnieMForSequenceClassification", {"num_labels": 3}),
    (ErnieMForQuestionAnswering, "ErnieMForQuestionAnswering", {}),
])
def test_hf_outputs_match_and_round_trip_is_exact(tmp_path, model_class, hf_name, kwargs):
    paddle.seed(11)
    model = model_class(ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=120, **kwargs))
    model.eval()
    ours = tmp_path / "ours"
    model.save_pretrained(str(ours))
    convert_hf.to_hf(str(ours), str(tmp_path / "hf"))
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"] == [hf_name]

    hf_model = getattr(transformers, hf_name).from_pretrained(str(tmp_path / "hf"))
    hf_model.eval()
    ids, mask = _inputs()
    with torch.no_grad():
        hf_out = hf_model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask))
    out = model(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask), return_dict=True)
    if model_class is ErnieMModel:
        pairs = [(out.last_hidden_state, hf_out.last_hidden_state), (out.pooler_output, hf_out.pooler_output)]
    elif model_class is ErnieMForQuestionAnswering:
        pairs = [(out.start_logits, hf_out.start_logits), (out.end_logits, hf_out.end_logits)]
    else:
        pairs = [(out.logits, hf_out.logits)]
    for here, there in pairs:
        if here.ndim == 3:  # compare real tokens only: padded rows are masked out everywhere downstream
            np.testing.assert_allclose(here.numpy()[mask == 1], there.numpy()[mask == 1], atol=1e-4, rtol=0)
        else:
            np.testing.assert_allclose(here.numpy(), there.numpy(), atol=1e-4, rtol=0)

    convert_hf.from_hf(str(tmp_path / "hf"), str(tmp_path / "back"))
    original, back = load_state_dict(str(ours / "model_state.pdparams")), load_state_dict(
        str(tmp_path / "back" / "model_state.pdparams"))
    expected = {k for k in original if not (model_class is ErnieMForQuestionAnswering and ".pooler." in k)}
    assert set(back) == expected  # HF's QA model has no pooler
    for key in expected:
        np.testing.assert_array_equal(back[key], original[key])
    model_class.from_pretrained(str(tmp_path / "back"))


@pytest.mark.parametrize("kind", ["pretraining checkpoint", "safetensors directory"])
def test_every_checkpoint_this_project_writes_converts(tmp_path, kind):
    """A pretraining checkpoint and a save_pretrained(safe_serialization=True) directory convert like any other."""
    from ernie_m import ErnieMForPretraining

    paddle.seed(12)
    config = ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=120)
    model = ErnieMForPretraining(config) if kind == "pretraining checkpoint" else ErnieMModel(config)
    model.eval()
    model.save_pretrained(str(tmp_path / "ours"), safe_serialization=kind == "safetensors directory")
    destination, dropped = convert_hf.convert_to_hf(str(tmp_path / "ours"), str(tmp_path / "hf"))
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"] == ["ErnieMModel"]
    if kind == "pretraining checkpoint":
        assert dropped and all(name.startswith("lm_head.") for name in dropped)  # named, not silently lost
    else:
        assert dropped == []
    encoder = model.ernie_m if kind == "pretraining checkpoint" else model
    hf_model = transformers.ErnieMModel.from_pretrained(destination)
    hf_model.eval()
    ids, mask = _inputs()
    with torch.no_grad():
        hf_out = hf_model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask))
    out = encoder(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask), return_dict=True)
    np.testing.assert_allclose(out.last_hidden_state.numpy()[mask == 1],
                               hf_out.last_hidden_state.numpy()[mask == 1], atol=1e-4, rtol=0)


def test_the_language_embedding_survives_the_round_trip_and_its_loss_in_hf_is_named(tmp_path):
    """to-hf then from-hf keeps num_languages and the embedding's rows, so predictions are unchanged; to-hf says that
    HF's ErnieM ignores the rows."""
    paddle.seed(13)
    model = ErnieMForSequenceClassification(ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=120, num_labels=3,
                                                                     num_languages=4))
    with paddle.no_grad():  # a non-zero embedding, as after pretraining
        model.ernie_m.embeddings.language_embeddings.weight.set_value(
            paddle.randn(model.ernie_m.embeddings.language_embeddings.weight.shape))
    model.eval()
    model.save_pretrained(str(tmp_path / "ours"))
    _, notes = convert_hf.convert_to_hf(str(tmp_path / "ours"), str(tmp_path / "hf"))
    assert notes and "language_embeddings" in notes[0] and "HF's ErnieM ignores it" in notes[0]
    convert_hf.from_hf(str(tmp_path / "hf"), str(tmp_path / "back"))
    back = ErnieMForSequenceClassification.from_pretrained(str(tmp_path / "back"))
    back.eval()
    assert back.config.num_languages == 4
    ids, mask = _inputs()
    languages = paddle.to_tensor(np.full(ids.shape, 2, dtype="int64"))
    want = model(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask), language_ids=languages).numpy()
    got = back(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask), language_ids=languages).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_not_a_checkpoint_is_named(tmp_path):
    with pytest.raises(convert_hf.ConversionError, match="no config.json"):
        convert_hf.to_hf(str(tmp_path), str(tmp_path / "out"))


def test_the_command_converts(tmp_path, capsys):
    from ernie_m import cli
    from tests.helpers import one_line_exit

    paddle.seed(2)
    ErnieMModel(ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=120)).save_pretrained(str(tmp_path / "ours"))
    cli.main(["convert", "to-hf", str(tmp_path / "ours"), str(tmp_path / "hf")])
    assert (tmp_path / "hf" / "model.safetensors").is_file()
    line = one_line_exit(capsys, cli.main, ["convert", "from-hf", str(tmp_path / "missing"), str(tmp_path / "back")])
    assert line == f"ernie-m convert: error: checkpoint directory not found: {tmp_path / 'missing'}"


def test_a_checkpoint_missing_a_tensor_is_refused_both_ways(tiny_model_dir, tmp_path):
    """A checkpoint missing a tensor is refused by both converters, naming it: converted, the tensor would start
    random, and two identical `ernie-m embed --layer 2` runs would differ (by 0.10 in the measured case)."""
    import shutil

    from safetensors.numpy import load_file, save_file

    from ernie_m.weights import find_weight_file, load_state_dict, save_state_dict

    partial = tmp_path / "partial"
    shutil.copytree(tiny_model_dir, partial)
    weights_file = find_weight_file(str(partial))  # the file a conversion reads
    state = load_state_dict(weights_file)
    save_state_dict({k: v for k, v in state.items() if not k.endswith("layers.1.linear2.weight")}, weights_file)
    with pytest.raises(convert_hf.ConversionError, match=r"missing tensor 'encoder.layers.1.linear2.weight'"):
        convert_hf.convert_to_hf(str(partial), str(tmp_path / "hf-partial"))
    assert not (tmp_path / "hf-partial").exists()
    convert_hf.convert_to_hf(tiny_model_dir, str(tmp_path / "hf"))
    weights = load_file(str(tmp_path / "hf" / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if not k.endswith("layers.1.linear2.weight")},
              str(tmp_path / "hf" / "model.safetensors"))
    with pytest.raises(convert_hf.ConversionError, match=r"missing tensor 'encoder.layers.1.linear2.weight'"):
        convert_hf.from_hf(str(tmp_path / "hf"), str(tmp_path / "back"))
    assert not (tmp_path / "back").exists()
