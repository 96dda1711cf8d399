"""The benchmarks' official metrics, reimplemented from their definitions:

- accuracy per language and the average (XNLI, PAWS-X, Tatoeba);
- entity-level F1 by the conlleval rules (CoNLL-2002/2003, WikiANN);
- extractive QA F1 / exact match with MLQA's per-language answer normalisation (MLQA, XQuAD);
- ratio-margin scoring of sentence pairs and F1 at the best threshold (BUCC).
"""
from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter
from typing import Dict, Iterable, List, Sequence, Set, Tuple

import numpy as np

# ---- classification ----------------------------------------------------------------------------------------------


def accuracy(predictions: Sequence, labels: Sequence) -> float:
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    return sum(p == g for p, g in zip(predictions, labels)) / max(1, len(labels))


def with_average(per_language: Dict[str, float]) -> Dict[str, float]:
    """Adds `average`, the unweighted mean over languages, as the benchmarks report it."""
    return {**per_language, "average": sum(per_language.values()) / max(1, len(per_language))}


# ---- NER: conlleval ----------------------------------------------------------------------------------------------

def _split_tag(tag: str) -> Tuple[str, str]:
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', ''); a bare type ('PER', IO tagging) counts as inside."""
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIES":
        return tag[0], tag[2:]
    return "I", tag


def _chunk_ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag != "O" and prev_type != type_


def _chunk_starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag != "O" and prev_type != type_


def entity_spans(tags: Sequence[str]) -> Set[Tuple[str, int, int]]:
    """(type, first token, last token) of every chunk, as conlleval reads a tag sequence: an I- after O or after
    another type starts a chunk; a change of type ends one."""
    spans = set()
    prev_tag, prev_type, start = "O", "", None
    for position, raw in enumerate(list(tags) + ["O"]):  # a final O closes the last chunk
        tag, type_ = _split_tag(raw)
        if start is not None and _chunk_ends(prev_tag, tag, prev_type, type_):
            spans.add((prev_type, start, position - 1))
            start = None
        if _chunk_starts(prev_tag, tag, prev_type, type_):
            start = position
        prev_tag, prev_type = tag, type_
    return spans


def ner_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> Dict[str, float]:
    """Micro precision, recall and F1 over entity chunks of all sentences (a chunk counts when type and both
    boundaries match)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(predicted)} predicted sentences for {len(gold)} gold ones")
    correct = found = expected = 0
    for number, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted)):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(f"sentence {number}: {len(predicted_tags)} predicted tags for {len(gold_tags)} tokens")
        gold_spans, predicted_spans = entity_spans(gold_tags), entity_spans(predicted_tags)
        correct += len(gold_spans & predicted_spans)
        found += len(predicted_spans)
        expected += len(gold_spans)
    precision = correct / found if found else 0.0
    recall = correct / expected if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


# ---- QA: MLQA's normalisation ------------------------------------------------------------------------------------

_PUNCTUATION = frozenset(string.punctuation) | frozenset(
    chr(i) for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)).startswith("P"))
_ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "ar": r"\sال^|ال",
}
_CJK = re.compile(r"[\u4e00-\u9fa5]")
# MLQA's languages; zh is split into characters, the rest on whitespace. XQuAD's other languages follow English's
# whitespace rule without article removal.
_CHARACTER_LANGUAGES = {"zh"}


def _tokens(text: str, language: str) -> List[str]:
    if language not in _CHARACTER_LANGUAGES:
        return text.split()
    tokens, pending = [], ""
    for char in text:
        if _CJK.match(char) or char in _PUNCTUATION:
            tokens.extend(pending.split())
            pending = ""
            tokens.append(char)
        else:
            pending += char
    tokens.extend(pending.split())
    return tokens


def normalize_answer(text: str, language: str = "en") -> str:
    """Lower case, no punctuation, no articles of the language, whitespace (or, for Chinese, character) tokens."""
    text = "".join(char for char in text.lower() if char not in _PUNCTUATION)
    if language in _ARTICLES:
        text = re.sub(_ARTICLES[language], " ", text)
    return " ".join(token for token in _tokens(text, language) if token.strip())


def qa_f1(prediction: str, answer: str, language: str = "en") -> float:
    predicted, gold = normalize_answer(prediction, language).split(), normalize_answer(answer, language).split()
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def qa_exact_match(prediction: str, answer: str, language: str = "en") -> float:
    return float(normalize_answer(prediction, language) == normalize_answer(answer, language))


def qa_scores(predictions: Dict[str, str], answers: Dict[str, Iterable[str]], language: str = "en"
              ) -> Dict[str, float]:
    """F1 and EM in percent, each question scored against its best-matching gold answer; an unanswered question
    scores 0."""
    f1 = em = 0.0
    for question_id, golds in answers.items():
        golds = list(golds)
        prediction = predictions.get(question_id, "")
        f1 += max(qa_f1(prediction, gold, language) for gold in golds)
        em += max(qa_exact_match(prediction, gold, language) for gold in golds)
    count = max(1, len(answers))
    return {"f1": 100 * f1 / count, "exact_match": 100 * em / count}


# ---- retrieval: margin scoring -----------------------------------------------------------------------------------

def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def margin_scores(source: np.ndarray, target: np.ndarray, k: int = 4) -> np.ndarray:
    """Ratio margin (Artetxe & Schwenk, 2019): cos(x, y) divided by the mean of the average cosine of x to its k
    nearest targets and of y to its k nearest sources. Corrects for hubs that are near everything."""
    similarity = _unit(source) @ _unit(target).T
    k_source, k_target = min(k, similarity.shape[1]), min(k, similarity.shape[0])
    source_density = np.sort(similarity, axis=1)[:, -k_source:].mean(axis=1)
    target_density = np.sort(similarity, axis=0)[-k_target:, :].mean(axis=0)
    return similarity / ((source_density[:, None] + target_density[None, :]) / 2)


def retrieval_accuracy(scores: np.ndarray) -> float:
    """Row i's gold is column i (Tatoeba): the share of rows whose best column is their own."""
    return float((np.argmax(scores, axis=1) == np.arange(scores.shape[0])).mean())


def best_threshold_f1(candidates: Sequence[Tuple[float, bool]], num_gold: int) -> Dict[str, float]:
    """BUCC: candidate pairs (score, is a gold pair) -> the threshold keeping the pairs scored at or above it that
    gives the best F1 against `num_gold` gold pairs."""
    best = {"f1": 0.0, "precision": 0.0, "recall": 0.0, "threshold": float("inf")}
    if num_gold <= 0:
        raise ValueError("num_gold must be positive")
    ordered = sorted(candidates, key=lambda item: -item[0])
    correct = 0
    for kept, (score, is_gold) in enumerate(ordered, 1):
        correct += bool(is_gold)
        if kept < len(ordered) and ordered[kept][0] == score:
            continue  # a threshold keeps every pair of equal score
        precision, recall = correct / kept, correct / num_gold
        f1 = 2 * precision * recall / (precision + recall) if correct else 0.0
        if f1 > best["f1"]:
            best = {"f1": f1, "precision": precision, "recall": recall, "threshold": float(score)}
    return best
