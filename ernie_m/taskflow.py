"""PaddleNLP Taskflow over ERNIE-M checkpoints, offline, on Paddle 3. `enable()` installs the layer; importing this
module changes nothing.

    from paddlenlp import Taskflow
    from ernie_m import taskflow
    taskflow.enable()

    classify = Taskflow("text_classification", task_path="out/xnli/best")
    extract = Taskflow("information_extraction", model="uie-m-base", task_path="my_uie_m", schema=["person"])
    tag = Taskflow("ner", mode="ernie-m", task_path="out/conll/best")   # our token-classification task

What the layer changes in PaddleNLP 2.8.1's Taskflow, and why:

1. Paddle 3 saves a static graph as `<prefix>.json`; PaddleNLP 2.8.1 asks Paddle Inference for `<prefix>.pdmodel`
   and fails. While a task loads its inference model, a `.pdmodel` that does not exist next to an existing `.json`
   is read from the `.json`, with memory optimisation left off (Paddle 3.3.1 cannot create a predictor for such a
   program with it on). This helps every Taskflow task, not only ERNIE-M ones.
2. For a `task_path` holding an ERNIE-M checkpoint, Taskflow builds this project's model and tokenizer classes
   instead of PaddleNLP's. Taskflow feeds no attention mask, and PaddleNLP's ErnieM then hides token id 0, which is
   `[CLS]`; ours hides padding. Checkpoints whose `config.json` has no `legacy_attention_mask` entry were made by
   PaddleNLP (the released UIE-M, for one) and are run with the mask they were trained with. Our tokenizer's
   offsets also survive normalisation, which UIE-M's span extraction relies on.
3. Taskflow's `ner` task has no ERNIE-M model: `mode="ernie-m"` adds ours (`TokenClassificationTask`).
4. A checkpoint with a language embedding (`num_languages > 0`) gets language ids: its static graph takes
   `language_ids`, and the predictor fills them before each run, from `Taskflow(..., language="de")` or, for
   classification and `ner`, from inputs given as `{"text": ..., "language": ...}`. PaddleNLP's task code never
   sees the extra input, so its pre- and post-processing stay as they are.

`disable()` restores PaddleNLP's own methods.
"""
from __future__ import annotations

import collections
import contextlib
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

import paddle
from paddlenlp.taskflow import taskflow as _taskflow_registry
from paddlenlp.taskflow.information_extraction import UIETask
from paddlenlp.taskflow.task import Task
from paddlenlp.taskflow.text_classification import TextClassificationTask

from . import tagging
from .configuration import ErnieMConfig
from .architectures import architecture_named, serving_taskflow_task
from .tokenizer import ErnieMTokenizer

NER_MODE = "ernie-m"


# ---- checkpoints --------------------------------------------------------------------------------------------------
def _raw_config(task_path: str) -> dict:
    path = os.path.join(task_path, "config.json")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def is_ernie_m_checkpoint(task_path: str) -> bool:
    """Does `task_path` hold an ERNIE-M checkpoint (ours or PaddleNLP's)?"""
    config = _raw_config(task_path)
    architectures = config.get("architectures") or []
    return config.get("model_type") == "ernie_m" or any(architecture_named(name) for name in architectures)


def check_architecture(task_path: str, model_class) -> None:
    """Raise, naming both, unless `task_path`'s config.json was saved from `model_class`."""
    expected = model_class.__name__
    saved = (_raw_config(task_path).get("architectures") or [expected])[-1]
    if saved != expected:
        raise ValueError(f"{task_path} holds a {saved} checkpoint; this task needs a fine-tuned {expected}")


def load_for_taskflow(model_class, task_path: str):
    """Our `model_class` from `task_path`, in eval mode, with the attention mask its checkpoint was trained with."""
    check_architecture(task_path, model_class)
    raw = _raw_config(task_path)
    config = ErnieMConfig.from_pretrained(task_path)
    if "legacy_attention_mask" not in raw:
        # Made by PaddleNLP, whose ErnieM trained with the mask built from token id 0.
        config.legacy_attention_mask = True
    model = model_class.from_pretrained(task_path, config=config, allow_new_head=False)
    model.eval()
    return model


# ---- 1. `.pdmodel` read from Paddle 3's `.json` --------------------------------------------------------------------
def _program_file(model_file: str) -> str:
    if model_file.endswith(".pdmodel") and not os.path.exists(model_file):
        json_file = model_file[: -len(".pdmodel")] + ".json"
        if os.path.exists(json_file):
            return json_file
    return model_file


