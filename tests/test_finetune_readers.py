"""Benchmark readers on small fixtures written in each official layout, and their errors on broken ones."""
import pytest

from finetune.readers import BenchmarkDataError, read_conll, read_multinli_train, read_pawsx, read_xnli
from tests.helpers import XNLI_HEADER, xnli_row


def test_xnli_by_language(tmp_path):
    rows = [xnli_row("en", "entailment", "A man eats.", "Someone eats."),
            xnli_row("de", "contradiction", "Ein Mann isst.", "Niemand isst."),
            xnli_row("de", "neutral", "Ein Mann isst.", "Ein Mann isst Brot.")]
    (tmp_path / "xnli.test.tsv").write_text(XNLI_HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    data = read_xnli(str(tmp_path), "test")
    assert sorted(data) == ["de", "en"]
    assert [example.label for example in data["de"]] == [0, 2]  # contradiction, neutral
    assert data["en"][0].text_b == "Someone eats."
    assert list(read_xnli(str(tmp_path), "test", languages=["de"])) == ["de"]


def test_xnli_errors_name_file_line_and_layout(tmp_path):
    with pytest.raises(BenchmarkDataError, match=r"xnli.dev.tsv: file not found \(expected XNLI's"):
        read_xnli(str(tmp_path), "dev")
    (tmp_path / "xnli.dev.tsv").write_text(XNLI_HEADER + "\n" + xnli_row("fr", "maybe", "a", "b") + "\n")
    with pytest.raises(BenchmarkDataError, match=r"xnli.dev.tsv:2: label 'maybe' is not one of"):
        read_xnli(str(tmp_path), "dev")
    (tmp_path / "xnli.dev.tsv").write_text("language\tsentence1\nen\tx\n")
    with pytest.raises(BenchmarkDataError, match=r"xnli.dev.tsv:1: header lacks column\(s\) \['gold_label'"):
        read_xnli(str(tmp_path), "dev")
    (tmp_path / "xnli.dev.tsv").write_text(XNLI_HEADER + "\nen\tneutral\n")
    with pytest.raises(BenchmarkDataError, match=r"xnli.dev.tsv:2: 2 column\(s\), the header names 19"):
        read_xnli(str(tmp_path), "dev")


def test_multinli_train_skips_no_consensus_rows(tmp_path):
    header = "gold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\t" \
             "sentence1\tsentence2\tpromptID\tpairID\tgenre"
    rows = ["neutral\t\t\t\t\tA b.\tC d.\t1\t1e\tgov", "-\t\t\t\t\tE f.\tG h.\t2\t2e\tgov"]
    path = tmp_path / "multinli_1.0_train.txt"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    examples = read_multinli_train(str(path))
    assert [(e.text_a, e.label, e.language) for e in examples] == [("A b.", 2, "en")]


def test_pawsx(tmp_path):
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "test_2k.tsv").write_text("id\tsentence1\tsentence2\tlabel\n1\tA\tB\t1\n2\tC\tD\t0\n")
    examples = read_pawsx(str(tmp_path), "de", "test_2k")
    assert [(e.text_a, e.label, e.language) for e in examples] == [("A", 1, "de"), ("C", 0, "de")]
    (tmp_path / "de" / "dev_2k.tsv").write_text("id\tsentence1\tsentence2\tlabel\n1\tA\tB\tyes\n")
    with pytest.raises(BenchmarkDataError, match=r"de/dev_2k.tsv:2: label 'yes' is not 0 or 1"):
        read_pawsx(str(tmp_path), "de", "dev_2k")


def test_conll_and_wikiann_layouts(tmp_path):
    conll = tmp_path / "esp.testa"
    conll.write_text("-DOCSTART- O\n\nEl DA O\nAbogado NC B-PER\nGeneral AQ I-PER\n\n\nMadrid NC B-LOC\n")
    sentences = read_conll(str(conll), "es")
    assert [s.tokens for s in sentences] == [["El", "Abogado", "General"], ["Madrid"]]
    assert sentences[0].labels == ["O", "B-PER", "I-PER"]
    wikiann = tmp_path / "test-de.tsv"
    wikiann.write_text("de:Berlin\tB-LOC\nde:ist\tO\n")
    assert read_conll(str(wikiann), "de")[0].tokens == ["Berlin", "ist"]
    broken = tmp_path / "broken.txt"
    broken.write_text("Madrid B-LOC\nlonely\n")
    with pytest.raises(BenchmarkDataError, match=r"broken.txt:2: one field 'lonely', no label"):
        read_conll(str(broken), "es")
    with pytest.raises(BenchmarkDataError, match=r"esp.testa:4: label 'B-PER' is not among"):
        read_conll(str(conll), "es", label_set=["O", "B-LOC", "I-LOC"])


def test_reader_errors_name_file_and_line(tmp_path):
    """Invalid UTF-8 and a TSV field over csv's 131072-character limit are named with their file and line."""
    header = XNLI_HEADER + "\n"
    (tmp_path / "xnli.dev.tsv").write_bytes((header + xnli_row("en", "neutral", "a", "b") + "\n").encode()
                                            + b"en\tneutral\t\xff\n")
    with pytest.raises(BenchmarkDataError, match=r"xnli.dev.tsv:3: not valid UTF-8 \(byte 0xff at column 12\)"):
        read_xnli(str(tmp_path), "dev")
    (tmp_path / "xnli.dev.tsv").write_text(header + xnli_row("en", "neutral", "x" * 200_000, "b") + "\n")
    with pytest.raises(BenchmarkDataError, match=r"xnli.dev.tsv:2: field larger than field limit"):
        read_xnli(str(tmp_path), "dev")
    (tmp_path / "eng.train").write_bytes(b"EU B-ORG\nrejects \xfe O\n")
    with pytest.raises(BenchmarkDataError, match=r"eng.train:2: not valid UTF-8"):
        read_conll(str(tmp_path / "eng.train"), "en")
