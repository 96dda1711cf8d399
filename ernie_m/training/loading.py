"""Loading a checkpoint to train from, strictly: PaddleNLP's `from_pretrained` only warns when encoder weights are
missing and leaves them random, which would train on from noise without anyone noticing."""
from __future__ import annotations

import os

from ..weights import WEIGHT_FILES, find_weight_file, load_state_dict

# New by design when absent from a checkpoint: the language embedding starts at zero (DESIGN §4).
_MAY_BE_NEW = (".embeddings.language_embeddings.",)


def from_pretrained_for_training(model_class, name_or_path: str, **kwargs):
    """`model_class.from_pretrained(...)`, refusing a local checkpoint that lacks any of the encoder's weights (a
    task head is new when fine-tuning, and checked by nothing here). Released names load as PaddleNLP loads them."""
    if os.path.isfile(os.path.join(name_or_path, "trainer_state.json")):  # a training checkpoint: its digests
        from .checkpoints import CheckpointManager

        CheckpointManager.load_trainer_state(name_or_path)
    model = model_class.from_pretrained(name_or_path, **kwargs)
    if not os.path.isdir(name_or_path):
        return model
    path = find_weight_file(name_or_path)
    if path is None:
        raise ValueError(f"{name_or_path}: no weight file ({' or '.join(WEIGHT_FILES)})")
    prefix = model.base_model_prefix + "."
    saved = {key if key.startswith(prefix) else prefix + key for key in load_state_dict(path)}
    encoder = [key if key.startswith(prefix) else prefix + key for key in model.state_dict()
               if key.startswith(prefix) or not hasattr(model, model.base_model_prefix)]
    missing = [key for key in encoder if key not in saved and not any(part in f".{key}" for part in _MAY_BE_NEW)]
    if missing:
        raise ValueError(f"{path}: missing key {missing[0]!r}" + (f" (and {len(missing) - 1} more)"
                                                                  if len(missing) > 1 else "")
                         + "; the encoder would start from random weights")
    return model
