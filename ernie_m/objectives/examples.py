"""What the objectives consume: tokenized sentences (ids without special tokens) with their language ids."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Monolingual", "Parallel"]


@dataclass
class Monolingual:
    tokens: np.ndarray
    language: int


@dataclass
class Parallel:
    source: np.ndarray
    source_language: int
    target: np.ndarray
    target_language: int
