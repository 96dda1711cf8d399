"""A controlled test of alignment: synthetic languages with disjoint vocabularies, where only an objective that
connects the languages can put translations near each other.

    python -m tools.synthetic_alignment --objectives mmlm camlm tlm --seeds 0 1 2 --steps 600

Every language is the same random Markov chain over K word types, written with its own K token ids (language j
uses ids [4 + jK, 4 + (j+1)K)): a sentence's translation maps each token at the same position. So MMLM alone has
no shared token to anchor on and should stay near chance on retrieval, while CAMLM, TLM and BTMLM see the mapping
through parallel or back-translated pairs. Retrieval: held-out pairs, mean-pooled hidden states of every layer,
each language's mean removed, cosine nearest neighbour, accuracy@1 of both directions averaged.

The suite runs a small version (tests/test_synthetic_alignment.py); docs/demo.md records a larger one.
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

SPECIAL_COUNT = 4  # [CLS]=0, [PAD]=1, [SEP]=2, [UNK]=3; [MASK] is the last id


@dataclass
class SyntheticLanguages:
    """`num_languages` copies of one Markov chain over `words` word types, each with its own token ids."""

    words: int = 24
    num_languages: int = 2
    successors: int = 3
    min_length: int = 5
    max_length: int = 12
    seed: int = 0

    def __post_init__(self):
        rng = np.random.default_rng([self.seed, 99])
        # Each word may be followed by `successors` others: structure an MLM can learn, the same in every language.
        self.transitions = np.stack([rng.choice(self.words, self.successors, replace=False)
                                     for _ in range(self.words)])

    @property
    def vocab_size(self) -> int:
        return SPECIAL_COUNT + self.words * self.num_languages + 1

    @property
    def mask_id(self) -> int:
        return self.vocab_size - 1

    def special(self):
        from ernie_m.objectives import SpecialIds

        return SpecialIds(cls=0, pad=1, sep=2, unk=3, mask=self.mask_id)

    def sentence(self, rng: np.random.Generator) -> np.ndarray:
        """Word indices (language-free)."""
        length = int(rng.integers(self.min_length, self.max_length + 1))
        words = [int(rng.integers(self.words))]
        for _ in range(length - 1):
            words.append(int(rng.choice(self.transitions[words[-1]])))
        return np.asarray(words, dtype=np.int64)

    def write(self, words: np.ndarray, language: int) -> np.ndarray:
        return words + SPECIAL_COUNT + language * self.words

    def read(self, tokens: np.ndarray, language: int) -> np.ndarray:
        return np.asarray(tokens) - SPECIAL_COUNT - language * self.words

    def language_of(self, tokens: np.ndarray) -> np.ndarray:
        """The language each token id belongs to (-1 for special ids)."""
        tokens = np.asarray(tokens)
        language = (tokens - SPECIAL_COUNT) // self.words
        return np.where((tokens >= SPECIAL_COUNT) & (language < self.num_languages), language, -1)


def build_model(languages: SyntheticLanguages, seed: int, preset: str = "ernie-m-tiny"):
    import paddle

    from ernie_m import ErnieMConfig, ErnieMForPretraining

    paddle.seed(seed)
    config = ErnieMConfig.from_preset(preset, vocab_size=languages.vocab_size, num_languages=languages.num_languages,
                                      max_position_embeddings=2 * languages.max_length + 16,
                                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return ErnieMForPretraining(config)


def make_objective(name: str, languages: SyntheticLanguages, camlm_mask_prob: float,
                   btmlm_targets: Optional[Sequence[int]] = None):
    from ernie_m.objectives import BTMLM, CAMLM, MMLM, TLM, MaskingConfig

    common = dict(special=languages.special(), vocab_size=languages.vocab_size,
                  max_length=2 * languages.max_length + 4)
    if name == "mmlm":
        return MMLM(**common)
    if name == "tlm":
        return TLM(**common)
    if name == "camlm":
        return CAMLM(**common, masking=MaskingConfig(mask_prob=camlm_mask_prob))
    if name == "btmlm":
        return BTMLM(**common, masking=MaskingConfig(mask_prob=camlm_mask_prob),
                     target_languages=list(btmlm_targets if btmlm_targets is not None else [0, 1]))
    raise ValueError(f"unknown objective {name!r}")


def examples_for(name: str, languages: SyntheticLanguages, rng: np.random.Generator, count: int,
                 parallel_languages: Sequence[int], monolingual_languages: Sequence[int]):
    """A batch of training examples: pairs between parallel languages for CAMLM/TLM, single sentences else."""
    from ernie_m.objectives import Monolingual, Parallel

    examples = []
    for _ in range(count):
        words = languages.sentence(rng)
        if name in ("camlm", "tlm"):
            a, b = rng.choice(parallel_languages, 2, replace=False)
            examples.append(Parallel(languages.write(words, a), int(a), languages.write(words, b), int(b)))
        else:
            language = int(rng.choice(monolingual_languages))
            examples.append(Monolingual(languages.write(words, language), language))
    return examples


def train(languages: SyntheticLanguages, schedule: Sequence[Dict[str, float]], steps_per_stage: int, seed: int,
          batch_size: int = 32, lr: float = 1e-3, camlm_mask_prob: float = 0.5,
          parallel_languages: Sequence[int] = (0, 1), monolingual_languages: Optional[Sequence[int]] = None,
          btmlm_targets: Optional[Sequence[int]] = None, model=None):
    """Train through `schedule` (one {objective: weight} per stage); returns the model."""
    import paddle

    from ernie_m.objectives import masked_lm_loss

    monolingual_languages = list(range(languages.num_languages)) if monolingual_languages is None \
        else list(monolingual_languages)
    model = model if model is not None else build_model(languages, seed)
    optimizer = paddle.optimizer.AdamW(learning_rate=lr, parameters=model.parameters(), weight_decay=0.01)
    rng = np.random.default_rng([seed, 1])
    objectives = {}
    model.train()
    for stage in schedule:
        names = sorted(stage)
        weights = np.asarray([stage[name] for name in names], dtype=np.float64)
        for _ in range(steps_per_stage):
            name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
            if name not in objectives:
                objectives[name] = make_objective(name, languages, camlm_mask_prob,
                                                  btmlm_targets if btmlm_targets is not None else parallel_languages)
            examples = examples_for(name, languages, rng, batch_size, parallel_languages, monolingual_languages)
            batch = objectives[name](examples, rng, model=model)
            loss, _ = masked_lm_loss(model, batch)
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
    model.eval()
    return model


def held_out_words(languages: SyntheticLanguages, count: int, seed: int = 12345) -> List[np.ndarray]:
    """`count` distinct sentences drawn from a generator the training never uses."""
    rng, seen, sentences = np.random.default_rng([seed, 7]), set(), []
    while len(sentences) < count:
        words = languages.sentence(rng)
        if tuple(words) not in seen:
            seen.add(tuple(words))
            sentences.append(words)
    return sentences


def hidden_means(model, languages: SyntheticLanguages, sentences: Sequence[np.ndarray], language: int):
    """[layers + 1, n, hidden]: every layer's mean over each sentence's `[CLS] x [SEP]` tokens."""
    import paddle

    from ernie_m.objectives.batch import segment

    special = languages.special()
    rows = [segment(languages.write(words, language), True, special) for words in sentences]
    width = max(len(row) for row in rows)
    ids = np.full((len(rows), width), special.pad, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.float32)
    for index, row in enumerate(rows):
        ids[index, :len(row)], mask[index, :len(row)] = row, 1.0
    with paddle.no_grad():
        output = model.ernie_m(paddle.to_tensor(ids), language_ids=paddle.to_tensor(np.full_like(ids, language)),
                               attention_mask=paddle.to_tensor(mask.astype(bool))[:, None, None, :],
                               output_hidden_states=True, return_dict=True)
    pooled = [(h.numpy() * mask[..., None]).sum(1) / mask.sum(1, keepdims=True) for h in output.hidden_states]
    return np.stack(pooled)


def retrieval_by_layer(model, languages: SyntheticLanguages, sentences: Sequence[np.ndarray], first: int,
                       second: int) -> List[float]:
    """Accuracy@1 (both directions averaged) of finding each sentence's translation, at every layer."""
    a, b = hidden_means(model, languages, sentences, first), hidden_means(model, languages, sentences, second)
    gold = np.arange(len(sentences))
    scores = []
    for x, y in zip(a, b):
        x, y = x - x.mean(0), y - y.mean(0)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        y /= np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
        similarity = x @ y.T
        scores.append(float(((similarity.argmax(1) == gold).mean() + (similarity.argmax(0) == gold).mean()) / 2))
    return scores


