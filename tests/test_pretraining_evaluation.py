"""ernie_m.pretraining.evaluation: the held-out pairs, their scores with a unigram baseline, and the BTMLM gate."""
import math

import pytest

from ernie_m import ErnieMConfig, ErnieMForPretraining, ErnieMTokenizer
from ernie_m.objectives import BTMLM, CAMLM, MMLM, SpecialIds
from ernie_m.objectives.btmlm import BTMLMGate, pseudo_translation_quality
from ernie_m.pretraining import CorpusError, find_parallel_files
from ernie_m.pretraining.evaluation import HeldOutSet, evaluate_held_out

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
    objectives = [MMLM(special, len(tokenizer), 32), CAMLM(special, len(tokenizer), 32),
                  BTMLM(special, len(tokenizer), 32, target_languages=[0, 1])]
    scores = evaluate_held_out(model, held_out, objectives, seed=3)
    assert model.training
    assert set(scores) == {"mmlm_accuracy", "camlm_accuracy", "camlm_unigram_accuracy", "btmlm_distinct_share"}
    assert all(0 <= value <= 1 and not math.isnan(value) for value in scores.values())
    assert scores == evaluate_held_out(model, held_out, objectives, seed=3)


def test_the_gate_opens_on_gain_over_the_baseline_and_diversity():
    assert not BTMLMGate().enabled and BTMLMGate().ready({})
    gate = BTMLMGate(min_camlm_gain=0.05, min_distinct_share=0.2)
    assert gate.enabled
    assert gate.ready({"camlm_accuracy": 0.30, "camlm_unigram_accuracy": 0.20, "btmlm_distinct_share": 0.5})
    assert not gate.ready({"camlm_accuracy": 0.22, "camlm_unigram_accuracy": 0.20, "btmlm_distinct_share": 0.5})
    assert not gate.ready({"camlm_accuracy": 0.30, "camlm_unigram_accuracy": 0.20, "btmlm_distinct_share": 0.1})


class _Copying:
    """A stand-in model whose generation pass 'translates' each sentence by copying it, placeholder by placeholder."""

    training = False

    def __init__(self, num_languages):
        self.config = ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=10, num_languages=num_languages)

    def eval(self):
        pass

    def most_likely_tokens(self, input_ids, masked_positions, **_):
        import paddle

        chosen = []
        for row in input_ids.numpy():
            separator = list(row).index(self.sep)
            chosen.extend(row[1:separator])  # [CLS] x [SEP] [SEP] [MASK]*len(x) [SEP]
        return paddle.to_tensor(chosen)


def test_pseudo_translations_are_scored_with_chrf_against_their_own_references(tmp_path, tokenizer_dir):
    """A model that copies its source scores what the untranslated source scores, pair by pair: each
    pseudo-translation is decoded and set against the reference of its own pair."""
    from sacrebleu.metrics import CHRF

    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    (tmp_path / "en-de.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in PAIRS))
    (tmp_path / "en-ru.tsv").write_text("The quick fox.\tБыстрая лиса.\nWe learn models.\tМы изучаем модели.\n")
    held_out = HeldOutSet.from_files(find_parallel_files(str(tmp_path)), tokenizer, {"en": 0, "de": 1, "ru": 2},
                                     {"en", "de"}, max_pairs=5)
    assert [(t.target_language, t.with_parallel_data) for t in held_out.translations] == \
        [(0, True), (0, True), (0, False), (0, False)]
    special = SpecialIds.from_tokenizer(tokenizer)
    copying = _Copying(num_languages=3)
    copying.sep = special.sep
    btmlm = BTMLM(special, len(tokenizer), 64, target_languages=[0, 1])
    scores = pseudo_translation_quality(copying, btmlm, tokenizer, held_out.translations, seed=0)

    def chrf(group, hypotheses):
        references = [t.reference for t in held_out.translations if t.with_parallel_data == (group == "parallel")]
        return CHRF().corpus_score(hypotheses, [references]).score

    german, russian = [b for _, b in PAIRS], ["Быстрая лиса.", "Мы изучаем модели."]
    decoded = [tokenizer.convert_tokens_to_string(tokenizer.convert_ids_to_tokens(tokenizer.encode_batch_ids([t])[0]))
               for t in german + russian]
    assert scores["source_copy_chrf_parallel"] == pytest.approx(chrf("parallel", german))
    assert scores["source_copy_chrf_monolingual_only"] == pytest.approx(chrf("monolingual_only", russian))
    assert scores["btmlm_chrf_parallel"] == pytest.approx(chrf("parallel", decoded[:2]))
    assert scores["btmlm_chrf_monolingual_only"] == pytest.approx(chrf("monolingual_only", decoded[2:]))
    assert chrf("parallel", decoded[1::-1]) < scores["btmlm_chrf_parallel"] - 5  # swapped references score lower
