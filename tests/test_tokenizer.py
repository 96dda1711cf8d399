"""Tokenizer: PaddleNLP-equal ids on multilingual text, offsets that map back, the released file layout."""
import os
import shutil
import tempfile
import unicodedata

import numpy as np
import pytest
from paddlenlp.transformers import ErnieMTokenizer as PaddleNLPErnieMTokenizer

from ernie_m import ErnieMTokenizer
from ernie_m.tokenizer import SPIECE_UNDERLINE, split_piece
from tests.conftest import MULTILINGUAL_SAMPLE
from tests.helpers import one_line_exit

# Text the tokenizer was not trained on, with the traps of DESIGN §3: normalisation, unknown characters,
# digits against punctuation, full-width forms, scripts without spaces.
UNSEEN = [
    "Zebras quietly vex jumpy bikers at 4:45pm; 3x faster—really?!",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία 2024.",
    "صِف خَلقَ خَودِ كَمِثلِ الشَمسِ إِذ بَزَغَت",
    "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश",
    "เป็นมนุษย์สุดประเสริฐเลิศคุณค่า 12,345 บาท",
    "天地玄黄，宇宙洪荒。日月盈昃，辰宿列张！",
    "いろはにほへと ちりぬるを 1997年",
    "ＡＢＣ　ｘｙｚ　１２３．４５　（全角）",
    "🤖🦜 robots & parrots ⇒ ∀x∈ℝ: x²≥0 — naïve résumé",
    "a1b2c3 1a2b3c 3.14159,2.71828;1.41421 v2.0.1-rc3 0x1F",
    "   leading and trailing spaces   ",
    "tabs\tand\nnewlines\r\nmixed",
    "[MASK] inside text [SEP] with specials",
    "x",
    ".",
]


@pytest.fixture(scope="module")
def tokenizers(tokenizer_dir):
    return ErnieMTokenizer.from_pretrained(tokenizer_dir), PaddleNLPErnieMTokenizer.from_pretrained(tokenizer_dir)


def test_vocab_file_has_the_released_layout(tokenizer_dir, tokenizers):
    ours, _ = tokenizers
    lines = open(os.path.join(tokenizer_dir, "vocab.txt"), encoding="utf-8").read().split("\n")[:-1]
    assert lines[:4] == ["[CLS]", "[PAD]", "[SEP]", "[UNK]"] and lines[-1] == "[MASK]"
    assert (ours.cls_token_id, ours.pad_token_id, ours.sep_token_id, ours.unk_token_id) == (0, 1, 2, 3)
    assert ours.mask_token_id == len(lines) - 1
    # Piece i of sentencepiece is line i + 1, as in the released 250002-line vocabulary.
    for sp_id in range(3, ours.sp_model.get_piece_size()):
        assert lines[sp_id + 1] == ours.sp_model.IdToPiece(sp_id)
    assert len(ours) == ours.vocab_size == len(lines)


@pytest.mark.parametrize("text", MULTILINGUAL_SAMPLE + UNSEEN)
def test_ids_equal_paddlenlp(tokenizers, text):
    ours, theirs = tokenizers
    assert ours.tokenize(text) == theirs.tokenize(text)
    assert ours(text)["input_ids"] == theirs(text)["input_ids"]


def test_batch_and_pair_ids_equal_paddlenlp(tokenizers):
    ours, theirs = tokenizers
    texts = MULTILINGUAL_SAMPLE + UNSEEN + ["", "   "]
    assert ours(texts)["input_ids"] == theirs(texts)["input_ids"]
    assert ours(texts)["input_ids"] == [ours(text)["input_ids"] for text in texts]  # fast path == single path
    pairs = list(zip(texts, reversed(texts)))
    assert ours([a for a, _ in pairs], [b for _, b in pairs])["input_ids"] == theirs(
        [a for a, _ in pairs], [b for _, b in pairs]
    )["input_ids"]
    assert ours.encode_batch_ids(texts) == [theirs.convert_tokens_to_ids(theirs.tokenize(t)) for t in texts]


