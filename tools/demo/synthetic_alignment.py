"""Controlled tests of alignment: synthetic languages whose translations are known exactly, where only an objective
that connects the languages can put translations near each other.

    python -m tools.demo.synthetic_alignment --seeds 0 1 2 --steps 600                 # MMLM, TLM, CAMLM on A-B
    python -m tools.demo.synthetic_alignment --experiment btmlm --seeds 0 1 2 3 4      # does BTMLM reach C?

Every language is the same random Markov chain over K word types, written with its own K token ids (language j
uses ids [4 + jK, 4 + (j+1)K)): a sentence's translation maps each token at the same position. So MMLM alone has
no shared token to anchor on and should stay near chance on retrieval, while CAMLM, TLM and BTMLM see the mapping
through parallel or back-translated pairs. Retrieval: held-out pairs, mean-pooled hidden states of every layer,
each language's mean removed, cosine nearest neighbour, accuracy@1 of both directions averaged.

The BTMLM experiment adds a third language C with monolingual text only, which writes its first `anchors` word
types with A's ids (as cognates and names are shared in real text): A and B have parallel pairs, C has none, so
only BTMLM's back-translated pairs, started from what the anchors give, can tie C's own ids to A's and B's.

The suite runs small versions (tests/test_synthetic_alignment.py); docs/demo.md records larger ones.
"""
from __future__ import annotations

import argparse
import json
import time
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
    anchors: int = 0  # word types the last language writes with language 0's ids (its cognates with language 0)

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
        tokens = np.asarray(words) + SPECIAL_COUNT + language * self.words
        if self.anchors and language == self.num_languages - 1:
            tokens = np.where(np.asarray(words) < self.anchors, np.asarray(words) + SPECIAL_COUNT, tokens)
        return tokens

    def read(self, tokens: np.ndarray, language: int) -> np.ndarray:
        """Word indices of `language`'s tokens (an anchor is read the same in both languages that write it)."""
        return (np.asarray(tokens) - SPECIAL_COUNT) % self.words

    def vocabulary(self, language: int) -> np.ndarray:
        """The token ids `language` writes."""
        return self.write(np.arange(self.words), language)


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
    """The registered objective `name` built as a pretraining run builds it, from its options: masking at
    `camlm_mask_prob` where it has that option, BTMLM translating into `btmlm_targets` (default: 0 and 1)."""
    import dataclasses

    from ernie_m.objectives import REGISTRY, ObjectiveContext

    objective = REGISTRY[name]
    codes = {str(language): language for language in range(languages.num_languages)}
    given = {"mask_prob": camlm_mask_prob,
             "target_languages": [str(t) for t in (btmlm_targets if btmlm_targets is not None else [0, 1])]}
    known = {f.name for f in dataclasses.fields(objective.Options)}
    options = objective.Options(**{key: value for key, value in given.items() if key in known})
    context = ObjectiveContext(languages.special(), languages.vocab_size, 2 * languages.max_length + 4, codes)
    return objective.from_options(options, context)


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
          btmlm_targets: Optional[Sequence[int]] = None, model=None, btmlm_sources: Optional[Sequence[int]] = None):
    """Train through `schedule` (one {objective: weight} per stage); returns the model. BTMLM back-translates
    sentences of `btmlm_sources` (default: the monolingual languages)."""
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
            sources = btmlm_sources if name == "btmlm" and btmlm_sources is not None else monolingual_languages
            examples = examples_for(name, languages, rng, batch_size, parallel_languages, sources)
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
    pseudo = btmlm.translate(model, [Monolingual(languages.write(w, source), source) for w in sentences], rng)
    in_target, correct, own_words = [], [], []
    for words, translation in zip(sentences, pseudo):
        in_target.append(np.isin(translation, languages.vocabulary(target)))
        truth = languages.write(words, target)
        n = min(len(truth), len(translation))
        correct.append(translation[:n] == truth[:n])
        own_words.append(words[:n] >= languages.anchors)
    correct, own_words = np.concatenate(correct), np.concatenate(own_words)
    return {"in_target_language": float(np.concatenate(in_target).mean()),
            "token_accuracy": float(correct.mean()),
            "non_anchor_accuracy": float(correct[own_words].mean()) if own_words.any() else float("nan"),
            "chance": 1.0 / languages.words}


