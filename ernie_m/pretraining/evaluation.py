"""Held-out evaluation during pretraining, and the readiness gate BTMLM waits for.

Back-translation needs some alignment to start from: a model that cannot yet translate produces degenerate
pseudo-translations ("A de de de"), and BTMLM then trains on them. So a BTMLM stage may wait until held-out
evidence says the model translates (`BTMLMGate`):

- CAMLM accuracy on held-out pairs clearly above the *unigram* accuracy of the same masked tokens (always
  predicting the most frequent one): what a model gets without any alignment, which is where an MMLM-only model sits;
- pseudo-translations that are not degenerate: distinct tokens per generated token above a threshold.

How good the pseudo-translations are is measured too, whether or not a gate uses it: each held-out pair's non-pivot
side is back-translated into the pivot's language in BTMLM's own generation pass, and the result is scored against
the real translation with chrF (sacrebleu), beside the chrF of the untranslated source (what shared words alone
score). The pairs of languages without parallel training data are the ones BTMLM exists for.

The held-out set is fixed (the first `max_pairs` lines of each file, one masking drawn from a fixed seed), so every
rank and every resume computes the same numbers and takes the same decision.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..objectives import BTMLM, CAMLM, MMLM, Monolingual, Parallel, SpecialIds, masked_lm_loss
from .corpus import CorpusError, LineReader, ParallelFile

__all__ = ["HeldOutSet", "HeldOutTranslation", "BTMLMGate", "evaluate_held_out", "masked_token_accuracy",
           "pseudo_translation_quality"]

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


def masked_token_accuracy(model, objective, examples, rng: np.random.Generator, batch_size: int = 64
                          ) -> Dict[str, float]:
    """Accuracy on the objective's main predictions over `examples`, and the unigram baseline on the same
    predictions (always answering the most frequent label); `rng` draws the masking, so a fixed seed fixes it."""
    import paddle

    correct = total = 0.0
    labels: List[np.ndarray] = []
    with paddle.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = objective(examples[start:start + batch_size], rng, model=model)
            if batch is None:
                continue
            main = batch.masked_groups == 0
            _, metrics = masked_lm_loss(model, batch)
            count = int(main.sum())
            correct += metrics[f"{objective.name}_accuracy"] * count
            total += count
            labels.append(batch.masked_labels[main])
    if not total:
        return {"accuracy": float("nan"), "unigram_accuracy": float("nan")}
    counts = Counter(np.concatenate(labels).tolist())
    return {"accuracy": correct / total, "unigram_accuracy": counts.most_common(1)[0][1] / total}


def evaluate_held_out(model, held_out: HeldOutSet, special: SpecialIds, vocab_size: int, max_length: int,
                      camlm_mask_prob: float = 0.15, btmlm: Optional[BTMLM] = None, generation_sentences: int = 100,
                      seed: int = 0, tokenizer=None) -> Dict[str, float]:
    """{mmlm_accuracy, camlm_accuracy, camlm_unigram_accuracy[, btmlm_distinct_share][, chrF of the
    pseudo-translations (with `tokenizer` to read them)]}, computed in eval mode (dropout off); the model's mode is
    restored."""
    from ..objectives import MaskingConfig

    was_training = model.training
    model.eval()
    try:
        results = {}
        mmlm = masked_token_accuracy(model, MMLM(special, vocab_size, max_length), held_out.monolingual,
                                     np.random.default_rng([seed, 17]))
        results["mmlm_accuracy"] = mmlm["accuracy"]
        if held_out.parallel:
            camlm = CAMLM(special, vocab_size, max_length, masking=MaskingConfig(mask_prob=camlm_mask_prob),
                          context_masking=None)
            scores = masked_token_accuracy(model, camlm, held_out.parallel, np.random.default_rng([seed, 17]))
            results["camlm_accuracy"] = scores["accuracy"]
            results["camlm_unigram_accuracy"] = scores["unigram_accuracy"]
        if btmlm is not None:
            results.update(generation_diversity(model, btmlm, held_out.monolingual[:generation_sentences], seed))
            if tokenizer is not None and held_out.translations:
                results.update(pseudo_translation_quality(model, btmlm, tokenizer, held_out.translations, seed))
    finally:
        if was_training:
            model.train()
    return results


def generation_diversity(model, btmlm: BTMLM, sentences: Sequence[Monolingual], seed: int) -> Dict[str, float]:
    """Distinct pseudo-tokens per generated token over `sentences`: degenerate output ("de de de") is near 0."""
    pseudo = [p for p in btmlm.translate(model, sentences, np.random.default_rng([seed, 23])) if p is not None]
    if not pseudo:
        return {"btmlm_distinct_share": 0.0}
    tokens = np.concatenate(pseudo)
    return {"btmlm_distinct_share": len(set(tokens.tolist())) / len(tokens)}


def pseudo_translation_quality(model, btmlm: BTMLM, tokenizer, translations: Sequence[HeldOutTranslation],
                               seed: int) -> Dict[str, float]:
    """chrF (0-100) of BTMLM's pseudo-translations against the real ones, and of the untranslated sources, for
    the pairs with and without parallel training data: {btmlm_chrf_<group>, source_copy_chrf_<group>}."""
    from sacrebleu.metrics import CHRF

    rng = np.random.default_rng([seed, 29])
    results = {}
    for group, with_parallel in (("parallel", True), ("monolingual_only", False)):
        chosen = [t for t in translations if t.with_parallel_data == with_parallel]
        hypotheses, sources, references = [], [], []
        for target in sorted({t.target_language for t in chosen}):
            subset = [t for t in chosen if t.target_language == target]
            pseudo = btmlm.translate(model, [t.source for t in subset], rng, target_language=target)
            for item, ids in zip(subset, pseudo):
                if ids is None:
                    continue
                hypotheses.append(tokenizer.convert_tokens_to_string(tokenizer.convert_ids_to_tokens(ids.tolist())))
                sources.append(item.source_text)
                references.append(item.reference)
        if hypotheses:
            results[f"btmlm_chrf_{group}"] = CHRF().corpus_score(hypotheses, [references]).score
            results[f"source_copy_chrf_{group}"] = CHRF().corpus_score(sources, [references]).score
    return results


@dataclass
class BTMLMGate:
    """Ready when held-out CAMLM accuracy exceeds its unigram baseline by `min_camlm_gain` and the
    pseudo-translations' distinct share reaches `min_distinct_share`. Both 0: always ready (no evaluation needed)."""

    min_camlm_gain: float = 0.0
    min_distinct_share: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.min_camlm_gain > 0 or self.min_distinct_share > 0

    def ready(self, metrics: Dict[str, float]) -> bool:
        if not self.enabled:
            return True
        gain = metrics.get("camlm_accuracy", 0.0) - metrics.get("camlm_unigram_accuracy", 1.0)
        return bool(gain >= self.min_camlm_gain and metrics.get("btmlm_distinct_share", 0.0) >= self.min_distinct_share)