def _call_or_error(tokenizer, *args, **kwargs):
    try:
        return _plain_or_ragged(tokenizer(*args, **kwargs))
    except Exception as error:  # both paths must fail alike
        return type(error).__name__


def _plain_or_ragged(encoded):
    return {key: value.tolist() if isinstance(value, np.ndarray) else value for key, value in encoded.items()}


@pytest.mark.parametrize("padding", [False, True, "max_length"])
@pytest.mark.parametrize("truncation", [False, True])
@pytest.mark.parametrize("max_length", [None, 9, 40])
@pytest.mark.parametrize("extra", [{}, {"return_attention_mask": False}, {"return_attention_mask": True},
                                   {"return_tensors": "np"}, {"return_length": True}, {"return_token_type_ids": True},
                                   {"return_position_ids": True}])
def test_the_direct_batch_path_gives_what_paddlenlps_machinery_gives(tokenizers, monkeypatch, padding, truncation,
                                                                   max_length, extra):
    """Our one-pass assembly of the common call against PaddleNLP's per-example path over the same ids, and the
    ids against PaddleNLP's own ErnieMTokenizer, for singles and pairs under every option combination here."""
    ours, theirs = tokenizers
    texts = MULTILINGUAL_SAMPLE[:6] + UNSEEN[-4:]
    options = dict(padding=padding, truncation=truncation, max_length=max_length, **extra)
    for call in ((texts,), (texts, list(reversed(texts)))):
        direct = _call_or_error(ours, *call, **options)
        with monkeypatch.context() as patch:
            patch.setattr(ErnieMTokenizer, "_assemble_directly", lambda self, pairs, options: None)
            general = _call_or_error(ours, *call, **options)
        assert direct == general
        if isinstance(direct, dict):
            assert direct["input_ids"] == _call_or_error(theirs, *call, **options)["input_ids"]


def test_common_calls_take_the_direct_path(tokenizers, monkeypatch):
    ours, _ = tokenizers
    taken = []
    original = ErnieMTokenizer._assemble_directly

    def spy(self, pairs, options):
        taken.append(original(self, pairs, options) is not None)
        return None if taken[-1] is False else original(self, pairs, options)

    monkeypatch.setattr(ErnieMTokenizer, "_assemble_directly", spy)
    ours(MULTILINGUAL_SAMPLE)
    ours(MULTILINGUAL_SAMPLE, padding=True, truncation=True, max_length=16, return_tensors="np")
    ours(MULTILINGUAL_SAMPLE, list(reversed(MULTILINGUAL_SAMPLE)), padding="max_length", max_length=128)
    ours(MULTILINGUAL_SAMPLE, return_offsets_mapping=True)  # needs the text: PaddleNLP's path, spy not reached
    assert taken == [True, True, True]


def test_pair_template_and_attention_mask(tokenizers):
    ours, _ = tokenizers
    encoded = ours("hello world", "der Fuchs", padding="max_length", max_length=24)
    a = ours.encode_batch_ids(["hello world"])[0]
    b = ours.encode_batch_ids(["der Fuchs"])[0]
    real = [0] + a + [2, 2] + b + [2]
    assert encoded["input_ids"] == real + [1] * (24 - len(real))
    assert encoded["attention_mask"] == [1] * len(real) + [0] * (24 - len(real))
    assert "token_type_ids" not in encoded


@pytest.mark.parametrize("text", MULTILINGUAL_SAMPLE + UNSEEN)
def test_offsets_map_back_into_the_text(tokenizers, text):
    ours, _ = tokenizers
    encoded = ours(text, return_offsets_mapping=True, add_special_tokens=False)
    tokens = ours.convert_ids_to_tokens(encoded["input_ids"])
    offsets = encoded["offset_mapping"]
    assert len(offsets) == len(tokens)
    previous_start = 0
    for token, (start, end) in zip(tokens, offsets):
        assert 0 <= start <= end <= len(text)
        assert start >= previous_start
        previous_start = start
        surface = text[start:end]
        core = token.lstrip(SPIECE_UNDERLINE)
        if core and token != ours.unk_token:
            assert surface.strip(), (token, start, end)
            # What the token spells is what sentencepiece's NFKC makes of the text it points at.
            assert core in unicodedata.normalize("NFKC", surface), (token, surface)


