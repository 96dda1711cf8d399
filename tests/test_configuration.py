"""Configuration: presets, validation with named fields, PaddleNLP config files, bad files."""
import json

import paddlenlp.transformers as paddlenlp_models
import pytest

import ernie_m
from ernie_m import ErnieMConfig


def test_presets_have_the_documented_shapes():
    base = ErnieMConfig.from_preset("ernie-m-base")
    large = ErnieMConfig.from_preset("ernie-m-large")
    assert (base.num_hidden_layers, base.hidden_size, base.num_attention_heads) == (12, 768, 12)
    assert (large.num_hidden_layers, large.hidden_size, large.num_attention_heads) == (24, 1024, 16)
    for config in (base, large):
        assert (config.vocab_size, config.max_position_embeddings, config.pad_token_id) == (250002, 514, 1)
        assert config.intermediate_size == 4 * config.hidden_size
        assert config.layer_norm_eps == 1e-5 and config.hidden_act == "gelu" and config.num_languages == 0
    tiny = ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=1000)
    assert tiny.vocab_size == 1000 and tiny.hidden_size == 64
    # The parameter count from sizes equals the real model's (encoder + pooler), e.g. for memory checks.
    model = ernie_m.ErnieMModel(ErnieMConfig.from_preset("ernie-m-mini", vocab_size=1000, num_languages=3))
    assert ErnieMConfig.from_preset("ernie-m-mini", vocab_size=1000, num_languages=3).num_parameters() == sum(
        p.size for p in model.parameters()
    )
    with pytest.raises(ValueError, match="unknown ERNIE-M preset 'ernie-m-huge'"):
        ErnieMConfig.from_preset("ernie-m-huge")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(hidden_size=100, num_attention_heads=3), r"hidden_size \(100\) must be divisible by num_attention_heads"),
        (dict(hidden_size=-8), r"hidden_size must be in \[1, "),
        (dict(num_hidden_layers=0), r"num_hidden_layers must be in \[1, "),
        (dict(vocab_size=2.5), "vocab_size must be an integer"),
        (dict(hidden_act="swishy"), "hidden_act 'swishy' is not one of"),
        (dict(hidden_dropout_prob=1.5), r"hidden_dropout_prob must be a number in \[0, 1\)"),
        (dict(attention_probs_dropout_prob=-0.1), "attention_probs_dropout_prob"),
        (dict(max_position_embeddings=2), "max_position_embeddings must be at least 3"),
        (dict(pad_token_id=500, vocab_size=300), r"pad_token_id \(500\) must be a token id below vocab_size"),
        (dict(num_languages=-1), "num_languages must be an integer >= 0"),
        (dict(layer_norm_eps=0), "layer_norm_eps must be positive"),
        (dict(layer_norm_eps=float("inf")), "layer_norm_eps must be positive and finite, got inf"),
        (dict(initializer_range=float("nan")), "initializer_range must be positive and finite, got nan"),
        (dict(num_languages=10**9), "num_languages must be an integer >= 0 and at most 10000"),
        (dict(hidden_dropout_prob=float("nan")), r"hidden_dropout_prob must be a number in \[0, 1\)"),
        (dict(vocab_size=10**12), r"vocab_size must be in \[1, "),
        (dict(hidden_size=65536, num_hidden_layers=1024, num_attention_heads=64), "parameters, more than"),
    ],
)
def test_invalid_configs_name_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        ErnieMConfig(**overrides)


def test_paddlenlp_config_file_loads_and_ours_loads_in_paddlenlp(tmp_path):
    paddlenlp_models.ErnieMConfig(vocab_size=300, hidden_size=64, num_hidden_layers=2,
                                  num_attention_heads=2).save_pretrained(str(tmp_path / "theirs"))
    ours = ErnieMConfig.from_pretrained(str(tmp_path / "theirs"))
    assert (ours.vocab_size, ours.hidden_size, ours.intermediate_size, ours.num_languages) == (300, 64, 256, 0)
    ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=300, num_languages=4).save_pretrained(str(tmp_path / "ours"))
    theirs = paddlenlp_models.ErnieMConfig.from_pretrained(str(tmp_path / "ours"))
    assert theirs.hidden_size == 64 and theirs.num_languages == 4


def test_malformed_and_absurd_config_files(tmp_path):
    (tmp_path / "config.json").write_text('{"hidden_size": 64, "num_hidden_layers": ')
    with pytest.raises(Exception, match="config.json"):
        ErnieMConfig.from_pretrained(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 10**9, "num_attention_heads": 1}))
    with pytest.raises(ValueError, match="hidden_size must be in"):
        ernie_m.ErnieMModel.from_pretrained(str(tmp_path))  # refused before allocating anything


def test_a_config_whose_weights_exceed_free_memory_is_refused_before_allocating(tmp_path, monkeypatch):
    """1024 layers x hidden 2048 (51 B parameters, under the 200 B ceiling) needs more float32 memory than the machine
    has: refused from config.json alone, naming both sizes, before any allocation."""
    import ernie_m.configuration as configuration

    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 2048, "num_hidden_layers": 1024,
                                                      "num_attention_heads": 16}))
    with pytest.raises(ValueError, match=r"float32 weights alone need \d+\.\d GiB and this machine has "
                                         r"\d+\.\d GiB free"):
        ernie_m.ErnieMModel.from_pretrained(str(tmp_path))
    monkeypatch.setattr(configuration, "available_memory", lambda: 10 * 2 ** 20)  # 10 MiB free
    with pytest.raises(ValueError, match=r"need 0\.\d GiB and this machine has 0\.0 GiB free"):
        ErnieMConfig.from_preset("ernie-m-small", vocab_size=250002)
    monkeypatch.setattr(configuration, "available_memory", lambda: None)  # not Linux: the ceiling alone
    assert ErnieMConfig.from_preset("ernie-m-small", vocab_size=250002).hidden_size == 256
