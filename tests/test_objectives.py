"""Pretraining objectives: batch invariants, CAMLM's leak-free property (with a TLM control), BTMLM's two passes."""

import numpy as np
import paddle
import pytest

import ernie_m
from ernie_m.objectives import (
    AUXILIARY, BTMLM, CAMLM, MAIN, MMLM, TLM, MaskingConfig, Monolingual, Parallel, SpecialIds, mask_tokens,
    masked_lm_loss, model_inputs,
)

VOCAB = 64
SPECIAL = SpecialIds(cls=0, pad=1, sep=2, unk=3, mask=VOCAB - 1)


def tiny_model(num_languages=2):
    config = ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=VOCAB, num_languages=num_languages,
                                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return ernie_m.ErnieMForPretraining(config)


def random_pair(rng, low=2, high=9):
    return Parallel(rng.integers(4, VOCAB - 1, rng.integers(low, high)), 0,
                    rng.integers(4, VOCAB - 1, rng.integers(low, high)), 1)


def test_masking_rates_and_forced_masks():
    rng = np.random.default_rng(0)
    tokens = rng.integers(4, VOCAB - 1, 20000)
    corrupted, chosen, labels = mask_tokens(tokens, MaskingConfig(), rng, SPECIAL.mask, VOCAB, SPECIAL.as_array())
    assert len(chosen) == 3000 and np.array_equal(labels, tokens[chosen])
    shown = corrupted[chosen]
    assert abs((shown == SPECIAL.mask).mean() - 0.8) < 0.03
    unchanged = (shown == tokens[chosen]).mean()  # 10% kept + random draws that hit the same id
    assert 0.08 < unchanged < 0.13
    assert not np.isin(shown[shown != SPECIAL.mask], SPECIAL.as_array()).any()
    untouched = np.setdiff1d(np.arange(len(tokens)), chosen)
    assert np.array_equal(corrupted[untouched], tokens[untouched])
    forced, chosen, _ = mask_tokens(tokens[:10], MaskingConfig(), rng, SPECIAL.mask, VOCAB, SPECIAL.as_array(),
                                    forced_mask=True)
    assert len(chosen) == 2 and (forced[chosen] == SPECIAL.mask).all()


def test_whole_word_masking_takes_whole_words():
    word_starts = np.zeros(VOCAB, dtype=bool)
    word_starts[4:20] = True  # ids 4..19 begin a word, 20.. continue one
    tokens = np.array([4, 30, 31, 5, 6, 32, 33, 34, 7, 35])
    words = np.cumsum(word_starts[tokens]) - 1
    rng = np.random.default_rng(1)
    for _ in range(20):
        _, chosen, _ = mask_tokens(tokens, MaskingConfig(mask_prob=0.3, whole_word=True), rng, SPECIAL.mask,
                                   VOCAB, SPECIAL.as_array(), word_starts)
        for word in set(words[chosen]):
            assert set(np.flatnonzero(words == word)) <= set(chosen)


@pytest.mark.parametrize("objective_class", [MMLM, TLM, CAMLM])
def test_batch_invariants(objective_class):
    rng = np.random.default_rng(2)
    objective = objective_class(SPECIAL, VOCAB, max_length=16)
    if objective_class is MMLM:
        examples = [Monolingual(rng.integers(4, VOCAB - 1, rng.integers(1, 30)), 1) for _ in range(6)]
    else:
        examples = [random_pair(rng, 1, 20) for _ in range(6)]
    batch = objective(examples, rng)
    batch_size, seq_len = batch.input_ids.shape
    assert seq_len <= 16 and seq_len % 8 == 0
    assert batch.attention_mask.shape == (batch_size, seq_len, seq_len)
    assert (batch.attention_mask.sum(axis=2) >= 1).all()  # no query row sees nothing
    flat_ids = batch.input_ids.reshape(-1)
    assert not np.isin(flat_ids[batch.masked_positions], [SPECIAL.cls, SPECIAL.sep, SPECIAL.pad]).any()
    assert not np.isin(batch.masked_labels, SPECIAL.as_array()).any()
    assert (batch.input_ids[:, 0] == SPECIAL.cls).all()
    assert batch.stats["examples"] == 6