def test_ascii_offsets_are_exact(tokenizers):
    ours, _ = tokenizers
    text = "Version 3.14 was released, 99bottles and abc123def!"
    encoded = ours(text, return_offsets_mapping=True, add_special_tokens=False)
    tokens = ours.convert_ids_to_tokens(encoded["input_ids"])
    for token, (start, end) in zip(tokens, encoded["offset_mapping"]):
        if token != ours.unk_token:
            assert text[start:end] == token.lstrip(SPIECE_UNDERLINE)


def test_split_piece_rules():
    def parts(piece):
        return [piece[s:e] for s, e in split_piece(piece)]

    assert parts(SPIECE_UNDERLINE) == []
    assert parts("▁abc123def") == ["▁abc", "123", "def"]
    assert parts("▁12") == ["12"]  # a lone "▁" before digits is dropped, as PaddleNLP does
    assert parts("你好") == ["你", "好"]
    assert parts("▁end.") == ["▁end", "."]
    assert parts("▁x，y") == ["▁x", "，", "y"]


def test_language_ids(tokenizers):
    ours, _ = tokenizers
    pair = ours("hello world", "Привет мир", language=("en", "ru"))
    boundary = len(ours.encode_batch_ids(["hello world"])[0]) + 2  # [CLS] A [SEP]
    assert pair["language_ids"] == [0] * boundary + [2] * (len(pair["input_ids"]) - boundary)
    batch = ours(["a b", "c d e"], language="de", padding=True, return_tensors="np")
    assert isinstance(batch["language_ids"], np.ndarray)
    assert batch["language_ids"].shape == batch["input_ids"].shape and (batch["language_ids"] == 1).all()
    with pytest.raises(ValueError, match="unknown language 'xx'"):
        ours("a", language="xx")


def test_empty_whitespace_and_huge_text(tokenizers):
    ours, theirs = tokenizers
    for text in ["", " ", "\t\n  \u3000"]:
        assert ours(text)["input_ids"] == [0, 2] == theirs(text)["input_ids"]
        assert ours(text, return_offsets_mapping=True)["offset_mapping"] == [(0, 0), (0, 0)]
    huge = ("Der schnelle Fuchs 123 springt. 敏捷的狐狸！ " * 3000)[:100_000]
    encoded = ours(huge, max_length=512, truncation=True, return_offsets_mapping=True)
    assert len(encoded["input_ids"]) == 512 and encoded["input_ids"][-1] == ours.sep_token_id
    assert all(0 <= s <= e <= len(huge) for s, e in encoded["offset_mapping"])
    assert ours(huge, max_length=512, truncation=True)["input_ids"] == encoded["input_ids"]


def test_save_and_reload(tmp_path, tokenizers):
    ours, _ = tokenizers
    ours.save_pretrained(str(tmp_path))
    assert {"vocab.txt", "sentencepiece.bpe.model", "tokenizer_config.json"} <= set(os.listdir(tmp_path))
    again = ErnieMTokenizer.from_pretrained(str(tmp_path))
    assert again.languages == ["en", "de", "ru"]
    assert again(UNSEEN)["input_ids"] == ours(UNSEEN)["input_ids"]


def test_missing_and_bad_files_are_clear_errors(tmp_path, tokenizer_dir):
    vocab = os.path.join(tokenizer_dir, "vocab.txt")
    model = os.path.join(tokenizer_dir, "sentencepiece.bpe.model")
    with pytest.raises(FileNotFoundError, match="sentencepiece model not found at '.*nothing.model'"):
        ErnieMTokenizer(vocab, str(tmp_path / "nothing.model"))
    with pytest.raises(FileNotFoundError, match=r"vocabulary \(vocab.txt\) not found"):
        ErnieMTokenizer(str(tmp_path / "vocab.txt"), model)
    (tmp_path / "garbage.model").write_bytes(b"\x00not a model")
    with pytest.raises(ValueError, match="garbage.model is not a sentencepiece model"):
        ErnieMTokenizer(vocab, str(tmp_path / "garbage.model"))
    (tmp_path / "vocab.txt").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match=r"vocab.txt is empty"):
        ErnieMTokenizer(str(tmp_path / "vocab.txt"), model)
    with pytest.raises(OSError):
        ErnieMTokenizer.from_pretrained(str(tmp_path / "no_such_dir"))


