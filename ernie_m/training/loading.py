"""Loading a checkpoint to train from: a training checkpoint's files are checked against the digests its trainer
state recorded before the weights load. The weights' completeness is `from_pretrained`'s own check (an encoder
weight missing is refused; a new task head is named)."""
from __future__ import annotations

import os


def from_pretrained_for_training(model_class, name_or_path: str, **kwargs):
    """`model_class.from_pretrained(...)`, after checking a training checkpoint's file digests."""
    if os.path.isfile(os.path.join(name_or_path, "trainer_state.json")):
        from .checkpoints import CheckpointManager

        CheckpointManager.load_trainer_state(name_or_path)
    return model_class.from_pretrained(name_or_path, **kwargs)
