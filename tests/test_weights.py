"""ernie_m.weights: weight files read without running code from them, written atomically, every dtype kept."""
import os
import pickle

import numpy as np
import paddle
import pytest

import ernie_m
from ernie_m.weights import CheckpointFormatError, UnsafeCheckpointError, load_pdparams, save_state_dict


def tiny_config():
    return ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=300, num_labels=3)


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


def test_an_array_declared_larger_than_its_data_is_refused_before_allocating(tmp_path):
    """A 100-byte pickle declaring a 2 GiB array (numpy's `_reconstruct` with the declared shape) is refused before
    anything is allocated."""

    class Declared:
        def __reduce__(self):
            return (np.core.multiarray._reconstruct, (np.ndarray, (2 ** 31,), b"b"))

    path = tmp_path / "crafted.pdparams"
    path.write_bytes(pickle.dumps({"w": Declared()}, protocol=4))
    assert path.stat().st_size < 200
    with pytest.raises(CheckpointFormatError, match=r"declared with shape \(2147483648,\) outside its data"):
        load_pdparams(str(path))


def test_a_direct_ndarray_call_and_object_arrays_are_refused_before_allocating(tmp_path):
    """`numpy.ndarray` is not an allowed global: a 148-byte pickle calling `ndarray((2**30,), 'u1')` is refused before
    allocating 1 GiB, and an object-dtype array before any item is unpickled."""

    class Direct:
        def __reduce__(self):
            return (np.ndarray, ((2 ** 30,), "u1"))

    direct = tmp_path / "direct.pdparams"
    direct.write_bytes(pickle.dumps({"w": Direct()}, protocol=4))
    assert direct.stat().st_size < 200
    with pytest.raises(UnsafeCheckpointError, match="calls numpy.ndarray directly"):
        load_pdparams(str(direct))
    objects = tmp_path / "objects.pdparams"
    objects.write_bytes(pickle.dumps({"w": np.array([1, "a"], dtype=object)}, protocol=4))
    with pytest.raises(UnsafeCheckpointError, match=r"an array of Python objects \(dtype object\)"):
        load_pdparams(str(objects))


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_numpy_pickles_of_every_protocol_paddle_writes_load(tmp_path, protocol):
    """Protocol-2 pickles load: an array's bytes come as a latin-1 string through `_codecs.encode`, which is allowed
    for latin-1 strings only."""
    weights = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, 2], dtype=np.int64)}
    path = tmp_path / "w.pdparams"
    path.write_bytes(pickle.dumps(weights, protocol=protocol))
    loaded = load_pdparams(str(path))
    assert set(loaded) == {"w", "b"} and all(np.array_equal(loaded[k], weights[k]) for k in weights)
    assert loaded["w"].dtype == np.float32


def test_codecs_encode_serves_only_latin1_strings(tmp_path):
    class Encodes:
        def __reduce__(self):
            import _codecs

            return (_codecs.encode, ("payload", "rot13"))

    path = tmp_path / "codec.pdparams"
    path.write_bytes(pickle.dumps({"w": Encodes()}, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="only to turn a latin-1 string"):
        load_pdparams(str(path))
