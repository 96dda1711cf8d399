"""MMLM: masked LM on one monolingual sentence, full attention."""
from __future__ import annotations

from collections import Counter

import numpy as np

from .base import Objective
from .batch import MAIN, Row, full_attention, languages_of, positions_of, segment
from .examples import Monolingual

__all__ = ["MMLM"]


class MMLM(Objective):
    name = "mmlm"
    data_kind = "monolingual"

    def rows(self, example: Monolingual, rng: np.random.Generator, stats: Counter):
        tokens = np.asarray(example.tokens, dtype=np.int64)[: self.max_length - 2]
        if len(tokens) == 0:
            stats["dropped_empty"] += 1
            return []
        corrupted, chosen, labels = self.mask(tokens, rng)
        seg = segment(corrupted, True, self.special)
        return [Row(
            input_ids=seg,
            position_ids=positions_of([seg]),
            language_ids=languages_of([seg], [example.language]),
            attention=full_attention(len(seg)),
            predict_positions=chosen + 1,
            predict_labels=labels,
            predict_groups=np.full(len(chosen), MAIN),
        )]
