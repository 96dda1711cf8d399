"""BTMLM: back-translate a monolingual sentence in one pass, then learn to restore it from the pseudo-translation.

1. Generation, without gradient: `[CLS] x [SEP] [SEP] [MASK]*k [SEP]`, the placeholders tagged with a target
   language b. The placeholders attend to x and to themselves: the CAMLM layout the model is trained with, where a
   predicted token never sees its masked neighbours. The LM head runs only at the placeholders; special tokens are
   excluded; the pseudo-token is the argmax, or a sample at `temperature`.
2. Training: `[CLS] x~ [SEP] [SEP] y' [SEP]`, x~ being x with chosen tokens masked, y' the pseudo-tokens; the masked
   tokens of x are predicted with the CAMLM layout (x sees y', y' sees only itself).

Back-translation needs some alignment to start from: a model that cannot yet translate produces degenerate
pseudo-translations ("A de de de"), and BTMLM then trains on them. So BTMLM may wait until held-out evidence says
the model translates (`BTMLMGate`): CAMLM accuracy on held-out pairs clearly above the unigram accuracy of the same
masked tokens (what a model without alignment gets), and pseudo-translations that are not degenerate (distinct
tokens per generated token above a threshold).

How good the pseudo-translations are is measured too, whether or not a gate uses it: each held-out pair's
non-pivot side is back-translated into the pivot's language by the generation pass, and scored against the real
translation with chrF (sacrebleu), beside the chrF of the untranslated source (what shared words alone score).
The pairs of languages without parallel training data are the ones BTMLM exists for.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Set

import numpy as np
import paddle

from .base import Objective, ObjectiveOptions, register
from .batch import PretrainingBatch, collate_rows
from .camlm import cross_attention_row
from .criterion import model_inputs
from .examples import Monolingual
from .masking import MaskingConfig, masking_option

__all__ = ["BTMLM", "BTMLMOptions", "BTMLMGate", "target_language_ids", "generation_diversity",
           "pseudo_translation_quality"]

GENERATION_SENTENCES = 100  # held-out sentences whose pseudo-translations' diversity is measured


@dataclass
class BTMLMOptions(ObjectiveOptions):
    """`btmlm:` in a pretraining configuration."""

    sample: bool = False  # sample pseudo-tokens (else greedy)
    temperature: float = 1.0  # divides the logits sampled from
    target_languages: Optional[List[str]] = None  # codes to translate into; default: the parallel data's languages
    mask_prob: float = MaskingConfig.mask_prob  # of the sentence restored from its pseudo-translation
    min_camlm_gain: float = 0.0  # the gate: held-out CAMLM accuracy over its unigram baseline (may be < 0)
    min_distinct_share: float = 0.0  # the gate: share of distinct tokens in pseudo-translations

    def validate(self, path: str) -> None:
        if not self.temperature > 0:
            raise ValueError(f"{path}.temperature: must be positive, got {self.temperature}")
        if not 0 <= self.min_distinct_share <= 1:
            raise ValueError(f"{path}.min_distinct_share: must be in [0, 1]")
        masking_option(path, self.mask_prob)


def target_language_ids(codes: Optional[Sequence[str]], language_ids: Dict[str, int],
                        parallel_languages: Callable[[], Set[str]] = set) -> List[int]:
    """The ids of `codes`, or by default of the languages the model learns to produce from parallel data (the
    languages of the parallel files); every language when there is no parallel data."""
    if codes is None:
        codes = sorted(parallel_languages() or language_ids)
    unknown = [code for code in codes if code not in language_ids]
    if unknown or not codes:
        raise ValueError(f"{BTMLM.name}.target_languages: {unknown or 'empty'} not among the configured languages "
                         f"{sorted(language_ids)}")
    return sorted(language_ids[code] for code in codes)


@dataclass
class BTMLMGate:
    """Ready when held-out CAMLM accuracy exceeds its unigram baseline by `min_camlm_gain` and the
    pseudo-translations' distinct share reaches `min_distinct_share`. Both 0: always ready (no evaluation needed)."""

    min_camlm_gain: float = BTMLMOptions.min_camlm_gain
    min_distinct_share: float = BTMLMOptions.min_distinct_share
    options = ("btmlm.min_camlm_gain", "btmlm.min_distinct_share")

    @property
    def enabled(self) -> bool:
        return self.min_camlm_gain > 0 or self.min_distinct_share > 0

    def ready(self, metrics: Dict[str, float]) -> bool:
        if not self.enabled:
            return True
        gain = metrics.get("camlm_accuracy", 0.0) - metrics.get("camlm_unigram_accuracy", 1.0)
        return bool(gain >= self.min_camlm_gain and metrics.get("btmlm_distinct_share", 0.0) >= self.min_distinct_share)


