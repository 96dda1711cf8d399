"""Our encoder and heads against PaddleNLP 2.8.1's ErnieM classes: same weights, same numbers, same keys."""
import numpy as np
import paddle
import paddlenlp.transformers as paddlenlp_models
import pytest

import ernie_m

HEADS = [
    "ErnieMModel",
    "ErnieMForSequenceClassification",
    "ErnieMForTokenClassification",
    "ErnieMForQuestionAnswering",
    "ErnieMForMultipleChoice",
    "UIEM",
]
SHAPE_FIELDS = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "max_position_embeddings"]


def make_pair(head, preset, vocab_size=300):
    """Our model and PaddleNLP's, with the same (PaddleNLP-initialised) weights, in eval mode."""
    ours_config = ernie_m.ErnieMConfig.from_preset(preset, vocab_size=vocab_size, num_labels=3)
    theirs_config = paddlenlp_models.ErnieMConfig(
        **{field: getattr(ours_config, field) for field in SHAPE_FIELDS}, num_labels=3, num_choices=2
    )
    theirs = getattr(paddlenlp_models, head)(theirs_config)
    ours = getattr(ernie_m, head)(ours_config)
    assert set(ours.state_dict()) == set(theirs.state_dict())
    ours.set_state_dict(theirs.state_dict())
    ours.eval()
    theirs.eval()
    return ours, theirs


def as_tuple(output):
    return tuple(output) if isinstance(output, (tuple, list)) else (output,)


def max_diff(a, b):
    return max(float((x - y).abs().max()) for x, y in zip(as_tuple(a), as_tuple(b)))


def random_batch(vocab_size, batch=3, seq_len=11, choices=None):
    shape = (batch, choices, seq_len) if choices else (batch, seq_len)
    ids = np.random.randint(3, vocab_size, shape)
    lengths = np.random.randint(2, seq_len + 1, shape[:-1])
    lengths.reshape(-1)[0] = seq_len
    mask = (np.arange(seq_len) < lengths[..., None]).astype("int64")
    ids = np.where(mask == 1, ids, 1)  # pad id 1 after each example's length
    return paddle.to_tensor(ids), paddle.to_tensor(mask)


# Every head at the tiny shape; the released base shape once, on the encoder all heads share: a base-shaped pair
# is slow to build, and a head's own layers do not depend on the shape.
@pytest.mark.parametrize("head, preset", [(head, "ernie-m-tiny") for head in HEADS] + [("ErnieMModel", "ernie-m-base")])
def test_head_matches_paddlenlp_with_padding_mask(head, preset):
    ours, theirs = make_pair(head, preset)
    ids, mask = random_batch(300, choices=2 if head == "ErnieMForMultipleChoice" else None)
    with paddle.no_grad():
        diff = max_diff(ours(ids, attention_mask=mask), theirs(ids, attention_mask=mask))
    assert diff < 1e-5


def test_encoder_matches_paddlenlp_with_4d_mask_and_position_ids():
    ours, theirs = make_pair("ErnieMModel", "ernie-m-tiny")
    ids, _ = random_batch(300, batch=2, seq_len=8)
    keep = np.random.rand(2, 1, 8, 8) > 0.4
    keep[..., 0] = True  # every query sees at least one key
    additive = paddle.to_tensor(np.where(keep, 0.0, -1e9).astype("float32"))
    positions = paddle.to_tensor(np.tile(np.array([0, 1, 2, 3, 0, 1, 2, 3]), (2, 1)))
    with paddle.no_grad():
        # PaddleNLP adds 2 to position ids in place: give it its own copy.
        mine = ours(ids, position_ids=positions.clone(), attention_mask=additive)
        reference = theirs(ids, position_ids=positions.clone(), attention_mask=additive)
        bool_mask = ours(ids, position_ids=positions.clone(), attention_mask=paddle.to_tensor(keep))
        three_d = ours(ids, position_ids=positions.clone(), attention_mask=paddle.to_tensor(keep[:, 0]))
    assert max_diff(mine, reference) < 1e-5
    assert max_diff(bool_mask, reference) < 1e-5
    assert max_diff(three_d, reference) < 1e-5


def test_hidden_states_and_attentions_match_paddlenlp():
    ours, theirs = make_pair("ErnieMModel", "ernie-m-tiny")
    ids, mask = random_batch(300)
    with paddle.no_grad():
        mine = ours(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True, return_dict=True)
        reference = theirs(
            ids, attention_mask=mask, output_hidden_states=True, output_attentions=True, return_dict=True
        )
    assert len(mine.hidden_states) == len(reference.hidden_states) == 3
    assert max_diff(mine.hidden_states, reference.hidden_states) < 1e-5
    assert max_diff(mine.attentions, reference.attentions) < 1e-5
    assert max_diff(mine.last_hidden_state, reference.last_hidden_state) < 1e-5


