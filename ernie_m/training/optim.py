"""AdamW with linear warm-up and decay, the usual weight-decay exclusions, and layer-wise learning-rate decay."""
from __future__ import annotations

import re
from typing import Dict, List, Optional

import paddle

_LAYER = re.compile(r"(?:^|\.)encoder\.layers\.(\d+)\.")


def layer_scale(name: str, num_layers: int, decay: float) -> float:
    """The learning-rate multiplier of a parameter under layer-wise decay, as the original ERNIE-M fine-tuning code
    has it (DESIGN §6): encoder layer i (from 0) of L gets decay^(L - i), so even the top layer is decayed once; the
    embeddings decay^(L + 1); everything above the encoder (pooler, heads) the full rate."""
    match = _LAYER.search(name)
    if match:
        return decay ** (num_layers - int(match.group(1)))
    if ".embeddings." in f".{name}":
        return decay ** (num_layers + 1)
    return 1.0


def build_optimizer(model, learning_rate: float, total_steps: int, warmup: float, weight_decay: float,
                    layer_decay: float = 1.0, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-6,
                    max_grad_norm: Optional[float] = None):
    """(optimizer, schedule). `warmup` is a fraction of `total_steps` below 1, else a step count. Biases and norm
    parameters get no weight decay."""
    from paddlenlp.transformers import LinearDecayWithWarmup

    schedule = LinearDecayWithWarmup(learning_rate, total_steps, warmup)
    trainable = [(name, p) for name, p in model.named_parameters() if not p.stop_gradient]
    if layer_decay == 1.0:
        parameters = [p for _, p in trainable]
    else:
        num_layers = model.config.num_hidden_layers
        groups: Dict[float, List] = {}
        for name, parameter in trainable:
            groups.setdefault(layer_scale(name, num_layers, layer_decay), []).append(parameter)
        # Paddle multiplies the global learning rate by a group's "learning_rate" (CPU has no lr_ratio).
        parameters = [{"params": params, "learning_rate": scale} for scale, params in sorted(groups.items())]
    decay = {p.name for n, p in trainable if not ("bias" in n or "norm" in n)}
    optimizer = paddle.optimizer.AdamW(
        learning_rate=schedule, parameters=parameters, beta1=beta1, beta2=beta2, epsilon=epsilon,
        weight_decay=weight_decay, apply_decay_param_fun=lambda name: name in decay,
        grad_clip=paddle.nn.ClipGradByGlobalNorm(max_grad_norm) if max_grad_norm else None,
    )
    return optimizer, schedule
