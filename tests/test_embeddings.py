"""ernie_m.embeddings: mean-pooled hidden states over the real tokens, one layer or several from one pass."""
import numpy as np
import paddle
import pytest

from ernie_m import ErnieMConfig, ErnieMModel, ErnieMTokenizer
from ernie_m.embeddings import default_layer, layer_embeddings, sentence_embeddings

TEXTS = ["A fox.", "Der schnelle braune Fuchs springt über den faulen Hund am Flussufer.", "Лиса."]


def test_default_layer_is_two_thirds_up():
    assert [default_layer(n) for n in (1, 2, 12, 24)] == [1, 1, 8, 16]


def test_pooling_ignores_padding_and_layers_come_from_one_pass(tiny_model_dir):
    model = ErnieMModel.from_pretrained(tiny_model_dir)
    tokenizer = ErnieMTokenizer.from_pretrained(tiny_model_dir)
    together = layer_embeddings(model, tokenizer, TEXTS, [0, 1, 2], batch_size=3)
    assert together.shape == (3, 3, model.config.hidden_size) and together.dtype == np.float32
    alone = np.stack([layer_embeddings(model, tokenizer, [t], [0, 1, 2])[:, 0] for t in TEXTS], axis=1)
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)  # padding changes nothing
    np.testing.assert_allclose(sentence_embeddings(model, tokenizer, TEXTS, layer=2), together[2], rtol=1e-6)
    assert layer_embeddings(model, tokenizer, [], [1]).shape == (1, 0, model.config.hidden_size)
    with pytest.raises(ValueError, match=r"layer 3 is not in \[0, 2\]"):
        sentence_embeddings(model, tokenizer, TEXTS, layer=3)


def test_a_model_with_a_language_embedding_needs_the_language(tokenizer_dir):
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    paddle.seed(0)
    model = ErnieMModel(ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=len(tokenizer), num_languages=3))
    with pytest.raises(ValueError, match="give the texts' language"):
        sentence_embeddings(model, tokenizer, TEXTS)
    assert sentence_embeddings(model, tokenizer, TEXTS, language="de").shape == (3, model.config.hidden_size)
