"""Tatoeba and BUCC retrieval: layouts, mining, and the command end to end with a tiny model."""
import json
import re

import numpy as np
import pytest

from finetune import retrieval
from tests.helpers import one_line_exit, save_language_model


def test_bucc_mining_finds_the_gold_pairs():
    rng = np.random.default_rng(0)
    english = rng.normal(size=(6, 16))
    # Sources 0-2 translate English 3, 1, 5 (their vectors plus a little noise); source 3 has no partner.
    source = np.stack([english[3], english[1], english[5], rng.normal(size=16)]) + 0.05 * rng.normal(size=(4, 16))
    gold = {("s0", "e3"), ("s1", "e1"), ("s2", "e5")}
    result = retrieval.bucc_f1([f"s{i}" for i in range(4)], source, [f"e{i}" for i in range(6)], english, gold, k=2)
    assert result["f1"] == 1.0 and result["precision"] == 1.0  # the threshold leaves the partnerless source out


def test_tatoeba_command_end_to_end(tiny_model_dir, tmp_path, capsys):
    english = ["The cat sleeps.", "I like green tea.", "Where is the station?", "Numbers 12 and 34."]
    (tmp_path / "tatoeba.deu-eng.eng").write_text("\n".join(english) + "\n")
    # The "translation" is the English text itself, so every sentence's nearest neighbour is its own line.
    (tmp_path / "tatoeba.deu-eng.deu").write_text("\n".join(english) + "\n")
    (tmp_path / "tatoeba.fra-eng.eng").write_text("\n".join(english) + "\n")
    (tmp_path / "tatoeba.fra-eng.fra").write_text("\n".join(english[:3]) + "\n")
    summary = retrieval.run(retrieval.parser().parse_args(
        ["--task", "tatoeba", "--data_dir", str(tmp_path), "--languages", "deu", "--model", tiny_model_dir,
         "--output_dir", str(tmp_path / "out")]))
    assert summary["scores"] == {"deu": 1.0, "average": 1.0} and summary["layer"] == 1  # 2 layers: round(4/3)
    assert json.loads((tmp_path / "out" / "results.json").read_text())["scores"]["deu"] == 1.0
    line = one_line_exit(capsys, retrieval.main, ["--task", "tatoeba", "--data_dir", str(tmp_path), "--languages",
                                                  "fra", "--model", tiny_model_dir])
    assert re.search(r"tatoeba.fra-eng.fra: 3 lines but .*tatoeba.fra-eng.eng has 4", line)


def test_tatoeba_codes_reach_a_language_model_and_unknown_codes_are_named(tokenizer_dir, tmp_path, capsys):
    """Tatoeba's three-letter codes (`--languages deu`) reach a language-embedding model as its two-letter ids
    (`de`); a code without files is named with the ones that have files, and one the model has no id for with the
    model's codes."""
    from ernie_m import ErnieMModel, ErnieMTokenizer

    english = ["The cat sleeps.", "I like green tea.", "Where is the station?"]
    for language in ("deu", "fra"):
        (tmp_path / f"tatoeba.{language}-eng.eng").write_text("\n".join(english) + "\n")
        (tmp_path / f"tatoeba.{language}-eng.{language}").write_text("\n".join(english) + "\n")
    save_language_model(ErnieMModel, ErnieMTokenizer.from_pretrained(tokenizer_dir), tmp_path / "model", seed=1)
    common = ["--task", "tatoeba", "--data_dir", str(tmp_path), "--model", str(tmp_path / "model")]
    summary = retrieval.run(retrieval.parser().parse_args([*common, "--languages", "deu"]))
    assert set(summary["scores"]) == {"deu", "average"}
    assert one_line_exit(capsys, retrieval.main, [*common, "--languages", "de"]) == \
        "finetune: --languages: tatoeba has no language 'de'; its codes are deu fra"
    assert one_line_exit(capsys, retrieval.main, [*common, "--languages", "fra"]) == \
        "finetune: --languages: the model has no language 'fr' (for 'fra'); its codes are en de ru"


