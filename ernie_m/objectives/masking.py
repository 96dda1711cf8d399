"""Choosing tokens to predict and corrupting them (BERT's 80/10/10), optionally by whole words."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

__all__ = ["MaskingConfig", "mask_tokens", "masking_option"]


@dataclass(frozen=True)
class MaskingConfig:
    """How a side is masked.

    Args:
        mask_prob: share of a side's tokens to predict (at least one is always chosen).
        replace_with_mask / replace_with_random: of the chosen tokens, the share shown as `[MASK]` and as a random
            token; the rest are shown unchanged.
        whole_word: choose whole words (a word starts at a token beginning with "▁"); needs `word_starts`.
    """

    mask_prob: float = 0.15
    replace_with_mask: float = 0.8
    replace_with_random: float = 0.1
    whole_word: bool = False

    def __post_init__(self):
        if not 0.0 < self.mask_prob <= 1.0:
            raise ValueError(f"mask_prob: must be in (0, 1], got {self.mask_prob}")
        if self.replace_with_mask < 0 or self.replace_with_random < 0 or (
            self.replace_with_mask + self.replace_with_random > 1.0 + 1e-9
        ):
            raise ValueError("replace_with_mask and replace_with_random must be >= 0 and add up to at most 1")


def masking_option(path: str, mask_prob: float) -> MaskingConfig:
    """The masking an objective's `mask_prob` option asks for; a value out of range raises ValueError naming it
    as `<path>.mask_prob`."""
    try:
        return MaskingConfig(mask_prob=mask_prob)
    except ValueError as error:
        raise ValueError(f"{path}.{error}") from None


def _choose(tokens: np.ndarray, config: MaskingConfig, rng: np.random.Generator,
            word_starts: Optional[np.ndarray]) -> np.ndarray:
    n = len(tokens)
    count = max(1, int(round(config.mask_prob * n)))
    if not config.whole_word:
        return np.sort(rng.choice(n, size=count, replace=False))
    if word_starts is None:
        raise ValueError("whole-word masking needs word_starts (a bool per vocabulary id)")
    starts = word_starts[tokens].copy()
    starts[0] = True
    word_of_token = np.cumsum(starts) - 1
    chosen = np.zeros(n, dtype=bool)
    for word in rng.permutation(word_of_token[-1] + 1):
        if chosen.sum() >= count:
            break
        chosen |= word_of_token == word
    return np.flatnonzero(chosen)


def _among(ids: np.ndarray, few: np.ndarray) -> np.ndarray:
    """np.isin for a handful of values, without np.isin's sorting (which dominated a batch's masking time)."""
    return (ids[:, None] == few[None, :]).any(axis=1)


def mask_tokens(
    tokens: np.ndarray,
    config: MaskingConfig,
    rng: np.random.Generator,
    mask_id: int,
    vocab_size: int,
    special_ids: np.ndarray,
    word_starts: Optional[np.ndarray] = None,
    forced_mask: bool = False,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corrupt a side (ids without special tokens).

    Returns (corrupted ids, indices of the chosen tokens, their original ids). With `forced_mask`, every chosen
    token becomes `[MASK]` (CAMLM's predicted side: the token itself must not be visible).
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    chosen = _choose(tokens, config, rng, word_starts)
    corrupted = tokens.copy()
    labels = tokens[chosen]
    if forced_mask:
        corrupted[chosen] = mask_id
        return corrupted, chosen, labels
    draw = rng.random(len(chosen))
    to_mask = draw < config.replace_with_mask
    to_random = (draw >= config.replace_with_mask) & (draw < config.replace_with_mask + config.replace_with_random)
    corrupted[chosen[to_mask]] = mask_id
    random_ids = rng.integers(0, vocab_size, size=int(to_random.sum()))
    bad = _among(random_ids, special_ids)
    while bad.any():  # never show a special token as a "random word"
        random_ids[bad] = rng.integers(0, vocab_size, size=int(bad.sum()))
        bad = _among(random_ids, special_ids)
    corrupted[chosen[to_random]] = random_ids
    return corrupted, chosen, labels
