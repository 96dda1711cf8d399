"""Checkpoints: round trips with PaddleNLP both ways, safe .pdparams loading, and bad files."""
import json
import os
import pickle

import numpy as np
import paddle
import paddlenlp.transformers as paddlenlp_models
import pytest

import ernie_m
from ernie_m.weights import CheckpointFormatError, UnsafeCheckpointError, load_pdparams, save_state_dict


def tiny_config(**overrides):
    return ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=300, num_labels=3, **overrides)


def sample_inputs():
    ids = paddle.to_tensor(np.random.randint(3, 300, (2, 9)))
    mask = paddle.to_tensor(np.array([[1] * 9, [1] * 5 + [0] * 4]))
    return ids, mask


def outputs_equal(a, b, ids, mask):
    a.eval()
    b.eval()
    with paddle.no_grad():
        x, y = a(ids, attention_mask=mask), b(ids, attention_mask=mask)
    x = x if isinstance(x, (tuple, list)) else (x,)
    y = y if isinstance(y, (tuple, list)) else (y,)
    return max(float((p - q).abs().max()) for p, q in zip(x, y)) < 1e-6


def weight_file_keys(directory):
    path = os.path.join(directory, "model_state.pdparams")
    if os.path.exists(path):
        return set(load_pdparams(path))
    return set(ernie_m.load_state_dict(os.path.join(directory, "model.safetensors")))


@pytest.mark.parametrize("safe_serialization", [False, True])
@pytest.mark.parametrize("head", ["ErnieMModel", "ErnieMForSequenceClassification", "ErnieMForQuestionAnswering",
                                  "ErnieMForTokenClassification", "UIEM"])
def test_ours_loads_into_paddlenlp(tmp_path, head, safe_serialization):
    ours = getattr(ernie_m, head)(tiny_config())
    ours.save_pretrained(str(tmp_path), safe_serialization=safe_serialization)
    theirs = getattr(paddlenlp_models, head).from_pretrained(str(tmp_path))
    assert weight_file_keys(str(tmp_path)) == set(theirs.state_dict())  # no missing, no unexpected
    assert outputs_equal(ours, theirs, *sample_inputs())


@pytest.mark.parametrize("head", ["ErnieMModel", "ErnieMForSequenceClassification", "UIEM"])
def test_paddlenlp_loads_into_ours(tmp_path, head):
    config = paddlenlp_models.ErnieMConfig(vocab_size=300, hidden_size=64, num_hidden_layers=2,
                                           num_attention_heads=2, num_labels=3)
    theirs = getattr(paddlenlp_models, head)(config)
    theirs.save_pretrained(str(tmp_path))
    ours = getattr(ernie_m, head).from_pretrained(str(tmp_path))
    assert weight_file_keys(str(tmp_path)) == set(ours.state_dict())
    assert ours.config.intermediate_size == 256  # PaddleNLP writes 3072; the true width is 4 x hidden
    assert outputs_equal(ours, theirs, *sample_inputs())


def test_encoder_checkpoint_loads_under_a_head_with_prefix(tmp_path):
    encoder = ernie_m.ErnieMModel(tiny_config())
    encoder.save_pretrained(str(tmp_path))
    classifier = ernie_m.ErnieMForSequenceClassification.from_pretrained(str(tmp_path), num_labels=2)
    for key, value in encoder.state_dict().items():
        assert np.array_equal(classifier.state_dict()["ernie_m." + key].numpy(), value.numpy()), key


def test_auto_classes_load_our_checkpoints(tmp_path, tokenizer_dir):
    from paddlenlp.transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    ours = ernie_m.ErnieMForSequenceClassification(tiny_config())
    ours.save_pretrained(str(tmp_path))
    auto = AutoModelForSequenceClassification.from_pretrained(str(tmp_path))
    assert outputs_equal(ours, auto, *sample_inputs())
    assert type(AutoModel.from_pretrained(str(tmp_path))).__name__ == "ErnieMModel"
    ours_tokenizer = ernie_m.ErnieMTokenizer.from_pretrained(tokenizer_dir)
    auto_tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    text = "Der schnelle Fuchs 123 springt."
    assert auto_tokenizer(text)["input_ids"] == ours_tokenizer(text)["input_ids"]


def test_legacy_position_ids_buffer_is_ignored(tmp_path):
    model = ernie_m.ErnieMModel(tiny_config())
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    state["embeddings.position_ids"] = np.arange(514, dtype="int64")[None]
    os.makedirs(tmp_path / "old")
    save_state_dict(state, str(tmp_path / "old" / "model_state.pdparams"))
    model.config.save_pretrained(str(tmp_path / "old"))
    loaded = ernie_m.ErnieMModel.from_pretrained(str(tmp_path / "old"))
    assert outputs_equal(model, loaded, *sample_inputs())


