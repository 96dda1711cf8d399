"""TLM: masked LM over a translation pair with full attention (each side may look at both)."""
from __future__ import annotations

from collections import Counter

import numpy as np

from .base import Objective, register
from .batch import MAIN, Row, full_attention, languages_of, positions_of, segment, truncate_pair
from .examples import Parallel

__all__ = ["TLM"]


@register
class TLM(Objective):
    name = "tlm"
    data_kind = "parallel"

    def rows(self, example: Parallel, rng: np.random.Generator, stats: Counter):
        source, target = truncate_pair(example.source, example.target, self.max_length)
        if len(source) == 0 or len(target) == 0:
            stats["dropped_empty"] += 1
            return []
        source, source_chosen, source_labels = self.mask(source, rng)
        target, target_chosen, target_labels = self.mask(target, rng)
        first, second = segment(source, True, self.special), segment(target, False, self.special)
        chosen = np.concatenate([source_chosen + 1, target_chosen + len(first) + 1])
        return [Row(
            input_ids=np.concatenate([first, second]),
            position_ids=positions_of([first, second]),
            language_ids=languages_of([first, second], [example.source_language, example.target_language]),
            attention=full_attention(len(first) + len(second)),
            predict_positions=chosen,
            predict_labels=np.concatenate([source_labels, target_labels]),
            predict_groups=np.full(len(chosen), MAIN),
        )]