def camlm_accuracy(model, languages: SyntheticLanguages, sentences: Sequence[np.ndarray], context: str = "real",
                   seed: int = 777, camlm_mask_prob: float = 0.5) -> Dict[str, float]:
    """CAMLM's accuracy on the masked tokens of A in held-out A-B pairs, in rows the objective builds (with its own
    attention), and the unigram rate of the same labels (always answering the most frequent one). `context` is
    what B holds: the "real" translation, or "masked" (every token a [MASK]). Under CAMLM's attention a masked A
    token sees only B and its own [MASK], so with B masked the accuracy falls to about the unigram rate; under full
    attention (TLM) it still sees A's unmasked words, and a model trained that way uses them."""
    from ernie_m.objectives import CAMLM, MaskingConfig, Parallel, masked_token_accuracy

    camlm = CAMLM(special=languages.special(), vocab_size=languages.vocab_size,
                  max_length=2 * languages.max_length + 4, masking=MaskingConfig(mask_prob=camlm_mask_prob),
                  context_masking=None, both_directions=True)
    pairs = [Parallel(languages.write(words, 0), 0,
                      languages.write(words, 1) if context == "real" else np.full(len(words), languages.mask_id), 1)
             for words in sentences]
    return masked_token_accuracy(model, _PredictingTheFirstSide(camlm, languages.special().pad), pairs,
                                 np.random.default_rng([seed, 5]))


class _PredictingTheFirstSide:
    """CAMLM's own rows (its masking and attention) for the direction that predicts each pair's first side."""

    def __init__(self, camlm, pad_id: int):
        self.camlm, self.pad_id, self.name = camlm, pad_id, camlm.name

    def __call__(self, examples, rng: np.random.Generator, model=None):
        from collections import Counter

        from ernie_m.objectives.batch import collate_rows

        return collate_rows(self.name, [self.camlm.rows(example, rng, Counter())[0] for example in examples],
                            self.pad_id)


ARMS = {
    "untrained": [],
    "mmlm": [{"mmlm": 1.0}],
    "tlm": [{"mmlm": 0.5, "tlm": 0.5}],
    "camlm": [{"mmlm": 0.5, "camlm": 0.5}],
}

# The BTMLM experiment: two stages of the same length; the control differs from ERNIE-M in stage 2's BTMLM alone.
BTMLM_ARMS = {
    "mmlm": [{"mmlm": 1.0}, {"mmlm": 1.0}],
    "no-btmlm": [{"camlm": 0.5, "mmlm": 0.5}, {"camlm": 0.5, "mmlm": 0.5}],
    "ernie-m": [{"camlm": 0.5, "mmlm": 0.5}, {"camlm": 0.35, "mmlm": 0.35, "btmlm": 0.3}],
}


def btmlm_experiment(seed: int, steps_per_stage: int, anchors: int, words: int = 24, lr: float = 1e-3,
                     held_out: int = 200, btmlm_share: float = 0.3, btmlm_sources: Sequence[int] = (0, 1, 2),
                     stage_one_steps: Optional[int] = None, arms: Sequence[str] = tuple(BTMLM_ARMS)) -> Dict[str, dict]:
    """One seed of the BTMLM experiment: A (0) and B (1) with parallel pairs, C (2) monolingual only with `anchors`
    words written as A writes them. Arms that share stage 1 branch from one stage-1 model (each stage starts a
    fresh optimizer, in every arm). Per arm: A-C and A-B retrieval by layer and C -> A pseudo-translation quality
    (the accuracy on C's own words is the one the anchors do not give away)."""
    languages = SyntheticLanguages(words=words, num_languages=3, anchors=anchors)
    common = dict(lr=lr, parallel_languages=(0, 1), monolingual_languages=(0, 1, 2), btmlm_targets=(0, 1),
                  btmlm_sources=btmlm_sources)
    sentences = held_out_words(languages, held_out)
    stage_one, results = {}, {}
    for arm in arms:
        schedule = [dict(stage) for stage in BTMLM_ARMS[arm]]
        if "btmlm" in schedule[-1]:
            rest = (1.0 - btmlm_share) / 2
            schedule[-1] = {"camlm": rest, "mmlm": rest, "btmlm": btmlm_share}
        key = json.dumps(schedule[0], sort_keys=True)
        if key not in stage_one:
            stage_one[key] = train(languages, schedule[:1], stage_one_steps or steps_per_stage, seed, **common)
        model = build_model(languages, seed)
        model.set_state_dict(stage_one[key].state_dict())
        model = train(languages, schedule[1:], steps_per_stage, seed + 1000, model=model, **common)
        results[arm] = {"arm": arm, "seed": seed, "anchors": anchors,
                        "retrieval_a_c": retrieval_by_layer(model, languages, sentences, 0, 2),
                        "retrieval_a_b": retrieval_by_layer(model, languages, sentences, 0, 1),
                        "translation_c_to_a": back_translation_quality(model, languages, source=2, target=0)}
    return results