def test_train_tokenizer_errors_are_clear(tmp_path, capsys):
    from ernie_m.cli import main
    from ernie_m.tokenizer_training import train_tokenizer

    with pytest.raises(FileNotFoundError, match="training text not found: .*missing.txt"):
        train_tokenizer([str(tmp_path / "missing.txt")], str(tmp_path / "out"))
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="all training text files are empty"):
        train_tokenizer([str(tmp_path / "empty.txt")], str(tmp_path / "out"))
    line = one_line_exit(capsys, main, ["train-tokenizer", "--input", str(tmp_path / "missing.txt"),
                                        "--output_dir", str(tmp_path / "o")])
    assert line.startswith("ernie-m train-tokenizer: error: training text not found")


def test_the_command_line_trains_a_tokenizer_that_loads(tmp_path, corpus_file, capsys):
    from ernie_m.cli import main

    main(["train-tokenizer", "--input", corpus_file, "--output_dir", str(tmp_path / "tok"), "--vocab_size", "300",
          "--languages", "en", "de"])
    assert capsys.readouterr().out.strip() == f"tokenizer written to {tmp_path / 'tok'}"
    tokenizer = ErnieMTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert tokenizer.languages == ["en", "de"] and tokenizer.convert_ids_to_tokens([0, len(tokenizer) - 1]) == \
        ["[CLS]", "[MASK]"]




def test_training_that_stops_midway_leaves_the_previous_tokenizer(tmp_path, tokenizer_dir, corpus_file, monkeypatch):
    from ernie_m import tokenizer_training

    out = tmp_path / "tok"
    shutil.copytree(tokenizer_dir, out)
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    real_write_vocab = tokenizer_training.write_vocab

    def interrupted(model_file, vocab_file):  # the vocabulary half written when Ctrl-C arrives
        real_write_vocab(model_file, vocab_file)
        with open(vocab_file, "r+", encoding="utf-8") as handle:
            handle.truncate(10)
        raise KeyboardInterrupt

    monkeypatch.setattr(tokenizer_training, "write_vocab", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tokenizer_training.train_tokenizer([corpus_file], str(out), vocab_size=300)
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before
    assert os.listdir(tmp_path) == ["tok"]  # nothing staged is left behind
    monkeypatch.undo()
    tokenizer_training.train_tokenizer([corpus_file], str(out), vocab_size=300)
    assert len(ErnieMTokenizer.from_pretrained(str(out))) == 300 - 3 + 5


@pytest.mark.skipif(not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tempfile.gettempdir()).st_dev,
                    reason="needs /dev/shm on another filesystem than the temporary directory")
def test_a_tokenizer_trains_into_another_filesystem_than_the_temporary_directory(corpus_file):
    from ernie_m.tokenizer_training import train_tokenizer

    out = tempfile.mkdtemp(dir="/dev/shm")
    try:
        train_tokenizer([corpus_file], out, vocab_size=300)
        assert ErnieMTokenizer.from_pretrained(out).cls_token_id == 0
    finally:
        shutil.rmtree(out)
def test_word_starts_for_whole_word_masking(tokenizers):
    ours, _ = tokenizers
    starts = ours.word_starts()
    assert starts.shape == (len(ours),)
    tokens = ours.tokenize("The quick brown fox 敏捷的")
    flags = starts[ours.convert_tokens_to_ids(tokens)]
    for token, flag in zip(tokens, flags):
        assert flag == (token.startswith(SPIECE_UNDERLINE) or token in "敏捷的")


