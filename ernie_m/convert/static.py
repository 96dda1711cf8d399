"""The authors' original static-graph checkpoints (PaddlePaddle/ERNIE, `ernie-m/`), converted to this project's layout.

    ernie-m convert from-static PARAMS_DIR OUT_DIR --config ernie_m_config.json [--tokenizer DIR]

The release is a directory with one file per variable, written by fluid's `save_persistables` (or a single
`.pdparams` pickle written by `paddle.static.save`), plus an `ernie_m_config.json`. Variable names come from the
original `model/ernie.py` (word_embedding, pos_embedding, the `pre_encoder` layer norm, `pooled_fc`), its shared
`transformer_encoder.py` (`encoder_layer_{i}_...`) and the fine-tuning heads in `finetune/` (`cls_out_*` for
classification, `cls_seq_label_out_*` for sequence labelling, `cls_mrc_out_*` for reading comprehension).

Positions: the original reader fed position ids 2, 3, ..., n + 1 straight into `pos_embedding`; this project's
model takes 0, 1, ..., n - 1 and adds 2 (PaddleNLP's and HF's convention). Both read the same rows, so the table is
copied unchanged. Static-graph fc weights are [in, out], as Paddle's Linear: nothing is transposed.

Paddle 3 no longer reads fluid's per-variable files (`paddle.static.load_program_state` fails on them), so
`read_tensor_file` parses that format itself: a version, the LoD levels, a TensorDesc protobuf (data type, dims),
then the raw data.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import struct
from typing import Dict, List, Tuple

import numpy as np

from ..architectures import ARCHITECTURES, with_head
from ..atomic import atomic_outputs
from .hf import TOKENIZER_FILES, ConversionError

# fluid VarType codes -> numpy (framework.proto)
_DTYPES = {0: np.bool_, 1: np.int16, 2: np.int32, 3: np.int64, 4: np.float16, 5: np.float32, 6: np.float64,
           20: np.uint8, 21: np.int8}

_ENCODER = {
    "word_embedding": "embeddings.word_embeddings.weight",
    "pos_embedding": "embeddings.position_embeddings.weight",
    "pre_encoder_layer_norm_scale": "embeddings.layer_norm.weight",
    "pre_encoder_layer_norm_bias": "embeddings.layer_norm.bias",
    "pooled_fc.w_0": "pooler.dense.weight",
    "pooled_fc.b_0": "pooler.dense.bias",
}
_LAYER = re.compile(r"^encoder_layer_(\d+)_(.+)$")
_LAYER_PARTS = {
    "multi_head_att_query_fc": "self_attn.q_proj",
    "multi_head_att_key_fc": "self_attn.k_proj",
    "multi_head_att_value_fc": "self_attn.v_proj",
    "multi_head_att_output_fc": "self_attn.out_proj",
    "ffn_fc_0": "linear1",
    "ffn_fc_1": "linear2",
}
_LAYER_NORMS = {"post_att_layer_norm": "norm1", "post_ffn_layer_norm": "norm2"}
# The original fine-tuning head's variable prefix -> our head (ernie_m.architectures)
HEADS = {
    "cls_out": "sequence_classification",
    "cls_seq_label_out": "token_classification",
    "cls_mrc_out": "question_answering",
}
# Optimizer and schedule state saved alongside the weights by save_persistables.
_TRAINING_STATE = re.compile(r"(_moment\d_\d+|_beta\d_pow_acc_\d+|^learning_rate_\d+|@LR_DECAY_COUNTER@|"
                             r"^loss_scaling_\d+|^num_(good|bad)_steps_\d+)$")


# ---- reading ------------------------------------------------------------------------------------------------------
def _varint(data: bytes, offset: int) -> Tuple[int, int]:
    value, shift = 0, 0
    while True:
        if offset >= len(data):
            raise ValueError("TensorDesc ends inside a number")
        byte = data[offset]
        value |= (byte & 0x7F) << shift
        offset += 1
        if not byte & 0x80:
            return value, offset
        shift += 7


def _tensor_desc(data: bytes) -> Tuple[int, List[int]]:
    """(data type, dims) from a serialized `VarType.TensorDesc` (field 1: data_type, field 2: repeated dims)."""
    dtype, dims, offset = None, [], 0
    while offset < len(data):
        key, offset = _varint(data, offset)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, offset = _varint(data, offset)
            if field == 1:
                dtype = value
            elif field == 2:
                dims.append(value - (1 << 64) if value >= 1 << 63 else value)
        elif wire == 2:  # a packed `dims`, or a field we do not need
            length, offset = _varint(data, offset)
            end = offset + length
            while field == 2 and offset < end:
                value, offset = _varint(data, offset)
                dims.append(value)
            offset = end
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    if dtype is None:
        raise ValueError("TensorDesc has no data type")
    return dtype, dims


def _require_regular_file(path: str) -> None:
    """Variable files are regular files: a FIFO would block the read forever, a device (a link to /dev/zero)
    would be read until memory runs out."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise ConversionError(f"{path}: cannot be read ({error.strerror})") from None
    if not stat.S_ISREG(mode):
        raise ConversionError(f"{path}: not a regular file (a FIFO, device or socket); a release's parameter "
                              f"directory holds only variable files")


