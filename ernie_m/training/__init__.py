"""What pretraining and fine-tuning share: the optimizer and its schedule, mixed precision and the guarded optimizer
step, atomic writes, and the run log. Each loop keeps only what is its own (data, objectives, evaluation)."""
from ..atomic import atomic_directory, atomic_file
from .log import RunLog
from .optim import build_optimizer, layer_scale
from .precision import (
    all_ranks_agree, amp_dtype, apply_update, autocast, grad_scaler, gradients_finite, step_finite, weights_finite,
)

__all__ = ["atomic_directory", "atomic_file", "RunLog", "build_optimizer", "layer_scale", "amp_dtype", "autocast",
           "grad_scaler", "apply_update", "all_ranks_agree", "gradients_finite", "step_finite", "weights_finite"]
