"""Our classes where PaddleNLP's ErnieM classes are expected: the same forward parameters in the same order (ours
after them), positional calls, the encoder's key/value cache, and a vocabulary without ERNIE-M's special tokens."""
import inspect
import io
import os

import numpy as np
import paddle
import paddlenlp.transformers as paddlenlp_models
import pytest
import sentencepiece as spm

import ernie_m
from tests.test_modeling import HEADS, make_pair, max_diff, random_batch


def _parameters(cls):
    return [name for name in inspect.signature(cls.forward).parameters if name != "self"]


@pytest.mark.parametrize("name", HEADS)
def test_paddlenlps_forward_parameters_come_first_in_paddlenlps_order(name):
    theirs = _parameters(getattr(paddlenlp_models, name))
    ours = _parameters(getattr(ernie_m, name))
    assert ours[:len(theirs)] == theirs
    assert "language_ids" in ours[len(theirs):]  # this project's addition comes after them


def _positional(name, ids, mask, labels):
    """Arguments in PaddleNLP's positional order: ids, positions, mask, then the head's labels, inputs_embeds,
    output_hidden_states, output_attentions, return_dict."""
    positions = paddle.arange(ids.shape[-1], dtype="int64").expand(ids.shape)
    if name == "ErnieMModel":  # ..., inputs_embeds, past_key_values, use_cache, hidden states, attentions, dict
        return (ids, positions, mask, None, None, False, True, True, True)
    if name == "UIEM":
        return (ids, positions, mask)
    if name == "ErnieMForQuestionAnswering":
        return (ids, positions, mask, labels, labels, None, True, True, True)
    return (ids, positions, mask, labels, None, True, True, True)


@pytest.mark.parametrize("name", HEADS)
def test_every_class_called_positionally_gives_paddlenlps_outputs(name):
    paddle.seed(3)
    ours, theirs = make_pair(name, "ernie-m-tiny")
    choices = 2 if name == "ErnieMForMultipleChoice" else None
    ids, mask = random_batch(300, choices=choices)
    labels = paddle.to_tensor(np.random.randint(0, choices or 3, [3, 11] if name == "ErnieMForTokenClassification"
                                                else [3]))
    with paddle.no_grad():
        mine = ours(*_positional(name, ids, mask, labels))
        reference = theirs(*[x.clone() if paddle.is_tensor(x) else x for x in _positional(name, ids, mask, labels)])
    if name == "UIEM":
        assert max_diff(mine, reference) < 1e-5
        return
    assert set(mine.keys()) == set(reference.keys())
    for key in reference.keys():
        if key in ("hidden_states", "attentions"):
            assert max_diff(mine[key], reference[key]) < 1e-5
        elif reference[key] is not None:
            assert float((mine[key] - reference[key]).abs().max()) < 1e-5, key


def _tiny_pair(seed=5):
    paddle.seed(seed)
    return make_pair("ErnieMModel", "ernie-m-tiny")


def test_use_cache_returns_each_layers_keys_and_values_as_paddlenlp_does():
    ours, theirs = _tiny_pair()
    ids, _ = random_batch(300, batch=2, seq_len=6)
    with paddle.no_grad():
        mine = ours(ids, use_cache=True, return_dict=True)
        reference = theirs(ids, use_cache=True, return_dict=True)
        plain = ours(ids, return_dict=True)
    config = ours.config
    assert len(mine.past_key_values) == config.num_hidden_layers
    head_dim = config.hidden_size // config.num_attention_heads
    for (key, value), (their_key, their_value) in zip(mine.past_key_values, reference.past_key_values):
        assert key.shape == value.shape == [2, config.num_attention_heads, 6, head_dim]
        assert float((key - their_key).abs().max()) < 1e-5 and float((value - their_value).abs().max()) < 1e-5
    assert float((mine.last_hidden_state - plain.last_hidden_state).abs().max()) == 0  # the cache changes nothing
    assert plain.past_key_values is None
    as_tuple = ours(ids, use_cache=True)
    assert len(as_tuple) == 3 and len(as_tuple[2]) == config.num_hidden_layers  # (sequence, pooled, cache)


