"""The demo's two measurements of cross-lingual alignment, for any `from_pretrained` ERNIE-M directory.

1. Sentence retrieval, Tatoeba-style: mean-pooled hidden states of one layer, each language's mean removed, cosine
   similarity, accuracy of the nearest neighbour, English -> x and x -> English.
2. Zero-shot transfer: fine-tune a sequence classifier on English topic labels, test it on every language.
"""
from __future__ import annotations

import math
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np
import paddle

from ernie_m import ErnieMForSequenceClassification, ErnieMModel, ErnieMTokenizer


def read_tsv(path: str) -> List[Tuple[str, str]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 2:
                raise ValueError(f"{path}:{number}: expected 2 tab-separated fields, got {len(fields)}")
            rows.append((fields[0], fields[1]))
    return rows


def default_layer(num_layers: int) -> int:
    """Two thirds of the way up, as XTREME's retrieval uses layer 8 of 12 (0 = the embeddings)."""
    return max(1, round(num_layers * 2 / 3))


def _encode(tokenizer, texts: Sequence[str], language: str, max_length: int) -> Dict[str, paddle.Tensor]:
    encoded = tokenizer(list(texts), max_length=max_length, truncation=True, padding=True,
                        return_attention_mask=True, language=language)
    return {key: paddle.to_tensor(np.asarray(encoded[key], dtype=np.int64))
            for key in ("input_ids", "attention_mask", "language_ids")}


@paddle.no_grad()
def embed(model: ErnieMModel, tokenizer, texts: Sequence[str], language: str, layer: int, max_length: int = 128,
          batch_size: int = 32) -> np.ndarray:
    """Unit-length mean-pooled hidden states of `layer` (0 = embeddings), padding excluded."""
    model.eval()
    vectors = []
    for start in range(0, len(texts), batch_size):
        batch = _encode(tokenizer, texts[start:start + batch_size], language, max_length)
        outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                        language_ids=batch["language_ids"], output_hidden_states=True, return_dict=True)
        hidden = outputs.hidden_states[layer].numpy()
        mask = batch["attention_mask"].numpy()[..., None].astype(hidden.dtype)
        pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1)
        vectors.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
    return np.concatenate(vectors)


def _centered(vectors: np.ndarray) -> np.ndarray:
    """Each language's mean removed, then unit length: the mean vector of a language carries its identity, not
    meaning, and would otherwise dominate the cosine (Libovický et al., 2020, on language-neutral embeddings)."""
    vectors = vectors - vectors.mean(0, keepdims=True)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def retrieval_accuracy(model, tokenizer, pairs: Sequence[Tuple[str, str]], language: str, layer: int,
                       center: bool = True) -> Dict[str, float]:
    """Nearest-neighbour accuracy over the units, English -> x, x -> English, and their mean."""
    english = embed(model, tokenizer, [en for en, _ in pairs], "en", layer)
    other = embed(model, tokenizer, [x for _, x in pairs], language, layer)
    if center:
        english, other = _centered(english), _centered(other)
    similarity = english @ other.T
    gold = np.arange(len(pairs))
    to_other = float((similarity.argmax(1) == gold).mean())
    to_english = float((similarity.argmax(0) == gold).mean())
    return {"en_to_x": to_other, "x_to_en": to_english, "mean": (to_other + to_english) / 2}


def topic_transfer(model_dir: str, tokenizer, train: Sequence[Tuple[str, str]],
                   tests: Dict[str, Sequence[Tuple[str, str]]], labels: Sequence[str], seed: int = 0,
                   epochs: int = 4, batch_size: int = 32, lr: float = 2e-4, max_length: int = 64,
                   progress=None) -> Dict[str, float]:
    """Fine-tune on English (topic, text) rows, return accuracy per test language."""
    from paddlenlp.transformers import LinearDecayWithWarmup

    label_ids = {label: index for index, label in enumerate(labels)}
    paddle.seed(seed)
    model = ErnieMForSequenceClassification.from_pretrained(model_dir, num_labels=len(labels))
    steps = epochs * math.ceil(len(train) / batch_size)
    schedule = LinearDecayWithWarmup(lr, steps, 0.1)
    decay = [p.name for n, p in model.named_parameters() if not ("bias" in n or "norm" in n)]
    optimizer = paddle.optimizer.AdamW(learning_rate=schedule, parameters=model.parameters(), weight_decay=0.01,
                                       epsilon=1e-6, apply_decay_param_fun=lambda name: name in decay)
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(train))
        for start in range(0, len(order), batch_size):
            rows = [train[i] for i in order[start:start + batch_size]]
            batch = _encode(tokenizer, [text for _, text in rows], "en", max_length)
            targets = paddle.to_tensor([label_ids[topic] for topic, _ in rows], dtype="int64")
            loss = model(**batch, labels=targets, return_dict=True).loss
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            schedule.step()
            if progress is not None:
                progress.update(1)
    model.eval()
    scores = {}
    with paddle.no_grad():
        for language, rows in tests.items():
            correct = 0
            for start in range(0, len(rows), 64):
                chunk = rows[start:start + 64]
                batch = _encode(tokenizer, [text for _, text in chunk], language, max_length)
                predicted = model(**batch, return_dict=True).logits.argmax(-1).numpy()
                correct += int(sum(int(p) == label_ids[topic] for p, (topic, _) in zip(predicted, chunk)))
            scores[language] = correct / max(1, len(rows))
    return scores


def evaluate_model(model_dir: str, corpus_dir: str, manifest: dict, layer: int = None, seed: int = 0,
                   transfer_epochs: int = 4, progress=None) -> dict:
    """{"retrieval": {lang: mean accuracy}, "retrieval_directions": {...}, "transfer": {lang: accuracy}}."""
    tokenizer = ErnieMTokenizer.from_pretrained(model_dir)
    encoder = ErnieMModel.from_pretrained(model_dir)
    layer = default_layer(encoder.config.num_hidden_layers) if layer is None else layer
    languages = manifest["parallel_languages"] + manifest["monolingual_only_languages"]
    retrieval, directions = {}, {}
    for language in languages:
        pairs = read_tsv(os.path.join(corpus_dir, "eval", "retrieval", f"{language}.tsv"))
        scores = retrieval_accuracy(encoder, tokenizer, pairs, language, layer)
        retrieval[language], directions[language] = scores["mean"], scores
    del encoder
    topics = os.path.join(corpus_dir, "eval", "topics")
    tests = {language: read_tsv(os.path.join(topics, f"test.{language}.tsv")) for language in ["en", *languages]}
    transfer = topic_transfer(model_dir, tokenizer, read_tsv(os.path.join(topics, "train.tsv")), tests,
                              manifest["topics"], seed=seed, epochs=transfer_epochs, progress=progress)
    return {"retrieval": retrieval, "retrieval_directions": directions, "retrieval_layer": layer,
            "transfer": transfer}
