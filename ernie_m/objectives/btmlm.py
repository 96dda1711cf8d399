"""BTMLM: back-translate a monolingual sentence in one pass, then learn to restore it from the pseudo-translation.

1. Generation, without gradient: `[CLS] x [SEP] [SEP] [MASK]*k [SEP]`, the placeholders tagged with a target
   language b. The placeholders attend to x and to themselves: the CAMLM layout the model is trained with, where a
   predicted token never sees its masked neighbours. The LM head runs only at the placeholders; special tokens are
   excluded; the pseudo-token is the argmax, or a sample at `temperature`.
2. Training: `[CLS] x~ [SEP] [SEP] y' [SEP]`, x~ being x with chosen tokens masked, y' the pseudo-tokens; the masked
   tokens of x are predicted with the CAMLM layout (x sees y', y' sees only itself).
"""
from __future__ import annotations

from collections import Counter
from typing import List, Optional, Sequence

import numpy as np
import paddle

from .base import Objective
from .batch import PretrainingBatch, collate_rows
from .camlm import cross_attention_row
from .criterion import model_inputs
from .examples import Monolingual

__all__ = ["BTMLM"]


class BTMLM(Objective):
    """Args beyond `Objective`'s:
        target_languages: language ids to translate into; each example draws one that differs from its own.
        placeholders: k as a multiple of len(x) (default 1.0: as many as x), at least 1.
        sample: sample pseudo-tokens instead of taking the argmax; `temperature` scales the logits.
    """

    name = "btmlm"
    data_kind = "monolingual"

    def __init__(self, *args, target_languages: Sequence[int], placeholders: float = 1.0, sample: bool = False,
                 temperature: float = 1.0, **kwargs):
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

    def _prepare(self, example: Monolingual, rng: np.random.Generator, stats: Counter,
                 target_language: Optional[int] = None):
        """(x, its language, target language, k) with x and k cut to fit, or None if the example is dropped. The
        target language is drawn among the others unless given."""
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

    def translate(self, model, sentences: Sequence[Monolingual], rng: np.random.Generator,
                  target_language: Optional[int] = None) -> List[Optional[np.ndarray]]:
        """Step 1 alone: each sentence's pseudo-translation (into `target_language`, or a drawn one), None where a
        sentence cannot be translated (empty, or no target language other than its own)."""
        prepared = [self._prepare(sentence, rng, Counter(), target_language) for sentence in sentences]
        usable = [p for p in prepared if p is not None]
        pseudo = iter(self.generate(model, usable, rng) if usable else [])
        return [None if p is None else next(pseudo) for p in prepared]

    def __call__(self, examples: Sequence[Monolingual], rng: np.random.Generator, model=None
                 ) -> Optional[PretrainingBatch]:
        if model is None:
            raise ValueError("BTMLM builds its batch with the model (generation pass): pass model=")
        stats: Counter = Counter()
        prepared = [p for p in (self._prepare(example, rng, stats) for example in examples) if p is not None]
        stats["examples"] = len(examples)
        if not prepared:
            return None
        pseudo = self.generate(model, prepared, rng)
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
