"""Training checkpoints written atomically, the last K kept, the latest complete one found on resume.

A checkpoint directory `checkpoint-<step>` holds:
- the model in `save_pretrained` form (`config.json`, `model_state.pdparams`) and the tokenizer, so it loads with
  `from_pretrained` here and in PaddleNLP;
- `optimizer.safetensors` (the optimizer's tensors) + `optimizer.json` (its other entries, e.g. the scheduler), or
  one such pair per rank (`optimizer.rank<r>.*`) when the optimizer state is sharded;
- `trainer_state.json`: the step, the SHA-256 of every other file (checked whenever the state is read), and whatever
  else the loop needs (pretraining's data positions, fine-tuning's
  evaluation history): each loop checks its own entries;
- optionally the run's configuration (pretraining's `pretraining_config.json`), which a resume checks against.

Pretraining and fine-tuning both write and resume through this class.

It is written under a temporary name and renamed into place only when complete, so a crash mid-write leaves the
previous checkpoint as the latest. No file here is a pickle, so resuming never unpickles anything.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from typing import Optional

import numpy as np
import paddle

from ..atomic import replace_directory
from ..weights import find_weight_file, load_state_dict, save_state_dict, state_dict_mismatch

__all__ = ["CheckpointManager"]

_NAME = re.compile(r"^checkpoint-(\d+)$")
_STATE_FILE = "trainer_state.json"
_KEYS_FIELD = "parameter_keys"
_WITH_STATE_FIELD = "parameters_with_state"


def _key_renamer(model, to_structured: bool):
    """Optimizer state is keyed by Paddle's parameter names (`linear_3.w_0_moment1_0`), which depend on how many
    layers the process created before: saved under the model's structured names instead, so that a checkpoint
    resumes in any process."""
    pairs = [(parameter.name, name) for name, parameter in model.named_parameters()]
    mapping = dict(pairs) if to_structured else {structured: name for name, structured in pairs}
    prefixes = sorted(mapping, key=len, reverse=True)

    def rename(key: str) -> str:
        for prefix in prefixes:
            if key == prefix or key.startswith(prefix + "_"):
                return mapping[prefix] + key[len(prefix):]
        return key

    return rename


def _split_optimizer_state(state: dict):
    tensors, other = {}, {}
    for key, value in state.items():
        if isinstance(value, paddle.Tensor):
            tensors[key] = value
        elif isinstance(value, dict):
            other[key] = {k: (v.numpy().tolist() if isinstance(v, paddle.Tensor) else v) for k, v in value.items()}
        else:
            other[key] = value
    return tensors, other


def _trainer_state_problem(state) -> Optional[str]:
    """What is wrong with a trainer state's structure, or None."""
    if not isinstance(state, dict):
        return f"expected a JSON object, found {type(state).__name__}"
    if isinstance(state.get("step"), bool) or not isinstance(state.get("step"), int) or state["step"] < 0:
        return f"'step' must be a step count, found {state.get('step')!r}"
    digests = state.get("file_sha256", {})
    if not isinstance(digests, dict) or not all(isinstance(k, str) and isinstance(v, str) and "/" not in k
                                                and k not in ("", ".", "..") for k, v in digests.items()):
        return "'file_sha256' must map the checkpoint's file names to digests"
    return None


def _check_complete(tensors: dict, with_state, path: str) -> None:
    """Every parameter that had optimizer state has all of it (the same accumulators as the others): Paddle would
    otherwise fail at the first step with an assertion, or restart some moments from zero."""
    if not with_state:
        return
    suffixes = {key[len(with_state[0]) + 1:] for key in tensors if key.startswith(with_state[0] + "_")}
    for name in with_state:
        missing = [f"{name}_{suffix}" for suffix in sorted(suffixes) if f"{name}_{suffix}" not in tensors]
        if missing or not suffixes:
            raise ValueError(f"{path}: optimizer state lacks {missing[0] if missing else name} (the file is "
                             f"incomplete)")


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(directory: str) -> dict:
    """SHA-256 of every file a checkpoint holds (the trainer state excepted: it carries them)."""
    return {name: file_digest(os.path.join(directory, name)) for name in sorted(os.listdir(directory))
            if name != _STATE_FILE and os.path.isfile(os.path.join(directory, name))}


def verify_files(path: str, state: dict) -> None:
    """Every file the trainer state lists still has its digest (a flipped byte, a file replaced or gone), or
    ValueError naming the first that differs. Checkpoints written before digests were kept list none."""
    for name, expected in (state.get("file_sha256") or {}).items():
        file_path = os.path.join(path, name)
        if not os.path.isfile(file_path):
            raise ValueError(f"{file_path}: missing (the checkpoint lists it)")
        if file_digest(file_path) != expected:
            raise ValueError(f"{file_path}: its SHA-256 differs from the one written with the checkpoint (the file "
                             f"changed or is corrupted)")


