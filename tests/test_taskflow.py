"""PaddleNLP Taskflow over our checkpoints, offline, on Paddle 3 (ernie_m.taskflow).

Agreement with the dynamic graph is checked by running each Taskflow pipeline twice: once on the Paddle Inference
predictor Taskflow builds, once with that predictor swapped for the dynamic-graph model behind the same handle
interface, so pre- and post-processing are shared and only the model differs.
"""
import json
import os

import numpy as np
import paddle
import pytest
from paddlenlp import Taskflow

import ernie_m.taskflow as layer
from ernie_m.tagging import entity_spans
from ernie_m import UIEM, ErnieMConfig, ErnieMForSequenceClassification, ErnieMForTokenClassification, ErnieMTokenizer

TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Быстрая коричневая лиса прыгает через ленивую собаку у реки.",
    "Le renard brun rapide saute par-dessus le chien paresseux.",
]
NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def _save(model, tokenizer, directory, sharpen=()):
    """Save with the named output layers scaled up, so that outputs are far from uniform and masks matter."""
    for name in sharpen:
        weight = getattr(model, name).weight
        weight.set_value(weight * 40.0)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="module", autouse=True)
def _layer_installed():
    """The layer for this module's tests, as a program installs it; PaddleNLP's own methods afterwards."""
    layer.enable()
    yield
    layer.disable()


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    return ErnieMTokenizer.from_pretrained(tokenizer_dir)


def _config(tokenizer, **kwargs):
    return ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=len(tokenizer), **kwargs)


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, tokenizer):
    paddle.seed(11)
    model = ErnieMForSequenceClassification(
        _config(tokenizer, num_labels=3, id2label={0: "contradiction", 1: "entailment", 2: "neutral"}))
    return _save(model, tokenizer, tmp_path_factory.mktemp("classifier"), sharpen=["classifier"])


@pytest.fixture(scope="module")
def uie_dir(tmp_path_factory, tokenizer):
    paddle.seed(12)
    return _save(UIEM(_config(tokenizer)), tokenizer, tmp_path_factory.mktemp("uie"),
                 sharpen=["linear_start", "linear_end"])


@pytest.fixture(scope="module")
def ner_dir(tmp_path_factory, tokenizer):
    paddle.seed(13)
    config = _config(tokenizer, num_labels=len(NER_LABELS), id2label=dict(enumerate(NER_LABELS)))
    return _save(ErnieMForTokenClassification(config), tokenizer, tmp_path_factory.mktemp("ner"),
                 sharpen=["classifier"])


class DynamicPredictor:
    """The dynamic-graph model behind Paddle Inference's handle interface (copy_from_cpu / run / copy_to_cpu)."""

    class _Handle:
        def __init__(self):
            self.value = None

        def copy_from_cpu(self, array):
            self.value = np.array(array)

        def copy_to_cpu(self):
            return self.value

    def __init__(self, model, input_names):
        self.model, self.input_names = model, input_names
        self.inputs = [self._Handle() for _ in input_names]
        self.outputs = [self._Handle(), self._Handle()]

    def install(self, task):
        task.predictor, task.input_handles, task.output_handle = self, self.inputs, self.outputs

    def get_input_names(self):
        return list(self.input_names)

    def run(self):
        in_static_mode = not paddle.in_dynamic_mode()  # text classification runs its predictor in static mode
        if in_static_mode:
            paddle.disable_static()
        try:
            with paddle.no_grad():
                feed = {name: paddle.to_tensor(h.value) for name, h in zip(self.input_names, self.inputs)}
                outputs = self.model(**feed)
            outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
            for handle, output in zip(self.outputs, outputs):
                handle.value = np.array(output.numpy(), copy=True)
        finally:
            if in_static_mode:
                paddle.enable_static()


def _eval(model):
    model.eval()
    return model


