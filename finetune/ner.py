"""Named-entity recognition: CoNLL-2002/2003 and WikiANN, entity-level F1 (conlleval rules) per language.

    python -m finetune.ner --model ernie-m-base --output_dir out/conll \
        --train en:conll2003/eng.train --dev en:conll2003/eng.testa \
        --test en:conll2003/eng.testb de:conll2003/deu.testb es:conll2002/esp.testb nl:conll2002/ned.testb

Every word's label sits on its first sub-token; the other sub-tokens and the special tokens are ignored by the loss
(-100), and a word's prediction is read from its first sub-token. Words cut off by `--max_length` count as "O".
Training on English only is cross-lingual transfer; `--train` with every language is the all-languages setting.
Your own data: CoNLL-style files, or JSON lines of {"tokens": [...], "tags": [...]} (.jsonl), given as
`language:path`, or as `path` with --language (or each row's language with --language_column).
"""
from __future__ import annotations

if __name__ == "__main__":  # run as a program: its process-wide settings come before Paddle loads
    from ernie_m.cpu import configure_process

    configure_process()

import argparse  # noqa: E402
import os  # noqa: E402
from typing import Dict, List, Optional, Sequence, Tuple  # noqa: E402

import numpy as np  # noqa: E402
import paddle  # noqa: E402

from ernie_m.argtypes import ArgumentParser  # noqa: E402

from .arguments import add_training_arguments  # noqa: E402
from .command import check_languages, dev_scores, fine_tuning_run, save_results, task_main, train_and_select
from .metrics import ner_scores, with_average  # noqa: E402
from .readers import BenchmarkDataError, TaggedSentence  # noqa: E402
from .tasks import Task, register  # noqa: E402
from .trainer import SetupError, load_model, pad_inputs  # noqa: E402
from .user_data import read_tagged_sentences  # noqa: E402

IGNORE = -100


def encode(tokenizer, sentences: Sequence[TaggedSentence], label_ids: Dict[str, int], max_length: int,
           with_language_ids: bool) -> List[dict]:
    words = [word for sentence in sentences for word in sentence.tokens]
    pieces = iter(tokenizer.encode_batch_ids(words))  # one batched sentencepiece call for the whole set
    features = []
    for sentence in sentences:
        ids, labels, starts = [tokenizer.cls_token_id], [IGNORE], []
        for word, label in zip(sentence.tokens, sentence.labels):
            word_ids = next(pieces) or [tokenizer.unk_token_id]  # a word that normalises to nothing keeps a slot
            if len(ids) + len(word_ids) > max_length - 1:
                continue  # past the length limit: predicted "O"
            starts.append(len(ids))
            labels += [label_ids[label]] + [IGNORE] * (len(word_ids) - 1)
            ids += word_ids
        ids.append(tokenizer.sep_token_id)
        labels.append(IGNORE)
        feature = {"input_ids": ids, "labels": labels, "word_starts": starts, "num_words": len(sentence.tokens)}
        if with_language_ids:
            feature["language_ids"] = [tokenizer.language_id(sentence.language)] * len(ids)
        features.append(feature)
    return features


def make_collate(pad_id: int):
    def collate(features: List[dict]) -> Dict[str, np.ndarray]:
        batch = pad_inputs(features, pad_id)
        batch["labels"] = np.full(batch["input_ids"].shape, IGNORE, dtype=np.int64)
        for row, feature in enumerate(features):
            batch["labels"][row, :len(feature["labels"])] = feature["labels"]
        return batch

    return collate


@paddle.no_grad()
def predict_tags(model, features: List[dict], collate, labels: Sequence[str], batch_size: int = 64
                 ) -> List[List[str]]:
    model.eval()
    tags = []
    for start in range(0, len(features), batch_size):
        chunk = features[start:start + batch_size]
        batch = collate(chunk)
        batch.pop("labels")
        predicted = model(**{k: paddle.to_tensor(v) for k, v in batch.items()}, return_dict=True).logits
        predicted = predicted.argmax(-1).numpy()
        for row, feature in enumerate(chunk):
            sentence = [labels[int(predicted[row, position])] for position in feature["word_starts"]]
            tags.append(sentence + ["O"] * (feature["num_words"] - len(sentence)))
    return tags


def evaluator(sets: Dict[str, List[TaggedSentence]], features: Dict[str, List[dict]], collate, labels):
    def evaluate(model) -> Dict[str, float]:
        return {language: TASK.metric([s.labels for s in sets[language]],
                                      predict_tags(model, features[language], collate, labels))
                for language in sets}

    return evaluate


def read_sets(specs, args) -> Dict[str, List[TaggedSentence]]:
    """language -> sentences of the files given as `language:path` or `path` (then --language, or the rows' own
    language with JSON lines and --language_column)."""
    out: Dict[str, List[TaggedSentence]] = {}
    for spec in specs or []:
        language, separator, path = spec.partition(":")
        if not separator or os.path.exists(spec):
            language, path = args.language, spec
        for sentence in read_tagged_sentences(path, language, args.tokens_field, args.tags_field,
                                              args.language_column, args.data_format):
            out.setdefault(sentence.language, []).append(sentence)
    return out


