"""QA: windows with overlap, answer positions, span post-processing, SQuAD JSON errors, and the pipeline end to end."""
import json

import numpy as np
import pytest

from finetune import qa
from finetune.readers import BenchmarkDataError, QAExample, read_squad
from finetune.trainer import SetupError

CONTEXT = ("The river flows north through the old town. Many bridges cross it. The tallest tower was built in 1889 "
           "by the engineers of the city. Tourists visit the tower every summer, and the museum opens at nine.")


@pytest.fixture()
def tokenizer(tokenizer_dir):
    from ernie_m import ErnieMTokenizer

    return ErnieMTokenizer.from_pretrained(tokenizer_dir)


def test_windows_overlap_and_point_at_the_answer(tokenizer):
    answer = "1889"
    example = QAExample("q1", "When was the tower built?", CONTEXT, [answer], CONTEXT.index(answer), "en")
    features = qa.encode(tokenizer, [example], max_length=40, doc_stride=8, max_query_length=16,
                         with_language_ids=False, training=True)
    assert len(features) > 2, "the test needs a context longer than one window"
    holding = 0
    for feature in features:
        first = feature["context_start"]
        assert feature["input_ids"][first - 2:first] == [tokenizer.sep_token_id] * 2 and len(feature["input_ids"]) <= 40
        if feature["start_positions"]:
            holding += 1
            start, end = feature["start_positions"] - first, feature["end_positions"] - first
            span = CONTEXT[feature["offsets"][start][0]:feature["offsets"][end][1]]
            assert span.strip() == answer
        else:
            assert feature["end_positions"] == 0  # no answer here: both point at [CLS]
    assert holding >= 1
    # Consecutive windows share doc_stride context tokens: the next window starts doc_stride before this one ends.
    assert features[1]["offsets"][:8] == features[0]["offsets"][-8:]

    with pytest.raises(SetupError, match="not more than doc_stride"):
        qa.encode(tokenizer, [example], max_length=30, doc_stride=20, max_query_length=16, with_language_ids=False,
                  training=False)


def test_span_selection_keeps_spans_inside_the_context():
    feature = {"context_start": 4, "offsets": [(0, 3), (4, 9), (10, 15), (16, 20)]}
    start_logits = np.array([9.0, 8.0, 0, 0, 0.5, 3.0, 0.1, 0.2, 0])  # [CLS] and the question score high
    end_logits = np.array([9.0, 0, 0, 0, 0.1, 0.2, 2.0, 1.0, 0])
    spans = qa.best_spans(start_logits, end_logits, feature, n_best=9, max_answer_length=30)
    best = max(spans)
    assert best == (5.0, 4, 15)  # tokens 5..6 of the window = context tokens 1..2
    offsets = feature["offsets"]
    inside = {(a[0], b[1]) for i, a in enumerate(offsets) for b in offsets[i:]}
    assert {(s[1], s[2]) for s in spans} <= inside  # never a span over [CLS] or the question
    # A span longer than max_answer_length is not a candidate.
    assert max(qa.best_spans(start_logits, end_logits, feature, n_best=9, max_answer_length=1))[1:] == (4, 9)


def _squad(path, questions):
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": CONTEXT, "qas": [
        {"id": f"q{i}", "question": q, "answers": [{"text": a, "answer_start": CONTEXT.index(a)}]}
        for i, (q, a) in enumerate(questions)]}]}]}))


def test_squad_reader_errors(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BenchmarkDataError, match=r"bad.json: not valid JSON"):
        read_squad(str(tmp_path / "bad.json"), "en")
    (tmp_path / "odd.json").write_text(json.dumps({"data": [{"paragraphs": [{"context": "x", "qas": [{"id": 1}]}]}]}))
    with pytest.raises(BenchmarkDataError, match=r"odd.json: data\[0\].paragraphs\[0\].qas\[0\]: missing or bad "
                                                 r"field 'question'"):
        read_squad(str(tmp_path / "odd.json"), "en")