def _pir_program_config(config_class):
    class PirProgramConfig(config_class):
        """A Config for a `.json` program. Paddle 3.3.1's `create_predictor` fails on such programs with memory
        optimisation on ("Not find predictor_id 0 and pass_name memory_optimize_pass", measured on CPU), and
        Taskflow always turns it on: here it stays off."""

        def enable_memory_optim(self, *args, **kwargs):
            pass

    return PirProgramConfig


@contextlib.contextmanager
def _inference_config_reading_json():
    original = paddle.inference.Config
    pir_config = _pir_program_config(original)

    def config(*args):
        if args and isinstance(args[0], str):
            program = _program_file(args[0])
            if program.endswith(".json"):
                return pir_config(program, *args[1:])
        return original(*args)

    paddle.inference.Config = config
    try:
        yield
    finally:
        paddle.inference.Config = original


def _get_inference_model(original):
    def get_inference_model(self):
        with _inference_config_reading_json():
            original(self)
        if getattr(self, "_static_model_file", None):
            self._static_model_file = _program_file(self._static_model_file)
        if has_language_embedding(self._task_path):
            _feed_languages(self)

    return get_inference_model


def _prepare_onnx_mode(original):
    def prepare_onnx_mode(self):
        self._static_model_file = _program_file(self._static_model_file)  # paddle2onnx reads the .json
        original(self)

    return prepare_onnx_mode


# ---- 2. our classes for ERNIE-M task paths -------------------------------------------------------------------------
def _classification_model(original):
    def construct_model(self, model):
        if model == "finetune" and is_ernie_m_checkpoint(self._task_path):
            self._model = load_for_taskflow(serving_taskflow_task("text_classification").model_class,
                                            self._task_path)
        else:
            original(self, model)

    return construct_model


def _uie_model(original):
    def construct_model(self, model):
        served = serving_taskflow_task("information_extraction")
        if self._init_class == served.name and is_ernie_m_checkpoint(self._task_path):
            self._model = load_for_taskflow(served.model_class, self._task_path)
        else:
            original(self, model)

    return construct_model


def fit_lengths(task) -> None:
    """Taskflow's `max_length` / `max_seq_len` cut at what the checkpoint's positions hold (one line on stderr says
    so): Taskflow's default of 512 would fail inside a smaller model's position embedding."""
    from .configuration import ErnieMConfig, fit_max_length

    config = ErnieMConfig.from_pretrained(task._task_path)
    for name in ("_max_length", "_max_seq_len"):
        if hasattr(task, name):
            setattr(task, name, fit_max_length(config, int(getattr(task, name))))


def _our_tokenizer(original):
    def construct_tokenizer(self):
        if is_ernie_m_checkpoint(self._task_path):
            self._tokenizer = ErnieMTokenizer.from_pretrained(self._task_path)
            fit_lengths(self)
        else:
            original(self)

    return construct_tokenizer


# ---- 3. token classification in Taskflow's calling style -----------------------------------------------------------
class TokenClassificationTask(Task):
    """Word-level tags from a fine-tuned `ErnieMForTokenClassification`, run on Paddle Inference.

    `Taskflow("ner", mode="ernie-m", task_path=DIR)(text or [texts])` returns, for each text, `(segment, label)`
    tuples that cover the text in order (a single text gets its list alone), as Taskflow's `ner` does: an entity's
    words carry its type, the text between entities carries "O". `entities_only=True` keeps the entities.
    Words, windows and tag reading: ernie_m.tagging.
    """

    def __init__(self, task: str, model: str, **kwargs):
        if "task_path" not in kwargs:
            raise ValueError(f"Taskflow('ner', mode='{NER_MODE}') needs task_path=<a fine-tuned "
                             f"ErnieMForTokenClassification directory>")
        super().__init__(task=task, model=model, **kwargs)
        self._max_seq_len = int(kwargs.get("max_seq_len", 512))
        self._batch_size = int(kwargs.get("batch_size", 16))
        self._entities_only = bool(kwargs.get("entities_only", False))
        # Checked here as well as at load time: a static graph left by an earlier run skips the load.
        check_architecture(self._task_path, serving_taskflow_task("ner").model_class)
        self._construct_tokenizer()
        self._check_predictor_type()
        self._get_inference_model()
        id2label = _raw_config(self._task_path).get("id2label") or {}
        self._labels = {int(index): label for index, label in id2label.items()}

    def _construct_model(self, model):
        self._model = load_for_taskflow(serving_taskflow_task("ner").model_class, self._task_path)

    def _construct_tokenizer(self):
        self._tokenizer = ErnieMTokenizer.from_pretrained(self._task_path)
        fit_lengths(self)

    def _construct_input_spec(self):
        self._input_spec = [paddle.static.InputSpec(shape=[None, None], dtype="int64", name="input_ids")]
        if has_language_embedding(self._task_path):
            _with_language_input(self)

    def _preprocess(self, inputs):
        inputs, languages = split_languages(inputs)
        texts = self._check_input_text(inputs)
        words, windows = tagging.make_windows(self._tokenizer, texts, self._max_seq_len)
        if isinstance(self.predictor, LanguageFeedingPredictor):  # windows run in order: queue each one's language
            self.predictor.queue([languages[window.text] if languages else None for window in windows])
        return {"texts": texts, "words": words, "windows": windows}

    def _run_model(self, inputs):
        windows = inputs["windows"]
        for start in range(0, len(windows), self._batch_size):
            chunk = windows[start:start + self._batch_size]
            self.input_handles[0].copy_from_cpu(tagging.input_ids(self._tokenizer, chunk))
            self.predictor.run()
            tagging.read_labels(chunk, self.output_handle[0].copy_to_cpu())
        return inputs

    def _postprocess(self, inputs):
        results = tagging.segments(inputs["texts"], inputs["words"], inputs["windows"], self._labels,
                                   self._entities_only)
        return results if len(results) > 1 else results[0]  # one text, one result: as Taskflow's `ner` does