@pytest.mark.parametrize("with_mask", [True, False])
def test_a_given_cache_gives_paddlenlps_outputs(with_mask):
    """PaddleNLP's own check: random past keys and values, a mask over past and new tokens (or none)."""
    ours, theirs = _tiny_pair(7)
    config = ours.config
    ids, _ = random_batch(300, batch=2, seq_len=5)
    ids = ids.clip(min=3)  # no token either model's default mask would hide
    head_dim = config.hidden_size // config.num_attention_heads
    past = tuple((paddle.randn([2, config.num_attention_heads, 5, head_dim]),
                  paddle.randn([2, config.num_attention_heads, 5, head_dim])) for _ in range(config.num_hidden_layers))
    mask = paddle.ones([2, 10]) if with_mask else None
    with paddle.no_grad():
        mine = ours(ids, attention_mask=mask, past_key_values=past, return_dict=True)
        reference = theirs(ids, attention_mask=mask, past_key_values=past, return_dict=True)
        without = ours(ids, return_dict=True)
    assert float((mine.last_hidden_state - reference.last_hidden_state).abs().max()) < 1e-5
    assert not paddle.allclose(mine.last_hidden_state, without.last_hidden_state)


def test_the_cache_of_a_prefix_gives_the_outputs_of_the_whole_sequence():
    """The rest of a sequence run over its prefix's cache equals the whole sequence run at once, where the prefix
    does not look ahead (the cache holds what the prefix saw)."""
    paddle.seed(11)
    model = ernie_m.ErnieMModel(ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=300))
    model.eval()
    ids, _ = random_batch(300, batch=2, seq_len=9)
    ids = ids.clip(min=3)
    prefix = 4
    keep = np.ones([2, 9, 9], dtype=bool)
    keep[:, :prefix, prefix:] = False  # the prefix's tokens see only the prefix
    with paddle.no_grad():
        whole = model(ids, attention_mask=paddle.to_tensor(keep), return_dict=True).last_hidden_state
        first = model(ids[:, :prefix], use_cache=True, return_dict=True)
        rest = model(ids[:, prefix:], past_key_values=first.past_key_values, use_cache=True, return_dict=True)
    assert float((first.last_hidden_state - whole[:, :prefix]).abs().max()) < 1e-5
    assert float((rest.last_hidden_state - whole[:, prefix:]).abs().max()) < 1e-5
    assert rest.past_key_values[0][0].shape[2] == 9  # the cache grows by the tokens run


def test_a_cache_and_new_tokens_beyond_the_positions_are_refused():
    model = ernie_m.ErnieMModel(ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=300,
                                                                 max_position_embeddings=12))
    model.eval()
    ids, _ = random_batch(300, batch=1, seq_len=6)
    with paddle.no_grad():
        first = model(ids, use_cache=True, return_dict=True)
        with pytest.raises(ValueError, match="length 6 after 6 cached tokens exceeds the model's 10 positions"):
            model(ids, past_key_values=first.past_key_values)


# ---- a vocabulary without ERNIE-M's special tokens ----------------------------------------------------------------

def _plain_sentencepiece(tmp_path, corpus_file):
    """A sentencepiece BPE model and its vocabulary as sentencepiece writes it (`piece<TAB>score`), converted to one
    piece a line: <unk>, <s>, </s>, then the pieces; no ERNIE-M special token."""
    prefix = str(tmp_path / "plain")
    spm.SentencePieceTrainer.train(input=corpus_file, model_prefix=prefix, vocab_size=300, model_type="bpe",
                                   minloglevel=2)
    with open(prefix + ".vocab", encoding="utf-8") as handle:
        pieces = [line.split("\t")[0] for line in handle]
    (tmp_path / "vocab.txt").write_text("".join(piece + "\n" for piece in pieces), encoding="utf-8")
    return prefix + ".model", str(tmp_path / "vocab.txt"), pieces


