"""Mixed precision (a GPU path) and the optimizer step that skips non-finite updates on every rank together."""
from __future__ import annotations

import math
from typing import Optional

import paddle

# The `amp` settings every configuration accepts: a half-precision dtype by either name, or off.
AMP_DTYPES = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16"}
AMP_OFF = (None, False, "", "none", "fp32")


def is_amp_setting(value) -> bool:
    return value in AMP_OFF or value in AMP_DTYPES


def amp_requested(requested) -> bool:
    """Does the setting ask for mixed precision (whether or not this device can give it)?"""
    return requested not in AMP_OFF


def amp_dtype(requested) -> Optional[str]:
    """The autocast dtype for a requested bf16 / fp16, or None: off when not asked for, and on a CPU (which has no
    half-precision kernels worth using)."""
    if not amp_requested(requested):
        return None
    if not is_amp_setting(requested):
        raise ValueError(f"amp must be bf16, fp16 or none, got {requested!r}")
    if not paddle.is_compiled_with_cuda() or paddle.device.get_device().startswith("cpu"):
        return None
    return AMP_DTYPES[requested]


def autocast(dtype: Optional[str]):
    return paddle.amp.auto_cast(enable=dtype is not None, dtype=dtype or "float16", level="O1")


def grad_scaler(dtype: Optional[str]):
    """A loss scaler for float16 (bfloat16 has float32's range and needs none)."""
    return paddle.amp.GradScaler(init_loss_scaling=2.0**15) if dtype == "float16" else None


def gradients_finite(parameters) -> bool:
    """Are all gradients finite? A finite loss can still have NaN gradients (a square root at 0, an overflow in
    backward), and one such update ruins every weight. One device synchronisation for all parameters."""
    checks = [paddle.isfinite(p.grad).all() for p in parameters if p.grad is not None]
    return not checks or bool(paddle.stack(checks).all())


def step_finite(loss: float, parameters, world: int, check_gradients: bool = True) -> bool:
    """Is the step's loss, and (with `check_gradients`) every gradient, finite on every rank? One rank's NaN reaches
    all of them through the gradient all-reduce, so all must skip the update together: one all-reduced flag."""
    finite = math.isfinite(loss) and (not check_gradients or gradients_finite(parameters))
    return all_ranks_agree(finite, world)


def weights_finite(model) -> bool:
    """Are all of the model's parameters finite (what a checkpoint may be written from)?"""
    return bool(paddle.stack([paddle.isfinite(p).all() for p in model.parameters()]).all())


def all_ranks_agree(finite: bool, world: int) -> bool:
    """True only when `finite` is true on every rank."""
    if world == 1:
        return finite
    flag = paddle.to_tensor([0 if finite else 1], dtype="int32")
    paddle.distributed.all_reduce(flag, op=paddle.distributed.ReduceOp.MAX)
    return int(flag.item()) == 0


def apply_update(optimizer, scaler=None, finite: bool = True) -> None:
    """The optimizer step (through the scaler, which itself skips fp16 overflows), or none when the loss was not
    finite; the gradients are cleared either way."""
    if finite:
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
    optimizer.clear_grad()


def nonfinite_stop_message(streak: int, last_step: int, limit_setting: str, kept: str, rate_setting: str) -> str:
    """Why a run stopped after `streak` skipped updates ending at `last_step` (counted from 1), and what is kept: the
    one wording both loops use."""
    return (f"{streak} non-finite steps in a row (loss or gradients; steps {last_step - streak + 1}-{last_step}; "
            f"{limit_setting}): stopped. {kept}; lower {rate_setting} or check the data before resuming from it.")