# ---- 4. language ids for checkpoints with a language embedding ----------------------------------------------------
LANGUAGE_IDS = "language_ids"


def has_language_embedding(task_path: str) -> bool:
    """Was the checkpoint in `task_path` saved with a language embedding (`num_languages > 0`)?"""
    return is_ernie_m_checkpoint(task_path) and int(_raw_config(task_path).get("num_languages") or 0) > 0


class _WithLanguageIds(paddle.nn.Layer):
    """The task's model with `language_ids` after `input_ids`: a static graph's input specs map to `forward`'s
    named arguments by position (text classification and NER feed `input_ids` alone)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, language_ids):
        return self.model(input_ids, language_ids=language_ids)


class _WithPositionsAndLanguageIds(_WithLanguageIds):
    """As `_WithLanguageIds`, after `input_ids` and `position_ids` (UIE-M feeds both)."""

    def forward(self, input_ids, position_ids, language_ids):
        return self.model(input_ids, position_ids=position_ids, language_ids=language_ids)


def _with_language_input(task) -> None:
    """Add `language_ids` to the task's input spec and model, for a checkpoint with a language embedding."""
    names = [spec.name for spec in task._input_spec]
    wrapper = {("input_ids",): _WithLanguageIds,
               ("input_ids", "position_ids"): _WithPositionsAndLanguageIds}.get(tuple(names))
    if wrapper is None:
        raise ValueError(f"{task._task_path}: language ids for a task fed {names} are not supported")
    task._input_spec = list(task._input_spec) + [
        paddle.static.InputSpec(shape=[None, None], dtype="int64", name=LANGUAGE_IDS)]
    task._model = wrapper(task._model)


def _input_spec_with_languages(original):
    def construct_input_spec(self):
        original(self)
        if has_language_embedding(self._task_path) and not isinstance(self._model, _WithLanguageIds):
            _with_language_input(self)

    return construct_input_spec


class LanguageFeedingPredictor:
    """A Paddle Inference predictor whose program takes `language_ids`, shown to PaddleNLP's task code without that
    input: `run()` fills it, a row at a time, from the languages queued for the call's rows (`queue`) or else the
    task's `language=`. Rows take their text's language throughout, padding included, as the tokenizer does."""

    def __init__(self, predictor, task):
        names = list(predictor.get_input_names())
        if LANGUAGE_IDS not in names:
            raise ValueError(f"{task._task_path}/static holds a program built without language_ids for a checkpoint "
                             f"that has a language embedding; delete {task._task_path}/static and run again")
        self._predictor = predictor
        self._task = task  # its tokenizer may be built after the predictor (UIE builds it last)
        self._default = task.kwargs.get("language")
        self._names = [name for name in names if name != LANGUAGE_IDS]
        self._input_ids = predictor.get_input_handle("input_ids")
        self._languages = predictor.get_input_handle(LANGUAGE_IDS)
        self._queued: collections.deque = collections.deque()

    def language_id(self, language: Optional[str]) -> int:
        language = language if language is not None else self._default
        if language is None:
            raise ValueError("this checkpoint has a language embedding: give Taskflow(..., language='xx') or inputs "
                             "as {'text': ..., 'language': 'xx'}")
        return self._task._tokenizer.language_id(language)

    def queue(self, languages: Sequence[Optional[str]]) -> None:
        """The languages of the next rows, in the order the task runs them."""
        self._queued = collections.deque(self.language_id(language) for language in languages)

    def get_input_names(self) -> List[str]:
        return list(self._names)

    def run(self):
        rows, length = self._input_ids.shape()
        ids = [self._queued.popleft() if self._queued else self.language_id(None) for _ in range(rows)]
        self._languages.copy_from_cpu(np.repeat(np.asarray(ids, dtype=np.int64)[:, None], length, axis=1))
        return self._predictor.run()

    def __getattr__(self, name):
        return getattr(self._predictor, name)