def test_default_mask_hides_padding_and_legacy_switch_reproduces_paddlenlp():
    ours, theirs = make_pair("ErnieMModel", "ernie-m-tiny")
    ids, mask = random_batch(300)
    ids = paddle.concat([paddle.zeros([3, 1], dtype="int64"), ids], axis=1)  # [CLS] = 0 first
    mask = paddle.concat([paddle.ones([3, 1], dtype="int64"), mask], axis=1)
    with paddle.no_grad():
        default = ours(ids)[0]
        explicit = ours(ids, attention_mask=mask)[0]
        paddlenlp_default = theirs(ids)[0]
        ours.config.legacy_attention_mask = True
        legacy = ours(ids)[0]
    assert float((default - explicit).abs().max()) < 1e-6
    assert float((legacy - paddlenlp_default).abs().max()) < 1e-6
    # The control: the two defaults really differ (PaddleNLP hides [CLS] and shows padding).
    assert float((default - paddlenlp_default).abs().max()) > 1e-3


def test_padding_does_not_change_real_tokens():
    config = ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=300)
    model = ernie_m.ErnieMModel(config)
    model.eval()
    ids = paddle.to_tensor([[0, 15, 27, 99, 2]])
    padded = paddle.to_tensor([[0, 15, 27, 99, 2, 1, 1, 1]])
    with paddle.no_grad():
        short = model(ids)[0]
        long = model(padded)[0][:, :5]
    assert float((short - long).abs().max()) < 1e-5


def test_language_embedding_off_keeps_keys_and_zero_init_keeps_outputs(tmp_path):
    base = ernie_m.ErnieMModel(ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=300))
    assert not any("language" in key for key in base.state_dict())
    base.save_pretrained(str(tmp_path))
    with_languages = ernie_m.ErnieMModel.from_pretrained(str(tmp_path), num_languages=4)
    base.eval()
    with_languages.eval()
    ids, mask = random_batch(300)
    languages = paddle.to_tensor(np.random.randint(0, 4, ids.shape))
    with paddle.no_grad():
        assert max_diff(base(ids, attention_mask=mask), with_languages(ids, attention_mask=mask,
                                                                       language_ids=languages)) < 1e-6
    weight = with_languages.embeddings.language_embeddings.weight
    assert weight.shape == [4, 64] and float(weight.abs().max()) == 0.0
    # Once trained (non-zero), the languages do change the output: the embedding is really wired in.
    weight.set_value(paddle.randn(weight.shape))
    with paddle.no_grad():
        assert max_diff(base(ids, attention_mask=mask), with_languages(ids, attention_mask=mask,
                                                                       language_ids=languages)) > 1e-3


def test_pretraining_head_is_tied_and_only_at_given_positions():
    config = ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=300)
    model = ernie_m.ErnieMForPretraining(config)
    model.eval()
    assert not any(key.startswith("lm_head.decoder") for key in model.state_dict())
    ids, mask = random_batch(300, batch=2, seq_len=6)
    positions = paddle.to_tensor([1, 4, 7, 11])  # flat indices into batch * seq
    labels = paddle.to_tensor([5, 6, 7, 8])
    with paddle.no_grad():
        full = model(ids, attention_mask=mask)  # [batch, seq, vocab]
        loss, at_positions = model(ids, attention_mask=mask, masked_positions=positions, masked_labels=labels)
    assert at_positions.shape == [4, 300]
    gathered = paddle.gather(full.reshape([-1, 300]), positions)
    assert float((gathered - at_positions).abs().max()) < 1e-5
    expected = paddle.nn.functional.cross_entropy(at_positions, labels)
    assert abs(float(loss) - float(expected)) < 1e-6
    # Tied: a change to the word embeddings moves the logits.
    embeddings = model.ernie_m.embeddings.word_embeddings.weight
    embeddings.set_value(embeddings * 2)
    with paddle.no_grad():
        moved = model(ids, attention_mask=mask, masked_positions=positions)
    assert float((moved - at_positions).abs().max()) > 1e-3


def test_heads_train_on_their_losses():
    config = ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=300, num_labels=3)
    ids, mask = random_batch(300, batch=2, seq_len=7)
    cases = {
        "ErnieMForSequenceClassification": dict(labels=paddle.to_tensor([0, 2])),
        "ErnieMForTokenClassification": dict(labels=paddle.to_tensor(np.random.randint(0, 3, (2, 7)))),
        "ErnieMForQuestionAnswering": dict(start_positions=paddle.to_tensor([1, 2]),
                                           end_positions=paddle.to_tensor([3, 30])),
    }
    for head, targets in cases.items():
        model = getattr(ernie_m, head)(config)
        loss = model(ids, attention_mask=mask, **targets)[0]
        loss.backward()
        assert np.isfinite(float(loss))
        grad = model.ernie_m.embeddings.word_embeddings.weight.grad
        assert grad is not None and float(grad.abs().sum()) > 0, head


def test_sequence_longer_than_positions_is_a_clear_error():
    model = ernie_m.ErnieMModel(ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=300,
                                                                 max_position_embeddings=18))
    with pytest.raises(ValueError, match="sequence length 17 exceeds the model's 16 positions"):
        model(paddle.ones([1, 17], dtype="int64"))
    with pytest.raises(ValueError, match="attention_mask must have 2, 3 or 4 dimensions"):
        model(paddle.ones([1, 4], dtype="int64"), attention_mask=paddle.ones([4]))
    with pytest.raises(ValueError, match="language_ids were given but the model has no language embedding"):
        model(paddle.ones([1, 4], dtype="int64"), language_ids=paddle.zeros([1, 4], dtype="int64"))


