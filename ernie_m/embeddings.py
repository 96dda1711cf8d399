"""Sentence embeddings: the mean of one layer's hidden states over the real tokens."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import paddle


def default_layer(num_layers: int) -> int:
    """Two thirds of the way up, as XTREME's retrieval uses layer 8 of 12 (0 = the embeddings)."""
    return max(1, round(num_layers * 2 / 3))


def sentence_embeddings(model, tokenizer, texts: Sequence[str], layer: Optional[int] = None,
                        language: Union[str, Sequence[str], None] = None, max_length: int = 128,
                        batch_size: int = 32) -> np.ndarray:
    """`[len(texts), hidden]` float32: mean-pooled hidden states of `layer` (0 = embeddings; default two thirds
    up). `language` (one code, or one per text) gives language ids to a model with a language embedding (and is
    required there)."""
    layer = default_layer(model.config.num_hidden_layers) if layer is None else layer
    return layer_embeddings(model, tokenizer, texts, [layer], language, max_length, batch_size)[0]


@paddle.no_grad()
def layer_embeddings(model, tokenizer, texts: Sequence[str], layers: Sequence[int],
                     language: Union[str, Sequence[str], None] = None, max_length: int = 128,
                     batch_size: int = 32) -> np.ndarray:
    """`[len(layers), len(texts), hidden]` float32: `sentence_embeddings` at several layers from one forward pass
    per batch (the demo scores retrieval at every layer)."""
    model.eval()
    for layer in layers:
        if not 0 <= layer <= model.config.num_hidden_layers:
            raise ValueError(f"layer {layer} is not in [0, {model.config.num_hidden_layers}]")
    with_languages = model.config.num_languages > 0
    if with_languages and language is None:
        raise ValueError("this model has a language embedding: give the texts' language")
    if with_languages and not isinstance(language, str) and len(language) != len(texts):
        raise ValueError(f"{len(language)} languages for {len(texts)} texts: give one language, or one per text")
    from .configuration import fit_max_length

    max_length = fit_max_length(model.config, max_length)
    vectors = []
    for start in range(0, len(texts), batch_size):
        kwargs = {}
        if with_languages:
            kwargs["language"] = language if isinstance(language, str) else list(language[start:start + batch_size])
        encoded = tokenizer(list(texts[start:start + batch_size]), max_length=max_length, truncation=True,
                            padding=True, return_attention_mask=True, **kwargs)
        inputs = {key: paddle.to_tensor(np.asarray(encoded[key], dtype=np.int64))
                  for key in ("input_ids", "attention_mask", "language_ids") if key in encoded}
        hidden = model(**inputs, output_hidden_states=True, return_dict=True).hidden_states
        mask = np.asarray(encoded["attention_mask"], dtype=np.float32)[..., None]
        vectors.append(np.stack([(hidden[layer].numpy() * mask).sum(1) / np.maximum(mask.sum(1), 1)
                                 for layer in layers]))
    if not vectors:
        return np.zeros([len(layers), 0, model.config.hidden_size], np.float32)
    return np.concatenate(vectors, axis=1).astype(np.float32)