def test_a_plain_sentencepiece_vocabulary_gets_the_special_tokens_after_its_last_line(tmp_path, corpus_file,
                                                                                       capsys):
    model_file, vocab_file, pieces = _plain_sentencepiece(tmp_path, corpus_file)
    tokenizer = ernie_m.ErnieMTokenizer(vocab_file, model_file)
    line = capsys.readouterr().err.strip().splitlines()
    assert len(line) == 1 and line[0].startswith(f"ERNIE-M tokenizer: {vocab_file} has no line for [CLS], [PAD], "
                                                 f"[SEP], [UNK], [MASK]; given ids 300-304 after its last line")
    assert [tokenizer.convert_tokens_to_ids(piece) for piece in pieces] == list(range(len(pieces)))
    assert [tokenizer.cls_token_id, tokenizer.pad_token_id, tokenizer.sep_token_id, tokenizer.unk_token_id,
            tokenizer.mask_token_id] == [300, 301, 302, 303, 304]
    assert len(tokenizer) == tokenizer.vocab_size == 305
    encoded = tokenizer("This is a test", "Das ist ein Test")["input_ids"]
    assert encoded[0] == 300 and encoded.count(302) == 3 and all(i < 300 for i in encoded if i not in (300, 302))
    # Saved, the vocabulary holds the appended tokens: the directory loads with the same ids, here and in PaddleNLP.
    tokenizer.save_pretrained(str(tmp_path / "saved"))
    capsys.readouterr()
    again = ernie_m.ErnieMTokenizer.from_pretrained(str(tmp_path / "saved"))
    assert capsys.readouterr().err == "" and again.mask_token_id == 304
    assert paddlenlp_models.ErnieMTokenizer.from_pretrained(str(tmp_path / "saved")).cls_token_id == 300
    assert again("This is a test")["input_ids"] == tokenizer("This is a test")["input_ids"]


def test_a_vocabulary_with_its_own_unknown_token_keeps_it(tmp_path, corpus_file, capsys):
    """As PaddleNLP's own tests build it: `unk_token="<unk>"`, sentencepiece's line 0. (PaddleNLP refuses the file
    under its default `[UNK]`.)"""
    model_file, vocab_file, _ = _plain_sentencepiece(tmp_path, corpus_file)
    tokenizer = ernie_m.ErnieMTokenizer(vocab_file, model_file, unk_token="<unk>")
    assert tokenizer.unk_token_id == 0 and tokenizer.convert_ids_to_tokens(0) == "<unk>"
    assert "[CLS], [PAD], [SEP], [MASK]; given ids 300-303" in capsys.readouterr().err
    # PaddleNLP reads the same files with every piece at the same id, and its special tokens at <unk>'s id 0 (its
    # `[CLS]` and `[SEP]` are then indistinguishable from unknown text: docs/compatibility.md).
    theirs = paddlenlp_models.ErnieMTokenizer(vocab_file, model_file, unk_token="<unk>")
    for text in ("This is a test", "I was born in 92000, and this is falsé.", "Test", "\xad", "test"):
        assert tokenizer.tokenize(text) == theirs.tokenize(text)  # digits apart, a bare "▁" dropped, "\xad" kept
        assert tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text)) == \
            theirs.convert_tokens_to_ids(theirs.tokenize(text))
    assert "9" in tokenizer.tokenize("92000") and tokenizer._convert_token_to_id("no such piece") == 0
    assert tokenizer._convert_id_to_token(0) == "<unk>"
    assert theirs.cls_token_id == theirs.sep_token_id == 0