def read_tensor_file(path: str) -> np.ndarray:
    """One variable file written by fluid's save_vars / save_persistables (a serialized LoDTensor)."""
    _require_regular_file(path)
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        if len(data) < 4 or struct.unpack_from("<I", data, 0)[0] != 0:
            raise ValueError("does not start with LoDTensor version 0")
        (lod_levels,) = struct.unpack_from("<Q", data, 4)
        offset = 12
        for _ in range(lod_levels):
            (size,) = struct.unpack_from("<Q", data, offset)
            offset += 8 + size
        tensor_version, desc_size = struct.unpack_from("<Ii", data, offset)
        if tensor_version != 0:
            raise ValueError(f"tensor version {tensor_version}, expected 0")
        offset += 8
        dtype_code, dims = _tensor_desc(data[offset:offset + desc_size])
        offset += desc_size
        if dtype_code not in _DTYPES:
            raise ValueError(f"data type code {dtype_code} is not supported")
        dtype = np.dtype(_DTYPES[dtype_code])
        count = int(np.prod(dims)) if dims else 1
        if len(data) - offset != count * dtype.itemsize:
            raise ValueError(f"holds {len(data) - offset} bytes of data, {count * dtype.itemsize} expected for "
                             f"shape {dims} {dtype}")
        return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(dims).copy()
    except (ValueError, struct.error) as error:
        raise ConversionError(f"{path}: not a Paddle static-graph variable file ({error})") from None


def read_static_parameters(source: str) -> Dict[str, np.ndarray]:
    """name -> array from a directory of variable files or a `paddle.static.save` `.pdparams` file."""
    if os.path.exists(source) and not os.path.isdir(source):
        _require_regular_file(source)
        from ..weights import load_state_dict

        return {name: np.asarray(value) for name, value in load_state_dict(source).items()}
    if not os.path.isdir(source):
        raise ConversionError(f"{source}: no such directory or file")
    state = {}
    for root, _, files in os.walk(source):
        for name in sorted(files):
            path = os.path.join(root, name)
            variable = os.path.relpath(path, source).replace(os.sep, "/")
            if variable.startswith(".") or _TRAINING_STATE.search(variable):
                continue
            state[variable] = read_tensor_file(path)
    if not state:
        raise ConversionError(f"{source}: no variable files")
    return state


# ---- mapping ------------------------------------------------------------------------------------------------------
def static_to_ours_state(state: Dict[str, np.ndarray]) -> Tuple[Dict[str, np.ndarray], str, List[str]]:
    """(our state dict, our architecture, names left out) from original variable names."""
    heads = {prefix for prefix in HEADS if f"{prefix}_w" in state}
    if len(heads) > 1:
        raise ConversionError(f"the checkpoint holds several fine-tuning heads ({', '.join(sorted(heads))})")
    head = HEADS[heads.pop()] if heads else "encoder"
    architecture = with_head(head).name
    prefix = "" if head == "encoder" else "ernie_m."
    out, skipped = {}, []
    for name, value in state.items():
        key = _our_name(name)
        head, _, part = name.rpartition("_")
        if key is not None:
            out[prefix + key] = value
        elif head in HEADS and part in ("w", "b"):
            out["classifier." + ("weight" if part == "w" else "bias")] = value
        elif not _TRAINING_STATE.search(name):
            skipped.append(name)
    return out, architecture, sorted(skipped)