def test_text_classification_agrees_with_the_dynamic_graph(classifier_dir, tokenizer):
    classify = Taskflow("text_classification", task_path=classifier_dir, batch_size=3)
    static = classify(TEXTS)  # one padded batch of three lengths
    assert os.path.isfile(os.path.join(classifier_dir, "static", "inference.json"))
    assert not os.path.exists(os.path.join(classifier_dir, "static", "inference.pdmodel"))

    ours = _eval(ErnieMForSequenceClassification.from_pretrained(classifier_dir))
    DynamicPredictor(ours, ["input_ids"]).install(classify.task_instance)
    dynamic = classify(TEXTS)
    assert [r["predictions"][0]["label"] for r in static] == [r["predictions"][0]["label"] for r in dynamic]
    scores = np.array([[r["predictions"][0]["score"] for r in result] for result in (static, dynamic)])
    np.testing.assert_allclose(scores[0], scores[1], atol=1e-5)

    # One text at a time, no padding, straight through our model: the same scores.
    for text, result in zip(TEXTS, static):
        logits = ours(paddle.to_tensor([tokenizer(text)["input_ids"]]))
        probabilities = paddle.nn.functional.softmax(logits, -1).numpy()[0]
        assert result["predictions"][0]["label"] == ours.config.id2label[int(probabilities.argmax())]
        assert abs(result["predictions"][0]["score"] - probabilities.max()) < 1e-5

    # What the layer prevents: PaddleNLP's class, given no mask as Taskflow gives none, hides [CLS] (token id 0)
    # and attends to padding. On Taskflow's padded batch its probabilities move far beyond the tolerance above.
    from paddlenlp.transformers import ErnieMForSequenceClassification as PaddleNLPClassifier

    theirs = _eval(PaddleNLPClassifier.from_pretrained(classifier_dir))
    ids = paddle.to_tensor(tokenizer(TEXTS, padding=True)["input_ids"])
    gap = np.abs(paddle.nn.functional.softmax(theirs(ids), -1).numpy() -
                 paddle.nn.functional.softmax(ours(ids), -1).numpy()).max()
    assert gap > 1e-3


class Recording:
    """An output handle that keeps what Taskflow read from it."""

    def __init__(self, handle, log):
        self.handle, self.log = handle, log

    def copy_to_cpu(self):
        value = self.handle.copy_to_cpu()
        self.log.append(np.array(value, copy=True))
        return value


def _record_outputs(task):
    log = []
    task.output_handle = [Recording(handle, log) for handle in task.output_handle]
    return log


def _compare_extraction(extract, reference_model, position_prob):
    """The start/end probabilities UIE decodes, from Paddle Inference and from the dynamic graph.

    UIE's decoding walks a Python set of (position, probability) pairs, so its output order (and, through
    `_auto_joiner`'s first-span test, its grouping) can change with the last bits of a probability: the comparison
    is made on what it decodes, not on the dictionaries it returns.
    """
    static_log = _record_outputs(extract.task_instance)
    result = extract(TEXTS)
    assert any(spans for row in result for spans in row.values()), "nothing extracted: the check would be empty"
    predictor = DynamicPredictor(reference_model, ["input_ids", "position_ids"])
    predictor.install(extract.task_instance)
    dynamic_log = _record_outputs(extract.task_instance)
    extract(TEXTS)
    assert len(static_log) == len(dynamic_log) >= 2
    for static, dynamic in zip(static_log, dynamic_log):
        np.testing.assert_allclose(static, dynamic, atol=1e-5)
        assert ((static > position_prob) == (dynamic > position_prob)).all()


def test_uie_m_information_extraction_agrees_with_the_dynamic_graph(uie_dir):
    extract = Taskflow("information_extraction", model="uie-m-base", task_path=uie_dir, schema=["person", "city"],
                       max_seq_len=64, position_prob=0.5)
    assert isinstance(extract.task_instance._tokenizer, ErnieMTokenizer)
    model = _eval(UIEM.from_pretrained(uie_dir))
    assert model.config.legacy_attention_mask is False
    _compare_extraction(extract, model, 0.5)


def test_a_paddlenlp_uie_m_checkpoint_keeps_the_mask_it_was_trained_with(tmp_path, tokenizer):
    """A config.json without `legacy_attention_mask` comes from PaddleNLP: Taskflow must match PaddleNLP's UIEM."""
    from paddlenlp.transformers import UIEM as PaddleNLPUIEM
    from paddlenlp.transformers import ErnieMConfig as PaddleNLPConfig

    paddle.seed(14)
    config = PaddleNLPConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=256)
    directory = _save(PaddleNLPUIEM(config), tokenizer, tmp_path / "paddlenlp_uie", sharpen=["linear_start",
                                                                                             "linear_end"])
    assert "legacy_attention_mask" not in json.load(open(os.path.join(directory, "config.json")))
    extract = Taskflow("information_extraction", model="uie-m-base", task_path=directory, schema=["person"],
                       max_seq_len=64, position_prob=0.5)
    _compare_extraction(extract, _eval(PaddleNLPUIEM.from_pretrained(directory)), 0.5)


