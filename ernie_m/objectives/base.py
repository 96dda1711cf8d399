"""What every objective shares: special ids, masking, truncation limits, turning examples into a batch, and the
registry a pretraining configuration names objectives from.

An objective is one module: its class (registered with `@register`), its options dataclass (the `<name>:` section
of a pretraining configuration, with its defaults and ranges), how it is built from them (`from_options`), and,
optionally, the held-out scores it reports and a readiness gate it waits for. The configuration, the trainer and
the held-out evaluation reach objectives only through `REGISTRY`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, is_dataclass
from typing import Callable, Dict, List, Optional, Sequence, Set, Type

import numpy as np

from .batch import PretrainingBatch, Row, SpecialIds, collate_rows
from .masking import MaskingConfig, mask_tokens

__all__ = ["Objective", "ObjectiveOptions", "ObjectiveContext", "REGISTRY", "register"]

DATA_KINDS = ("monolingual", "parallel")


@dataclass
class ObjectiveOptions:
    """An objective's section of the pretraining configuration. Subclasses add fields with their defaults;
    `validate` raises ValueError naming a value out of range as `<path>.<field>`."""

    def validate(self, path: str) -> None:
        pass


@dataclass(frozen=True)
class ObjectiveContext:
    """What a run knows that an objective may need to be built: the tokenizer's ids, the stage's length, the
    configured languages (code -> id) and, read only when asked, the languages of the parallel training data."""

    special: SpecialIds
    vocab_size: int
    max_length: int
    language_ids: Dict[str, int]
    parallel_languages: Callable[[], Set[str]] = set


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

    Options: Type[ObjectiveOptions] = ObjectiveOptions

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

    @classmethod
    def from_options(cls, options: ObjectiveOptions, context: ObjectiveContext) -> "Objective":
        """The objective a run trains with; raises ValueError naming the option that cannot be used."""
        return cls(context.special, context.vocab_size, context.max_length)

    @classmethod
    def gate(cls, options: ObjectiveOptions):
        """A readiness gate on held-out scores the objective waits for before it runs (`enabled`, `ready(scores)`,
        `options`: the option names that set it), or None: it runs from the first step."""
        return None

    def held_out_scores(self, model, held_out, seed: int, tokenizer=None) -> Dict[str, float]:
        """Scores on a held-out set (`ernie_m.pretraining.evaluation.HeldOutSet`), named after the objective;
        none by default."""
        return {}

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


# Objective name -> class: the names a pretraining stage and configuration may use.
REGISTRY: Dict[str, Type[Objective]] = {}


def register(objective: Type[Objective]) -> Type[Objective]:
    """Make an objective available to pretraining configurations under its `name` (usable as a class decorator)."""
    if objective.name in REGISTRY:
        raise ValueError(f"objective {objective.name!r} is already registered ({REGISTRY[objective.name].__name__})")
    if objective.data_kind not in DATA_KINDS:
        raise ValueError(f"objective {objective.name!r}: data_kind must be one of {DATA_KINDS}, got "
                         f"{objective.data_kind!r}")
    if not (isinstance(objective.Options, type) and issubclass(objective.Options, ObjectiveOptions)
            and is_dataclass(objective.Options)):
        raise ValueError(f"objective {objective.name!r}: Options must be an ObjectiveOptions dataclass")
    REGISTRY[objective.name] = objective
    return objective
