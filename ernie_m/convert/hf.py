"""Convert ERNIE-M checkpoints between this project's (PaddleNLP's) layout and HF transformers' ErnieM layout
(transformers <= 4.40.2, where ErnieM was last shipped).

    ernie-m convert to-hf   OUR_DIR HF_DIR      # model.safetensors + config.json + tokenizer files
    ernie-m convert from-hf HF_DIR  OUR_DIR     # model_state.pdparams + config.json + tokenizer files

The two layouts differ in three ways: HF nests the query/key/value projections one level deeper
(`self_attn.self_attn.q_proj`), its QA head is `qa_outputs` where ours is `classifier`, and torch stores a Linear
weight as [out, in] where Paddle stores [in, out]. HF's QA and token-classification models have no pooler: ours has
one, which those heads never use; it is dropped going to HF, and left to initialise going back. Both sides add 2 to
position ids and build the default attention mask from the pad id, so outputs agree.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from typing import Dict

import numpy as np

from ..architectures import ARCHITECTURES, architecture_named, saved_architecture, with_head
from ..atomic import atomic_outputs
from ..errors import first_line

# Our class -> HF class, for the architectures HF transformers has.
HF_CLASSES = {a.name: a.hf_name for a in ARCHITECTURES.values() if a.hf_name}
NO_POOLER_IN_HF = {a.name for a in ARCHITECTURES.values() if a.hf_name and not a.hf_has_pooler}
CONFIG_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                 "initializer_range", "pad_token_id", "layer_norm_eps", "num_labels", "id2label", "label2id",
                 # Ours; HF keeps unknown config fields, so the language embedding's size survives the round trip.
                 "num_languages", "legacy_attention_mask")
TOKENIZER_FILES = ("sentencepiece.bpe.model", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
_QKV = re.compile(r"(encoder\.layers\.\d+\.self_attn)\.(q_proj|k_proj|v_proj)\.")
_HF_QKV = re.compile(r"(encoder\.layers\.\d+\.self_attn)\.self_attn\.(q_proj|k_proj|v_proj)\.")
_LINEAR_WEIGHT = re.compile(r"(q_proj|k_proj|v_proj|out_proj|linear1|linear2|dense|classifier|qa_outputs|"
                            r"linear_start|linear_end)\.weight$")


class ConversionError(ValueError):
    """The input is not a checkpoint this converter knows: the message says which file and why."""


def _architecture(directory: str) -> str:
    try:
        architecture = saved_architecture(directory)
    except ValueError as error:  # config.json that is not JSON, or not an object
        raise ConversionError(str(error)) from None
    if architecture is None:
        raise ConversionError(f"{directory}: no config.json (not a checkpoint directory)")
    if architecture_named(architecture) is None:  # ours (any in the registry) or HF's name for one
        raise ConversionError(f"{os.path.join(directory, 'config.json')}: architecture {architecture!r} is not an "
                              f"ERNIE-M model")
    return architecture


def ours_to_hf_state(state: Dict[str, np.ndarray], architecture: str) -> Dict[str, np.ndarray]:
    out = {}
    for name, value in state.items():
        if name.endswith("embeddings.position_ids"):
            continue  # a buffer some old checkpoints carry
        if architecture in NO_POOLER_IN_HF and ".pooler." in f".{name}":
            continue
        key = _QKV.sub(r"\1.self_attn.\2.", name)
        if ARCHITECTURES[architecture].head == "question_answering":  # HF names the head's layer qa_outputs
            key = re.sub(r"^classifier\.", "qa_outputs.", key)
        value = np.asarray(value)
        out[key] = np.ascontiguousarray(value.T) if _LINEAR_WEIGHT.search(key) and value.ndim == 2 else value
    return out


def hf_to_ours_state(state: Dict[str, np.ndarray], architecture: str) -> Dict[str, np.ndarray]:
    out = {}
    for name, value in state.items():
        if name.endswith("embeddings.position_ids"):
            continue
        value = np.asarray(value)
        weight = _LINEAR_WEIGHT.search(name) and value.ndim == 2
        key = _HF_QKV.sub(r"\1.\2.", name)
        if ARCHITECTURES[architecture].head == "question_answering":
            key = re.sub(r"^qa_outputs\.", "classifier.", key)
        out[key] = np.ascontiguousarray(value.T) if weight else value
    return out


def _copy_tokenizer(source: str, destination: str) -> None:
    for name in TOKENIZER_FILES:
        if os.path.isfile(os.path.join(source, name)):
            shutil.copy2(os.path.join(source, name), destination)


def _our_weights(source: str) -> Dict[str, np.ndarray]:
    from ..weights import WEIGHT_FILES, find_weight_file, load_state_dict

    path = find_weight_file(source)
    if path is None:
        raise ConversionError(f"{source}: no weight file ({' or '.join(WEIGHT_FILES)})")
    return load_state_dict(path)


def _checked_config(fields: dict, source: str):
    """The ErnieMConfig `fields` describe, or ConversionError naming the field that is wrong."""
    from ..configuration import ErnieMConfig

    try:
        return ErnieMConfig(**{key: value for key, value in fields.items() if key in CONFIG_FIELDS})
    except (TypeError, ValueError) as error:
        raise ConversionError(f"{source}/config.json: {first_line(error)}") from None


def _torch_weights(path: str) -> Dict[str, np.ndarray]:
    """A PyTorch state dict as arrays (tensors only: `weights_only`), or ConversionError naming the file."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return {key: value.numpy() for key, value in state.items()}
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, AttributeError, ValueError) as error:
        raise ConversionError(f"{path}: not a readable PyTorch state dict ({first_line(error)})") from None


