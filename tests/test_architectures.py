"""ernie_m.architectures: one table that the command line, the HF converter and Taskflow all read."""
import json

import pytest

import ernie_m
from ernie_m.architectures import ARCHITECTURES, RELEASED_MODELS, architecture_named, saved_architecture
from ernie_m.convert import hf


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
