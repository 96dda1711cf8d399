"""NER: first-sub-token labelling, truncation, and the pipeline end to end on CoNLL-layout fixtures."""
import json

import pytest

from finetune import ner
from tests.helpers import one_line_exit
from finetune.readers import TaggedSentence


def test_labels_sit_on_first_sub_tokens(tokenizer_dir):
    from ernie_m import ErnieMTokenizer

    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    words = ["Internationalisation", "in", "Berlin"]
    pieces = tokenizer.encode_batch_ids(words)
    assert len(pieces[0]) > 1, "the test needs a word split into several pieces"
    sentence = TaggedSentence(words, ["B-MISC", "O", "B-LOC"], "en")
    label_ids = {"O": 0, "B-LOC": 1, "I-LOC": 2, "B-MISC": 3, "I-MISC": 4}
    feature, = ner.encode(tokenizer, [sentence], label_ids, max_length=64, with_language_ids=False)
    expected_ids = [tokenizer.cls_token_id] + pieces[0] + pieces[1] + pieces[2] + [tokenizer.sep_token_id]
    assert feature["input_ids"] == expected_ids
    first = len(pieces[0])
    assert feature["labels"] == [-100, 3] + [-100] * (first - 1) + [0] + [1] + [-100] * (len(pieces[2]) - 1) + [-100]
    assert feature["word_starts"] == [1, 1 + first, 2 + first]

    # A limit that leaves room for the first word only: the others are not encoded and will be predicted "O".
    short, = ner.encode(tokenizer, [sentence], label_ids, max_length=first + 2, with_language_ids=False)
    assert short["word_starts"] == [1] and short["num_words"] == 3


def _conll(path, sentences):
    path.write_text("-DOCSTART- O\n\n" + "\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences) + "\n")


def test_ner_pipeline_end_to_end(tiny_model_dir, tmp_path, capsys):
    english = [[("Anna", "B-PER"), ("lives", "O"), ("in", "O"), ("Berlin", "B-LOC")],
               [("New", "B-LOC"), ("York", "I-LOC"), ("is", "O"), ("big", "O")]]
    german = [[("Anna", "B-PER"), ("wohnt", "O"), ("in", "O"), ("Berlin", "B-LOC")]]
    _conll(tmp_path / "eng.train", english * 4)
    _conll(tmp_path / "eng.testa", english)
    _conll(tmp_path / "deu.testb", german)
    out = tmp_path / "out"
    ner.main(["--model", tiny_model_dir, "--output_dir", str(out), "--train", f"en:{tmp_path / 'eng.train'}",
              "--dev", f"en:{tmp_path / 'eng.testa'}", "--test", f"en:{tmp_path / 'eng.testa'}",
              f"de:{tmp_path / 'deu.testb'}", "--max_steps", "4", "--batch_size", "2", "--eval_steps", "2"])
    results = json.loads((out / "results.json").read_text())
    assert results["labels"] == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert set(results["test_f1"]) == {"en", "de", "average"}
    assert all(0.0 <= value <= 1.0 for value in results["test_f1"].values())
    # The checkpoint names its labels (before: LABEL_3 in Taskflow and `ernie-m predict`).
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["id2label"] == {str(i): label for i, label in enumerate(results["labels"])}
    assert config["label2id"] == {label: i for i, label in enumerate(results["labels"])}
    from ernie_m import ErnieMForTokenClassification, ErnieMTokenizer
    from ernie_m.tagging import tag_texts

    best = ErnieMForTokenClassification.from_pretrained(str(out / "best"))
    segments = tag_texts(best, ErnieMTokenizer.from_pretrained(str(out / "best")), ["Anna lives in Berlin"])[0]
    assert {label for _, label in segments} <= {"O", "LOC", "PER"}  # entity types, never LABEL_n

    _conll(tmp_path / "odd.testb", [[("Paris", "B-GPE")]])
    line = one_line_exit(capsys, ner.main, [
        "--model", tiny_model_dir, "--output_dir", str(out), "--train", f"en:{tmp_path / 'eng.train'}",
        "--dev", f"en:{tmp_path / 'odd.testb'}", "--max_steps", "1", "--overwrite"])
    assert "tag(s) ['B-GPE'] are not among the labels ['O', 'B-LOC', 'I-LOC', 'B-PER', 'I-PER']" in line


def test_the_label_set_keeps_bioes_and_io_tags():
    """BIOES tags (S-PER, E-LOC) and IO tags (a bare `PER`) in the training data are all labels of the model."""
    bioes = [TaggedSentence(["Anna", "in", "New", "York"], ["S-PER", "O", "B-LOC", "E-LOC"], "en")]
    assert ner.label_names(bioes, None) == ["O", "B-LOC", "I-LOC", "E-LOC", "B-PER", "I-PER", "S-PER"]
    io = [TaggedSentence(["Anna", "in", "Berlin"], ["PER", "O", "LOC"], "en")]
    assert ner.label_names(io, None) == ["O", "LOC", "PER"]