class CheckpointManager:
    def __init__(self, output_dir: str, keep: int = 3):
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.output_dir = output_dir
        self.keep = keep

    def checkpoints(self):
        """(step, path) of complete checkpoints, oldest first."""
        found = []
        for name in os.listdir(self.output_dir) if os.path.isdir(self.output_dir) else ():
            match = _NAME.match(name)
            path = os.path.join(self.output_dir, name)
            if match and os.path.isfile(os.path.join(path, _STATE_FILE)):
                found.append((int(match.group(1)), path))
        return sorted(found)

    def latest(self) -> Optional[str]:
        found = self.checkpoints()
        return found[-1][1] if found else None

    def save(self, step: int, model, optimizer, tokenizer, trainer_state: dict, rank: int = 0,
             world_size: int = 1, sharded_optimizer: bool = False, barrier=None, run_config=None) -> Optional[str]:
        """Write `checkpoint-<step>`; every rank calls it.

        With `sharded_optimizer`, each rank holds part of the optimizer state and writes
        `optimizer.rank<r>.safetensors`; otherwise rank 0 writes the whole. Rank 0 writes the rest and renames the
        directory into place once every rank is done (`barrier` synchronises the ranks).
        """
        barrier = barrier or (lambda: None)
        final = os.path.join(self.output_dir, f"checkpoint-{step}")
        tmp = os.path.join(self.output_dir, f".tmp-checkpoint-{step}")
        if rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
        barrier()
        try:
            if sharded_optimizer:
                self._write_optimizer(tmp, optimizer, f"optimizer.rank{rank}", model)
            elif rank == 0:
                self._write_optimizer(tmp, optimizer, "optimizer", model)
            barrier()
            if rank != 0:
                return None
            model.save_pretrained(tmp)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
            if run_config is not None:
                run_config.save(tmp)
            state = dict(trainer_state, step=step, world_size=world_size, sharded_optimizer=sharded_optimizer,
                         file_sha256=file_digests(tmp))
            with open(os.path.join(tmp, _STATE_FILE), "w") as handle:
                json.dump(state, handle)
                handle.flush()
                os.fsync(handle.fileno())
            replace_directory(tmp, final)  # a rerun over the same step replaces it
        finally:
            if rank == 0:
                shutil.rmtree(tmp, ignore_errors=True)
            barrier()
        for _, path in self.checkpoints()[: -self.keep]:
            if path == final:
                continue  # never the one just written, whatever older steps a directory holds
            # Renamed first: a kill mid-deletion leaves a name that is no checkpoint and is cleaned at the next start.
            doomed = os.path.join(self.output_dir, ".deleting-" + os.path.basename(path))
            os.replace(path, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
        return final

    @staticmethod
    def _write_optimizer(directory: str, optimizer, stem: str, model=None) -> None:
        tensors, other = _split_optimizer_state(optimizer.state_dict())
        if model is not None:
            rename = _key_renamer(model, to_structured=True)
            tensors = {rename(key): value for key, value in tensors.items()}
            other = {key: ({rename(k): v for k, v in value.items()} if isinstance(value, dict) else value)
                     for key, value in other.items()}
            other[_KEYS_FIELD] = "structured"
            # Which parameters have state (those that had gradients): a resume checks each still has all of it.
            other[_WITH_STATE_FIELD] = [name for name, _ in model.named_parameters()
                                        if any(key.startswith(name + "_") for key in tensors)]
        save_state_dict(tensors, os.path.join(directory, f"{stem}.safetensors"))
        with open(os.path.join(directory, f"{stem}.json"), "w") as handle:
            json.dump(other, handle)

    @classmethod
    def load_trainer_state(cls, path: str) -> dict:
        """The trainer state, its structure checked and every file it lists checked against its digest."""
        state = cls._read_state(path)
        verify_files(path, state)
        return state

    @staticmethod
    def _read_state(path: str) -> dict:
        state_file = os.path.join(path, _STATE_FILE)
        try:
            with open(state_file) as handle:
                state = json.load(handle)
        except (OSError, ValueError) as error:
            raise ValueError(f"{state_file}: not a readable trainer state ({error})") from error
        problem = _trainer_state_problem(state)
        if problem:
            raise ValueError(f"{state_file}: {problem}")
        return state

    @staticmethod
    def load_model(path: str, model) -> None:
        """Load the checkpoint's weights into `model`, strictly: the same keys and shapes, or ValueError naming the
        first difference (Paddle would only warn, and unmatched weights would train on from random)."""
        weights_file = find_weight_file(path) or os.path.join(path, "model_state.pdparams")
        weights = load_state_dict(weights_file)
        mismatch = state_dict_mismatch({key: value.shape for key, value in model.state_dict().items()}, weights)
        if mismatch:
            raise ValueError(f"{weights_file}: {mismatch}")
        model.set_state_dict(weights)

    @classmethod
    def load_optimizer(cls, path: str, optimizer, rank: int = 0, world_size: int = 1, model=None) -> None:
        """Restore the optimizer state (this rank's shard when the checkpoint's optimizer was sharded); `model` maps
        structured names back to this process's parameter names."""
        state = cls._read_state(path)  # its files were verified when the run read the state
        stem = "optimizer"
        if state.get("sharded_optimizer"):
            if state.get("world_size") != world_size:
                raise ValueError(
                    f"{path}: the optimizer state is sharded over {state.get('world_size')} ranks; resume with the "
                    f"same number of ranks (this run has {world_size})"
                )
            stem = f"optimizer.rank{rank}"
        tensors = load_state_dict(os.path.join(path, f"{stem}.safetensors"))
        with open(os.path.join(path, f"{stem}.json")) as handle:
            other = json.load(handle)
        if not isinstance(other, dict):
            raise ValueError(f"{path}/{stem}.json: expected a JSON object, found {type(other).__name__}")
        _check_complete(tensors, other.pop(_WITH_STATE_FIELD, None), f"{path}/{stem}.safetensors")
        rename = (lambda key: key)
        if other.pop(_KEYS_FIELD, None) == "structured":
            if model is None:
                raise ValueError(f"{path}: optimizer state under structured names needs the model to load")
            rename = _key_renamer(model, to_structured=False)
        state = {rename(key): paddle.to_tensor(value) for key, value in tensors.items()}
        for key, value in other.items():
            if isinstance(value, dict):
                value = {rename(k): (np.asarray(v) if isinstance(v, list) else v) for k, v in value.items()}
            state[key] = value
        optimizer.set_state_dict(state)