def test_empty_sides_are_dropped_and_counted():
    rng = np.random.default_rng(3)
    empty = np.array([], dtype=np.int64)
    examples = [Parallel(empty, 0, np.array([5, 6]), 1), random_pair(rng), Parallel(np.array([5]), 0, empty, 1)]
    batch = CAMLM(SPECIAL, VOCAB)(examples, rng)
    assert batch.input_ids.shape[0] == 1 and batch.stats["dropped_empty"] == 2
    assert CAMLM(SPECIAL, VOCAB)(examples[:1], rng) is None
    assert MMLM(SPECIAL, VOCAB)([Monolingual(empty, 0)], rng) is None


def test_camlm_layout_and_truncation():
    rng = np.random.default_rng(4)
    pair = Parallel(np.arange(10, 30), 0, np.arange(30, 34), 1)
    batch = CAMLM(SPECIAL, VOCAB, max_length=16, both_directions=True)([pair], rng)
    assert batch.input_ids.shape[0] == 2
    ids = batch.input_ids[0]
    assert list(ids[:1]) == [SPECIAL.cls] and (ids == SPECIAL.sep).sum() == 3 and len(ids) == 16
    # longer side trimmed first: 20 + 4 tokens with 12 to share -> 8 + 4
    assert list(batch.position_ids[0]) == list(range(10)) + list(range(6))
    groups = batch.masked_groups
    assert set(groups) == {MAIN, AUXILIARY}


def embeddings_gradient(model, batch, objective_positions):
    """d(loss at the given predictions) / d(input embeddings), one norm per token of row 0."""
    inputs = model_inputs(model, batch)
    embeddings = model.ernie_m.embeddings.word_embeddings(inputs.pop("input_ids")).detach()
    embeddings.stop_gradient = False
    logits = model(inputs_embeds=embeddings, **inputs)
    labels = paddle.to_tensor(batch.masked_labels)
    per_token = paddle.nn.functional.cross_entropy(logits, labels, reduction="none").reshape([-1])
    per_token[paddle.to_tensor(objective_positions)].sum().backward()
    return np.linalg.norm(embeddings.grad.numpy()[0], axis=-1)