def main_btmlm(args) -> None:
    """Every BTMLM arm and seed, then best-layer A-C retrieval and C -> A accuracy with ERNIE-M against its
    control, paired per seed."""
    from tools.demo.stats import paired_comparison

    runs = {}
    for seed in args.seeds:
        started = time.perf_counter()
        for arm, result in btmlm_experiment(seed, args.steps, args.anchors, args.words, args.lr, args.held_out,
                                            args.btmlm_share, args.btmlm_sources, args.stage_one_steps).items():
            runs.setdefault(arm, []).append(result)
            print(json.dumps({**result, "seconds": round(time.perf_counter() - started, 1)}), flush=True)
    measures = {"A-C retrieval": lambda r: max(r["retrieval_a_c"]), "A-B retrieval": lambda r: max(r["retrieval_a_b"]),
                "C->A accuracy on C's own words": lambda r: r["translation_c_to_a"]["non_anchor_accuracy"]}
    for name, measure in measures.items():
        values = {arm: np.asarray([measure(r) for r in results]) for arm, results in runs.items()}
        print(name + ": " + ", ".join(f"{arm} {100 * v.mean():.1f} ± {100 * v.std(ddof=1):.1f}"
                                      for arm, v in values.items()))
        comparison = paired_comparison(values["ernie-m"], values["no-btmlm"])
        low, high = comparison["ci95"]
        print(f"  ernie-m {comparison['verdict']} no-btmlm: {100 * comparison['difference']:+.1f} "
              f"[{100 * low:+.1f}, {100 * high:+.1f}]")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", choices=["alignment", "btmlm"], default="alignment")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, help="steps (default 600); in the BTMLM experiment, stage 2's (300)")
    parser.add_argument("--words", type=int, default=24)
    parser.add_argument("--anchors", type=int, default=12, help="BTMLM experiment: C's words written as A's")
    parser.add_argument("--btmlm_share", type=float, default=0.3, help="BTMLM experiment: its share of stage 2")
    parser.add_argument("--btmlm_sources", nargs="+", type=int, default=[2],
                        help="BTMLM experiment: the languages BTMLM back-translates (0, 1: A, B; 2: C)")
    parser.add_argument("--stage_one_steps", type=int, default=600, help="BTMLM experiment: stage 1's steps")
    parser.add_argument("--camlm_mask_prob", type=float, default=0.5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--held_out", type=int, default=200)
    args = parser.parse_args(argv)
    if args.experiment == "btmlm":
        args.steps = args.steps or 300
        return main_btmlm(args)
    args.steps = args.steps or 600
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
            # CAMLM's rows with B whole and with B masked: a model that learned through CAMLM's attention finds A's
            # masked tokens from B alone, so the second falls to about the unigram rate.
            rows = {context: camlm_accuracy(model, languages, sentences, context) for context in ("real", "masked")}
            print(json.dumps({"arm": arm, "seed": seed, "retrieval_by_layer": [round(s, 3) for s in scores],
                              "camlm_rows": rows, "seconds": round(time.perf_counter() - started, 1)}), flush=True)
    for arm, runs in results.items():
        best = np.asarray(runs).max(1)
        print(f"{arm}: best-layer retrieval {100 * best.mean():.1f} ± {100 * best.std(ddof=1) if len(best) > 1 else 0:.1f}")


if __name__ == "__main__":
    main()
