"""The objectives align the representation, not only the LM head: synthetic languages with disjoint vocabularies
(tools/demo/synthetic_alignment.py), where nothing but the objective can connect them.

Measured with these seeds on a 2-core CPU (docs/demo.md, "The controlled tests", has the full runs): CAMLM's
best-layer retrieval on 200 held-out pairs is far above MMLM's, which has no shared token to anchor on (chance is
0.5%); CAMLM predicts a side from the other side alone, which full attention (TLM) does not; and BTMLM takes a
language without parallel data further than its no-BTMLM control does."""
import numpy as np
import pytest

from tools.demo.synthetic_alignment import (
    SyntheticLanguages, back_translation_quality, btmlm_experiment, build_model, camlm_accuracy, held_out_words,
    retrieval_by_layer, train,
)

STEPS = 400


@pytest.fixture(scope="module")
def languages():
    return SyntheticLanguages(words=24, seed=0)


@pytest.fixture(scope="module")
def camlm_model(languages):
    return train(languages, [{"camlm": 0.5, "mmlm": 0.5}], STEPS, seed=0, camlm_mask_prob=0.5)


def test_camlm_aligns_disjoint_vocabularies_where_mmlm_cannot(languages, camlm_model):
    sentences = held_out_words(languages, 200)
    untrained = max(retrieval_by_layer(build_model(languages, seed=0), languages, sentences, 0, 1))
    mmlm = max(retrieval_by_layer(train(languages, [{"mmlm": 1.0}], STEPS, seed=0), languages, sentences, 0, 1))
    camlm = max(retrieval_by_layer(camlm_model, languages, sentences, 0, 1))
    assert untrained < 0.05, untrained
    assert camlm > 0.4 and camlm > mmlm + 0.25, (camlm, mmlm, untrained)


def _predicts_from_the_other_side_alone(model, languages) -> bool:
    """Masked tokens of A are found from B (far above the unigram rate), and with B's tokens all masked they are not
    found at all (the unigram rate at most): nothing of A's own sentence reaches them."""
    sentences = held_out_words(languages, 200)
    real = camlm_accuracy(model, languages, sentences, "real")
    masked = camlm_accuracy(model, languages, sentences, "masked")
    return real["accuracy"] > real["unigram_accuracy"] + 0.3 and masked["accuracy"] < masked["unigram_accuracy"] + 0.02


def test_camlm_predicts_one_side_from_the_other_side_alone(languages, camlm_model):
    assert _predicts_from_the_other_side_alone(camlm_model, languages)


def test_the_camlm_check_fails_when_camlm_attends_like_tlm(languages, monkeypatch):
    """The check above is what tells CAMLM from TLM, where the retrieval test cannot (TLM aligns too): with CAMLM's
    attention replaced by full attention, the trained model finds masked tokens from its own sentence."""
    import ernie_m.objectives.camlm as camlm_module

    monkeypatch.setattr(camlm_module, "cross_attention", lambda first, second, predicted: np.ones(
        (first + second, first + second), dtype=bool))
    full_attention = train(languages, [{"camlm": 0.5, "mmlm": 0.5}], STEPS, seed=0, camlm_mask_prob=0.5)
    assert not _predicts_from_the_other_side_alone(full_attention, languages)


def test_btmlm_generation_writes_the_target_language_and_translates(languages, camlm_model):
    quality = back_translation_quality(camlm_model, languages, source=0, target=1)
    assert quality["in_target_language"] > 0.95, quality
    assert quality["token_accuracy"] > 5 * quality["chance"], quality
    # Into the other direction too: nothing is tied to language 0 being the source.
    reverse = back_translation_quality(camlm_model, languages, source=1, target=0)
    assert reverse["in_target_language"] > 0.95 and reverse["token_accuracy"] > 5 * reverse["chance"], reverse


def test_untrained_model_generates_no_translation(languages):
    quality = back_translation_quality(build_model(languages, seed=0), languages, source=0, target=1)
    assert quality["token_accuracy"] < 3 * quality["chance"], quality
    assert np.isfinite(quality["in_target_language"])


def test_btmlm_reaches_a_language_without_parallel_data_beyond_its_control():
    """A and B have pairs, C only monolingual text with 12 of its 24 words written as A writes them. From one
    stage-1 model (CAMLM + MMLM), stage 2 with BTMLM back-translating C ends with C closer to A than stage 2
    without it: A-C retrieval and C -> A pseudo-translation accuracy on C's own words, seed 0 (the full run's
    seeds and paired interval are in docs/demo.md)."""
    runs = btmlm_experiment(seed=0, steps_per_stage=300, stage_one_steps=600, anchors=12, btmlm_sources=(2,),
                            arms=("no-btmlm", "ernie-m"))
    control, ernie_m = runs["no-btmlm"], runs["ernie-m"]
    assert max(ernie_m["retrieval_a_c"]) > max(control["retrieval_a_c"]) + 0.02, (ernie_m, control)
    assert ernie_m["translation_c_to_a"]["non_anchor_accuracy"] > \
        control["translation_c_to_a"]["non_anchor_accuracy"] + 0.03, (ernie_m, control)
    assert max(ernie_m["retrieval_a_b"]) > 0.9  # what CAMLM gave A and B is kept