def test_recompute_gives_the_same_loss_and_gradients(monkeypatch):
    import ernie_m.modeling as modeling

    calls = []
    original = modeling._layer_output

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(modeling, "_layer_output", counting)

    def loss_and_gradients(recompute_layers):
        paddle.seed(3)
        config = ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=300, recompute=recompute_layers)
        model = ernie_m.ErnieMForPretraining(config)
        model.train()  # dropout on: recompute must replay the same dropout masks
        ids = paddle.to_tensor(np.random.RandomState(0).randint(3, 300, (2, 9)))
        paddle.seed(11)
        loss = model(ids, masked_positions=paddle.to_tensor([1, 12]), masked_labels=paddle.to_tensor([5, 6]))[0]
        loss.backward()
        return float(loss), {n: p.grad.numpy() for n, p in model.named_parameters() if p.grad is not None}

    plain_loss, plain = loss_and_gradients(False)
    assert not calls
    recomputed_loss, recomputed = loss_and_gradients(True)
    assert len(calls) >= 4  # 2 layers, each run forward and again in backward
    assert plain_loss == pytest.approx(recomputed_loss, abs=1e-6)
    assert set(plain) == set(recomputed) and len(plain) > 20
    for name in plain:
        assert np.allclose(plain[name], recomputed[name], atol=1e-6), name


def test_a_language_embedding_model_without_language_ids_refuses_unless_told(tokenizer_dir):
    """A language-embedding model called without language_ids refuses (its outputs would silently lack the language
    rows) unless `config.allow_missing_language_ids` says the caller means it."""
    import paddle

    from ernie_m import ErnieMConfig, ErnieMForSequenceClassification

    paddle.seed(8)
    model = ErnieMForSequenceClassification(ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=120, num_languages=3,
                                                                     num_labels=2))
    model.eval()
    ids = paddle.to_tensor([[0, 7, 9, 2]])
    with pytest.raises(ValueError, match=r"^this model has a language embedding \(3 languages\): pass language_ids"):
        model(ids)
    model(ids, language_ids=paddle.to_tensor([[1, 1, 1, 1]]))
    model.config.allow_missing_language_ids = True
    assert model(ids).shape == [1, 2]


def _save_without(model, directory, dropped):
    """`model` saved with every weight whose name contains one of `dropped` left out."""
    import os

    model.save_pretrained(str(directory))
    state = {key: value for key, value in model.state_dict().items() if not any(part in key for part in dropped)}
    for name in os.listdir(directory):
        if name.endswith((".pdparams", ".safetensors")):
            os.remove(directory / name)
    paddle.save(state, str(directory / "model_state.pdparams"))


def test_a_checkpoint_missing_an_encoder_weight_loads_only_when_told(tmp_path, capsys):
    """A checkpoint missing an encoder weight is refused, naming the file and the weight (PaddleNLP would leave it
    random, so two loads would differ), unless `allow_missing_weights=True`."""
    config = ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=50)
    _save_without(ernie_m.ErnieMModel(config), tmp_path, ["encoder.layers.1."])
    with pytest.raises(ValueError) as caught:
        ernie_m.ErnieMModel.from_pretrained(str(tmp_path))
    message = str(caught.value)
    assert "no weight 'encoder.layers.1." in message and "allow_missing_weights=True" in message
    assert "\n" not in message
    model = ernie_m.ErnieMModel.from_pretrained(str(tmp_path), allow_missing_weights=True)
    assert model is not None and "newly initialised" in capsys.readouterr().err


def test_a_new_task_head_is_named_in_one_line_or_refused_for_inference(tmp_path, capsys):
    config = ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=50)
    ernie_m.ErnieMModel(config).save_pretrained(str(tmp_path))
    ernie_m.ErnieMForSequenceClassification.from_pretrained(str(tmp_path), num_classes=3)
    notice = [line for line in capsys.readouterr().err.splitlines() if "newly initialised" in line]
    assert notice == [f"ErnieMForSequenceClassification: newly initialised, not in {tmp_path}: classifier.bias, "
                      f"classifier.weight"]
    with pytest.raises(ValueError, match="its task head is not in the checkpoint; fine-tune it first"):
        ernie_m.ErnieMForSequenceClassification.from_pretrained(str(tmp_path), num_classes=3, allow_new_head=False)


def test_heads_that_never_use_the_pooler_load_without_it(tmp_path, capsys):
    """HF's token-classification and QA classes have no pooler; a checkpoint converted from them is complete."""
    config = ernie_m.ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=50, num_classes=3)
    for head in (ernie_m.ErnieMForTokenClassification, ernie_m.ErnieMForQuestionAnswering):
        _save_without(head(config), tmp_path / head.__name__, ["pooler."])
        head.from_pretrained(str(tmp_path / head.__name__), allow_new_head=False)
    assert "newly initialised" not in capsys.readouterr().err
