"""Sentence(-pair) classification: your own data, XNLI and PAWS-X, accuracy per language.

    python -m finetune.classification --task custom --train_file train.tsv --dev_file dev.tsv \
        --test_file test.tsv --language_column language --model ernie-m-base --output_dir out/mine
    python -m finetune.classification --task xnli --data_dir XNLI-1.0 --train_file multinli_1.0_train.txt \
        --model ernie-m-base --output_dir out/xnli [--mode translate-train-all] [--learning_rate ...]

`custom` reads TSV, CSV or JSON lines with the columns named by --text_column, --text_pair_column, --label_column
and --language_column (or one --language for every row); the label names are kept in the checkpoint.
XNLI / PAWS-X modes: `transfer` trains on English and tests every language (zero-shot cross-lingual transfer);
`translate-train-all` trains on the English data and its machine translations into every language.
"""
from __future__ import annotations

if __name__ == "__main__":  # run as a program: its process-wide settings come before Paddle loads
    from ernie_m.cpu import configure_process

    configure_process()

import argparse  # noqa: E402
import os  # noqa: E402
from typing import Dict, List, Sequence  # noqa: E402

import numpy as np  # noqa: E402
import paddle  # noqa: E402

from ernie_m.argtypes import ArgumentParser  # noqa: E402

from .arguments import add_training_arguments  # noqa: E402
from .command import check_languages, dev_scores, fine_tuning_run, save_results, task_main, train_and_select
from .metrics import accuracy, with_average  # noqa: E402
from .readers import (  # noqa: E402
    NLI_LABELS, PairExample, known_languages, read_multinli_train, read_pawsx,
    read_translated_pairs, read_xnli,
)
from .tasks import Task, register  # noqa: E402
from .trainer import SetupError, load_model, pad_inputs  # noqa: E402
from .user_data import FORMATS, Columns, by_language, label_set, pair_examples, read_labelled_texts  # noqa: E402

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
def class_probabilities(model, features: List[dict], collate, batch_size: int = 64) -> np.ndarray:
    model.eval()
    probabilities = []
    for start in range(0, len(features), batch_size):
        batch = collate(features[start:start + batch_size])
        batch.pop("labels", None)
        logits = model(**{k: paddle.to_tensor(v) for k, v in batch.items()}, return_dict=True).logits
        probabilities.append(paddle.nn.functional.softmax(logits.astype("float32"), -1).numpy())
    return np.concatenate(probabilities)


def predict(model, features: List[dict], collate, batch_size: int = 64) -> List[int]:
    return [int(p) for p in class_probabilities(model, features, collate, batch_size).argmax(-1)]


def evaluator(sets: Dict[str, List[dict]], collate, batch_size: int):
    def evaluate(model) -> Dict[str, float]:
        return {language: TASK.metric(predict(model, features, collate, batch_size), [f["labels"] for f in features])
                for language, features in sets.items()}

    return evaluate


def write_predictions(model, sets: Dict[str, List[dict]], collate, labels: Sequence[str], args) -> None:
    """`test_results.json` as PaddleNLP's run_classifier writes it (label ids and their probability, one per test
    row), with each row's label name and language beside them."""
    rows = {"label": [], "confidence": [], "label_name": [], "language": []}
    for language, features in sets.items():
        probabilities = class_probabilities(model, features, collate, args.per_device_eval_batch_size)
        rows["label"] += probabilities.argmax(-1).tolist()
        rows["confidence"] += probabilities.max(-1).tolist()
        rows["language"] += [language] * len(features)
    rows["label_name"] = [labels[i] for i in rows["label"]]
    save_results(args.output_dir, rows, "test_results.json")


# ---- tasks: where the data is and what it means -------------------------------------------------------------------

def load_custom(args) -> dict:
    """Your own files: the label set from --labels or the training rows, every dev and test label checked."""
    columns = Columns(args.text_column, args.text_pair_column, args.label_column, args.language_column,
                      args.language)

    def read(paths):
        return {path: read_labelled_texts(path, columns, args.data_format) for path in paths or []}

    train, dev, test = read([args.train_file] if args.train_file else []), read(args.dev_file), read(args.test_file)
    if args.do_train and not train:
        raise SetupError("--task custom needs --train_file to train (or --do_eval/--do_predict alone to score --model)")
    labels = label_set(train, args.labels) if train or args.labels else None
    if labels is None:
        raise SetupError("--task custom without training needs --labels (the fine-tuned model's label names, in id "
                         "order)")

    def examples(files):
        return by_language([e for path, rows in files.items() for e in pair_examples(path, rows, labels)])

    return {"labels": labels, "train": [e for group in examples(train).values() for e in group],
            "dev": examples(dev), "test": examples(test)}


def _require_data_dir(args) -> None:
    if not args.data_dir:
        raise SetupError(f"--task {args.task} needs --data_dir")