def label_names(train: Sequence[TaggedSentence], given: Optional[Sequence[str]]) -> List[str]:
    """--labels, or from the training data: O first, then per type B- and I- and whichever of E- and S- (BIOES)
    occur, then bare types (IO tagging); the metric reads all of them by conlleval's rules."""
    if given:
        return list(dict.fromkeys(given))
    tags = {tag for s in train for tag in s.labels if tag != "O"}
    prefixed = {tuple(tag.split("-", 1)) for tag in tags if "-" in tag}
    types = sorted({kind for _, kind in prefixed})
    labels = ["O"] + [f"{prefix}-{kind}" for kind in types for prefix in ("B", "I", "E", "S")
                      if prefix in ("B", "I") or (prefix, kind) in prefixed]
    return labels + sorted(tag for tag in tags if "-" not in tag)


def check_tags(sets: Sequence[Dict[str, List[TaggedSentence]]], labels: Sequence[str], flags: str) -> None:
    unknown = sorted({tag for by_language in sets for sentences in by_language.values() for s in sentences
                      for tag in s.labels} - set(labels))
    if unknown:
        raise BenchmarkDataError(f"{flags}: tag(s) {unknown} are not among the labels {list(labels)} (the training "
                                 f"data's, or --labels)")


def read_data(args) -> Tuple[Dict[str, List[TaggedSentence]], ...]:
    """The --train, --dev and --test sentences, each {language: sentences}."""
    return read_sets(args.train, args), read_sets(args.dev, args), read_sets(args.test, args)


def entity_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    return ner_scores(gold, predicted)["f1"]


def run(args, progress: bool = True) -> dict:
    from ernie_m import ErnieMTokenizer
    from ernie_m.configuration import fit_max_length

    head = TASK.head_class()
    with fine_tuning_run(args, progress) as session:
        train_sets, dev_sets, test_sets = TASK.read(args)
        if args.do_train and not (train_sets and dev_sets):
            raise SetupError("give at least one --train and one --dev file to train")
        train = [sentence for sentences in train_sets.values() for sentence in sentences]
        labels = label_names(train, args.labels)
        if len(labels) < 2 and not args.labels:
            raise SetupError("no training tags to learn: give --train files (or --labels to score --model)")
        check_tags([train_sets, dev_sets, test_sets], labels, "--train/--dev/--test")
        label_ids = {label: i for i, label in enumerate(labels)}
        tokenizer = ErnieMTokenizer.from_pretrained(args.model)
        paddle.seed(args.seed)
        # The label names go into config.json: Taskflow's ner mode and `ernie-m predict` read entity types from them.
        model = load_model(head, args.model, num_labels=len(labels),
                           id2label=dict(enumerate(labels)), label2id=label_ids)
        with_language_ids = model.config.num_languages > 0
        if with_language_ids:
            check_languages(tokenizer, {*train_sets, *dev_sets, *test_sets})
        collate = make_collate(tokenizer.pad_token_id)

        def features(sentences):
            return encode(tokenizer, sentences, label_ids, fit_max_length(model.config, args.max_length),
                          with_language_ids)

        evaluate_dev = evaluator(dev_sets, {lang: features(s) for lang, s in dev_sets.items()}, collate, labels)
        final, result = train_and_select(session, args, head, model, tokenizer, features(train), collate,
                                         evaluate_dev)
        summary = {"task": "ner", "model": args.model, "labels": labels, "train_languages": sorted(train_sets)}
        if result is not None:
            summary.update(best_dev=result["best"], best_step=result["best_step"])
        if args.do_eval and dev_sets:
            summary["dev_f1"] = dev_scores(args, result, final, evaluate_dev)
        if args.do_predict and test_sets:
            test_features = {lang: features(s) for lang, s in test_sets.items()}
            summary["test_f1"] = with_average(evaluator(test_sets, test_features, collate, labels)(final))
        return save_results(args.output_dir, summary)


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", nargs="+", help="[language:]path of training files (CoNLL columns or JSON lines)")
    p.add_argument("--dev", nargs="+", help="[language:]path of development files (the best average is kept)")
    p.add_argument("--test", nargs="*", help="[language:]path of test files")
    p.add_argument("--language", help="the language of files given without one")
    p.add_argument("--data_format", choices=["conll", "jsonl"], help="default: jsonl for .jsonl/.json, else conll")
    p.add_argument("--tokens_field", default="tokens", help="JSON lines: the list of words")
    p.add_argument("--tags_field", default="tags", help="JSON lines: the list of tags, one per word")
    p.add_argument("--language_column", help="JSON lines: the row's language code")
    p.add_argument("--labels", nargs="+", help="the tag set in id order (default: B-/I- of the training types, O "
                                               "first)")
    add_training_arguments(p, learning_rate=4e-4, weight_decay=0.01, epochs=10, batch_size=8, max_length=512)
    return p


def shown(summary: dict) -> dict:
    return summary.get("test_f1") or summary.get("dev_f1") or summary.get("best_dev") or {}


def main(argv=None) -> None:
    task_main(parser, run, shown, argv)


TASK = register(Task("ner", "token_classification", read=read_data, metric=entity_f1, main=main))


if __name__ == "__main__":
    main()
