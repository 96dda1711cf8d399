"""Which objective a step runs: the same on every rank, from the step number, the stage and the seed alone."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..objectives import REGISTRY

__all__ = ["Stage", "stage_at", "objective_at"]

# Per rank and micro-step. Far above any real recipe, low enough that a typo fails here, not in the allocator.
MAX_BATCH_SIZE = 65_536
MAX_BATCH_TOKENS = 1 << 24
MAX_LENGTH = 1 << 16


@dataclass
class Stage:
    """A stretch of training with its own objective mix (weights need not sum to 1) and batch shape."""

    name: str
    steps: int
    objectives: Dict[str, float] = field(default_factory=dict)
    max_length: int = 128
    batch_size: int = 16  # examples per rank and micro-step (the most, when batch_tokens is set)
    batch_tokens: Optional[int] = None  # or a budget of padded tokens per batch
    budget: str = "padded"  # what batch_tokens counts: "padded" tokens, or the rows' "real" tokens

    def __post_init__(self):
        if self.steps <= 0:
            raise ValueError(f"stage {self.name!r}: steps must be positive, got {self.steps}")
        unknown = sorted(set(self.objectives) - set(REGISTRY))
        if unknown:
            raise ValueError(f"stage {self.name!r}: unknown objectives {unknown}; known: {list(REGISTRY)}")
        if not self.objectives or any(w < 0 for w in self.objectives.values()) or not sum(self.objectives.values()):
            raise ValueError(f"stage {self.name!r}: objective weights must be >= 0 with a positive sum")
        if self.budget not in ("padded", "real"):
            raise ValueError(f"stage {self.name!r}: budget must be 'padded' or 'real', got {self.budget!r}")
        if self.batch_size <= 0 or (self.batch_tokens is not None and self.batch_tokens < self.max_length):
            raise ValueError(f"stage {self.name!r}: batch_size must be positive and batch_tokens, if set, at least "
                             f"max_length ({self.max_length})")
        if self.batch_size > MAX_BATCH_SIZE or (self.batch_tokens or 0) > MAX_BATCH_TOKENS or \
                not 8 <= self.max_length <= MAX_LENGTH:
            raise ValueError(f"stage {self.name!r}: batch_size must be at most {MAX_BATCH_SIZE}, batch_tokens at "
                             f"most {MAX_BATCH_TOKENS} and max_length in [8, {MAX_LENGTH}] (examples per rank and "
                             f"micro-step; a pool holds several batches, so larger ones exhaust memory first)")


def stage_at(stages: List[Stage], step: int) -> Tuple[int, Stage]:
    """The stage that step (0-based) falls in; past the last stage, the last one continues."""
    start = 0
    for index, stage in enumerate(stages):
        if step < start + stage.steps:
            return index, stage
        start += stage.steps
    return len(stages) - 1, stages[-1]


def objective_at(stage: Stage, step: int, seed: int, exclude: Tuple[str, ...] = ()) -> str:
    """Draw the step's objective with the stage's weights from a generator seeded by (seed, step); `exclude`
    redistributes those objectives' weight over the others (BTMLM before it is ready)."""
    names = sorted(name for name, weight in stage.objectives.items() if weight > 0 and name not in exclude)
    if not names:
        raise ValueError(f"stage {stage.name!r}: no objective left once {list(exclude)} are set aside")
    weights = np.array([stage.objectives[name] for name in names], dtype=np.float64)
    rng = np.random.default_rng([seed, step, 7919])
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]
