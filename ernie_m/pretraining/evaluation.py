"""Held-out evaluation during pretraining: a fixed set of held-out pairs, scored by every registered objective.

Each objective reports its own scores (`Objective.held_out_scores`): masked-token accuracy for MMLM, CAMLM accuracy
beside its unigram baseline, BTMLM's pseudo-translation diversity and chrF. A readiness gate (BTMLM's) reads them.

The held-out set is fixed (the first `max_pairs` lines of each file, one masking drawn from a fixed seed), so every
rank and every resume computes the same numbers and takes the same decision.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..objectives import Monolingual, Parallel
from .corpus import CorpusError, LineReader, ParallelFile

__all__ = ["HeldOutSet", "HeldOutTranslation", "evaluate_held_out"]

MAX_TRANSLATIONS_PER_FILE = 100


def _read_pairs(file: ParallelFile, limit: int) -> List[tuple]:
    """The first `limit` well-formed pairs of the file, read by the training data's own reader (one pass)."""
    reader, pairs = LineReader(file.path, 2), []
    for _, fields in reader:
        if reader.epoch > 0 or len(pairs) == limit:
            break
        pairs.append(fields)
    return pairs


@dataclass
class HeldOutTranslation:
    """A held-out pair seen as a translation task: `source` (the file's second side) into the first side's
    language, whose text is the reference."""

    source: Monolingual
    source_text: str
    reference: str
    target_language: int
    with_parallel_data: bool  # both languages had parallel training data


@dataclass
class HeldOutSet:
    """Tokenized held-out pairs: `parallel` for CAMLM (pairs between languages trained on parallel data),
    `monolingual` (every side of every pair) for masked-LM accuracy and BTMLM's generation, `translations` (the
    first pairs of each file) for the pseudo-translations' chrF."""

    parallel: List[Parallel]
    monolingual: List[Monolingual]
    translations: List[HeldOutTranslation] = field(default_factory=list)

    @classmethod
    def from_files(cls, files: Sequence[ParallelFile], tokenizer, language_ids: Dict[str, int],
                   parallel_languages: Optional[set] = None, max_pairs: int = 200) -> "HeldOutSet":
        parallel, monolingual, translations = [], [], []
        for file in files:
            unknown = [lang for lang in (file.source_language, file.target_language) if lang not in language_ids]
            if unknown:
                raise CorpusError(f"{file.path}: held-out language {unknown[0]!r} is not among the configured "
                                  f"languages {sorted(language_ids)}")
            pairs = _read_pairs(file, max_pairs)
            ids = tokenizer.encode_batch_ids([text for pair in pairs for text in pair])
            source, target = language_ids[file.source_language], language_ids[file.target_language]
            trained = parallel_languages is None or {file.source_language, file.target_language} <= parallel_languages
            for index in range(len(pairs)):
                a = np.asarray(ids[2 * index], dtype=np.int64)
                b = np.asarray(ids[2 * index + 1], dtype=np.int64)
                if len(a) == 0 or len(b) == 0:
                    continue
                if trained:
                    parallel.append(Parallel(a, source, b, target))
                monolingual += [Monolingual(a, source), Monolingual(b, target)]
                if index < MAX_TRANSLATIONS_PER_FILE:
                    translations.append(HeldOutTranslation(Monolingual(b, target), pairs[index][1], pairs[index][0],
                                                           source, trained))
        return cls(parallel, monolingual, translations)


def evaluate_held_out(model, held_out: HeldOutSet, objectives: Sequence, seed: int = 0, tokenizer=None
                      ) -> Dict[str, float]:
    """Every objective's `held_out_scores` (with `tokenizer`, those that read text too), computed in eval mode
    (dropout off); the model's mode is restored."""
    was_training = model.training
    model.eval()
    try:
        results = {}
        for objective in objectives:
            results.update(objective.held_out_scores(model, held_out, seed, tokenizer))
    finally:
        if was_training:
            model.train()
    return results