def test_bucc_layout_errors(tmp_path):
    (tmp_path / "de-en.test.de").write_text("de-1\tHallo Welt\n")
    (tmp_path / "de-en.test.en").write_text("en-1 Hello world\n")
    with pytest.raises(retrieval.BenchmarkDataError, match=r"de-en.test.en:1: 1 field\(s\) \(expected BUCC"):
        retrieval.read_bucc(str(tmp_path), "de", "test")


def test_bucc_command_end_to_end(tiny_model_dir, tmp_path):
    english = ["The cat sleeps.", "I like green tea.", "Where is the station?", "Numbers 12 and 34."]
    (tmp_path / "de-en.sample.en").write_text("".join(f"en-{i}\t{s}\n" for i, s in enumerate(english)))
    # Two "German" sentences copy English ones (gold pairs); the model sees identical text on both sides.
    (tmp_path / "de-en.sample.de").write_text(f"de-0\t{english[2]}\nde-1\t{english[0]}\n")
    (tmp_path / "de-en.sample.gold").write_text("de-0\ten-2\nde-1\ten-0\n")
    summary = retrieval.run(retrieval.parser().parse_args(
        ["--task", "bucc", "--data_dir", str(tmp_path), "--languages", "de", "--split", "sample", "--model",
         tiny_model_dir, "--k", "2"]))
    assert summary["scores"]["de"] == 1.0 and summary["details"]["de"]["recall"] == 1.0


def test_invalid_utf8_and_a_layer_the_model_lacks_are_one_line(tiny_model_dir, tmp_path, capsys):
    """Invalid UTF-8 and a `--layer` the model lacks are one line each."""
    (tmp_path / "tatoeba.deu-eng.eng").write_text("The cat.\nA dog.\n")
    (tmp_path / "tatoeba.deu-eng.deu").write_bytes(b"Die Katze.\nEin \xff Hund.\n")
    common = ["--task", "tatoeba", "--data_dir", str(tmp_path), "--model", tiny_model_dir]
    assert one_line_exit(capsys, retrieval.main, common).endswith(
        "tatoeba.deu-eng.deu:2: not valid UTF-8 (byte 0xff at column 5)")
    (tmp_path / "tatoeba.deu-eng.deu").write_text("Die Katze.\nEin Hund.\n")
    assert one_line_exit(capsys, retrieval.main, [*common, "--layer", "99"]) == \
        "finetune: --layer 99: this model has layers 0 (the embeddings) to 2"


def test_each_language_is_read_when_it_is_scored(tiny_model_dir, tmp_path, monkeypatch):
    """One language's sentences in memory at a time: BUCC's files run to hundreds of thousands of lines each."""
    english = ["The cat sleeps.", "I like green tea.", "Where is the station?"]
    for language in ("deu", "fra"):
        (tmp_path / f"tatoeba.{language}-eng.eng").write_text("\n".join(english) + "\n")
        (tmp_path / f"tatoeba.{language}-eng.{language}").write_text("\n".join(english) + "\n")
    events = []
    read, embed = retrieval.read_tatoeba, retrieval.sentence_embeddings
    monkeypatch.setattr(retrieval, "read_tatoeba", lambda *a: events.append(("read", a[1])) or read(*a))
    monkeypatch.setattr(retrieval, "sentence_embeddings",
                        lambda model, tokenizer, texts, *a: events.append(("embed",)) or embed(model, tokenizer,
                                                                                             texts, *a))
    summary = retrieval.run(retrieval.parser().parse_args(
        ["--task", "tatoeba", "--data_dir", str(tmp_path), "--model", tiny_model_dir]))
    assert set(summary["scores"]) == {"deu", "fra", "average"}
    assert events == [("read", "deu"), ("embed",), ("embed",), ("read", "fra"), ("embed",), ("embed",)]
