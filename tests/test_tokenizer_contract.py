"""The contract PaddleNLP's shared tokenizer tests hold every tokenizer to, held here for ours: added and special
tokens, padding and truncation on either side, overflow windows, words given as lists, the vocabulary's round trip,
the saved configuration. Where PaddleNLP's ErnieMTokenizer gives an answer on the same files, ours must give the
same one; added tokens are compared as tokens, since their ids follow the vocabulary's length, which differs on
purpose (docs/compatibility.md)."""
import inspect
import json

import pytest
from paddlenlp.transformers import ErnieMTokenizer as PaddleNLPErnieMTokenizer
from paddlenlp.transformers.tokenizer_utils import AddedToken

from ernie_m import ErnieMTokenizer

TEXT = "The quick brown fox jumps over the lazy dog near the river bank."
OTHER = "Der schnelle braune Fuchs springt über den faulen Hund."
LONG = " ".join([TEXT, OTHER] * 3)


@pytest.fixture
def pair(tokenizer_dir):
    """Fresh tokenizers (ours, PaddleNLP's) on the same files: several tests add tokens to them."""
    return ErnieMTokenizer.from_pretrained(tokenizer_dir), PaddleNLPErnieMTokenizer.from_pretrained(tokenizer_dir)


def _tokens(tokenizer, encoded):
    return tokenizer.convert_ids_to_tokens(encoded["input_ids"])


def test_added_tokens_come_after_the_vocabulary_and_are_matched_whole(pair):
    ours, theirs = pair
    size, length = ours.vocab_size, len(ours)
    for tokenizer in pair:
        assert tokenizer.add_tokens(["qqq zzz", "xyzzy"]) == 2
        assert tokenizer.add_tokens("") == 0
    assert (ours.vocab_size, len(ours)) == (size, length + 2)
    text = "qqq zzz the fox xyzzy river"
    ids = ours(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == length and length + 1 in ids
    assert _tokens(ours, ours(text)) == _tokens(theirs, theirs(text))
    assert ours([text, TEXT])["input_ids"][0] == ours(text)["input_ids"]  # the batch path finds them too
    assert {"qqq zzz", "xyzzy"} <= set(ours.get_vocab())
    # The longest added token wins, whichever was added first.
    for tokenizer in pair:
        tokenizer.add_tokens(["extra_1", "extra_100"])
    assert "extra_100" in ours.tokenize("see extra_100 here")
    assert ours.tokenize("see extra_100 here") == theirs.tokenize("see extra_100 here")


def test_new_special_tokens_take_their_roles(pair):
    ours, theirs = pair
    for tokenizer in pair:
        assert tokenizer.add_special_tokens({"eos_token": "<<end>>", "pad_token": "<<pad>>"}) == 2
        tokenizer.add_tokens(["[ONE]"], special_tokens=True)
        tokenizer.add_special_tokens({"additional_special_tokens": ["[TWO]"]})
    assert ours.tokenize("[ONE]") == ["[ONE]"] and ours.tokenize("[TWO]") == ["[TWO]"]
    encoded = ours("<<end>> the fox <<pad>>", add_special_tokens=False)["input_ids"]
    assert (encoded[0], encoded[-1]) == (ours.eos_token_id, ours.pad_token_id)
    assert ours.pad_token_id >= ours.vocab_size
    padded = ours("the fox", padding="max_length", max_length=12)
    assert padded["input_ids"][-1] == ours.pad_token_id
    decoded = ours.decode(ours("the fox [TWO]")["input_ids"], skip_special_tokens=True)
    assert "[TWO]" not in decoded and decoded == theirs.decode(theirs("the fox [TWO]")["input_ids"],
                                                               skip_special_tokens=True)
    assert _tokens(ours, ours("[ONE] the fox [TWO]")) == _tokens(theirs, theirs("[ONE] the fox [TWO]"))


def test_added_tokens_follow_lower_casing(tokenizer_dir):
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir, do_lower_case=True)
    before = tokenizer.tokenize("aaaaa bbbbbb the fox")
    tokenizer.add_tokens([AddedToken("aaaaa bbbbbb", lstrip=True, rstrip=True)])
    assert tokenizer.tokenize("AAAAA BBBBBB the fox") == tokenizer.tokenize("aaaaa bbbbbb the fox")
    assert len(tokenizer.tokenize("aaaaa bbbbbb the fox")) < len(before)
    assert "[CLS]" in tokenizer.tokenize("A [CLS] b")  # special tokens are not lower-cased