def _feed_languages(task) -> None:
    if task._predictor_type != "paddle-inference":
        raise ValueError(f"{task._task_path} has a language embedding, which this layer feeds on Paddle Inference "
                         f"only; leave Taskflow's predictor at 'paddle-inference' (no ONNX) for it")
    task.predictor = LanguageFeedingPredictor(task.predictor, task)
    task.input_names = task.predictor.get_input_names()
    task.input_handles = [task.predictor.get_input_handle(name) for name in task.input_names]


def split_languages(inputs) -> Tuple[object, Optional[List[Optional[str]]]]:
    """Taskflow's call arguments (a tuple holding a text or a list of texts) with inputs given as
    `{"text": ..., "language": ...}` -> (the same arguments holding the texts, their languages, None for a plain
    text); arguments without such inputs come back unchanged, with None."""
    given = inputs[0] if isinstance(inputs, tuple) and inputs else inputs
    items = given if isinstance(given, list) else [given]
    if not any(isinstance(item, dict) for item in items):
        return inputs, None
    texts, languages = [], []
    for number, item in enumerate(items):
        if isinstance(item, dict):
            if not isinstance(item.get("text"), str):
                raise ValueError(f"input {number}: a dict input needs a 'text' string (and a 'language' code)")
            texts.append(item["text"])
            languages.append(item.get("language"))
        else:
            texts.append(item)
            languages.append(None)
    texts = texts if isinstance(given, list) else texts[0]
    return ((texts,) + tuple(inputs[1:]) if isinstance(inputs, tuple) else texts), languages


def _classification_preprocess(original):
    def preprocess(self, inputs):
        inputs, languages = split_languages(inputs)
        if isinstance(self.predictor, LanguageFeedingPredictor):  # else a language changes nothing: ignored
            self.predictor.queue(languages or [None] * len(self._check_input_text(inputs)))
        return original(self, inputs)

    return preprocess


# ---- installing and removing the layer -----------------------------------------------------------------------------
_PATCHES = (
    (Task, "_get_inference_model", _get_inference_model),
    (Task, "_prepare_onnx_mode", _prepare_onnx_mode),
    (TextClassificationTask, "_construct_model", _classification_model),
    (TextClassificationTask, "_construct_tokenizer", _our_tokenizer),
    (UIETask, "_construct_model", _uie_model),
    (UIETask, "_construct_tokenizer", _our_tokenizer),
    (TextClassificationTask, "_construct_input_spec", _input_spec_with_languages),
    (UIETask, "_construct_input_spec", _input_spec_with_languages),
    (TextClassificationTask, "_preprocess", _classification_preprocess),
)
_originals: Dict[Tuple[type, str], object] = {}


def enable() -> None:
    """Install the layer (idempotent; importing this module calls it)."""
    for owner, name, wrap in _PATCHES:
        if (owner, name) not in _originals:
            _originals[(owner, name)] = owner.__dict__[name]
            setattr(owner, name, wrap(owner.__dict__[name]))
    _taskflow_registry.TASKS["ner"]["modes"][NER_MODE] = {
        "task_class": TokenClassificationTask, "task_flag": f"ner-{NER_MODE}",
    }


def disable() -> None:
    """Put PaddleNLP's own methods back and remove the `ner` mode."""
    for (owner, name), original in _originals.items():
        setattr(owner, name, original)
    _originals.clear()
    _taskflow_registry.TASKS["ner"]["modes"].pop(NER_MODE, None)


def is_enabled() -> bool:
    return bool(_originals)



__all__ = ["enable", "disable", "is_enabled", "is_ernie_m_checkpoint", "check_architecture", "load_for_taskflow",
           "TokenClassificationTask", "NER_MODE"]
