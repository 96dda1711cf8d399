"""What every objective shares: special ids, masking, truncation limits, and turning examples into a batch."""
from __future__ import annotations

from collections import Counter
from typing import List, Optional, Sequence

import numpy as np

from .batch import PretrainingBatch, Row, SpecialIds, collate_rows
from .masking import MaskingConfig, mask_tokens

__all__ = ["Objective"]


class Objective:
    """A batch builder: examples in, one `PretrainingBatch` out (its loss is `criterion.masked_lm_loss`).

    Examples that cannot be used (an empty side, nothing left after truncation) are dropped and counted in
    `batch.stats`; if none is left the builder returns None.
    """

    name = "objective"
    data_kind = "monolingual"  # what its examples are: "monolingual" sentences or "parallel" pairs
    # Tokens of the rows built from an example, per token of its template (`[CLS] x [SEP]` or the pair's): what a
    # token budget must multiply by so that every objective's batch holds as many tokens.
    length_factor = 1.0

    def __init__(self, special: SpecialIds, vocab_size: int, max_length: int = 512,
                 masking: MaskingConfig = MaskingConfig(), word_starts: Optional[np.ndarray] = None):
        if max_length < 8:
            raise ValueError(f"max_length must be at least 8 tokens, got {max_length}")
        self.special = special
        self.vocab_size = vocab_size
        self.max_length = max_length
        self.masking = masking
        self.word_starts = word_starts
        self._special_array = special.as_array()

    def mask(self, tokens: np.ndarray, rng: np.random.Generator, config: Optional[MaskingConfig] = None,
             forced: bool = False):
        return mask_tokens(tokens, config or self.masking, rng, self.special.mask, self.vocab_size,
                           self._special_array, self.word_starts, forced_mask=forced)

    def rows(self, example, rng: np.random.Generator, stats: Counter) -> List[Row]:
        """The rows one example becomes (none if it is dropped; record why in `stats`)."""
        raise NotImplementedError

    def __call__(self, examples: Sequence, rng: np.random.Generator, model=None) -> Optional[PretrainingBatch]:
        stats: Counter = Counter()
        rows: List[Row] = []
        for example in examples:
            rows.extend(self.rows(example, rng, stats))
        stats["examples"] = len(examples)
        if not rows:
            return None
        return collate_rows(self.name, rows, self.special.pad, dict(stats))