def test_saving_again_into_the_tokenizers_own_directory_appends_nothing_twice(tmp_path, corpus_file):
    model_file, vocab_file, pieces = _plain_sentencepiece(tmp_path, corpus_file)
    os.replace(model_file, tmp_path / "sentencepiece.bpe.model")
    tokenizer = ernie_m.ErnieMTokenizer.from_pretrained(str(tmp_path))
    for _ in range(2):
        tokenizer.save_pretrained(str(tmp_path))
    lines = (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert lines == pieces + ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"]
    again = ernie_m.ErnieMTokenizer.from_pretrained(str(tmp_path))
    assert again.get_vocab() == tokenizer.get_vocab() and again.appended_special_tokens == []


def test_a_write_failing_midway_leaves_the_vocabulary_it_was_read_from(tmp_path, corpus_file, monkeypatch):
    model_file, vocab_file, pieces = _plain_sentencepiece(tmp_path, corpus_file)
    os.replace(model_file, tmp_path / "sentencepiece.bpe.model")
    tokenizer = ernie_m.ErnieMTokenizer.from_pretrained(str(tmp_path))
    real_open = io.open

    class FullDisk:  # opens (and so truncates) the file, then fails on the first write
        def __init__(self, *args, **kwargs):
            self.handle = real_open(*args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, text):
            raise OSError(28, "No space left on device")

    def open_for_the_vocabulary(file, mode="r", *args, **kwargs):
        writes_vocab = "w" in mode and os.path.basename(str(file)).startswith("vocab.txt")
        return (FullDisk if writes_vocab else real_open)(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", open_for_the_vocabulary)
    with pytest.raises(OSError, match="No space left"):
        tokenizer.save_pretrained(str(tmp_path))
    monkeypatch.undo()
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines() == pieces
    assert not [name for name in os.listdir(tmp_path) if ".tmp" in name]


def test_a_vocabulary_written_by_train_tokenizer_needs_nothing_appended(tokenizer_dir, capsys):
    tokenizer = ernie_m.ErnieMTokenizer.from_pretrained(tokenizer_dir)
    assert tokenizer.appended_special_tokens == [] and "has no line" not in capsys.readouterr().err
    assert tokenizer.cls_token_id == 0 and tokenizer.mask_token_id == len(tokenizer) - 1


# ---- the PaddleNLP conventions its shared model tests check ---------------------------------------------------------

def test_the_released_names_a_legacy_config_file_and_the_attribute_aliases_work_as_in_paddlenlp(tmp_path):
    import shutil

    config = ernie_m.ErnieMConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  num_labels=3)
    assert ernie_m.ErnieMModel(config).model_name_list == ["ernie-m-base", "ernie-m-large", "uie-m-base",
                                                           "uie-m-large"]
    # A configuration saved as config.json and renamed to PaddleNLP's older model_config.json loads the same.
    config.save_pretrained(str(tmp_path))
    shutil.move(os.path.join(tmp_path, "config.json"), os.path.join(tmp_path, "model_config.json"))
    loaded = ernie_m.ErnieMConfig.from_pretrained(str(tmp_path))
    assert all(getattr(loaded, key) == getattr(config, key) for key in config.__dict__)
    # PaddleNLP's old names read the new fields.
    assert dict(type(config).attribute_map) == {"dropout": "classifier_dropout", "num_classes": "num_labels"}
    assert config.num_classes == config.num_labels == 3


@pytest.mark.parametrize("name", HEADS)
def test_every_class_saves_loads_and_repeats_its_outputs(name, tmp_path):
    paddle.seed(17)
    config = ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=300, num_labels=3)
    model = getattr(ernie_m, name)(config)
    model.eval()
    ids, mask = random_batch(300, choices=2 if name == "ErnieMForMultipleChoice" else None)
    with paddle.no_grad():
        first, again = model(ids, attention_mask=mask), model(ids, attention_mask=mask)
        model.save_pretrained(str(tmp_path))
        loaded = getattr(ernie_m, name).from_pretrained(str(tmp_path))
        loaded.eval()
        after = loaded(ids, attention_mask=mask)
    assert max_diff(first, again) == 0 and max_diff(first, after) < 1e-6