def test_ner_mode_tags_words_as_fine_tuning_reads_them(ner_dir, tokenizer):
    from finetune.ner import encode, make_collate, predict_tags
    from finetune.readers import TaggedSentence

    tag = Taskflow("ner", mode=layer.NER_MODE, task_path=ner_dir, batch_size=2)
    results = tag(TEXTS)
    assert len(results) == len(TEXTS)
    for text, segments in zip(TEXTS, results):
        assert "".join(segment for segment, _ in segments) == text  # the segments cover the text, in order
        assert {label for _, label in segments} <= {"O", "PER", "LOC"}

    # The word tags fine-tuning's own evaluation reads from the dynamic graph give the same entities.
    model = _eval(ErnieMForTokenClassification.from_pretrained(ner_dir))
    sentences = [TaggedSentence(text.split(), ["O"] * len(text.split()), "en") for text in TEXTS]
    features = encode(tokenizer, sentences, {label: i for i, label in enumerate(NER_LABELS)}, 512, False)
    tags = predict_tags(model, features, make_collate(tokenizer.pad_token_id), NER_LABELS)
    assert any(label != "O" for sentence in tags for label in sentence), "no entity: the check would be empty"
    for words, sentence_tags, segments in zip([s.tokens for s in sentences], tags, results):
        expected = [(" ".join(words[first:last]), kind) for first, last, kind in entity_spans(sentence_tags)]
        assert [segment for segment in segments if segment[1] != "O"] == expected

    only = Taskflow("ner", mode=layer.NER_MODE, task_path=ner_dir, entities_only=True)(TEXTS[0])
    assert only == [segment for segment in results[0] if segment[1] != "O"]


def test_ner_mode_runs_a_long_text_in_windows(ner_dir):
    text = " ".join(TEXTS * 6)
    segments = Taskflow("ner", mode=layer.NER_MODE, task_path=ner_dir, max_seq_len=16)(text)
    assert "".join(segment for segment, _ in segments) == text


def test_ner_mode_errors_name_the_problem(classifier_dir):
    with pytest.raises(ValueError, match="needs task_path"):
        Taskflow("ner", mode=layer.NER_MODE)
    with pytest.raises(ValueError, match="holds a ErnieMForSequenceClassification checkpoint"):
        Taskflow("ner", mode=layer.NER_MODE, task_path=classifier_dir)


def test_without_the_layer_taskflow_fails_on_paddle_3(tmp_path, tokenizer):
    paddle.seed(15)
    directory = _save(ErnieMForSequenceClassification(_config(tokenizer, num_labels=2)), tokenizer, tmp_path / "c")
    layer.disable()
    try:
        assert not layer.is_enabled()
        with pytest.raises(RuntimeError, match="inference.pdmodel"):
            Taskflow("text_classification", task_path=directory)
    finally:
        layer.enable()
    assert layer.is_enabled()
    assert Taskflow("text_classification", task_path=directory)(TEXTS[0])[0]["predictions"]


# ---- checkpoints with a language embedding ---------------------------------------------------------------------------
LANGUAGES = ["en", "ru", "de"]  # of TEXTS (the third is French; any code the tokenizer knows works as a label)


def test_text_classification_feeds_language_ids(tmp_path, tokenizer):
    """`language=` for the task and `{"text", "language"}` per input: Taskflow's scores equal our model's run with
    the same language ids (one text at a time), and the language changes them (else the check would be empty)."""
    from tests.helpers import save_language_model

    model = save_language_model(ErnieMForSequenceClassification, tokenizer, tmp_path / "clf", seed=21,
                                sharpen=["classifier"], num_labels=3)

    def expected(text, language):
        with paddle.no_grad():
            logits = model(**tokenizer(text, language=language, return_tensors="pd"))
        return paddle.nn.functional.softmax(logits, -1).numpy()[0].max()

    task_language = Taskflow("text_classification", task_path=str(tmp_path / "clf"), batch_size=2, language="de")
    for text, result in zip(TEXTS, task_language(TEXTS)):
        assert abs(result["predictions"][0]["score"] - expected(text, "de")) <= 1e-5
    per_input = task_language([{"text": text, "language": language} for text, language in zip(TEXTS, LANGUAGES)])
    scores = [result["predictions"][0]["score"] for result in per_input]
    for text, language, score in zip(TEXTS, LANGUAGES, scores):
        assert abs(score - expected(text, language)) <= 1e-5
    assert max(abs(score - expected(text, "de")) for text, score in zip(TEXTS, scores)) > 1e-3

    without = Taskflow("text_classification", task_path=str(tmp_path / "clf"))
    with pytest.raises(ValueError, match="has a language embedding: give Taskflow"):
        without(TEXTS[0])


