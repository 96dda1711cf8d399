"""Hostile input, by property-based fuzzing (hypothesis): the tokenizer, the batch builders, the corpus readers,
trainer-state files and configuration dicts.

Each property says what must hold for every input, not for a chosen few; hypothesis searches for a counterexample
(a few hundred cases a property, derandomized so CI sees the same cases each run).
"""
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ernie_m import ErnieMTokenizer
from ernie_m.objectives import CAMLM, MMLM, TLM, Monolingual, Parallel, SpecialIds
from ernie_m.pretraining import CorpusError, LineReader

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
VOCAB = 300
SPECIAL = SpecialIds(mask=VOCAB - 1)


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    return ErnieMTokenizer.from_pretrained(tokenizer_dir)


# ---- tokenizer ----------------------------------------------------------------------------------------------------
# Any Python str: lone surrogates included (hypothesis leaves them out of st.text by default).
any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=300)


@FUZZ
@given(text=any_text)
def test_the_tokenizer_takes_any_unicode(tokenizer, text):
    encoded = tokenizer(text, return_offsets_mapping=True)
    ids = encoded["input_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert all(0 <= i < len(tokenizer) for i in ids)
    offsets = encoded["offset_mapping"]
    assert len(offsets) == len(ids)
    assert all(0 <= start <= end <= len(text) for start, end in offsets)
    assert tokenizer([text, text])["input_ids"] == [ids, ids]  # the batched path agrees


@FUZZ
@given(texts=st.lists(any_text, min_size=1, max_size=6), max_length=st.integers(3, 40),
       padding=st.sampled_from([False, True, "max_length"]))
def test_batches_of_any_unicode_keep_their_shape(tokenizer, texts, max_length, padding):
    encoded = tokenizer(texts, max_length=max_length, truncation=True, padding=padding)
    rows, masks = encoded["input_ids"], encoded["attention_mask"]
    assert len(rows) == len(texts)
    for row, mask in zip(rows, masks):
        assert len(row) == len(mask) and sum(mask) <= max_length
        assert all(m == 1 for m in mask[:sum(mask)]) and all(m == 0 for m in mask[sum(mask):])
        assert all(i == tokenizer.pad_token_id for i in row[sum(mask):])
    if padding:
        assert len({len(row) for row in rows}) == 1


# ---- batch builders -----------------------------------------------------------------------------------------------
tokens = st.lists(st.integers(4, VOCAB - 2), max_size=90).map(lambda xs: np.array(xs, dtype=np.int64))
languages = st.integers(0, 3)


def _check_batch(batch, max_length):
    if batch is None:
        return  # every example dropped (too short to mask): the caller draws again
    b, length = batch.input_ids.shape
    assert length <= max_length + 7  # padded up to a multiple of 8
    assert batch.position_ids.shape == batch.language_ids.shape == (b, length)
    assert batch.attention_mask.shape == (b, length, length)
    assert ((batch.input_ids >= 0) & (batch.input_ids < VOCAB)).all()
    real = batch.input_ids != SPECIAL.pad
    assert int(real.sum()) == batch.real_tokens
    for row in range(b):
        keep = batch.attention_mask[row].astype(bool)
        assert keep.any(axis=1).all()  # no query attends to nothing (an all-masked softmax row is NaN)
        assert not keep[np.ix_(real[row], ~real[row])].any()  # real tokens never see padding
    flat = real.reshape(-1)
    positions = batch.masked_positions
    assert len(positions) == len(batch.masked_labels) == len(batch.masked_groups) > 0
    assert len(set(positions.tolist())) == len(positions)
    assert ((positions >= 0) & (positions < b * length)).all() and flat[positions].all()
    assert ((batch.masked_labels >= 0) & (batch.masked_labels < VOCAB)).all()


@FUZZ
@given(examples=st.lists(st.tuples(tokens, languages, tokens, languages), min_size=1, max_size=5),
       max_length=st.integers(8, 64), seed=st.integers(0, 2 ** 16), objective=st.sampled_from(["camlm", "tlm"]))
def test_parallel_batch_builders_hold_their_invariants(examples, max_length, seed, objective):
    builder = (CAMLM if objective == "camlm" else TLM)(SPECIAL, VOCAB, max_length=max_length)
    pairs = [Parallel(a, la, b, lb) for a, la, b, lb in examples]
    _check_batch(builder(pairs, np.random.default_rng(seed)), max_length)


@FUZZ
@given(examples=st.lists(st.tuples(tokens, languages), min_size=1, max_size=6), max_length=st.integers(8, 64),
       seed=st.integers(0, 2 ** 16))
def test_the_monolingual_batch_builder_holds_its_invariants(examples, max_length, seed):
    builder = MMLM(SPECIAL, VOCAB, max_length=max_length)
    _check_batch(builder([Monolingual(t, lang) for t, lang in examples], np.random.default_rng(seed)), max_length)


# ---- corpus readers -----------------------------------------------------------------------------------------------
line_pieces = st.one_of(
    st.binary(max_size=40),  # anything, invalid UTF-8 included
    st.text(max_size=40).map(lambda s: s.encode("utf-8")),
    st.sampled_from([b"\t", b"\r\n", b"\n", b"\xef\xbb\xbf", b"\x00", b"a\tb", b"  \t  ", b"\xff\xfe"]),
)


@FUZZ
@given(pieces=st.lists(line_pieces, max_size=30), columns=st.sampled_from([1, 2]), giant=st.booleans())
def test_corpus_readers_take_any_bytes(tmp_path_factory, pieces, columns, giant):
    path = tmp_path_factory.mktemp("fuzz") / "corpus.txt"
    data = b"".join(pieces)
    if giant:
        data += b"x" * (LineReader.max_line_bytes + 10) + b"\n" + data  # a line past the limit, with no tab
    path.write_bytes(data)
    reader = LineReader(str(path), columns=columns)
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    good = []
    try:
        for offset, fields in reader:
            if reader.epoch >= 1:  # the first line of a second pass: the first pass is complete
                good.append((data[:offset].count(b"\n"), None))
                break
            good.append((data[:offset].count(b"\n"), fields))  # the line's number, from its byte offset
    except CorpusError as error:
        assert "no usable line" in str(error)  # the one documented refusal: a file with nothing to train on
        assert not good
        return
    # Every line of the pass is either returned well formed or counted as bad, with its reason. (Reaching the
    # second pass's first good line also counted that pass's bad lines before it: the first good line's number.)
    second_pass = good.pop()
    assert len(good) + sum(reader.bad_lines.values()) - second_pass[0] == lines
    assert all(len(fields) == columns and all(f and f == f.strip() for f in fields) for _, fields in good)
    assert all(0 <= number < lines for number, _ in good)
    if giant:
        assert reader.bad_lines["too_long"] >= 1


# ---- checkpoints and configuration --------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)
trainer_states = st.one_of(
    json_values,
    st.fixed_dictionaries({"step": json_values, "data": json_values}, optional={"btmlm_ready_at": json_values}),
    st.fixed_dictionaries({"step": st.integers(-3, 10**6), "data": st.lists(json_values, max_size=3)}))


@FUZZ
@given(state=trainer_states)
def test_any_trainer_state_file_is_read_or_refused_in_one_line_naming_it(tmp_path_factory, state):
    from ernie_m.pretraining.trainer import data_positions
    from ernie_m.training.checkpoints import CheckpointManager

    directory = tmp_path_factory.mktemp("state")
    (directory / "trainer_state.json").write_text(json.dumps(state))
    try:
        loaded = CheckpointManager.load_trainer_state(str(directory))
        positions = data_positions(loaded, str(directory))  # pretraining's own entry
    except ValueError as error:
        assert str(error).startswith(str(directory / "trainer_state.json")) and "\n" not in str(error)
        return
    assert isinstance(loaded["step"], int) and loaded["step"] >= 0 and isinstance(positions, list)


config_sections = {"model": ["preset", "init_from", "overrides"], "data": ["alpha", "num_workers", "pool_size"],
                   "optimizer": ["lr", "beta2", "warmup_steps"], "train": ["seed", "amp", "save_steps", "sharding"],
                   "btmlm": ["sample", "target_languages"], "camlm": ["mask_prob"]}
config_dicts = st.fixed_dictionaries(
    {"tokenizer": st.just("t"),
     "stages": st.lists(st.fixed_dictionaries({"name": st.text(max_size=4), "steps": json_values,
                                               "objectives": st.dictionaries(st.sampled_from(
                                                   ["mmlm", "camlm", "xlm"]), json_values, max_size=2)}),
                        max_size=2)},
    optional={section: st.dictionaries(st.sampled_from(fields + ["typo"]), json_values, max_size=3)
              for section, fields in config_sections.items()})


@FUZZ
@given(data=config_dicts)
def test_any_config_dict_builds_or_is_refused_in_one_line_naming_the_field(data):
    from ernie_m.pretraining.config import ConfigError, PretrainingConfig

    try:
        config = PretrainingConfig.from_dict(data)
    except ConfigError as error:
        message = str(error)
        assert "\n" not in message and ":" in message
        field = message.split(":")[0]
        assert field.split(".")[0] in {"config", "tokenizer", "stages", "languages", *config_sections}, message
        return
    assert config.schedule_steps > 0 and config.optimizer.lr > 0 and config.stages