def _our_name(name: str):
    if name in _ENCODER:
        return _ENCODER[name]
    match = _LAYER.match(name)
    if not match:
        return None
    layer, rest = match.groups()
    for part, ours in _LAYER_PARTS.items():
        if rest in (f"{part}.w_0", f"{part}.b_0"):
            return f"encoder.layers.{layer}.{ours}.{'weight' if rest.endswith('w_0') else 'bias'}"
    for part, ours in _LAYER_NORMS.items():
        if rest in (f"{part}_scale", f"{part}_bias"):
            return f"encoder.layers.{layer}.{ours}.{'weight' if rest.endswith('scale') else 'bias'}"
    return None


def _config(config_file: str, architecture: str, state: Dict[str, np.ndarray]):
    from ..configuration import ErnieMConfig

    if not os.path.isfile(config_file):
        raise ConversionError(f"{config_file}: config file not found (the release's ernie_m_config.json)")
    try:
        with open(config_file, encoding="utf-8") as handle:
            original = json.load(handle)
    except ValueError as error:
        raise ConversionError(f"{config_file}: not valid JSON ({error})") from None
    required = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
    missing = [key for key in required if key not in original]
    if missing:
        raise ConversionError(f"{config_file}: missing {', '.join(missing)}")
    fields = {key: original[key] for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                             "max_position_embeddings", "hidden_act", "hidden_dropout_prob",
                                             "attention_probs_dropout_prob", "initializer_range") if key in original}
    fields["intermediate_size"] = original.get("intermediate_size", 4 * original["hidden_size"])
    if ARCHITECTURES[architecture].head in ("sequence_classification", "token_classification"):
        fields["num_labels"] = int(state["classifier.weight"].shape[1])
    return ErnieMConfig(**fields)


def from_static(source: str, destination: str, config_file: str, tokenizer_dir: str = None) -> Tuple[str, List[str]]:
    """Write a `from_pretrained` directory from an original checkpoint; returns (architecture, names left out)."""
    from .. import modeling
    from ..weights import save_state_dict
    from .hf import NO_POOLER_IN_HF

    state, architecture, skipped = static_to_ours_state(read_static_parameters(source))
    config = _config(config_file, architecture, state)
    initial = {name: value.numpy() for name, value in getattr(modeling, architecture)(config).state_dict().items()}
    for name in sorted(set(initial) - set(state)):
        if architecture in NO_POOLER_IN_HF and ".pooler." in name:
            # The original token-labelling and reading-comprehension programs never built pooled_fc, so their
            # checkpoints lack it; our classes have a pooler these heads never use. It keeps its initial values.
            state[name] = initial[name]
        else:
            raise ConversionError(f"{source}: no variable for our {name}")
    unexpected = sorted(set(state) - set(initial))
    if unexpected:
        raise ConversionError(f"{source}: {unexpected[0]} has no place in the model {config_file} describes")
    for name in initial:  # in the model's order: the first mismatch reported is the most telling
        value = state[name]
        if tuple(value.shape) != tuple(initial[name].shape):
            raise ConversionError(f"{source}: {name} has shape {list(value.shape)}; {config_file} implies "
                                  f"{list(initial[name].shape)}")
    copied = [name for name in TOKENIZER_FILES if tokenizer_dir and os.path.isfile(os.path.join(tokenizer_dir, name))]
    if tokenizer_dir and ("sentencepiece.bpe.model" not in copied or "vocab.txt" not in copied):
        raise ConversionError(f"{tokenizer_dir}: needs sentencepiece.bpe.model and vocab.txt")
    config.architectures = [architecture]
    with atomic_outputs(destination) as staging:  # a failed conversion leaves the destination as it was
        config.save_pretrained(staging)
        save_state_dict({name: value.astype(np.float32) for name, value in state.items()},
                        os.path.join(staging, "model_state.pdparams"))
        for name in copied:
            shutil.copy2(os.path.join(tokenizer_dir, name), staging)
    return architecture, skipped