def test_ner_mode_feeds_language_ids(tmp_path, tokenizer):
    from ernie_m.tagging import tag_texts
    from tests.helpers import save_language_model

    model = save_language_model(ErnieMForTokenClassification, tokenizer, tmp_path / "ner", seed=22,
                                sharpen=["classifier"], num_labels=len(NER_LABELS),
                                id2label=dict(enumerate(NER_LABELS)))
    tag = Taskflow("ner", mode=layer.NER_MODE, task_path=str(tmp_path / "ner"), max_seq_len=12)  # several windows
    results = tag([{"text": text, "language": language} for text, language in zip(TEXTS, LANGUAGES)])
    expected = tag_texts(model, tokenizer, TEXTS, max_length=12, languages=LANGUAGES)
    assert results == expected
    assert expected != tag_texts(model, tokenizer, TEXTS, max_length=12, languages="de")


def test_uie_m_feeds_the_task_language(tmp_path, tokenizer):
    """UIE-M takes `language=` for the task: Paddle Inference equals the dynamic graph given the same language ids,
    and those ids move the probabilities."""
    from tests.helpers import save_language_model

    model = save_language_model(UIEM, tokenizer, tmp_path / "uie", seed=23, sharpen=["linear_start", "linear_end"])
    extract = Taskflow("information_extraction", model="uie-m-base", task_path=str(tmp_path / "uie"),
                       schema=["person", "city"], max_seq_len=64, position_prob=0.5, language="ru")
    static_log = _record_outputs(extract.task_instance)
    extract(TEXTS)

    class WithRussian:
        def __init__(self, with_language):
            self.with_language = with_language

        def __call__(self, input_ids, position_ids):
            ids = paddle.full_like(input_ids, tokenizer.language_id("ru"))
            return model(input_ids, position_ids, language_ids=ids if self.with_language else None)

    model.config.allow_missing_language_ids = True  # the comparison runs it without them on purpose
    for with_language in (True, False):
        predictor = DynamicPredictor(WithRussian(with_language), ["input_ids", "position_ids"])
        predictor.install(extract.task_instance)
        dynamic_log = _record_outputs(extract.task_instance)
        extract(TEXTS)
        gap = max(np.abs(s - d).max() for s, d in zip(static_log, dynamic_log))
        assert len(static_log) == len(dynamic_log) >= 2
        assert gap <= 1e-5 if with_language else gap > 1e-3


def test_inputs_longer_than_the_positions_are_cut_in_every_pipeline(tmp_path, tokenizer, capfd):
    """Checkpoints with 20 positions under Taskflow's default length of 512: before, text_classification failed in
    Paddle ("expected < 20, but got ..."); now every pipeline cuts at 18 tokens and one line says so."""
    long_text = " ".join(TEXTS * 3)
    paddle.seed(13)
    classifier = _save(ErnieMForSequenceClassification(_config(tokenizer, num_labels=2, max_position_embeddings=20)),
                       tokenizer, tmp_path / "classifier")
    tagger = _save(ErnieMForTokenClassification(_config(tokenizer, num_labels=len(NER_LABELS),
                                                        id2label=dict(enumerate(NER_LABELS)),
                                                        max_position_embeddings=20)), tokenizer, tmp_path / "tagger")
    uie = _save(UIEM(_config(tokenizer, max_position_embeddings=20)), tokenizer, tmp_path / "uie")
    assert len(Taskflow("text_classification", task_path=classifier)([long_text])) == 1
    tags = Taskflow("ner", mode="ernie-m", task_path=tagger)(long_text)
    assert "".join(segment for segment, _ in tags) == long_text
    Taskflow("information_extraction", schema=["fox"], task_path=uie, model="uie-m-base")(long_text)
    said = [line for line in capfd.readouterr().err.splitlines() if "positions hold" in line]
    assert "max_length 512 is more than this model's 20 positions hold; inputs are cut at 18 tokens" in said
