"""The benchmark metrics on hand-made cases whose answers are worked out in the comments."""
import numpy as np
import pytest

from finetune.metrics import (
    accuracy, best_threshold_f1, entity_spans, margin_scores, ner_scores, normalize_answer, qa_f1, qa_scores,
    retrieval_accuracy, with_average,
)


def test_accuracy_and_average():
    assert accuracy([1, 0, 2, 2], [1, 1, 2, 0]) == 0.5
    assert with_average({"en": 0.8, "de": 0.6}) == {"en": 0.8, "de": 0.6, "average": pytest.approx(0.7)}
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        accuracy([1, 2, 3], [1, 2])


@pytest.mark.parametrize("tags, spans", [
    (["B-PER", "I-PER", "O", "B-LOC"], {("PER", 0, 1), ("LOC", 3, 3)}),
    (["O", "I-LOC", "I-LOC"], {("LOC", 1, 2)}),                     # I- after O starts a chunk
    (["I-PER", "I-PER", "B-PER"], {("PER", 0, 1), ("PER", 2, 2)}),   # B- starts a new one of the same type
    (["B-PER", "I-PER", "I-LOC"], {("PER", 0, 1), ("LOC", 2, 2)}),   # a type change ends a chunk
    (["S-PER", "B-LOC", "E-LOC", "I-LOC"], {("PER", 0, 0), ("LOC", 1, 2), ("LOC", 3, 3)}),  # IOBES
    (["O", "O"], set()),
])
def test_conlleval_chunks(tags, spans):
    assert entity_spans(tags) == spans


def test_ner_scores_follow_conlleval():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    # I-LOC after O is read as the start of the same LOC chunk: a perfect score.
    assert ner_scores(gold, [["B-PER", "I-PER", "O", "I-LOC"]])["f1"] == 1.0
    # PER(0,0) and LOC(1,1) predicted against PER(0,1) and LOC(3,3): nothing matches.
    assert ner_scores(gold, [["B-PER", "I-LOC", "O", "O"]]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    # Two sentences: gold ORG(0,1) PER(3,3) | MISC(1,1); predicted ORG(0,1) | LOC(0,0) MISC(1,1):
    # 2 correct of 3 found and 3 expected, so P = R = F1 = 2/3.
    scores = ner_scores([["B-ORG", "I-ORG", "O", "B-PER"], ["O", "B-MISC"]],
                        [["B-ORG", "I-ORG", "O", "O"], ["B-LOC", "B-MISC"]])
    assert scores == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})
    with pytest.raises(ValueError, match="sentence 0: 1 predicted tags for 2 tokens"):
        ner_scores([["O", "O"]], [["O"]])


@pytest.mark.parametrize("text, language, normalized", [
    ("The Eiffel Tower!", "en", "eiffel tower"),
    ("Der Eiffelturm.", "de", "eiffelturm"),
    ("Der Eiffelturm.", "en", "der eiffelturm"),      # German articles only for German
    ("la casa, el perro", "es", "casa perro"),
    ("«Bonjour»", "fr", "bonjour"),                    # Unicode punctuation goes too
    ("北京大学 (PKU)", "zh", "北 京 大 学 pku"),          # Chinese: one token per character
])
def test_mlqa_normalisation(text, language, normalized):
    assert normalize_answer(text, language) == normalized


def test_qa_f1_and_exact_match():
    # [big, red, dog] against [red, dog]: P = 2/3, R = 1, F1 = 0.8.
    assert qa_f1("the big red dog", "a red dog", "en") == pytest.approx(0.8)
    # Characters [北, 京, 大, 学] against [北, 京]: P = 1/2, R = 1, F1 = 2/3.
    assert qa_f1("北京大学", "北京", "zh") == pytest.approx(2 / 3)
    assert qa_f1("北京大学", "北京", "en") == 0.0  # one whitespace token each, and they differ
    # q1 matches its second answer exactly; q2 is unanswered: F1 = EM = 50.
    scores = qa_scores({"q1": "Paris"}, {"q1": ["the city of Paris", "Paris"], "q2": ["Berlin"]}, "en")
    assert scores == {"f1": 50.0, "exact_match": 50.0}


def test_margin_scores_by_hand():
    source = np.array([[1.0, 0.0], [0.0, 1.0]])
    target = np.array([[1.0, 0.0], [0.6, 0.8]])
    # Cosines [[1, .6], [0, .8]]; k = 1: source densities (1, .8), target densities (1, .8).
    expected = np.array([[1 / 1.0, 0.6 / 0.9], [0 / 0.9, 0.8 / 0.8]])
    assert np.allclose(margin_scores(source, target, k=1), expected)
    assert retrieval_accuracy(margin_scores(source, target, k=1)) == 1.0


def test_margin_corrects_a_hub():
    def at(*degrees):
        return np.array([[np.cos(np.radians(d)), np.sin(np.radians(d))] for d in degrees])

    # Sources at 0, 50, 100 degrees; their targets at 10, 75, 130. The target at 75 is a hub: 25 degrees from both
    # the source at 50 (its own) and the source at 100, whose own target is 30 degrees away.
    source, target = at(0, 50, 100), at(10, 75, 130)
    assert list((source @ target.T).argmax(1)) == [0, 1, 1]
    # With k = 2 the hub's density (cos 25 twice) exceeds the third target's (cos 30, cos 80): the margin of
    # (100, 130) is cos 30 / ((0.886 + 0.520) / 2) = 1.23 against 1.01 for (100, 75).
    assert retrieval_accuracy(margin_scores(source, target, k=2)) == 1.0


def test_bucc_threshold_by_hand():
    candidates = [(0.9, True), (0.8, False), (0.7, True), (0.6, True), (0.5, False)]
    # Keeping the top 4: P = 3/4, R = 3/4 of 4 gold pairs, F1 = 0.75, the best of the five thresholds.
    best = best_threshold_f1(candidates, num_gold=4)
    assert best["threshold"] == 0.6 and best["f1"] == pytest.approx(0.75)
    # Equal scores are kept or dropped together: P = 1/2, R = 1.
    assert best_threshold_f1([(0.9, True), (0.9, False)], num_gold=1)["f1"] == pytest.approx(2 / 3)