def test_wrong_shape_checkpoint_is_a_clear_error(tmp_path):
    ernie_m.ErnieMModel(tiny_config()).save_pretrained(str(tmp_path))
    config = json.loads((tmp_path / "config.json").read_text())
    config["vocab_size"] = 500
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(RuntimeError, match=r"word_embeddings.weight.*\[300, 64\].*\[500, 64\]"):
        ernie_m.ErnieMModel.from_pretrained(str(tmp_path))


def test_classifier_with_other_labels_loads_with_ignore_mismatched_sizes(tmp_path):
    ernie_m.ErnieMForSequenceClassification(tiny_config()).save_pretrained(str(tmp_path))
    with pytest.raises(RuntimeError, match="classifier.weight"):
        ernie_m.ErnieMForSequenceClassification.from_pretrained(str(tmp_path), num_labels=5)
    model = ernie_m.ErnieMForSequenceClassification.from_pretrained(
        str(tmp_path), num_labels=5, ignore_mismatched_sizes=True
    )
    assert model.classifier.weight.shape == [64, 5]


class _RunsCode:
    """A pickle payload that would create a file when unpickled by a normal loader."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_pdparams_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    directory = tmp_path / "model"
    ernie_m.ErnieMModel(tiny_config()).save_pretrained(str(directory))
    state = load_pdparams(str(directory / "model_state.pdparams"))
    state["embeddings.word_embeddings.weight"] = _RunsCode(str(marker))
    with open(directory / "model_state.pdparams", "wb") as handle:
        pickle.dump(state, handle, protocol=4)
    # The control: an ordinary unpickler runs the payload.
    with open(directory / "model_state.pdparams", "rb") as handle:
        pickle.load(handle)
    assert marker.exists()
    marker.unlink()

    with pytest.raises(UnsafeCheckpointError, match=r"model_state.pdparams.*refused.*io\.open"):
        load_pdparams(str(directory / "model_state.pdparams"))
    with pytest.raises(UnsafeCheckpointError):
        ernie_m.ErnieMModel.from_pretrained(str(directory))
    assert not marker.exists()


def test_truncated_and_garbage_pdparams_name_the_file(tmp_path):
    directory = tmp_path / "model"
    ernie_m.ErnieMModel(tiny_config()).save_pretrained(str(directory))
    path = directory / "model_state.pdparams"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointFormatError, match="model_state.pdparams.*truncated or corrupted"):
        ernie_m.ErnieMModel.from_pretrained(str(directory))
    path.write_bytes(b"this is not a pickle at all")
    with pytest.raises(CheckpointFormatError, match="model_state.pdparams"):
        load_pdparams(str(path))
    with open(path, "wb") as handle:
        pickle.dump([1, 2, 3], handle)
    with pytest.raises(CheckpointFormatError, match="expected a dict of arrays"):
        load_pdparams(str(path))


def test_state_dict_files_round_trip_all_dtypes(tmp_path):
    state = {
        "float32": np.random.rand(3, 4).astype("float32"),
        "float16": np.random.rand(5).astype("float16"),
        "int64": np.arange(6, dtype="int64").reshape(2, 3),
        "bfloat16_bits": paddle.randn([4]).astype("bfloat16"),
    }
    for name in ("weights.pdparams", "weights.safetensors"):
        path = str(tmp_path / name)
        save_state_dict(state, path)
        loaded = ernie_m.load_state_dict(path)
        assert set(loaded) == set(state)
        for key, value in state.items():
            expected = value if isinstance(value, np.ndarray) else value.numpy()
            assert loaded[key].dtype == expected.dtype and np.array_equal(loaded[key], expected), (name, key)
    # A .pdparams we write is also an ordinary paddle checkpoint.
    via_paddle = paddle.load(str(tmp_path / "weights.pdparams"))
    assert np.array_equal(np.asarray(via_paddle["int64"]), state["int64"])


def test_failed_save_leaves_previous_file(tmp_path, monkeypatch):
    path = str(tmp_path / "weights.pdparams")
    save_state_dict({"a": np.ones(3, dtype="float32")}, path)

    def broken_dump(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pickle, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        save_state_dict({"a": np.zeros(3, dtype="float32")}, path)
    assert np.array_equal(load_pdparams(path)["a"], np.ones(3, dtype="float32"))
    assert os.listdir(tmp_path) == ["weights.pdparams"]
