"""ernie_m.architectures: one table that the exports, the Auto classes, the command line, the converters,
inference and Taskflow all read."""
import ast
import dataclasses
import json
import os
import re

import pytest

import ernie_m
from ernie_m.architectures import (
    ARCHITECTURES, Architecture, architecture_named, saved_architecture, serving_taskflow_task, with_head,
)
from ernie_m.configuration import RELEASED_MODELS
from ernie_m.convert import hf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_architecture_is_a_class_we_export_with_its_hf_counterpart():
    for name, architecture in ARCHITECTURES.items():
        assert architecture.model_class is getattr(ernie_m, name)
    assert architecture_named("ErnieMForInformationExtraction") is ARCHITECTURES["UIEM"]  # HF's name for UIE-M
    assert architecture_named("BertModel") is None
    # The converter's tables name HF transformers' real classes, each an ErnieM model; its pooler-less heads are
    # the ones whose HF class builds no pooler.
    import transformers

    assert set(hf.HF_CLASSES) == set(ARCHITECTURES) - {"ErnieMForPretraining"}
    for ours, theirs in hf.HF_CLASSES.items():
        assert getattr(transformers, theirs).config_class.model_type == "ernie_m", (ours, theirs)
    tiny = transformers.ErnieMConfig(vocab_size=8, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                                     intermediate_size=8, max_position_embeddings=8)
    without_pooler = {ours for ours, theirs in hf.HF_CLASSES.items()
                      if not any(".pooler." in f".{key}" for key in getattr(transformers, theirs)(tiny).state_dict())}
    assert hf.NO_POOLER_IN_HF == without_pooler == {"ErnieMForTokenClassification", "ErnieMForQuestionAnswering"}
    assert RELEASED_MODELS == ("ernie-m-base", "ernie-m-large", "uie-m-base", "uie-m-large")


def test_saved_architecture_reads_config_json(tmp_path):
    assert saved_architecture(str(tmp_path)) is None
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "ernie_m"}))
    assert saved_architecture(str(tmp_path)) == "ErnieMModel"
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["UIEM"]}))
    assert saved_architecture(str(tmp_path)) == "UIEM"
    (tmp_path / "config.json").write_text("{oops")
    with pytest.raises(ValueError, match="config.json: not valid JSON"):
        saved_architecture(str(tmp_path))


def _sources(*tops):
    for top in tops:
        for directory, _, files in os.walk(os.path.join(ROOT, top)):
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    with open(path, encoding="utf-8") as handle:
                        yield os.path.relpath(path, ROOT), handle.read()


def test_the_exports_and_auto_classes_are_the_tables():
    auto_classes = {a.auto_class: a for a in ARCHITECTURES.values() if a.auto_class}
    assert set(ARCHITECTURES) | set(auto_classes) <= set(ernie_m.__all__)
    for name, architecture in auto_classes.items():
        assert getattr(ernie_m, name).class_for("anything") is architecture.model_class
    assert with_head("encoder").name == "ErnieMModel"
    assert serving_taskflow_task("ner") is ARCHITECTURES["ErnieMForTokenClassification"]
    with pytest.raises(KeyError, match="no ERNIE-M architecture has head 'translation'"):
        with_head("translation")


def test_every_field_of_the_table_is_read():
    """Read as an attribute somewhere (the table itself only passes fields as keywords)."""
    sources = dict(_sources("ernie_m", "finetune"))
    unread = [f.name for f in dataclasses.fields(Architecture)
              if not any(re.search(rf"\.{f.name}\b", text) for text in sources.values())]
    assert unread == []


def test_no_module_but_the_table_and_the_classes_names_an_architecture_by_hand():
    """Outside architectures.py (the table) and modeling.py (the classes), a class is asked for by its head."""
    names = set(ARCHITECTURES) | {a.auto_class for a in ARCHITECTURES.values() if a.auto_class}
    found = []
    for path, text in _sources("ernie_m", "finetune"):
        if path in (os.path.join("ernie_m", "architectures.py"), os.path.join("ernie_m", "modeling.py")):
            continue
        tree = ast.parse(text)
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        found += [f"{path}:{node.lineno} {node.value}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and node.value in names and id(node) not in docstrings]
    assert found == []
