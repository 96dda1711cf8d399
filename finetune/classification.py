"""Sentence(-pair) classification: XNLI, PAWS-X and the demo's topic task, accuracy per language.

    python -m finetune.classification --task xnli --data_dir XNLI-1.0 --train_file multinli_1.0_train.txt \
        --model ernie-m-base --output_dir out/xnli [--mode translate-train-all] [--learning_rate ...]

Modes: `transfer` trains on English and tests every language (zero-shot cross-lingual transfer);
`translate-train-all` trains on the English data and its machine translations into every language.
"""
from __future__ import annotations

import argparse
import os
from typing import Dict, List, Sequence

import numpy as np
import paddle

from .metrics import accuracy, with_average
from .readers import (
    NLI_LABELS, PairExample, read_labels, read_multinli_train, read_pawsx, read_topic_file, read_translated_pairs,
    read_xnli,
)
from .trainer import (
    add_training_arguments, fine_tune, load_model, pad_inputs, save_results, task_main, training_arguments,
)

XNLI_LANGUAGES = ["ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh"]
PAWSX_LANGUAGES = ["de", "en", "es", "fr", "ja", "ko", "zh"]


def encode(tokenizer, examples: Sequence[PairExample], max_length: int, with_language_ids: bool) -> List[dict]:
    """Examples -> features (ids, language ids if the model has a language embedding, label), batched per language."""
    features: List[dict] = [None] * len(examples)
    by_language: Dict[str, List[int]] = {}
    for index, example in enumerate(examples):
        by_language.setdefault(example.language, []).append(index)
    for language, indices in by_language.items():
        first = [examples[i].text_a for i in indices]
        second = [examples[i].text_b for i in indices] if examples[indices[0]].text_b is not None else None
        kwargs = {"language": (language, language)} if with_language_ids else {}
        encoded = tokenizer(first, second, max_length=max_length, truncation=True, **kwargs)
        for position, i in enumerate(indices):
            feature = {"input_ids": encoded["input_ids"][position], "labels": examples[i].label}
            if with_language_ids:
                feature["language_ids"] = encoded["language_ids"][position]
            features[i] = feature
    return features


def make_collate(pad_id: int):
    def collate(features: List[dict]) -> Dict[str, np.ndarray]:
        batch = pad_inputs(features, pad_id)
        if "labels" in features[0]:
            batch["labels"] = np.asarray([f["labels"] for f in features], dtype=np.int64)
        return batch

    return collate


@paddle.no_grad()
def predict(model, features: List[dict], collate, batch_size: int = 64) -> List[int]:
    model.eval()
    predictions = []
    for start in range(0, len(features), batch_size):
        batch = collate(features[start:start + batch_size])
        batch.pop("labels", None)
        logits = model(**{k: paddle.to_tensor(v) for k, v in batch.items()}, return_dict=True).logits
        predictions.extend(int(p) for p in logits.argmax(-1).numpy())
    return predictions


def evaluator(sets: Dict[str, List[dict]], collate, batch_size: int):
    def evaluate(model) -> Dict[str, float]:
        return {language: accuracy(predict(model, features, collate, batch_size), [f["labels"] for f in features])
                for language, features in sets.items()}

    return evaluate


# ---- tasks: where the data is and what it means -------------------------------------------------------------------

