"""The loss every objective shares: cross-entropy at the predicted positions, per prediction group; and the
accuracy of those predictions on held-out examples, beside the unigram baseline."""
from __future__ import annotations

from collections import Counter
from typing import Dict, List, Tuple

import numpy as np
import paddle

from .. import kernels
from .batch import AUXILIARY, MAIN, PretrainingBatch

__all__ = ["model_inputs", "masked_lm_loss", "masked_token_accuracy"]


def model_inputs(model, batch: PretrainingBatch) -> Dict[str, paddle.Tensor]:
    """Tensors for `ErnieMForPretraining.forward`; language ids only for models with a language embedding."""
    config = getattr(model, "_layers", model).config  # through a DataParallel wrapper too
    inputs = {
        "input_ids": paddle.to_tensor(batch.input_ids),
        "position_ids": paddle.to_tensor(batch.position_ids),
        "attention_mask": paddle.to_tensor(batch.attention_mask.astype(bool))[:, None],
        "masked_positions": paddle.to_tensor(batch.masked_positions),
    }
    if config.num_languages > 0:
        inputs["language_ids"] = paddle.to_tensor(batch.language_ids)
    return inputs


def masked_lm_loss(model, batch: PretrainingBatch, auxiliary_weight: float = 1.0
                   ) -> Tuple[paddle.Tensor, Dict[str, float]]:
    """Mean cross-entropy of the objective's predictions, plus `auxiliary_weight` x that of the auxiliary MMLM
    predictions (CAMLM's context side) when there are any. Metrics: loss and accuracy of each group."""
    logits = model(**model_inputs(model, batch))
    labels = paddle.to_tensor(batch.masked_labels)
    per_token, predicted = kernels.token_cross_entropy(logits, labels)
    correct = (predicted == labels).astype("float32")
    total = None
    metrics: Dict[str, float] = {}
    for group, suffix, weight in ((MAIN, "", 1.0), (AUXILIARY, "_context_mmlm", auxiliary_weight)):
        index = np.flatnonzero(batch.masked_groups == group)
        if len(index) == 0:
            continue
        index_tensor = paddle.to_tensor(index)
        group_loss = paddle.gather(per_token, index_tensor).mean()
        metrics[f"{batch.objective}{suffix}_loss"] = float(group_loss)
        metrics[f"{batch.objective}{suffix}_accuracy"] = float(paddle.gather(correct, index_tensor).mean())
        total = group_loss * weight if total is None else total + group_loss * weight
    return total, metrics


def masked_token_accuracy(model, objective, examples, rng: np.random.Generator, batch_size: int = 64
                          ) -> Dict[str, float]:
    """Accuracy on the objective's main predictions over `examples`, and the unigram baseline on the same
    predictions (always answering the most frequent label); `rng` draws the masking, so a fixed seed fixes it."""
    correct = total = 0.0
    labels: List[np.ndarray] = []
    with paddle.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = objective(examples[start:start + batch_size], rng, model=model)
            if batch is None:
                continue
            main = batch.masked_groups == MAIN
            _, metrics = masked_lm_loss(model, batch)
            count = int(main.sum())
            correct += metrics[f"{objective.name}_accuracy"] * count
            total += count
            labels.append(batch.masked_labels[main])
    if not total:
        return {"accuracy": float("nan"), "unigram_accuracy": float("nan")}
    counts = Counter(np.concatenate(labels).tolist())
    return {"accuracy": correct / total, "unigram_accuracy": counts.most_common(1)[0][1] / total}