@pytest.mark.parametrize("predicted", [0, 1])
def test_camlm_prediction_sees_the_other_side_only_and_tlm_leaks(predicted):
    """The loss at masked tokens of x has zero gradient w.r.t. x's other tokens and non-zero w.r.t. y's."""
    paddle.seed(0)
    model = tiny_model()
    model.eval()
    rng = np.random.default_rng(5)
    pair = Parallel(rng.integers(4, VOCAB - 1, 7), 0, rng.integers(4, VOCAB - 1, 6), 1)
    camlm = CAMLM(SPECIAL, VOCAB, masking=MaskingConfig(mask_prob=0.3), context_masking=MaskingConfig())

    class FixedDirection:  # a generator whose first draw picks the direction under test
        def __init__(self, inner):
            self.inner = inner

        def integers(self, *args, **kwargs):
            return predicted if args == (2,) else self.inner.integers(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    batch = camlm([pair], FixedDirection(rng))
    first_len = len(pair.source) + 2
    seq = batch.input_ids.shape[1]
    real = first_len + len(pair.target) + 2
    x_range = range(0, first_len) if predicted == 0 else range(first_len, real)
    y_range = range(first_len, real) if predicted == 0 else range(0, first_len)
    main = np.flatnonzero(batch.masked_groups == MAIN)
    masked_x = set(batch.masked_positions[main] % seq)
    grads = embeddings_gradient(model, batch, main)
    x_unmasked = [i for i in x_range if i not in masked_x]
    assert len(x_unmasked) >= 4 and len(masked_x) >= 1
    assert np.abs(grads[x_unmasked]).max() == 0.0, "CAMLM leaks x's own context"
    assert (grads[list(y_range)] > 1e-6).all(), "CAMLM must use every token of y"

    # The control: the same pair with TLM's full attention does leak x's context into x's predictions.
    tlm_batch = CAMLM(SPECIAL, VOCAB, masking=MaskingConfig(mask_prob=0.3))([pair], FixedDirection(rng))
    tlm_batch.attention_mask[:] = 1
    main = np.flatnonzero(tlm_batch.masked_groups == MAIN)
    masked_x = set(tlm_batch.masked_positions[main] % seq)
    grads = embeddings_gradient(model, tlm_batch, main)
    assert np.abs(grads[[i for i in x_range if i not in masked_x]]).max() > 1e-6


def test_btmlm_generation_is_gradient_free_and_training_uses_camlm_layout():
    paddle.seed(0)
    model = tiny_model()
    model.train()
    rng = np.random.default_rng(6)
    btmlm = BTMLM(SPECIAL, VOCAB, max_length=20, target_languages=[0, 1])
    examples = [Monolingual(rng.integers(4, VOCAB - 1, n), 0) for n in (3, 12, 30)]
    batch = btmlm(examples, rng, model=model)
    assert model.training  # restored after the generation pass
    assert all(p.grad is None for p in model.parameters())  # generation left no gradient behind
    assert batch.stats["generated_tokens"] == 3 + 8 + 8  # k = len(x), x cut so [CLS] x [SEP][SEP] y' [SEP] fits
    assert batch.input_ids.shape[1] <= 24
    for row in range(3):
        ids = batch.input_ids[row]
        boundary = int(np.flatnonzero(ids == SPECIAL.sep)[0]) + 1
        end = int(np.flatnonzero(ids == SPECIAL.sep)[-1])
        pseudo = ids[boundary + 1:end]
        assert not np.isin(pseudo, SPECIAL.as_array()).any()  # special tokens excluded from pseudo-tokens
        assert (batch.language_ids[row, boundary:end + 1] == 1).all()  # the pseudo side is in the target language
        # x tokens see y' and themselves; y' sees only y'
        att = batch.attention_mask[row]
        assert att[1, boundary:end + 1].all() and att[1, 2:boundary].sum() == 0
        assert att[boundary:end + 1, :boundary].sum() == 0
    loss, metrics = masked_lm_loss(model, batch)
    loss.backward()
    assert np.isfinite(float(loss)) and "btmlm_accuracy" in metrics
    with pytest.raises(ValueError, match="pass model="):
        btmlm(examples, rng)
    only_target = BTMLM(SPECIAL, VOCAB, target_languages=[0])
    assert only_target([Monolingual(np.array([5, 6]), 0)], rng, model=model) is None


def test_btmlm_sampling_draws_from_the_distribution():
    paddle.seed(0)
    model = tiny_model()
    rng = np.random.default_rng(7)
    prepared = [(np.array([5, 6, 7]), 0, 1, 3)]
    greedy = BTMLM(SPECIAL, VOCAB, target_languages=[1]).generate(model, prepared, rng)[0]
    sampler = BTMLM(SPECIAL, VOCAB, target_languages=[1], sample=True, temperature=5.0)
    draws = {tuple(sampler.generate(model, prepared, rng)[0]) for _ in range(10)}
    assert len(draws) > 1  # sampling varies; greedy decoding does not depend on the generator
    again = BTMLM(SPECIAL, VOCAB, target_languages=[1]).generate(model, prepared, np.random.default_rng(99))[0]
    assert list(again) == list(greedy)
    assert all(not np.isin(np.array(d), SPECIAL.as_array()).any() for d in draws)


def test_objective_benchmark_script_runs_and_reports_ratios(tmp_path):
    import json
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / "bench.json"
    subprocess.run(
        [sys.executable, "-m", "tools.bench.objectives", "--preset", "ernie-m-tiny", "--vocab_size", "500", "--batch",
         "2", "--length", "16", "--repeats", "1", "--json", str(out)],
        check=True, capture_output=True, timeout=240, cwd=root,
    )
    figures = json.loads(out.read_text())
    assert figures["camlm_step_s"] > 0 and figures["btmlm_step_s"] > 0
    assert figures["btmlm_over_camlm"] == figures["btmlm_step_s"] / figures["camlm_step_s"]