def test_squad_reader_names_every_bad_file_and_place(tmp_path):
    """Each malformed SQuAD file (`data` as a dict, invalid UTF-8, ...) is named with the place in it."""
    cases = {
        "dict.json": (json.dumps({"data": {"paragraphs": []}}).encode(), r"dict.json: data is a dict, expected a list"),
        "utf8.json": (b'{"data": [\xff]}', r"utf8.json: not valid UTF-8 \(byte offset 10\)"),
        "qas.json": (json.dumps({"data": [{"paragraphs": [{"context": "x", "qas": "q"}]}]}).encode(),
                     r"qas.json: data\[0\].paragraphs\[0\].qas is a str, expected a list"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(BenchmarkDataError, match=message):
            read_squad(str(tmp_path / name), "en")


@pytest.mark.parametrize("text, start, problem", [
    ("1889", -5, "answer_out_of_range"), ("1889", 10_000, "answer_out_of_range"), ("", 0, "empty_answer"),
    ("1890", None, "answer_text_mismatch"), ("1889", None, None),
])
def test_answer_spans_are_checked_never_silently_relabelled(tmp_path, text, start, problem):
    """An answer_start out of range, an empty answer and an answer whose text is not at its start are each named and
    left out of training: relabelled, they would teach "no answer" or the wrong span."""
    start = CONTEXT.index("1889") if start is None else start
    (tmp_path / "s.json").write_text(json.dumps({"data": [{"paragraphs": [{"context": CONTEXT, "qas": [
        {"id": "q", "question": "When?", "answers": [{"text": text, "answer_start": start}]}]}]}]}))
    assert read_squad(str(tmp_path / "s.json"), "en")[0].answer_problem == problem


def test_training_leaves_out_bad_spans_and_counts_them(tiny_model_dir, tmp_path):
    questions = [("When was the tower built?", "1889"), ("What flows north?", "The river")]
    _squad(tmp_path / "train.json", questions * 2)
    document = json.loads((tmp_path / "train.json").read_text())
    document["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = -1
    document["data"][0]["paragraphs"][0]["qas"][1]["answers"][0]["text"] = "The rover"
    (tmp_path / "train.json").write_text(json.dumps(document))
    _squad(tmp_path / "dev.json", questions)
    out = tmp_path / "out"
    qa.main(["--model", tiny_model_dir, "--output_dir", str(out), "--train_file", str(tmp_path / "train.json"),
             "--dev", f"en:{tmp_path / 'dev.json'}", "--test", f"en:{tmp_path / 'dev.json'}", "--max_steps", "1",
             "--batch_size", "2", "--max_length", "48", "--doc_stride", "8", "--max_query_length", "16"])
    results = json.loads((out / "results.json").read_text())
    assert results["skipped_training_answers"] == {"answer_out_of_range": 1, "answer_text_mismatch": 1}


def test_qa_pipeline_end_to_end(tiny_model_dir, tmp_path):
    questions = [("When was the tower built?", "1889"), ("What flows north?", "The river"),
                 ("When does the museum open?", "at nine")]
    _squad(tmp_path / "train.json", questions * 3)
    _squad(tmp_path / "dev.json", questions)
    out = tmp_path / "out"
    qa.main(["--model", tiny_model_dir, "--output_dir", str(out), "--train_file", str(tmp_path / "train.json"),
             "--dev", f"en:{tmp_path / 'dev.json'}", "--test", f"en:{tmp_path / 'dev.json'}",
             f"de:{tmp_path / 'dev.json'}", "--max_steps", "3", "--batch_size", "4", "--max_length", "48",
             "--doc_stride", "8", "--max_query_length", "16"])
    results = json.loads((out / "results.json").read_text())
    assert set(results["test_f1"]) == set(results["test_exact_match"]) == {"en", "de", "average"}
    assert all(0.0 <= value <= 100.0 for value in results["test_f1"].values())


def test_windows_longer_than_the_models_positions_are_cut(tokenizer_dir, tmp_path, capfd):
    """A checkpoint with 40 positions under the defaults (--max_length 384, --doc_stride 128): before, the first
    window failed in the position embedding; now windows hold 38 tokens and the stride shrinks to fit them."""
    import paddle

    from ernie_m import ErnieMConfig, ErnieMModel, ErnieMTokenizer

    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    paddle.seed(6)
    ErnieMModel(ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=len(tokenizer),
                                         max_position_embeddings=40)).save_pretrained(str(tmp_path / "model"))
    tokenizer.save_pretrained(str(tmp_path / "model"))
    questions = [("When was the tower built?", "1889"), ("What flows north?", "The river")]
    _squad(tmp_path / "train.json", questions * 2)
    qa.main(["--model", str(tmp_path / "model"), "--output_dir", str(tmp_path / "out"), "--train_file",
             str(tmp_path / "train.json"), "--dev", f"en:{tmp_path / 'train.json'}", "--max_steps", "1",
             "--batch_size", "2", "--max_query_length", "16"])
    err = capfd.readouterr().err
    assert "max_length 384 is more than this model's 40 positions hold; inputs are cut at 38 tokens" in err
    assert "doc_stride 128 does not fit windows of 38 tokens; using 9" in err
    assert json.loads((tmp_path / "out" / "results.json").read_text())["best_step"] == 1