def load_task(args) -> dict:
    """{"labels": [...], "train": [...], "dev": {lang: [...]}, "test": {lang: [...]}}."""
    if args.task == "xnli":
        languages = args.languages or XNLI_LANGUAGES
        dev = read_xnli(args.data_dir, "dev", languages)
        test = read_xnli(args.data_dir, "test", languages)
        if args.mode == "transfer":
            train = read_multinli_train(args.train_file) if args.train_file else None
            if train is None:
                raise SystemExit("xnli transfer needs --train_file (MultiNLI's multinli_1.0_train.txt)")
        else:  # translate-train-all: XTREME's translated MultiNLI, one `xnli.translate.train.<lang>.tsv` per language
            train = read_multinli_train(args.train_file) if args.train_file else []
            for language in languages:
                if language != "en":
                    train += read_translated_pairs(os.path.join(
                        args.data_dir, "XNLI-Translated", f"en-{language}-translated.tsv"), language, NLI_LABELS)
        return {"labels": list(NLI_LABELS), "train": train, "dev": {"en": dev["en"]} if args.mode == "transfer"
                else dev, "test": test}
    if args.task == "pawsx":
        languages = args.languages or PAWSX_LANGUAGES
        train = read_pawsx(args.data_dir, "en", "train")
        if args.mode == "translate-train-all":
            for language in languages:
                if language != "en":
                    train += read_pawsx(args.data_dir, language, "translated_train")
        dev = {lang: read_pawsx(args.data_dir, lang, "dev_2k") for lang in languages}
        test = {lang: read_pawsx(args.data_dir, lang, "test_2k") for lang in languages}
        return {"labels": ["0", "1"], "train": train, "dev": {"en": dev["en"]} if args.mode == "transfer" else dev,
                "test": test}
    if args.task == "topics":  # the demo's topics: eval/topics/{labels.txt,train.tsv,dev.en.tsv,test.<lang>.tsv}
        labels = read_labels(os.path.join(args.data_dir, "labels.txt"))
        train = read_topic_file(os.path.join(args.data_dir, "train.tsv"), "en", labels)
        dev = read_topic_file(os.path.join(args.data_dir, "dev.en.tsv"), "en", labels)  # the kept epoch's choice
        languages = args.languages or sorted(
            name[len("test."):-len(".tsv")] for name in os.listdir(args.data_dir) if name.startswith("test."))
        test = {lang: read_topic_file(os.path.join(args.data_dir, f"test.{lang}.tsv"), lang, labels)
                for lang in languages}
        return {"labels": labels, "train": train, "dev": {"en": dev}, "test": test}
    raise SystemExit(f"unknown task {args.task!r}")


def run(args, progress: bool = True) -> dict:
    from ernie_m import ErnieMForSequenceClassification, ErnieMTokenizer
    from ernie_m.configuration import fit_max_length

    task = load_task(args)
    tokenizer = ErnieMTokenizer.from_pretrained(args.model)
    paddle.seed(args.seed)
    names = [str(label) for label in task["labels"]]  # kept in config.json, so predictions can be named
    model = load_model(
        ErnieMForSequenceClassification, args.model, num_labels=len(names), id2label=dict(enumerate(names)),
        label2id={name: i for i, name in enumerate(names)})
    with_language_ids = model.config.num_languages > 0
    collate = make_collate(tokenizer.pad_token_id)

    def features(examples):
        return encode(tokenizer, examples, fit_max_length(model.config, args.max_length), with_language_ids)

    dev = {lang: features(examples) for lang, examples in task["dev"].items()}
    training = training_arguments(args, progress)
    result = fine_tune(model, tokenizer, features(task["train"]), collate,
                       evaluator(dev, collate, training.eval_batch_size), training)
    best = ErnieMForSequenceClassification.from_pretrained(os.path.join(args.output_dir, "best"))
    test = {lang: features(examples) for lang, examples in task["test"].items()}
    scores = with_average(evaluator(test, collate, training.eval_batch_size)(best))
    summary = {"task": args.task, "mode": args.mode, "model": args.model, "test_accuracy": scores,
               "best_dev": result["best"], "best_step": result["best_step"]}
    return save_results(args.output_dir, summary)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=["xnli", "pawsx", "topics"])
    p.add_argument("--data_dir", required=True, help="XNLI-1.0/, PAWS-X x-final/, or the demo's eval/topics/")
    p.add_argument("--train_file", help="XNLI: MultiNLI's multinli_1.0_train.txt")
    p.add_argument("--mode", default="transfer", choices=["transfer", "translate-train-all"])
    p.add_argument("--languages", nargs="+")
    add_training_arguments(p, learning_rate=5e-5, weight_decay=0.0, epochs=5, batch_size=32, max_length=256)
    return p


def main(argv=None) -> None:
    task_main(parser, run, lambda summary: summary["test_accuracy"], argv)


if __name__ == "__main__":
    main()