def test_decoding_added_tokens_spaces_them_when_asked(pair):
    ours, _ = pair
    ours.add_tokens([AddedToken("[ABC]", normalized=False), AddedToken("GHI IHG", normalized=False)])
    ids = ours("[ABC][ABC]GHI IHG", add_special_tokens=False)["input_ids"]
    assert ours.decode(ids, spaces_between_special_tokens=True) == "[ABC] [ABC] GHI IHG"
    assert ours.decode(ids, spaces_between_special_tokens=False) == "[ABC][ABC]GHI IHG"


def test_added_tokens_and_settings_survive_saving(tokenizer_dir, tmp_path):
    assert ErnieMTokenizer.from_pretrained(tokenizer_dir).model_max_length != 42
    ours = ErnieMTokenizer.from_pretrained(tokenizer_dir, model_max_length=42)
    ours.add_tokens(["bim", "bambam"])
    ours.add_special_tokens({"additional_special_tokens": ["new_special"]})
    text = " He is very happy, UNwant\u00e9d,running bim"
    ours.save_pretrained(str(tmp_path))
    loaded = ErnieMTokenizer.from_pretrained(str(tmp_path))
    assert loaded(text)["input_ids"] == ours(text)["input_ids"]
    assert loaded.get_vocab() == ours.get_vocab()
    assert {"bim", "bambam", "new_special"} <= set(loaded.get_vocab())
    assert "new_special" in loaded.additional_special_tokens
    assert loaded.model_max_length == 42
    assert ErnieMTokenizer.from_pretrained(str(tmp_path), model_max_length=43).model_max_length == 43


def test_additional_special_tokens_come_from_the_saved_configuration(pair, tmp_path):
    ours, _ = pair
    ours.save_pretrained(str(tmp_path))
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = tmp_path / name
        settings = json.loads(path.read_text(encoding="utf-8"))
        settings["additional_special_tokens"] = ["an_extra_token"]
        path.write_text(json.dumps(settings), encoding="utf-8")
    loaded = ErnieMTokenizer.from_pretrained(str(tmp_path))
    assert "an_extra_token" in loaded.additional_special_tokens
    assert loaded.convert_ids_to_tokens(loaded.convert_tokens_to_ids(["an_extra_token"])) == ["an_extra_token"]
    overridden = ErnieMTokenizer.from_pretrained(str(tmp_path), additional_special_tokens=["another_one"])
    assert overridden.additional_special_tokens == ["another_one"]
    assert overridden.tokenize("x another_one")[-1] == "another_one"


def test_every_default_argument_is_kept_and_each_tokenizer_keeps_its_own(tokenizer_dir):
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    for name, parameter in inspect.signature(ErnieMTokenizer.__init__).parameters.items():
        if parameter.default is not inspect.Parameter.empty:
            assert name in tokenizer.init_kwargs, name
    first = ErnieMTokenizer.from_pretrained(tokenizer_dir, some_setting=True)
    second = ErnieMTokenizer.from_pretrained(tokenizer_dir, some_setting=False)
    assert first.init_kwargs["some_setting"] is True and second.init_kwargs["some_setting"] is False


def test_special_token_ids_can_be_set(pair):
    ours, _ = pair
    for role in ("bos", "eos", "unk", "sep", "pad", "cls", "mask"):
        setattr(ours, f"{role}_token_id", None)
        assert getattr(ours, f"{role}_token") is None
        setattr(ours, f"{role}_token_id", 7)
        assert getattr(ours, f"{role}_token") == ours.convert_ids_to_tokens(7)
    ours.additional_special_tokens_ids = [7]
    assert ours.additional_special_tokens == [ours.convert_ids_to_tokens(7)]


