"""Training checkpoints written atomically, the last K kept, the latest complete one found on resume.

A checkpoint directory `checkpoint-<step>` holds:
- the model in `save_pretrained` form (`config.json`, `model_state.pdparams`) and the tokenizer, so it loads with
  `from_pretrained` here and in PaddleNLP;
- `optimizer.safetensors` (the optimizer's tensors) + `optimizer.json` (its other entries, e.g. the scheduler);
- `trainer_state.json`: step, data positions, and whatever else the loop needs.

It is written under a temporary name and renamed into place only when complete, so a crash mid-write leaves the
previous checkpoint as the latest. No file here is a pickle, so resuming never unpickles anything.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from typing import Optional

import numpy as np
import paddle

from ..checkpoint import load_state_dict, save_state_dict

__all__ = ["CheckpointManager"]

_NAME = re.compile(r"^checkpoint-(\d+)$")
_STATE_FILE = "trainer_state.json"


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


class CheckpointManager:
    def __init__(self, output_dir: str, keep: int = 3):
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.output_dir = output_dir
        self.keep = keep
        os.makedirs(output_dir, exist_ok=True)

    def checkpoints(self):
        """(step, path) of complete checkpoints, oldest first."""
        found = []
        for name in os.listdir(self.output_dir):
            match = _NAME.match(name)
            path = os.path.join(self.output_dir, name)
            if match and os.path.isfile(os.path.join(path, _STATE_FILE)):
                found.append((int(match.group(1)), path))
        return sorted(found)

    def latest(self) -> Optional[str]:
        found = self.checkpoints()
        return found[-1][1] if found else None

    def save(self, step: int, model, optimizer, tokenizer, trainer_state: dict) -> str:
        final = os.path.join(self.output_dir, f"checkpoint-{step}")
        tmp = os.path.join(self.output_dir, f".tmp-checkpoint-{step}-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            model.save_pretrained(tmp)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
            tensors, other = _split_optimizer_state(optimizer.state_dict())
            save_state_dict(tensors, os.path.join(tmp, "optimizer.safetensors"))
            with open(os.path.join(tmp, "optimizer.json"), "w") as handle:
                json.dump(other, handle)
            with open(os.path.join(tmp, _STATE_FILE), "w") as handle:
                json.dump(dict(trainer_state, step=step), handle)
                handle.flush()
                os.fsync(handle.fileno())
            if os.path.exists(final):  # a rerun over the same step: replace it
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for _, path in self.checkpoints()[: -self.keep]:
            shutil.rmtree(path, ignore_errors=True)
        return final

    @staticmethod
    def load_trainer_state(path: str) -> dict:
        state_file = os.path.join(path, _STATE_FILE)
        try:
            with open(state_file) as handle:
                return json.load(handle)
        except (OSError, ValueError) as error:
            raise ValueError(f"{state_file}: not a readable trainer state ({error})") from error

    @staticmethod
    def load_optimizer(path: str, optimizer) -> None:
        tensors = load_state_dict(os.path.join(path, "optimizer.safetensors"))
        with open(os.path.join(path, "optimizer.json")) as handle:
            other = json.load(handle)
        state = {key: paddle.to_tensor(value) for key, value in tensors.items()}
        for key, value in other.items():
            if isinstance(value, dict):
                value = {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in value.items()}
            state[key] = value
        optimizer.set_state_dict(state)