@register
class BTMLM(Objective):
    """Args beyond `Objective`'s:
        target_languages: language ids to translate into; each example draws one that differs from its own.
        placeholders: k as a multiple of len(x) (default 1.0: as many as x), at least 1.
        sample: sample pseudo-tokens instead of taking the argmax; `temperature` scales the logits.
    """

    name = "btmlm"
    data_kind = "monolingual"
    Options = BTMLMOptions

    def __init__(self, *args, target_languages: Sequence[int], placeholders: float = 1.0,
                 sample: bool = BTMLMOptions.sample, temperature: float = BTMLMOptions.temperature, **kwargs):
        super().__init__(*args, **kwargs)
        if not target_languages:
            raise ValueError("BTMLM needs at least one target language")
        if placeholders <= 0 or temperature <= 0:
            raise ValueError("placeholders and temperature must be positive")
        self.target_languages = list(target_languages)
        self.placeholders = placeholders
        self.sample = sample
        self.temperature = temperature
        self.length_factor = 1.0 + placeholders  # x and its k = placeholders x len(x) pseudo-tokens

    @classmethod
    def from_options(cls, options: BTMLMOptions, context) -> "BTMLM":
        targets = target_language_ids(options.target_languages, context.language_ids, context.parallel_languages)
        return cls(context.special, context.vocab_size, context.max_length,
                   masking=masking_option(cls.name, options.mask_prob), target_languages=targets,
                   sample=options.sample, temperature=options.temperature)

    @classmethod
    def gate(cls, options: BTMLMOptions) -> BTMLMGate:
        return BTMLMGate(options.min_camlm_gain, options.min_distinct_share)

    def held_out_scores(self, model, held_out, seed: int, tokenizer=None) -> Dict[str, float]:
        """The distinct share of the pseudo-translations of held-out sentences, and with a tokenizer (to read them)
        their chrF against the real translations."""
        scores = generation_diversity(model, self, held_out.monolingual[:GENERATION_SENTENCES], seed)
        if tokenizer is not None and held_out.translations:
            scores.update(pseudo_translation_quality(model, self, tokenizer, held_out.translations, seed))
        return scores

    def prepare(self, example: Monolingual, rng: np.random.Generator, stats: Optional[Counter] = None,
                target_language: Optional[int] = None):
        """(x, its language, target language, k) with x and k cut to fit, or None if the example is dropped
        (counted in `stats`). The target language is drawn among the others unless given."""
        stats = Counter() if stats is None else stats
        choices = [lang for lang in self.target_languages if lang != example.language]
        if target_language is not None:
            choices = [target_language] if target_language != example.language else []
        if not choices:
            stats["dropped_no_target_language"] += 1
            return None
        tokens = np.asarray(example.tokens, dtype=np.int64)
        budget = self.max_length - 4
        x_len = min(len(tokens), int(budget / (1.0 + self.placeholders)))
        tokens = tokens[:x_len]
        if len(tokens) == 0:
            stats["dropped_empty"] += 1
            return None
        k = min(max(1, int(round(self.placeholders * len(tokens)))), budget - len(tokens))
        return tokens, example.language, int(rng.choice(choices)), k

    def generation_batch(self, prepared) -> PretrainingBatch:
        """Step 1's input: placeholders to fill, predicted at every placeholder."""
        rows = []
        for tokens, language, target_language, k in prepared:
            placeholders = np.full(k, self.special.mask, dtype=np.int64)
            rows.append(cross_attention_row(
                tokens, language, placeholders, target_language, predicted=1,
                predicted_chosen=np.arange(k), predicted_labels=placeholders, special=self.special,
            ))
        return collate_rows("btmlm_generation", rows, self.special.pad)

    def generate(self, model, prepared, rng: np.random.Generator) -> List[np.ndarray]:
        """Pseudo-translations (numpy ids), computed without gradient and with dropout off."""
        batch = self.generation_batch(prepared)
        was_training = model.training
        model.eval()
        try:
            with paddle.no_grad():
                inputs = model_inputs(model, batch)
                if not self.sample and hasattr(model, "most_likely_tokens"):  # greedy, without the logits
                    chosen = model.most_likely_tokens(excluded_ids=self._special_array, **inputs).numpy()
                else:
                    logits = model(**inputs).astype("float32")
                    excluded = np.zeros(logits.shape[-1], dtype=np.float32)
                    excluded[self._special_array[self._special_array < len(excluded)]] = -np.inf
                    logits = logits + paddle.to_tensor(excluded)
                    if self.sample:
                        probabilities = paddle.nn.functional.softmax(logits / self.temperature, axis=-1).numpy()
                        cumulative = probabilities.cumsum(axis=-1)
                        draws = rng.random((len(cumulative), 1)) * cumulative[:, -1:]
                        chosen = (cumulative < draws).sum(axis=-1)
                    else:
                        chosen = logits.argmax(axis=-1).numpy()
        finally:
            if was_training:
                model.train()
        pseudo, start = [], 0
        for _, _, _, k in prepared:
            pseudo.append(chosen[start:start + k].astype(np.int64))
            start += k
        return pseudo

    def back_translate(self, model, sentences: Sequence[Monolingual], rng: np.random.Generator,
                       target_language: Optional[int] = None, stats: Optional[Counter] = None
                       ) -> List[Optional[tuple]]:
        """Step 1: for each sentence, (what `prepare` returns, its pseudo-translation), or None where it cannot be
        translated (empty, or no target language other than its own; counted in `stats`)."""
        prepared = [self.prepare(sentence, rng, stats, target_language) for sentence in sentences]
        usable = [p for p in prepared if p is not None]
        pseudo = iter(self.generate(model, usable, rng) if usable else [])
        return [None if p is None else (p, next(pseudo)) for p in prepared]

    def translate(self, model, sentences: Sequence[Monolingual], rng: np.random.Generator,
                  target_language: Optional[int] = None) -> List[Optional[np.ndarray]]:
        """Each sentence's pseudo-translation (into `target_language`, or a drawn one), None where a sentence
        cannot be translated."""
        return [None if t is None else t[1] for t in self.back_translate(model, sentences, rng, target_language)]

    def __call__(self, examples: Sequence[Monolingual], rng: np.random.Generator, model=None
                 ) -> Optional[PretrainingBatch]:
        if model is None:
            raise ValueError("BTMLM builds its batch with the model (generation pass): pass model=")
        stats: Counter = Counter()
        translated = [t for t in self.back_translate(model, examples, rng, stats=stats) if t is not None]
        stats["examples"] = len(examples)
        if not translated:
            return None
        prepared, pseudo = [p for p, _ in translated], [t for _, t in translated]
        rows = []
        for (tokens, language, target_language, _), translation in zip(prepared, pseudo):
            masked, chosen, labels = self.mask(tokens, rng, forced=True)
            rows.append(cross_attention_row(
                masked, language, translation, target_language, predicted=0, predicted_chosen=chosen,
                predicted_labels=labels, special=self.special,
            ))
        stats["generated_tokens"] = int(sum(len(p) for p in pseudo))
        # The generation pass's rows, [CLS] x [SEP] [SEP] [MASK]*k [SEP]: forward-only compute a training step pays.
        stats["generation_tokens"] = int(sum(len(tokens) + k + 4 for tokens, _, _, k in prepared))
        return collate_rows(self.name, rows, self.special.pad, dict(stats))


def generation_diversity(model, btmlm: BTMLM, sentences: Sequence[Monolingual], seed: int) -> Dict[str, float]:
    """Distinct pseudo-tokens per generated token over `sentences`: degenerate output ("de de de") is near 0."""
    pseudo = [p for p in btmlm.translate(model, sentences, np.random.default_rng([seed, 23])) if p is not None]
    if not pseudo:
        return {"btmlm_distinct_share": 0.0}
    tokens = np.concatenate(pseudo)
    return {"btmlm_distinct_share": len(set(tokens.tolist())) / len(tokens)}


def pseudo_translation_quality(model, btmlm: BTMLM, tokenizer, translations: Sequence, seed: int
                               ) -> Dict[str, float]:
    """chrF (0-100) of BTMLM's pseudo-translations against the real ones, and of the untranslated sources, for
    the pairs with and without parallel training data: {btmlm_chrf_<group>, source_copy_chrf_<group>}.
    `translations` are `ernie_m.pretraining.evaluation.HeldOutTranslation`s."""
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
