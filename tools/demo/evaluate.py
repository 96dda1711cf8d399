"""The demo's two measurements of cross-lingual alignment, for any `from_pretrained` ERNIE-M directory.

1. Sentence retrieval, Tatoeba-style: mean-pooled hidden states of one layer, each language's mean removed, cosine
   similarity, accuracy of the nearest neighbour, English -> x and x -> English.
2. Zero-shot transfer: fine-tune a sequence classifier on English topic labels, test it on every language (the
   fine-tuning package's classification pipeline, so `python -m finetune.classification --task topics` on the same
   checkpoint gives the same numbers).
"""
from __future__ import annotations

import os
import shlex
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ernie_m import ErnieMModel, ErnieMTokenizer
from finetune.retrieval import default_layer, embed, unit


def read_tsv(path: str) -> List[Tuple[str, str]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 2:
                raise ValueError(f"{path}:{number}: expected 2 tab-separated fields, got {len(fields)}")
            rows.append((fields[0], fields[1]))
    return rows


def retrieval_accuracy(model, tokenizer, pairs: Sequence[Tuple[str, str]], language: str, layer: int,
                       center: bool = True) -> Dict[str, float]:
    """Nearest-neighbour accuracy over the units, English -> x, x -> English, and their mean. `center` removes
    each language's mean vector first: it carries the language's identity, not meaning, and would otherwise
    dominate the cosine (Libovický et al., 2020, on language-neutral embeddings)."""
    english = unit(embed(model, tokenizer, [en for en, _ in pairs], "en", layer), center)
    other = unit(embed(model, tokenizer, [x for _, x in pairs], language, layer), center)
    similarity = english @ other.T
    gold = np.arange(len(pairs))
    to_other = float((similarity.argmax(1) == gold).mean())
    to_english = float((similarity.argmax(0) == gold).mean())
    return {"en_to_x": to_other, "x_to_en": to_english, "mean": (to_other + to_english) / 2}


def transfer_arguments(model_dir: str, corpus_dir: str, output_dir: str, seed: int, epochs: int) -> List[str]:
    """The `python -m finetune.classification` arguments of the demo's transfer task (kept in results.json, so
    anyone can rerun one model's number by hand)."""
    return ["--task", "topics", "--data_dir", os.path.join(corpus_dir, "eval", "topics"), "--model", model_dir,
            "--output_dir", output_dir, "--learning_rate", "2e-4", "--layer_decay", "1.0", "--weight_decay", "0.01",
            "--epochs", str(epochs), "--batch_size", "32", "--max_length", "64", "--seed", str(seed)]


def topic_transfer(arguments: List[str], progress: bool = True) -> Dict[str, float]:
    """Zero-shot transfer through the fine-tuning package's classification pipeline (task `topics`): train on
    English topics, keep the epoch best on English, test every language."""
    from finetune import classification

    scores = classification.run(classification.parser().parse_args(arguments), progress=progress)["test_accuracy"]
    scores.pop("average")
    return scores


def evaluate_model(model_dir: str, corpus_dir: str, manifest: dict, transfer_dir: str, layer: int = None,
                   seed: int = 0, transfer_epochs: int = 8, progress: bool = True) -> dict:
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
    arguments = transfer_arguments(model_dir, corpus_dir, transfer_dir, seed, transfer_epochs)
    transfer = topic_transfer(arguments, progress=progress)
    return {"retrieval": retrieval, "retrieval_directions": directions, "retrieval_layer": layer,
            "transfer": transfer, "transfer_command": "python -m finetune.classification " + shlex.join(arguments)}