def check_complete(state: Dict[str, np.ndarray], architecture: str, config: dict, where: str) -> None:
    """Every tensor name of `architecture` (ours) under `config` is in `state`, and nothing else, or ConversionError
    naming the first difference: a converted checkpoint missing one would load with it random, with only a log line.
    (Shapes are checked when the result loads.)"""
    from ..configuration import ErnieMConfig

    # The same names at a width of 8: the layer count, heads and languages decide the names, not the sizes.
    keep = ("num_hidden_layers", "num_labels", "num_languages", "id2label", "label2id")
    fields = {key: config[key] for key in keep if key in config}
    model = ARCHITECTURES[architecture].model_class(ErnieMConfig(
        vocab_size=8, hidden_size=8, num_attention_heads=1, intermediate_size=8, max_position_embeddings=8,
        pad_token_id=1, **fields))
    expected, given = set(model.state_dict()), set(state)
    if architecture in NO_POOLER_IN_HF:  # these heads never use the pooler, and HF's classes have none
        expected = {key for key in expected if ".pooler." not in f".{key}"}
        given = {key for key in given if ".pooler." not in f".{key}"}
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        problem = f"missing tensor {missing[0]!r}" if missing else f"unexpected tensor {unexpected[0]!r}"
        count = len(missing) + len(unexpected)
        raise ConversionError(f"{where}: {problem}" + (f" (and {count - 1} more differences)" if count > 1 else "")
                              + "; the converted checkpoint would not load as it was trained")


def convert_to_hf(source: str, destination: str):
    """Write `source` in HF transformers' layout; returns (destination, the tensors left out). A pretraining
    checkpoint converts as its encoder (HF's ErnieMModel): the tied LM head has no HF counterpart."""
    from safetensors.numpy import save_file

    architecture, state, dropped = _architecture(source), _our_weights(source), []
    with open(os.path.join(source, "config.json")) as handle:
        config = json.load(handle)
    _checked_config(config, source)
    check_complete(state, architecture, config, source)
    # HF's ErnieM has no language embedding: the tensor is written (a round trip keeps it) but HF ignores it, so
    # outputs there equal the model run without language ids. Said, not hidden.
    dropped += [f"{key} (written, but HF's ErnieM ignores it: its outputs are those without language ids)"
                for key in state if ".language_embeddings." in f".{key}"]
    if ARCHITECTURES[architecture].head == "pretraining":  # HF has no pretraining class: its encoder is written
        prefix = "ernie_m."
        dropped += sorted(key for key in state if not key.startswith(prefix))
        state = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
        architecture = with_head("encoder").name
    state = ours_to_hf_state(state, architecture)
    hf_config = {key: config[key] for key in CONFIG_FIELDS if key in config}
    hf_config.update(model_type="ernie_m", architectures=[HF_CLASSES[architecture]])
    with atomic_outputs(destination) as staging:  # a failed conversion leaves the destination as it was
        save_file(state, os.path.join(staging, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(staging, "config.json"), "w") as handle:
            json.dump(hf_config, handle, indent=2)
        _copy_tokenizer(source, staging)
    return destination, dropped


def to_hf(source: str, destination: str) -> str:
    """`convert_to_hf` without the report."""
    return convert_to_hf(source, destination)[0]


def from_hf(source: str, destination: str) -> str:
    from safetensors.numpy import load_file

    from ..weights import save_state_dict

    architecture = {hf: ours for ours, hf in HF_CLASSES.items()}.get(_architecture(source))
    if architecture is None:
        raise ConversionError(f"{source}/config.json: not an HF ErnieM architecture")
    weights = os.path.join(source, "model.safetensors")
    if os.path.isfile(weights):
        state = load_file(weights)
    elif os.path.isfile(os.path.join(source, "pytorch_model.bin")):
        state = _torch_weights(os.path.join(source, "pytorch_model.bin"))
    else:
        raise ConversionError(f"{source}: no model.safetensors or pytorch_model.bin")
    with open(os.path.join(source, "config.json")) as handle:
        hf_config = json.load(handle)
    ours = hf_to_ours_state(state, architecture)
    check_complete(ours, architecture, hf_config, source)
    config = _checked_config({key: hf_config[key] for key in CONFIG_FIELDS if key in hf_config}, source)
    config.architectures = [architecture]
    with atomic_outputs(destination) as staging:  # a failed conversion leaves the destination as it was
        save_state_dict(ours, os.path.join(staging, "model_state.pdparams"))
        config.save_pretrained(staging)
        _copy_tokenizer(source, staging)
    return destination