def test_the_vocabulary_round_trips(pair):
    ours, _ = pair
    vocab = ours.get_vocab()
    assert len(ours) >= len(vocab)
    for token, index in vocab.items():
        if token != ours.unk_token:
            assert ours.convert_tokens_to_ids(token) == index
            assert ours.convert_ids_to_tokens(index) == token
    ours.add_tokens(["asdfasdf"])
    assert len([ours.convert_ids_to_tokens(i) for i in range(len(ours))]) == len(ours)
    assert ours.convert_ids_to_tokens(len(ours) - 1) == "asdfasdf"


@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_on_either_side(pair, side):
    ours, theirs = pair
    for tokenizer in pair:
        tokenizer.padding_side = side
    plain = ours(TEXT)["input_ids"]
    padded = ours(TEXT, padding="max_length", max_length=len(plain) + 5)
    pad = [ours.pad_token_id] * 5
    assert padded["input_ids"] == (plain + pad if side == "right" else pad + plain)
    mask = [1] * len(plain)
    assert padded["attention_mask"] == (mask + [0] * 5 if side == "right" else [0] * 5 + mask)
    with_mask = ours(TEXT, padding="max_length", max_length=len(plain) + 5, return_special_tokens_mask=True)
    special = ours(TEXT, return_special_tokens_mask=True)["special_tokens_mask"]
    assert with_mask["special_tokens_mask"] == (special + [1] * 5 if side == "right" else [1] * 5 + special)
    assert padded["input_ids"] == theirs(TEXT, padding="max_length", max_length=len(plain) + 5)["input_ids"]
    assert ours(TEXT, padding=True)["input_ids"] == plain == ours(TEXT, padding="longest")["input_ids"]
    batch = [TEXT, OTHER, "fox"]
    assert ours(batch, padding=True)["input_ids"] == theirs(batch, padding=True)["input_ids"]
    single = [ours(text, padding="max_length", max_length=40) for text in batch]
    together = ours(batch, padding="max_length", max_length=40)
    assert [row["input_ids"] for row in single] == together["input_ids"]
    assert ours.pad([{"input_ids": [5, 6, 7], "attention_mask": [1, 1, 0]},
                     {"input_ids": [5], "attention_mask": [1]}])["attention_mask"][1] == (
        [1, 0, 0] if side == "right" else [0, 0, 1])


@pytest.mark.parametrize("side", ["right", "left"])
def test_truncation_on_either_side(pair, side):
    ours, theirs = pair
    for tokenizer in pair:
        tokenizer.truncation_side = side
    ids = ours(TEXT, add_special_tokens=False)["input_ids"]
    cut = ours(TEXT, add_special_tokens=False, truncation=True, max_length=len(ids) - 3)["input_ids"]
    assert cut == (ids[:-3] if side == "right" else ids[3:])
    assert cut == theirs(TEXT, add_special_tokens=False, truncation=True, max_length=len(ids) - 3)["input_ids"]
    assert ours(TEXT, add_special_tokens=False, truncation=True)["input_ids"] == ids


def test_lengths_padded_to_a_multiple(pair):
    ours, theirs = pair
    for text in ("", TEXT):
        encoded = ours(text, padding=True, pad_to_multiple_of=8)
        assert all(len(value) % 8 == 0 for value in encoded.values())
        assert encoded["input_ids"] == theirs(text, padding=True, pad_to_multiple_of=8)["input_ids"]
    assert len(ours("fox", pad_to_multiple_of=8)["input_ids"]) % 8 != 0  # no padding asked, none done
    with pytest.raises(ValueError):
        ours("fox", padding=True, truncation=True, max_length=12, pad_to_multiple_of=8)


def test_a_text_longer_than_the_model_is_cut_or_warned_about(tokenizer_dir, caplog):
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir, model_max_length=40)
    assert len(tokenizer(LONG, truncation=True)["input_ids"]) == 40
    assert len(tokenizer(LONG, "the fox", truncation="only_first")["input_ids"]) == 40
    assert len(tokenizer("the fox", LONG, truncation="only_second")["input_ids"]) == 40
    tokenizer.deprecation_warnings = {}
    with caplog.at_level("WARNING", logger="PaddleNLP"):
        assert len(tokenizer(LONG)["input_ids"]) > 40
    assert any("longer than the specified maximum sequence length" in r.message for r in caplog.records)


