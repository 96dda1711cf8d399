"""The one batch shape every pretraining objective produces, and how rows are laid out and padded.

A row is a list of segments. A segment is `[CLS] tokens [SEP]` (first) or `[SEP] tokens [SEP]` (second), so a pair
reads `[CLS] A [SEP] [SEP] B [SEP]`, the fine-tuning template. Positions restart at 0 in every segment (XLM's
convention for translation pairs): the i-th token of a sentence and of its translation share a position.

Attention is always a per-example [seq, seq] keep-mask (1 = the query row may see the key column), so objectives
with different patterns share one training step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

__all__ = ["PretrainingBatch", "Row", "SpecialIds", "collate_rows"]

# Prediction groups: the objective's own loss, and an MMLM loss it gets for free on a context side.
MAIN, AUXILIARY = 0, 1


@dataclass(frozen=True)
class SpecialIds:
    cls: int = 0
    pad: int = 1
    sep: int = 2
    unk: int = 3
    mask: int = 250001

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "SpecialIds":
        return cls(tokenizer.cls_token_id, tokenizer.pad_token_id, tokenizer.sep_token_id, tokenizer.unk_token_id,
                   tokenizer.mask_token_id)

    def as_array(self) -> np.ndarray:
        return np.array([self.cls, self.pad, self.sep, self.unk, self.mask], dtype=np.int64)


@dataclass
class Row:
    """One example before padding: ids, positions, languages, a keep-mask and what to predict."""

    input_ids: np.ndarray
    position_ids: np.ndarray
    language_ids: np.ndarray
    attention: np.ndarray  # [len, len] bool
    predict_positions: np.ndarray  # indices into this row
    predict_labels: np.ndarray
    predict_groups: np.ndarray


@dataclass
class PretrainingBatch:
    """Numpy arrays for one step. `masked_positions` index the flattened [batch * seq] tokens."""

    objective: str
    input_ids: np.ndarray  # [batch, seq] int64
    position_ids: np.ndarray  # [batch, seq] int64
    language_ids: np.ndarray  # [batch, seq] int64
    attention_mask: np.ndarray  # [batch, seq, seq] int8 keep-mask
    masked_positions: np.ndarray  # [n] int64
    masked_labels: np.ndarray  # [n] int64
    masked_groups: np.ndarray  # [n] int64: MAIN or AUXILIARY
    real_tokens: int = 0  # tokens that are not padding
    stats: Dict[str, int] = field(default_factory=dict)


def segment(tokens: np.ndarray, first: bool, special: SpecialIds) -> np.ndarray:
    opener = special.cls if first else special.sep
    return np.concatenate([[opener], tokens, [special.sep]]).astype(np.int64)


def collate_rows(objective: str, rows: List[Row], pad_id: int, stats: Optional[Dict[str, int]] = None,
                 pad_to_multiple_of: int = 8) -> PretrainingBatch:
    """Pad rows to a common length. Padding rows see only themselves, so no softmax row is empty."""
    seq_len = max(len(row.input_ids) for row in rows)
    seq_len = -(-seq_len // pad_to_multiple_of) * pad_to_multiple_of
    batch = len(rows)
    input_ids = np.full((batch, seq_len), pad_id, dtype=np.int64)
    position_ids = np.zeros((batch, seq_len), dtype=np.int64)
    language_ids = np.zeros((batch, seq_len), dtype=np.int64)
    attention = np.zeros((batch, seq_len, seq_len), dtype=np.int8)
    attention[:, np.arange(seq_len), np.arange(seq_len)] = 1
    positions, labels, groups = [], [], []
    for b, row in enumerate(rows):
        n = len(row.input_ids)
        input_ids[b, :n] = row.input_ids
        position_ids[b, :n] = row.position_ids
        language_ids[b, :n] = row.language_ids
        language_ids[b, n:] = row.language_ids[0]
        attention[b, :n, :n] = row.attention
        positions.append(row.predict_positions + b * seq_len)
        labels.append(row.predict_labels)
        groups.append(row.predict_groups)
    return PretrainingBatch(
        objective=objective,
        input_ids=input_ids,
        position_ids=position_ids,
        language_ids=language_ids,
        attention_mask=attention,
        masked_positions=np.concatenate(positions).astype(np.int64),
        masked_labels=np.concatenate(labels).astype(np.int64),
        masked_groups=np.concatenate(groups).astype(np.int64),
        real_tokens=sum(len(row.input_ids) for row in rows),
        stats=dict(stats or {}),
    )


# ---- row layouts shared by the objectives ----------------------------------------------------------------------

def positions_of(segments) -> np.ndarray:
    return np.concatenate([np.arange(len(s), dtype=np.int64) for s in segments])


def languages_of(segments, languages) -> np.ndarray:
    return np.concatenate([np.full(len(s), lang, dtype=np.int64) for s, lang in zip(segments, languages)])


def full_attention(length: int) -> np.ndarray:
    return np.ones((length, length), dtype=bool)


def cross_attention(first_len: int, second_len: int, predicted: int) -> np.ndarray:
    """CAMLM's leak-free layout over two segments.

    The context segment sees only itself. Each token of the predicted segment sees the context and itself, never
    its neighbours, so what is predicted there depends on the context and on its own input (a `[MASK]` and its
    position) alone, at every depth.
    """
    total = first_len + second_len
    bounds = [(0, first_len), (first_len, total)]
    (p_start, p_end), (c_start, c_end) = bounds[predicted], bounds[1 - predicted]
    attention = np.zeros((total, total), dtype=bool)
    attention[c_start:c_end, c_start:c_end] = True
    attention[p_start:p_end, c_start:c_end] = True
    attention[np.arange(p_start, p_end), np.arange(p_start, p_end)] = True
    return attention


def truncate_pair(a: np.ndarray, b: np.ndarray, max_length: int):
    """Trim the longer side from its end until `[CLS] a [SEP] [SEP] b [SEP]` fits in `max_length`."""
    budget = max_length - 4
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if len(a) + len(b) <= budget:
        return a, b
    # Trimming the longer side one token at a time (a first on ties) ends with the shorter side whole if it fits
    # in half the budget, else with a = budget // 2: computed directly, as a web-text line can be huge.
    keep_a = min(len(a), max(budget - len(b), budget // 2))
    return a[:keep_a], b[: budget - keep_a]