def test_lone_surrogates_become_the_replacement_character_and_are_counted(tokenizer_dir):
    """A lone surrogate (`"\\ud800"`) becomes U+FFFD on both paths, and is counted."""
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    expected = tokenizer("a\ufffdb")["input_ids"]
    assert tokenizer("a\ud800b")["input_ids"] == expected
    assert tokenizer(["a\udfffb", "x"])["input_ids"][0] == expected
    assert tokenizer.replaced_surrogates == 2
    assert len(tokenizer.get_offset_mapping("a\ud800b")) == len(tokenizer.tokenize("a\ufffdb"))


@pytest.mark.parametrize("text, pair, max_length", [("hello there", None, 2), (["hello there"], None, 1),
                                                     ("a", "b", 5), (["a"], ["b"], 4)])
def test_a_max_length_with_no_room_for_text_is_refused_on_both_paths(tokenizer_dir, text, pair, max_length):
    """A max_length that leaves no room for text is refused on both paths (a negative slice would cut tokens from the
    end, and the single path would return the whole text)."""
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    with pytest.raises(ValueError, match=f"max_length={max_length} leaves no room for text"):
        tokenizer(text, pair, max_length=max_length, truncation=True)
    assert len(tokenizer("hello there world", max_length=3, truncation=True)["input_ids"]) == 3


def test_pad_and_paddlenlp_collators_take_rows_with_language_ids(tokenizer_dir):
    """`tokenizer.pad` and DataCollatorWithPadding pad language_ids of different lengths with the rest."""
    from paddlenlp.data import DataCollatorWithPadding

    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    rows = [tokenizer("a fox", language="de"), tokenizer("the quick brown fox jumps", language="ru")]
    padded = tokenizer.pad(rows, return_tensors="np")
    width = padded["input_ids"].shape[1]
    assert padded["language_ids"].shape == (2, width)
    assert set(padded["language_ids"][0].tolist()) == {1} and set(padded["language_ids"][1].tolist()) == {2}
    batch = DataCollatorWithPadding(tokenizer, return_tensors="np")([dict(row) for row in rows])
    assert batch["language_ids"].shape == batch["input_ids"].shape


def test_language_per_text_in_a_batch(tokenizers):
    """A batch of texts in different languages: `language=[...]`, one code (or pair) per text, each row equal to
    the text encoded alone with its language, also when long texts overflow into several windows."""
    ours, _ = tokenizers
    texts, languages = ["a fox", "the quick brown fox jumps over"], ["de", "ru"]
    batch = ours(texts, language=languages, padding=True, return_tensors="np")
    for row, (text, language) in enumerate(zip(texts, languages)):
        alone = ours(text, language=language)["language_ids"]
        assert batch["language_ids"][row, :len(alone)].tolist() == alone
        assert (batch["language_ids"][row, len(alone):] == ours.language_id(language)).all()  # padding too
    pairs = ours(["a b", "c"], ["d", "e f"], language=[("en", "de"), ("ru", "en")])
    assert pairs["language_ids"][1] == ours("c", "e f", language=("ru", "en"))["language_ids"]
    # Pairs with a stride (QA's windows) give several rows per pair; each keeps its own pair's languages.
    windows = ours(["where", "who"], ["the quick brown fox jumps over", "a lazy dog sleeps here"],
                   language=[("en", "de"), ("ru", "en")], max_length=10, stride=2)
    assert len(windows["input_ids"]) > 2
    for ids, row, source in zip(windows["input_ids"], windows["language_ids"], windows["overflow_to_sample"]):
        first, second = [("en", "de"), ("ru", "en")][source]
        assert row[0] == ours.language_id(first) and row[-1] == ours.language_id(second) and len(row) == len(ids)
    # "where" takes 4 tokens: with the pair's 4 special tokens nothing is left for windows of the second text.
    # PaddleNLP's window loop then never ended; the call is refused.
    with pytest.raises(ValueError, match="text 0: the first text takes 4 tokens.*max_length=8"):
        ours(["where"], ["the quick brown fox"], max_length=8, stride=2)
    with pytest.raises(ValueError, match="one language per text; got 1 for 2"):
        ours(texts, language=["de"])
    with pytest.raises(ValueError, match="unknown language 'xx'"):
        ours(texts, language=["de", "xx"])