def load_xnli(args) -> dict:
    _require_data_dir(args)
    languages = known_languages(args.languages, XNLI_LANGUAGES, "xnli")
    dev = read_xnli(args.data_dir, "dev", languages)
    test = read_xnli(args.data_dir, "test", languages)
    if args.mode == "transfer":
        if not args.train_file:
            raise SetupError("xnli transfer needs --train_file (MultiNLI's multinli_1.0_train.txt)")
        train = read_multinli_train(args.train_file)
    else:  # translate-train-all: XTREME's translated MultiNLI, one `xnli.translate.train.<lang>.tsv` per language
        train = read_multinli_train(args.train_file) if args.train_file else []
        for language in languages:
            if language != "en":
                train += read_translated_pairs(os.path.join(
                    args.data_dir, "XNLI-Translated", f"en-{language}-translated.tsv"), language, NLI_LABELS)
    return {"labels": list(NLI_LABELS), "train": train,
            "dev": {"en": dev["en"]} if args.mode == "transfer" else dev, "test": test}


def load_pawsx(args) -> dict:
    _require_data_dir(args)
    languages = known_languages(args.languages, PAWSX_LANGUAGES, "pawsx")
    train = read_pawsx(args.data_dir, "en", "train")
    if args.mode == "translate-train-all":
        for language in languages:
            if language != "en":
                train += read_pawsx(args.data_dir, language, "translated_train")
    dev = {lang: read_pawsx(args.data_dir, lang, "dev_2k") for lang in languages}
    test = {lang: read_pawsx(args.data_dir, lang, "test_2k") for lang in languages}
    return {"labels": ["0", "1"], "train": train, "dev": {"en": dev["en"]} if args.mode == "transfer" else dev,
            "test": test}


DATASETS = {"custom": load_custom, "xnli": load_xnli, "pawsx": load_pawsx}  # --task


def read_data(args) -> dict:
    """{labels, train: examples, dev and test: {language: examples}} of the --task dataset."""
    return DATASETS[args.task](args)


def run(args, progress: bool = True) -> dict:
    from ernie_m import ErnieMTokenizer
    from ernie_m.configuration import fit_max_length

    head = TASK.head_class()
    with fine_tuning_run(args, progress) as session:
        task = TASK.read(args)
        if args.do_train and not task["dev"]:
            raise SetupError("training chooses its checkpoint on development data: give --dev_file")
        tokenizer = ErnieMTokenizer.from_pretrained(args.model)
        paddle.seed(args.seed)
        names = [str(label) for label in task["labels"]]  # kept in config.json, so predictions can be named
        model = load_model(head, args.model, num_labels=len(names),
                           id2label=dict(enumerate(names)), label2id={name: i for i, name in enumerate(names)})
        with_language_ids = model.config.num_languages > 0
        if with_language_ids:
            check_languages(tokenizer, {e.language for e in task["train"]} | set(task["dev"]) | set(task["test"]))
        collate = make_collate(tokenizer.pad_token_id)

        def features(examples):
            return encode(tokenizer, examples, fit_max_length(model.config, args.max_length), with_language_ids)

        evaluate_dev = evaluator({lang: features(e) for lang, e in task["dev"].items()}, collate,
                                 args.per_device_eval_batch_size)
        final, result = train_and_select(session, args, head, model, tokenizer, features(task["train"]), collate,
                                         evaluate_dev)
        summary = {"task": args.task, "model": args.model, "labels": names,
                   "train_languages": sorted({e.language for e in task["train"]}) if args.do_train else []}
        if args.task != "custom":
            summary["mode"] = args.mode
        if result is not None:
            summary.update(best_dev=result["best"], best_step=result["best_step"])
        if args.do_eval and task["dev"]:
            summary["dev_accuracy"] = dev_scores(args, result, final, evaluate_dev)
        if args.do_predict and task["test"]:
            test = {lang: features(examples) for lang, examples in task["test"].items()}
            summary["test_accuracy"] = with_average(evaluator(test, collate, args.per_device_eval_batch_size)(final))
            write_predictions(final, test, collate, names, args)
        return save_results(args.output_dir, summary)


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=list(DATASETS))
    p.add_argument("--data_dir", help="xnli: XNLI-1.0/; pawsx: PAWS-X x-final/")
    p.add_argument("--train_file", help="custom: the training file; xnli: MultiNLI's multinli_1.0_train.txt")
    p.add_argument("--dev_file", nargs="+", help="custom: development file(s), on which the checkpoint is chosen")
    p.add_argument("--test_file", nargs="+", help="custom: test file(s), scored with the chosen checkpoint")
    p.add_argument("--data_format", choices=FORMATS, help="custom: the files' format (default: by extension)")
    p.add_argument("--text_column", default="text")
    p.add_argument("--text_pair_column", help="the second text of a pair task (none: single texts)")
    p.add_argument("--label_column", default="label")
    p.add_argument("--language_column", help="the row's language code (it wins over --language)")
    p.add_argument("--language", help="one language code for every row of the custom files")
    p.add_argument("--labels", nargs="+", help="custom: the label names in id order (default: the training labels, "
                                               "sorted)")
    p.add_argument("--mode", default="transfer", choices=["transfer", "translate-train-all"], help="xnli, pawsx")
    p.add_argument("--languages", nargs="+", help="xnli, pawsx: the languages to read (default: all)")
    add_training_arguments(p, learning_rate=5e-5, weight_decay=0.0, epochs=5, batch_size=32, max_length=256)
    return p


def shown(summary: dict) -> dict:
    return summary.get("test_accuracy") or summary.get("dev_accuracy") or summary.get("best_dev") or {}


def main(argv=None) -> None:
    task_main(parser, run, shown, argv)


TASK = register(Task("classification", "sequence_classification", read=read_data, metric=accuracy, main=main))


if __name__ == "__main__":
    main()
