"""Fine-tuning on your own files: TSV, CSV and JSON lines with named columns, label names kept, a language per row,
the checkpoint chosen on dev, results per language; and one line, exit 2, for each way the input can be wrong."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from finetune import classification, ner
from finetune.user_data import Columns, read_labelled_texts
from tests.helpers import one_line_exit, save_language_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = [("sport", "We play football on Sunday.", "en"), ("food", "We cook pasta.", "en"),
        ("sport", "Wir spielen Fußball.", "de"), ("food", "Wir kochen Nudeln, \"al dente\".", "de")]


def write_table(path, rows=ROWS, header=("label", "text", "lang")):
    kind = os.path.splitext(str(path))[1]
    if kind == ".jsonl":
        path.write_text("".join(json.dumps(dict(zip(header, row)), ensure_ascii=False) + "\n" for row in rows))
    elif kind == ".csv":
        import csv

        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
    else:
        path.write_text("\t".join(header) + "\n" + "".join("\t".join(row) + "\n" for row in rows))
    return str(path)


def test_the_three_formats_read_the_same_rows(tmp_path):
    columns = Columns(text="text", label="label", language="lang")
    read = {kind: [row[1:] for row in read_labelled_texts(write_table(tmp_path / f"d.{kind}"), columns)]
            for kind in ("tsv", "csv", "jsonl")}
    assert read["tsv"] == read["csv"] == read["jsonl"] == [(text, None, label, lang) for label, text, lang in ROWS]


def _custom(tmp_path, model, *extra, train="train.tsv", dev="dev.tsv", test=("test.tsv",)):
    return ["--task", "custom", "--train_file", str(tmp_path / train), "--dev_file", str(tmp_path / dev),
            "--test_file", *[str(tmp_path / name) for name in test], "--language_column", "lang",
            "--model", model, "--output_dir", str(tmp_path / "out"), "--max_steps", "4", "--eval_steps", "2",
            "--per_device_train_batch_size", "2", *extra]


def test_your_own_data_end_to_end_with_a_language_per_row(tokenizer_dir, tmp_path):
    """A language-embedding model: German rows get German ids (before, every custom-like row was English), the
    labels are named in the checkpoint, the checkpoint is chosen on dev, results and predictions per language."""
    from ernie_m import ErnieMForSequenceClassification, ErnieMTokenizer

    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    save_language_model(ErnieMForSequenceClassification, tokenizer, tmp_path / "model", seed=4, num_labels=2)
    write_table(tmp_path / "train.jsonl", ROWS * 3)
    write_table(tmp_path / "dev.csv", ROWS[:2])  # English only: the choice is made on it
    write_table(tmp_path / "test.tsv", ROWS)
    classification.main(_custom(tmp_path, str(tmp_path / "model"), train="train.jsonl", dev="dev.csv"))
    out = tmp_path / "out"
    results = json.loads((out / "results.json").read_text())
    assert results["labels"] == ["food", "sport"] and results["train_languages"] == ["de", "en"]
    assert set(results["best_dev"]) == {"en", "average"} and set(results["test_accuracy"]) == {"en", "de", "average"}
    history = json.loads((out / "dev_results.json").read_text())["history"]
    assert results["best_dev"]["average"] == max(h["average"] for h in history)
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["id2label"] == {"0": "food", "1": "sport"}
    predictions = json.loads((out / "test_results.json").read_text())
    assert predictions["language"] == ["en", "en", "de", "de"] and len(predictions["confidence"]) == 4
    assert all(predictions["label_name"][i] == ["food", "sport"][label] for i, label in
               enumerate(predictions["label"]))
    assert all(0.5 <= c <= 1.0 for c in predictions["confidence"])  # two classes: the top one holds half or more
    # The German rows' features carry German language ids.
    examples = classification.load_custom(classification.parser().parse_args(
        _custom(tmp_path, "m", train="train.jsonl", dev="dev.csv")))
    features = classification.encode(tokenizer, examples["test"]["de"], 32, with_language_ids=True)
    assert {i for f in features for i in f["language_ids"]} == {tokenizer.language_id("de")}


def test_token_classification_from_json_lines(tiny_model_dir, tmp_path):
    rows = [{"tokens": ["Anna", "lives", "in", "Berlin"], "tags": ["B-PER", "O", "O", "B-LOC"], "lang": "en"},
            {"tokens": ["Anna", "wohnt", "in", "Köln"], "tags": ["B-PER", "O", "O", "B-LOC"], "lang": "de"}]
    for name in ("train.jsonl", "dev.jsonl"):
        (tmp_path / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    ner.main(["--model", tiny_model_dir, "--output_dir", str(tmp_path / "out"), "--train",
              str(tmp_path / "train.jsonl"), "--dev", str(tmp_path / "dev.jsonl"), "--test", str(tmp_path / "dev.jsonl"),
              "--language_column", "lang", "--max_steps", "2", "--per_device_train_batch_size", "2"])
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["labels"] == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert set(results["test_f1"]) == {"en", "de", "average"} and results["train_languages"] == ["de", "en"]


@pytest.mark.parametrize("case, expected", [
    ("empty train", "train.tsv: no data rows (an empty file, or a header only)"),
    ("header-only dev", "dev.tsv: no data rows (an empty file, or a header only)"),
    ("empty test", "test.tsv: no data rows (an empty file, or a header only)"),
    ("unknown dev label", "dev.tsv:3: label 'weather' is not among the training labels ['food', 'sport']"),
    ("missing column", "train.tsv:2: no column 'lang' (the row's language); the row has label, text"),
    ("unknown language", "the data's language(s) ['fr'] have no language id in this model; its codes are en de ru"),
])
def test_bad_input_is_one_line_and_exit_2(tokenizer_dir, tmp_path, capsys, case, expected):
    """An empty training, dev or test file is one line and status 2, never a score of 0.0."""
    from ernie_m import ErnieMForSequenceClassification, ErnieMTokenizer

    save_language_model(ErnieMForSequenceClassification, ErnieMTokenizer.from_pretrained(tokenizer_dir),
                        tmp_path / "model", seed=4, num_labels=2)
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        write_table(tmp_path / name)
    if case == "empty train":
        (tmp_path / "train.tsv").write_text("")
    elif case == "header-only dev":
        (tmp_path / "dev.tsv").write_text("label\ttext\tlang\n")
    elif case == "empty test":
        (tmp_path / "test.tsv").write_text("\n")
    elif case == "unknown dev label":
        write_table(tmp_path / "dev.tsv", [ROWS[0], ("weather", "It rains.", "en")])
    elif case == "missing column":
        write_table(tmp_path / "train.tsv", [row[:2] for row in ROWS], header=("label", "text"))
    else:
        write_table(tmp_path / "test.tsv", [("food", "Nous mangeons.", "fr")])
    line = one_line_exit(capsys, classification.main, _custom(tmp_path, str(tmp_path / "model")))
    assert line.startswith("finetune: ") and line.endswith(expected), line
    assert not os.path.exists(tmp_path / "out" / "results.json")


def _checkpoints(directory):
    return [name for name in os.listdir(directory) if name.startswith("checkpoint-")] if directory.is_dir() else []


def test_a_directory_in_use_is_refused_and_ctrl_c_names_the_checkpoint_to_resume(tiny_model_dir, tmp_path, capsys):
    """A second run into a directory in use is refused, even with --overwrite, so the first keeps its checkpoints and
    log; Ctrl-C ends in one line naming the checkpoint to resume from."""
    write_table(tmp_path / "train.tsv", ROWS * 50)
    write_table(tmp_path / "dev.tsv")
    write_table(tmp_path / "test.tsv")
    arguments = _custom(tmp_path, tiny_model_dir)
    arguments[arguments.index("--max_steps") + 1] = "100000"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    log = open(tmp_path / "first.err", "w")  # a file, not a pipe: the progress bar would fill a pipe and block
    first = subprocess.Popen([sys.executable, "-m", "finetune.classification", *arguments, "--logging_steps", "1000"],
                             cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.time() + 120
        while not _checkpoints(tmp_path / "out") and time.time() < deadline and first.poll() is None:
            time.sleep(0.2)
        assert _checkpoints(tmp_path / "out"), (tmp_path / "first.err").read_text()[-2000:]
        line = one_line_exit(capsys, classification.main, [*arguments, "--overwrite_output_dir"])
        assert f"{tmp_path / 'out'} is in use by another run (pid {first.pid})" in line
        assert _checkpoints(tmp_path / "out")  # nothing deleted
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
        log.close()
    stderr = (tmp_path / "first.err").read_text()
    last = stderr.strip().splitlines()[-1]
    assert first.returncode == 130, stderr[-2000:]
    assert last.startswith("finetune: interrupted; rerun the same command with --resume to continue from "
                           f"{tmp_path / 'out'}/checkpoint-"), last
    assert "Traceback" not in stderr


@pytest.mark.parametrize("load_best", ["true", "false"])
def test_load_best_model_at_end_picks_the_weights_that_predict(tiny_model_dir, tmp_path, load_best):
    """PaddleNLP's semantics: the test files are scored with the checkpoint best on dev, or (false) with the last
    step's weights; --do_eval and --do_predict alone score --model without training."""
    from ernie_m import ErnieMForSequenceClassification, ErnieMTokenizer

    write_table(tmp_path / "train.tsv", ROWS * 4)
    write_table(tmp_path / "dev.tsv", ROWS[:2])
    write_table(tmp_path / "test.tsv")
    classification.main(_custom(tmp_path, tiny_model_dir, "--load_best_model_at_end", load_best, "--eval_steps",
                                "1", "--learning_rate", "1e-3"))
    out = tmp_path / "out"
    results = json.loads((out / "results.json").read_text())
    weights = out / "best" if load_best == "true" else out / "checkpoint-4"  # the last evaluation's checkpoint
    model = ErnieMForSequenceClassification.from_pretrained(str(weights))
    tokenizer = ErnieMTokenizer.from_pretrained(str(weights))
    args = classification.parser().parse_args(_custom(tmp_path, "m"))
    test = classification.load_custom(args)["test"]
    features = {lang: classification.encode(tokenizer, examples, 256, False) for lang, examples in test.items()}
    collate = classification.make_collate(tokenizer.pad_token_id)
    expected = classification.evaluator(features, collate, 64)(model)
    assert {lang: results["test_accuracy"][lang] for lang in expected} == expected
    probabilities = classification.class_probabilities(model, features["en"] + features["de"], collate)
    assert json.loads((out / "test_results.json").read_text())["confidence"] == pytest.approx(
        probabilities.max(-1).tolist(), abs=1e-6)
    # Scoring only: the chosen weights as --model, no training, no checkpoint.
    classification.main([*_custom(tmp_path, str(weights), "--do_eval", "--do_predict"), "--output_dir",
                         str(tmp_path / "scored")])
    scored = json.loads((tmp_path / "scored" / "results.json").read_text())
    assert scored["test_accuracy"] == results["test_accuracy"] and "best_step" not in scored
    assert not _checkpoints(tmp_path / "scored")


