"""The demo's measurements of cross-lingual alignment, for a `from_pretrained` ERNIE-M directory or a no-model
baseline.

1. Retrieval, Tatoeba-style, scored at every layer: mean-pooled hidden states, each language's mean removed,
   cosine nearest neighbour, accuracy@1 English -> x and x -> English averaged. In-domain held-out pairs (dev, to
   choose the layer; test, to report), split by how many subwords a pair shares, and the UDHR out of domain.
2. Held-out masked-LM and CAMLM accuracy (did the model learn anything, and can it translate at all), and the
   chrF of BTMLM's pseudo-translations into English against the real ones (and of the untranslated source).
3. Zero-shot transfer: the fine-tuning package's classifier trained on English topics, tested on every language.

`tfidf_retrieval` is the no-model baseline: bag-of-subwords TF-IDF vectors, cosine nearest neighbour. It scores
what shared words alone give.
"""
from __future__ import annotations

import os
import shlex
from typing import Dict, List, Sequence, Tuple

import numpy as np

SPLITS = ("pairs_dev", "pairs_test", "retrieval")  # in-domain dev and test, UDHR


def read_tsv(path: str) -> List[Tuple[str, str]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 2:
                raise ValueError(f"{path}:{number}: expected 2 tab-separated fields, got {len(fields)}")
            rows.append((fields[0], fields[1]))
    return rows


def split_path(corpus_dir: str, split: str, language: str) -> str:
    name = f"{language}.tsv" if split == "retrieval" else f"en-{language}.tsv"
    return os.path.join(corpus_dir, "eval", split, name)


def subword_overlap(tokenizer, pairs: Sequence[Tuple[str, str]]) -> np.ndarray:
    """Per pair: the share of the translation's distinct subwords that also occur in the English side."""
    ids = tokenizer.encode_batch_ids([text for pair in pairs for text in pair])
    shares = []
    for index in range(len(pairs)):
        english, other = set(ids[2 * index]), set(ids[2 * index + 1])
        shares.append(len(english & other) / max(1, len(other)))
    return np.asarray(shares)


def accuracy_at_1(first: np.ndarray, second: np.ndarray, center: bool = True) -> np.ndarray:
    """Per pair i: mean of [first_i finds second_i, second_i finds first_i] (0, 0.5 or 1)."""
    from finetune.retrieval import unit

    similarity = unit(first, center) @ unit(second, center).T
    gold = np.arange(len(first))
    return ((similarity.argmax(1) == gold).astype(float) + (similarity.argmax(0) == gold).astype(float)) / 2


def model_retrieval(model, tokenizer, pairs: Sequence[Tuple[str, str]], language: str) -> np.ndarray:
    """[layers + 1, pairs]: per-pair accuracy@1 at every layer."""
    from ernie_m.embeddings import layer_embeddings

    layers = range(model.config.num_hidden_layers + 1)
    english = layer_embeddings(model, tokenizer, [en for en, _ in pairs], layers, "en", batch_size=64)
    other = layer_embeddings(model, tokenizer, [x for _, x in pairs], layers, language, batch_size=64)
    return np.stack([accuracy_at_1(e, o) for e, o in zip(english, other)])


def tfidf_retrieval(tokenizer, pairs: Sequence[Tuple[str, str]]) -> np.ndarray:
    """[1, pairs]: per-pair accuracy@1 of bag-of-subwords TF-IDF vectors (IDF over both sides of the set)."""
    ids = tokenizer.encode_batch_ids([text for pair in pairs for text in pair])
    vocab = len(tokenizer)
    counts = np.zeros((len(ids), vocab), dtype=np.float64)
    for row, tokens in enumerate(ids):
        np.add.at(counts[row], np.asarray(tokens, dtype=np.int64), 1.0)
    document_frequency = (counts > 0).sum(0)
    idf = np.log((1 + len(ids)) / (1 + document_frequency)) + 1.0
    vectors = counts * idf
    return accuracy_at_1(vectors[0::2], vectors[1::2], center=False)[None]


def held_out_accuracy(model_dir: str, corpus_dir: str, languages: Sequence[str], parallel: Sequence[str],
                      camlm_mask_prob: float) -> Dict[str, float]:
    """Masked-LM accuracy on every side of the in-domain test pairs, CAMLM accuracy on the parallel languages', and
    the chrF of BTMLM's generation pass into English (the first 100 pairs of each language)."""
    from ernie_m import ErnieMForPretraining, ErnieMTokenizer
    from ernie_m.objectives import BTMLM, CAMLM, MMLM, MaskingConfig, SpecialIds
    from ernie_m.pretraining.corpus import find_parallel_files
    from ernie_m.pretraining.evaluation import HeldOutSet, evaluate_held_out

    tokenizer = ErnieMTokenizer.from_pretrained(model_dir)
    model = ErnieMForPretraining.from_pretrained(model_dir)
    language_ids = {code: index for index, code in enumerate(tokenizer.languages)}
    files = [f for f in find_parallel_files(os.path.join(corpus_dir, "eval", "pairs_test"))
             if f.target_language in languages]
    held_out = HeldOutSet.from_files(files, tokenizer, language_ids, {"en", *parallel}, max_pairs=500)
    special = SpecialIds.from_tokenizer(tokenizer)
    objectives = [MMLM(special, len(tokenizer), 128),
                  CAMLM(special, len(tokenizer), 128, masking=MaskingConfig(mask_prob=camlm_mask_prob)),
                  BTMLM(special, len(tokenizer), 128, target_languages=[language_ids["en"]])]
    return evaluate_held_out(model, held_out, objectives, tokenizer=tokenizer)


def retrieval_scores(model_dir: str, corpus_dir: str, languages: Sequence[str]) -> Dict[str, Dict[str, list]]:
    """{split: {language: [layers + 1][pairs] per-pair accuracy}} of an ERNIE-M directory."""
    from ernie_m import ErnieMModel, ErnieMTokenizer

    tokenizer = ErnieMTokenizer.from_pretrained(model_dir)
    encoder = ErnieMModel.from_pretrained(model_dir)
    scores: Dict[str, Dict[str, list]] = {}
    for split in SPLITS:
        scores[split] = {}
        for language in languages:
            pairs = read_tsv(split_path(corpus_dir, split, language))
            scores[split][language] = model_retrieval(encoder, tokenizer, pairs, language).tolist()
    return scores


def baseline_retrieval(tokenizer_dir: str, corpus_dir: str, languages: Sequence[str]) -> Dict[str, Dict[str, list]]:
    """The same structure for the TF-IDF baseline (one "layer")."""
    from ernie_m import ErnieMTokenizer

    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    return {split: {language: tfidf_retrieval(tokenizer, read_tsv(split_path(corpus_dir, split, language))).tolist()
                    for language in languages} for split in SPLITS}


def overlap_by_language(tokenizer_dir: str, corpus_dir: str, languages: Sequence[str],
                        split: str = "pairs_test") -> Dict[str, list]:
    """Per language, each pair's subword overlap (the split into low/high overlap uses its median)."""
    from ernie_m import ErnieMTokenizer

    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    return {language: subword_overlap(tokenizer, read_tsv(split_path(corpus_dir, split, language))).tolist()
            for language in languages}


def transfer_arguments(model_dir: str, corpus_dir: str, output_dir: str, seed: int, epochs: int) -> List[str]:
    """The `python -m finetune.classification` arguments of the demo's transfer task (kept in results.json, so
    anyone can rerun one number by hand)."""
    topics = os.path.join(corpus_dir, "eval", "topics")
    tests = sorted(os.path.join(topics, name) for name in os.listdir(topics) if name.startswith("test."))
    return ["--task", "custom", "--train_file", os.path.join(topics, "train.tsv"),
            "--dev_file", os.path.join(topics, "dev.en.tsv"), "--test_file", *tests, "--language_column", "language",
            "--model", model_dir, "--output_dir", output_dir, "--overwrite_output_dir", "--learning_rate", "1e-3",
            "--layer_decay", "1.0", "--weight_decay", "0.01", "--num_train_epochs", str(epochs),
            "--per_device_train_batch_size", "32", "--max_length", "64", "--seed", str(seed)]


def topic_transfer(arguments: List[str], progress: bool = False) -> Dict[str, float]:
    """Zero-shot transfer through the fine-tuning package's own-data task: train on English topics, keep the epoch
    best on English dev, test every language."""
    from finetune import classification

    scores = classification.run(classification.parser().parse_args(arguments), progress=progress)["test_accuracy"]
    scores.pop("average")
    return scores


def transfer_command(arguments: List[str]) -> str:
    return "python -m finetune.classification " + shlex.join(arguments)


def evaluate_model(model_dir: str, corpus_dir: str, languages: Sequence[str], parallel: Sequence[str], seed: int,
                   camlm_mask_prob: float, transfer_dir: str = None, transfer_epochs: int = 20) -> dict:
    """Every measure of one model directory (transfer only with `transfer_dir`)."""
    result = {"seed": seed, "model_dir": model_dir,
              "retrieval": retrieval_scores(model_dir, corpus_dir, languages),
              "held_out": held_out_accuracy(model_dir, corpus_dir, languages, parallel, camlm_mask_prob)}
    if transfer_dir:
        arguments = transfer_arguments(model_dir, corpus_dir, transfer_dir, seed, transfer_epochs)
        result["transfer"] = topic_transfer(arguments)
        result["transfer_command"] = transfer_command(arguments)
    return result


def main(argv=None) -> None:
    """One model's measures as a JSON file: the demo runs this in its own process, beside other jobs."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=evaluate_model.__doc__)
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--corpus_dir", required=True)
    parser.add_argument("--languages", nargs="+", required=True)
    parser.add_argument("--parallel_languages", nargs="+", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--camlm_mask_prob", type=float, default=0.15)
    parser.add_argument("--transfer_dir", help="fine-tune the transfer classifier here (omit: no transfer)")
    parser.add_argument("--transfer_epochs", type=int, default=20)
    parser.add_argument("--output", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    from paddlenlp.utils.log import logger

    logger.set_level("ERROR")  # PaddleNLP's notes about unused LM-head weights are expected here
    result = evaluate_model(args.model_dir, args.corpus_dir, args.languages, args.parallel_languages, args.seed,
                            args.camlm_mask_prob, args.transfer_dir, args.transfer_epochs)
    from ernie_m.atomic import atomic_file

    with atomic_file(args.output) as temporary, open(temporary, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