def test_overflowing_windows_with_a_stride(pair):
    ours, theirs = pair
    first = ours(TEXT, add_special_tokens=False)["input_ids"]
    second = ours(OTHER, add_special_tokens=False)["input_ids"]
    options = dict(add_special_tokens=False, stride=2, return_overflowing_tokens=True)
    single = ours(TEXT, max_length=len(first) - 2, truncation="longest_first", **options)
    assert single["input_ids"] == first[:-2] and single["overflowing_tokens"] == first[-4:]
    limit = len(first) + len(second) - 2
    only_first = ours(TEXT, OTHER, max_length=limit, truncation="only_first", **options)
    assert only_first["input_ids"] == first[:-2] + second and only_first["overflowing_tokens"] == first[-4:]
    only_second = ours(TEXT, OTHER, max_length=limit, truncation="only_second", **options)
    assert only_second["input_ids"] == first + second[:-2] and only_second["overflowing_tokens"] == second[-4:]
    for truncation in ("longest_first", True):
        with pytest.raises(ValueError, match="Not possible to return overflowing tokens for pair"):
            ours(TEXT, OTHER, max_length=limit, truncation=truncation, **options)
    reference = theirs(TEXT, OTHER, max_length=limit, truncation="only_second", **options)
    assert [only_second[key] for key in ("input_ids", "overflowing_tokens", "num_truncated_tokens")] == [
        reference[key] for key in ("input_ids", "overflowing_tokens", "num_truncated_tokens")]
    batch = ours(["Testing the method.", "Test"], return_overflowing_tokens=True, truncation=True, padding=True,
                 max_length=3)
    assert all(len(row) == 3 for row in batch["input_ids"])


def test_words_given_as_lists_encode_as_the_joined_text(pair):
    ours, theirs = pair
    words = TEXT.split()
    for special in (False, True):
        assert ours(words, is_split_into_words=True, add_special_tokens=special)["input_ids"] == \
            ours(" " + TEXT, add_special_tokens=special)["input_ids"]
        assert ours(words, words, is_split_into_words=True, add_special_tokens=special)["input_ids"] == \
            ours(TEXT, TEXT, add_special_tokens=special)["input_ids"]
    batch = [words, OTHER.split()]
    assert ours(batch, is_split_into_words=True)["input_ids"] == ours([TEXT, OTHER])["input_ids"]
    assert ours(batch, is_split_into_words=True)["input_ids"] == theirs(batch, is_split_into_words=True)["input_ids"]


def test_every_way_in_gives_the_same_encoding(pair):
    ours, _ = pair
    texts = [TEXT, OTHER, "fox"]
    assert ours(TEXT) == ours.encode(TEXT)
    assert ours(TEXT, OTHER) == ours.encode(TEXT, OTHER)
    assert ours(texts) == ours.batch_encode(texts)
    assert ours(texts, texts) == ours.batch_encode(list(zip(texts, texts)))
    ids = ours(TEXT, add_special_tokens=False)["input_ids"]
    assert ours.prepare_for_model(ids, add_special_tokens=True) == ours.encode(TEXT)
    assert ours.convert_tokens_to_ids(ours.tokenize(TEXT)) == ids
    batched = ours.batch_encode(texts)
    assert [ours.encode(text) for text in texts] == [
        {key: batched[key][i] for key in batched} for i in range(len(texts))]


def test_special_token_masks_and_counts(pair):
    ours, _ = pair
    for args in ((TEXT,), (TEXT, OTHER)):
        plain = sum((ours(text, add_special_tokens=False)["input_ids"] for text in args), [])
        encoded = ours(*args, return_special_tokens_mask=True, return_offsets_mapping=True)
        kept = [i for i, special in zip(encoded["input_ids"], encoded["special_tokens_mask"]) if not special]
        assert kept == plain
        assert sum(encoded["special_tokens_mask"]) == ours.num_special_tokens_to_add(pair=len(args) == 2)
        assert len(encoded["offset_mapping"]) == len(encoded["input_ids"])
    assert ours.model_input_names[0] == "input_ids"