def test_a_full_disk_while_writing_results_is_one_line(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """A write error after training (results.json, test_results.json) was a traceback; the checkpoints stay."""
    import finetune.command

    write_table(tmp_path / "train.tsv", ROWS * 2)
    write_table(tmp_path / "dev.tsv")
    write_table(tmp_path / "test.tsv")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(finetune.command, "save_results", full_disk)
    monkeypatch.setattr(classification, "save_results", full_disk)
    with pytest.raises(SystemExit) as caught:
        classification.main(_custom(tmp_path, tiny_model_dir))
    error = capsys.readouterr().err
    assert caught.value.code == 1 and "Traceback" not in error  # the progress bar's lines come before
    assert error.strip().splitlines()[-1] == (f"finetune: [Errno 28] No space left on device; the checkpoints in "
                                              f"{tmp_path / 'out'} are kept")
    assert _checkpoints(tmp_path / "out") and (tmp_path / "out" / "best").is_dir()


def test_results_are_written_whole_or_not_at_all(tmp_path):
    """results.json is staged and renamed in: a failure mid-write leaves the previous file whole."""
    from finetune.command import save_results

    save_results(str(tmp_path), {"accuracy": 0.5})
    before = (tmp_path / "results.json").read_text()
    with pytest.raises(TypeError):
        save_results(str(tmp_path), {"accuracy": 0.75, "unwritable": object()})
    assert (tmp_path / "results.json").read_text() == before
    assert os.listdir(tmp_path) == ["results.json"]
