"""ernie_m.auto: Auto classes that build this project's classes from its checkpoints (PaddleNLP's build its own)."""
import json

import pytest

import ernie_m
from ernie_m.auto import AutoModel, AutoModelForSequenceClassification, AutoTokenizer


def test_auto_classes_build_our_classes(tiny_model_dir, tmp_path):
    classifier = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3)
    assert type(classifier) is ernie_m.ErnieMForSequenceClassification
    classifier.save_pretrained(str(tmp_path / "classifier"))
    # AutoModel follows config.json's architecture; our default mask (pad id, not token 0) comes with our class.
    rebuilt = AutoModel.from_pretrained(str(tmp_path / "classifier"))
    assert type(rebuilt) is ernie_m.ErnieMForSequenceClassification and not rebuilt.config.legacy_attention_mask
    assert type(AutoModel.from_pretrained(tiny_model_dir)) is ernie_m.ErnieMModel
    assert type(AutoTokenizer.from_pretrained(tiny_model_dir)) is ernie_m.ErnieMTokenizer
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    with pytest.raises(ValueError, match="names 'BertModel', not an ERNIE-M architecture"):
        AutoModel.from_pretrained(str(tmp_path / "bert"))
