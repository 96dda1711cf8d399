"""MMLM: masked LM on one monolingual sentence, full attention."""
from __future__ import annotations

from collections import Counter
from typing import Dict

import numpy as np

from .base import Objective, register
from .batch import MAIN, Row, full_attention, languages_of, positions_of, segment
from .criterion import masked_token_accuracy
from .examples import Monolingual

__all__ = ["MMLM"]


@register
class MMLM(Objective):
    name = "mmlm"
    data_kind = "monolingual"

    def held_out_scores(self, model, held_out, seed: int, tokenizer=None) -> Dict[str, float]:
        """Masked-token accuracy on every side of the held-out pairs."""
        scores = masked_token_accuracy(model, self, held_out.monolingual, np.random.default_rng([seed, 17]))
        return {"mmlm_accuracy": scores["accuracy"]}

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
