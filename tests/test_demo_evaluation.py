"""The demo's measures and statistics (tools/demo/evaluate.py, stats.py, report.py) on inputs with known answers."""
import math

import numpy as np
import pytest

from tools.demo.evaluate import accuracy_at_1, subword_overlap, tfidf_retrieval
from tools.demo.report import choose_layer, overlap_halves, summarize
from tools.demo.stats import mean_sd, paired_comparison


class WordTokenizer:
    """Whitespace 'subwords' over a fixed vocabulary: enough for the TF-IDF and overlap measures."""

    def __init__(self, texts):
        self.vocab = {w: i for i, w in enumerate(sorted({w for t in texts for w in t.split()}))}

    def __len__(self):
        return len(self.vocab)

    def encode_batch_ids(self, texts):
        return [[self.vocab[w] for w in t.split()] for t in texts]


def test_accuracy_at_1_counts_both_directions():
    first = np.eye(4)
    assert accuracy_at_1(first, first, center=False).tolist() == [1.0] * 4
    swapped = first[[1, 0, 2, 3]]
    assert accuracy_at_1(first, swapped, center=False).tolist() == [0.0, 0.0, 1.0, 1.0]


def test_tfidf_finds_shared_words_and_nothing_without_them():
    shared = [("the red house", "la red house"), ("a blue car", "una blue car"), ("my green tree", "mi green tree")]
    tokenizer = WordTokenizer([t for pair in shared for t in pair])
    assert tfidf_retrieval(tokenizer, shared).tolist() == [[1.0, 1.0, 1.0]]
    disjoint = [("one two", "uno dos"), ("three four", "tres cuatro"), ("five six", "cinco seis")]
    tokenizer = WordTokenizer([t for pair in disjoint for t in pair])
    assert tfidf_retrieval(tokenizer, disjoint).mean() < 0.5  # all-zero similarities: the first column wins
    assert subword_overlap(tokenizer, disjoint).tolist() == [0.0, 0.0, 0.0]


def test_halves_split_by_overlap():
    halves = overlap_halves([0.9, 0.1, 0.5, 0.0])
    assert halves["low"].tolist() == [1, 3] and halves["high"].tolist() == [0, 2]


def test_layer_is_chosen_on_dev_never_on_test():
    run = {"retrieval": {"pairs_dev": {"de": [[0.1, 0.1], [0.9, 0.9], [0.2, 0.2]]},
                         "pairs_test": {"de": [[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]}}}
    assert choose_layer([run], ["de"]) == 1


def test_mean_sd_and_paired_comparison_verdicts():
    assert mean_sd([0.1, 0.3]) == pytest.approx({"mean": 0.2, "sd": math.sqrt(0.02), "n": 2})
    assert mean_sd([0.4])["sd"] == 0.0
    clear = paired_comparison([0.50, 0.52, 0.51], [0.30, 0.31, 0.30])
    assert clear["verdict"] == "ahead of" and clear["ci95"][0] > 0
    assert paired_comparison([0.30, 0.31, 0.30], [0.50, 0.52, 0.51])["verdict"] == "behind"
    noisy = paired_comparison([0.50, 0.20, 0.45], [0.30, 0.40, 0.35])
    assert noisy["verdict"] == "not distinguishable from"
    assert paired_comparison([0.9], [0.1])["verdict"] == "not distinguishable from"  # one seed tells nothing
    cells = paired_comparison([0.5, 0.5], [0.4, 0.4], [[0.6, 0.4], [0.6, 0.4]], [[0.5, 0.5], [0.5, 0.5]])
    assert (cells["cells_ahead"], cells["cells"]) == (2, 4)


def _run(dev, test, transfer=None):
    layers = lambda v: [[v, v], [v, v]]  # noqa: E731  two layers, two pairs, every pair scoring v
    run = {"retrieval": {"pairs_dev": {"de": layers(dev), "it": layers(dev)},
                         "pairs_test": {"de": layers(test), "it": layers(test)},
                         "retrieval": {"de": layers(test), "it": layers(test)}},
           "held_out": {"mmlm_accuracy": 0.1, "camlm_accuracy": 0.2, "camlm_unigram_accuracy": 0.05}}
    if transfer is not None:
        run["transfer"] = {"en": transfer, "de": transfer, "it": transfer}
    return run


def test_summary_gains_are_paired_against_the_untrained_seeds():
    results = {"parallel_languages": ["de"], "monolingual_only_languages": ["it"],
               "overlap": {"de": [0.1, 0.9], "it": [0.2, 0.3]},
               "models": {"untrained": [_run(0.1, 0.10, 0.3), _run(0.1, 0.12, 0.3), _run(0.1, 0.11, 0.3)],
                          "mmlm": [_run(0.2, 0.20, 0.4), _run(0.2, 0.22, 0.4), _run(0.2, 0.21, 0.4)],
                          "ernie-m": [_run(0.5, 0.50, 0.6), _run(0.5, 0.52, 0.6), _run(0.5, 0.51, 0.6)]}}
    summary = summarize(results)
    gain = summary["gain_over_untrained"]["ernie-m"]["retrieval:parallel_languages"]
    assert gain["difference"] == pytest.approx(0.40) and gain["verdict"] == "ahead of"
    (first, *_) = summary["comparisons"]
    assert (first["ours"], first["theirs"], first["verdict"]) == ("ernie-m", "mmlm", "ahead of")
    assert summary["table"]["ernie-m"]["retrieval"]["de"]["mean"] == pytest.approx(0.51)
