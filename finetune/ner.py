"""Named-entity recognition: CoNLL-2002/2003 and WikiANN, entity-level F1 (conlleval rules) per language.

    python -m finetune.ner --model ernie-m-base --output_dir out/conll \
        --train en:conll2003/eng.train --dev en:conll2003/eng.testa \
        --test en:conll2003/eng.testb de:conll2003/deu.testb es:conll2002/esp.testb nl:conll2002/ned.testb

Every word's label sits on its first sub-token; the other sub-tokens and the special tokens are ignored by the loss
(-100), and a word's prediction is read from its first sub-token. Words cut off by `--max_length` count as "O".
Training on English only is cross-lingual transfer; `--train` with every language is the all-languages setting.
"""
from __future__ import annotations

import argparse
import os
from typing import Dict, List, Sequence

import numpy as np
import paddle

from .metrics import ner_scores, with_average
from .readers import TaggedSentence, language_files, read_conll
from .trainer import (
    add_training_arguments, fine_tune, load_model, pad_inputs, save_results, task_main, training_arguments,
)

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
        return {language: ner_scores([s.labels for s in sets[language]],
                                     predict_tags(model, features[language], collate, labels))["f1"]
                for language in sets}

    return evaluate


def run(args, progress: bool = True) -> dict:
    from ernie_m import ErnieMForTokenClassification, ErnieMTokenizer
    from ernie_m.configuration import fit_max_length

    def read(specs, flag):
        return {lang: [s for path in paths for s in read_conll(path, lang)] for lang, paths in
                language_files(specs, flag).items()}

    train_sets, dev_sets, test_sets = read(args.train, "--train"), read(args.dev, "--dev"), read(args.test, "--test")
    if not train_sets or not dev_sets:
        raise SystemExit("finetune.ner: give at least one --train and one --dev file")
    train = [sentence for sentences in train_sets.values() for sentence in sentences]
    # The label set comes from training data: B-/I- of every type seen, O first.
    types = sorted({tag[2:] for s in train for tag in s.labels if tag != "O"})
    labels = ["O"] + [f"{prefix}-{t}" for t in types for prefix in ("B", "I")]
    unknown = sorted({tag for sets in (dev_sets, test_sets) for ss in sets.values() for s in ss for tag in s.labels}
                     - set(labels))
    if unknown:
        raise SystemExit(f"finetune.ner: evaluation labels {unknown} never occur in the training data")
    label_ids = {label: i for i, label in enumerate(labels)}

    tokenizer = ErnieMTokenizer.from_pretrained(args.model)
    paddle.seed(args.seed)
    # The label names go into config.json: Taskflow's ner mode and `ernie-m predict` read entity types from them.
    model = load_model(ErnieMForTokenClassification, args.model, num_labels=len(labels),
                       id2label=dict(enumerate(labels)), label2id=label_ids)
    with_language_ids = model.config.num_languages > 0
    collate = make_collate(tokenizer.pad_token_id)

    def features(sentences):
        return encode(tokenizer, sentences, label_ids, fit_max_length(model.config, args.max_length),
                      with_language_ids)

    training = training_arguments(args, progress)
    dev_features = {lang: features(s) for lang, s in dev_sets.items()}
    result = fine_tune(model, tokenizer, features(train), collate,
                       evaluator(dev_sets, dev_features, collate, labels), training)
    best = ErnieMForTokenClassification.from_pretrained(os.path.join(args.output_dir, "best"))
    test_features = {lang: features(s) for lang, s in test_sets.items()}
    scores = with_average(evaluator(test_sets, test_features, collate, labels)(best)) if test_sets else {}
    summary = {"task": "ner", "model": args.model, "labels": labels, "test_f1": scores, "best_dev": result["best"],
               "best_step": result["best_step"]}
    return save_results(args.output_dir, summary)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", nargs="+", help="language:path of CoNLL/WikiANN training files")
    p.add_argument("--dev", nargs="+", help="language:path of development files (the best average is kept)")
    p.add_argument("--test", nargs="*", help="language:path of test files")
    add_training_arguments(p, learning_rate=4e-4, weight_decay=0.01, epochs=10, batch_size=8, max_length=512)
    return p


def main(argv=None) -> None:
    task_main(parser, run, lambda summary: summary["test_f1"], argv)


if __name__ == "__main__":
    main()
