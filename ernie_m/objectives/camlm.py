"""CAMLM: restore masked tokens of one side of a translation pair from the other side only.

Layout (`batch.cross_attention`): the predicted side x is fully masked at the chosen tokens; each x token attends
to the context side y and to itself; y attends only to y. The loss at a masked x token therefore depends on y and
on x's mask symbols and positions, nothing else of x, at every depth (tests/test_objectives.py proves it with
gradients). A symmetric mask (x sees y, y sees x) would leak x's context back through y from the second layer on.

The context side may carry its own masks (`context_masking`): it attends only to itself, so those predictions are
an MMLM loss on y, reported as the auxiliary group.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from .base import Objective, ObjectiveOptions, register
from .batch import AUXILIARY, MAIN, Row, cross_attention, languages_of, positions_of, segment, truncate_pair
from .criterion import masked_token_accuracy
from .examples import Parallel
from .masking import MaskingConfig, masking_option

__all__ = ["CAMLM", "CAMLMOptions", "cross_attention_row"]


@dataclass
class CAMLMOptions(ObjectiveOptions):
    """`camlm:` in a pretraining configuration."""

    mask_prob: float = MaskingConfig.mask_prob  # of the predicted side

    def validate(self, path: str) -> None:
        masking_option(path, self.mask_prob)


def cross_attention_row(first_tokens, first_language, second_tokens, second_language, predicted: int,
                        predicted_chosen, predicted_labels, special, context_chosen=None, context_labels=None) -> Row:
    """A `[CLS] a [SEP] [SEP] b [SEP]` row in the CAMLM layout; `predicted` is 0 (a) or 1 (b)."""
    first, second = segment(first_tokens, True, special), segment(second_tokens, False, special)
    offsets = (1, len(first) + 1)
    positions = [np.asarray(predicted_chosen) + offsets[predicted]]
    labels = [np.asarray(predicted_labels)]
    groups = [np.full(len(predicted_chosen), MAIN)]
    if context_chosen is not None and len(context_chosen):
        positions.append(np.asarray(context_chosen) + offsets[1 - predicted])
        labels.append(np.asarray(context_labels))
        groups.append(np.full(len(context_chosen), AUXILIARY))
    return Row(
        input_ids=np.concatenate([first, second]),
        position_ids=positions_of([first, second]),
        language_ids=languages_of([first, second], [first_language, second_language]),
        attention=cross_attention(len(first), len(second), predicted),
        predict_positions=np.concatenate(positions),
        predict_labels=np.concatenate(labels),
        predict_groups=np.concatenate(groups),
    )


@register
class CAMLM(Objective):
    """Args beyond `Objective`'s:
        context_masking: masking of the context side for the free MMLM loss (None: context left whole).
        both_directions: emit each pair twice (source predicted, then target predicted) instead of picking one
            direction at random per example.
    """

    name = "camlm"
    data_kind = "parallel"
    Options = CAMLMOptions

    def __init__(self, *args, context_masking: Optional[MaskingConfig] = MaskingConfig(),
                 both_directions: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.context_masking = context_masking
        self.both_directions = both_directions
        self.length_factor = 2.0 if both_directions else 1.0

    @classmethod
    def from_options(cls, options: CAMLMOptions, context) -> "CAMLM":
        return cls(context.special, context.vocab_size, context.max_length,
                   masking=masking_option(cls.name, options.mask_prob))

    def held_out_scores(self, model, held_out, seed: int, tokenizer=None) -> Dict[str, float]:
        """Accuracy on the held-out pairs between languages with parallel training data (the context side left
        whole), and the unigram accuracy of the same masked tokens: what a model without alignment gets."""
        if not held_out.parallel:
            return {}
        whole_context = CAMLM(self.special, self.vocab_size, self.max_length, masking=self.masking,
                              word_starts=self.word_starts, context_masking=None)
        scores = masked_token_accuracy(model, whole_context, held_out.parallel, np.random.default_rng([seed, 17]))
        return {"camlm_accuracy": scores["accuracy"], "camlm_unigram_accuracy": scores["unigram_accuracy"]}

    def rows(self, example: Parallel, rng: np.random.Generator, stats: Counter):
        source, target = truncate_pair(example.source, example.target, self.max_length)
        if len(source) == 0 or len(target) == 0:
            stats["dropped_empty"] += 1
            return []
        directions = (0, 1) if self.both_directions else (int(rng.integers(2)),)
        rows = []
        for predicted in directions:
            sides = [source, target]
            sides[predicted], chosen, labels = self.mask(sides[predicted], rng, forced=True)
            context_chosen = context_labels = None
            if self.context_masking is not None:
                sides[1 - predicted], context_chosen, context_labels = self.mask(
                    sides[1 - predicted], rng, self.context_masking
                )
            rows.append(cross_attention_row(
                sides[0], example.source_language, sides[1], example.target_language, predicted, chosen, labels,
                self.special, context_chosen, context_labels,
            ))
        return rows