def back_translation_quality(model, languages: SyntheticLanguages, source: int, target: int, count: int = 100,
                             seed: int = 54321) -> Dict[str, float]:
    """BTMLM's generation pass on held-out sentences of `source`, translated into `target`: the share of
    pseudo-tokens in the target language's ids, and the share equal to the true translation (chance 1/words)."""
    from ernie_m.objectives import Monolingual

    btmlm = make_objective("btmlm", languages, 0.5, [target])
    rng = np.random.default_rng([seed, 3])
    sentences = [languages.sentence(rng) for _ in range(count)]
    prepared = [btmlm._prepare(Monolingual(languages.write(w, source), source), rng, Counter()) for w in sentences]
    pseudo = btmlm.generate(model, prepared, rng)
    in_target, correct = [], []
    for (tokens, _, _, _), translation in zip(prepared, pseudo):
        in_target.append(languages.language_of(translation) == target)
        truth = languages.write(languages.read(tokens, source), target)
        n = min(len(truth), len(translation))
        correct.append(translation[:n] == truth[:n])
    return {"in_target_language": float(np.concatenate(in_target).mean()),
            "token_accuracy": float(np.concatenate(correct).mean()),
            "chance": 1.0 / languages.words}


ARMS = {
    "untrained": [],
    "mmlm": [{"mmlm": 1.0}],
    "tlm": [{"mmlm": 0.5, "tlm": 0.5}],
    "camlm": [{"mmlm": 0.5, "camlm": 0.5}],
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--words", type=int, default=24)
    parser.add_argument("--camlm_mask_prob", type=float, default=0.5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--held_out", type=int, default=200)
    args = parser.parse_args(argv)
    languages = SyntheticLanguages(words=args.words)
    sentences = held_out_words(languages, args.held_out)
    results = {}
    for arm in args.arms:
        for seed in args.seeds:
            started = time.perf_counter()
            model = train(languages, ARMS[arm], args.steps, seed, lr=args.lr, camlm_mask_prob=args.camlm_mask_prob) \
                if ARMS[arm] else build_model(languages, seed)
            model.eval()
            scores = retrieval_by_layer(model, languages, sentences, 0, 1)
            results.setdefault(arm, []).append(scores)
            print(json.dumps({"arm": arm, "seed": seed, "retrieval_by_layer": [round(s, 3) for s in scores],
                              "seconds": round(time.perf_counter() - started, 1)}), flush=True)
    for arm, runs in results.items():
        best = np.asarray(runs).max(1)
        print(f"{arm}: best-layer retrieval {100 * best.mean():.1f} ± {100 * best.std(ddof=1) if len(best) > 1 else 0:.1f}")


if __name__ == "__main__":
    main()
