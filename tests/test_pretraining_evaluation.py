"""ernie_m.pretraining.evaluation: the held-out pairs, their scores with a unigram baseline, and the BTMLM gate."""
import math

import pytest

from ernie_m import ErnieMConfig, ErnieMForPretraining, ErnieMTokenizer
from ernie_m.objectives import BTMLM, SpecialIds
from ernie_m.pretraining import CorpusError, find_parallel_files
from ernie_m.pretraining.evaluation import BTMLMGate, HeldOutSet, evaluate_held_out

PAIRS = [("The fox jumps over the dog.", "Der Fuchs springt über den Hund."),
         ("We learn machine translation.", "Wir lernen maschinelle Übersetzung.")]


def _held_out(tmp_path, tokenizer, trained):
    (tmp_path / "en-de.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in PAIRS * 3) + "\tempty side\n")
    return HeldOutSet.from_files(find_parallel_files(str(tmp_path)), tokenizer, {"en": 0, "de": 1, "ru": 2},
                                 trained, max_pairs=5)


def test_pairs_between_parallel_languages_score_camlm_and_every_side_scores_mlm(tmp_path, tokenizer_dir):
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    held_out = _held_out(tmp_path, tokenizer, {"en", "de"})
    assert len(held_out.parallel) == 5 and len(held_out.monolingual) == 10  # max_pairs read, both sides
    assert _held_out(tmp_path, tokenizer, {"en", "ru"}).parallel == []  # de has no parallel training data
    with pytest.raises(CorpusError, match="held-out language 'de' is not among the configured languages"):
        HeldOutSet.from_files(find_parallel_files(str(tmp_path)), tokenizer, {"en": 0, "ru": 1})


def test_scores_are_accuracies_with_a_baseline_and_the_mode_is_restored(tmp_path, tokenizer_dir):
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    held_out = _held_out(tmp_path, tokenizer, {"en", "de"})
    model = ErnieMForPretraining(ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=len(tokenizer), num_languages=3))
    model.train()
    special = SpecialIds.from_tokenizer(tokenizer)
    btmlm = BTMLM(special, len(tokenizer), 32, target_languages=[0, 1])
    scores = evaluate_held_out(model, held_out, special, len(tokenizer), 32, btmlm=btmlm, seed=3)
    assert model.training
    assert set(scores) == {"mmlm_accuracy", "camlm_accuracy", "camlm_unigram_accuracy", "btmlm_distinct_share"}
    assert all(0 <= value <= 1 and not math.isnan(value) for value in scores.values())
    assert scores == evaluate_held_out(model, held_out, special, len(tokenizer), 32, btmlm=btmlm, seed=3)


def test_the_gate_opens_on_gain_over_the_baseline_and_diversity():
    assert not BTMLMGate().enabled and BTMLMGate().ready({})
    gate = BTMLMGate(min_camlm_gain=0.05, min_distinct_share=0.2)
    assert gate.enabled
    assert gate.ready({"camlm_accuracy": 0.30, "camlm_unigram_accuracy": 0.20, "btmlm_distinct_share": 0.5})
    assert not gate.ready({"camlm_accuracy": 0.22, "camlm_unigram_accuracy": 0.20, "btmlm_distinct_share": 0.5})
    assert not gate.ready({"camlm_accuracy": 0.30, "camlm_unigram_accuracy": 0.20, "btmlm_distinct_share": 0.1})
