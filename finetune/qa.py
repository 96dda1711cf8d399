"""Extractive question answering: MLQA and XQuAD (SQuAD JSON), F1 / exact match with MLQA's per-language answer
normalisation.

    python -m finetune.qa --model ernie-m-base --output_dir out/mlqa --train_file squad/train-v1.1.json \
        --dev en:MLQA_V1/dev/dev-context-en-question-en.json \
        --test en:MLQA_V1/test/test-context-en-question-en.json de:MLQA_V1/test/test-context-de-question-de.json

Long contexts are cut into windows of `--max_length` tokens that overlap by `--doc_stride` tokens (the released
scripts' convention). A training window whose context does not hold the whole answer points at [CLS]. Prediction
takes the `--n_best` best starts and ends of every window, keeps spans inside the context of at most
`--max_answer_length` tokens, and answers with the best-scoring span over all windows, as text from the context.
"""
from __future__ import annotations

if __name__ == "__main__":  # run as a program: its process-wide settings come before Paddle loads
    from ernie_m.cpu import configure_process

    configure_process()

import argparse  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Dict, List, Sequence  # noqa: E402

import numpy as np  # noqa: E402
import paddle  # noqa: E402
from ernie_m.argtypes import ArgumentParser, integer_from  # noqa: E402

from .metrics import qa_scores, with_average  # noqa: E402
from .arguments import add_training_arguments  # noqa: E402
from .command import check_languages, dev_scores, fine_tuning_run, save_results, task_main, train_and_select
from .readers import BenchmarkDataError, QAExample, language_files, read_squad  # noqa: E402
from .tasks import Task, register  # noqa: E402
from .trainer import SetupError, load_model, pad_inputs  # noqa: E402


def encode(tokenizer, examples: Sequence[QAExample], max_length: int, doc_stride: int, max_query_length: int,
           with_language_ids: bool, training: bool) -> List[dict]:
    features = []
    for example_index, example in enumerate(examples):
        question = tokenizer.encode_batch_ids([example.question])[0][:max_query_length]
        tokens = tokenizer.tokenize(example.context)
        context_ids = tokenizer.convert_tokens_to_ids(tokens)
        offsets = tokenizer.get_offset_mapping(example.context)
        available = max_length - len(question) - 4  # [CLS] q [SEP] [SEP] context [SEP]
        if available <= doc_stride:
            raise SetupError(f"max_length {max_length} leaves {available} context tokens a window, not more than "
                             f"doc_stride {doc_stride}: raise max_length or lower doc_stride/max_query_length")
        answer_tokens = None
        if training and example.answer_start >= 0:
            answer_end = example.answer_start + len(example.answers[0])
            inside = [i for i, (s, e) in enumerate(offsets) if e > example.answer_start and s < answer_end]
            answer_tokens = (inside[0], inside[-1]) if inside else None
        start = 0
        while True:
            end = min(start + available, len(context_ids))
            first_context = len(question) + 3
            ids = ([tokenizer.cls_token_id] + question + [tokenizer.sep_token_id] * 2 + context_ids[start:end]
                   + [tokenizer.sep_token_id])
            feature = {"input_ids": ids, "example": example_index, "context_start": first_context,
                       "offsets": offsets[start:end]}
            if with_language_ids:
                feature["language_ids"] = [tokenizer.language_id(example.language)] * len(ids)
            if training:
                if answer_tokens and start <= answer_tokens[0] and answer_tokens[1] < end:
                    feature["start_positions"] = first_context + answer_tokens[0] - start
                    feature["end_positions"] = first_context + answer_tokens[1] - start
                else:
                    feature["start_positions"] = feature["end_positions"] = 0  # [CLS]: no answer in this window
            features.append(feature)
            if end == len(context_ids):
                break
            start = end - doc_stride
    return features


def make_collate(pad_id: int):
    def collate(features: List[dict]) -> Dict[str, np.ndarray]:
        batch = pad_inputs(features, pad_id)
        for key in ("start_positions", "end_positions"):
            if key in features[0]:
                batch[key] = np.asarray([f[key] for f in features], dtype=np.int64)
        return batch

    return collate


def best_spans(start_logits: np.ndarray, end_logits: np.ndarray, feature: dict, n_best: int,
               max_answer_length: int) -> List[tuple]:
    """(score, char start, char end) of the window's best candidate spans inside its context."""
    first, count = feature["context_start"], len(feature["offsets"])
    starts = [i for i in np.argsort(start_logits)[::-1][:n_best] if first <= i < first + count]
    ends = [i for i in np.argsort(end_logits)[::-1][:n_best] if first <= i < first + count]
    spans = []
    for s in starts:
        for e in ends:
            if s <= e < s + max_answer_length:
                spans.append((float(start_logits[s] + end_logits[e]), feature["offsets"][s - first][0],
                              feature["offsets"][e - first][1]))
    return spans


@paddle.no_grad()
def predict(model, examples: Sequence[QAExample], features: List[dict], collate, n_best: int = 20,
            max_answer_length: int = 30, batch_size: int = 64) -> Dict[str, str]:
    model.eval()
    candidates: Dict[int, List[tuple]] = {}
    for start in range(0, len(features), batch_size):
        chunk = features[start:start + batch_size]
        batch = collate(chunk)
        outputs = model(**{k: paddle.to_tensor(v) for k, v in batch.items()}, return_dict=True)
        start_logits, end_logits = outputs.start_logits.numpy(), outputs.end_logits.numpy()
        for row, feature in enumerate(chunk):
            candidates.setdefault(feature["example"], []).extend(
                best_spans(start_logits[row], end_logits[row], feature, n_best, max_answer_length))
    answers = {}
    for index, example in enumerate(examples):
        spans = candidates.get(index)
        answers[example.id] = example.context[max(spans)[1]:max(spans)[2]] if spans else ""
    return answers


def evaluator(sets: Dict[str, List[QAExample]], features: Dict[str, List[dict]], collate, args, details: dict):
    def evaluate(model) -> Dict[str, float]:
        scores = {}
        for language, examples in sets.items():
            predictions = predict(model, examples, features[language], collate, args.n_best,
                                  args.max_answer_length)
            details[language] = TASK.metric(predictions, {e.id: e.answers for e in examples}, language)
            scores[language] = details[language]["f1"]
        return scores

    return evaluate


def read_data(args) -> tuple:
    """(training questions, the training answers left out by kind, {language: dev questions}, {language: test
    questions})."""
    train, skipped_answers = read_training(args) if args.do_train else ([], {})
    dev = {lang: [e for path in paths for e in read_squad(path, lang)]
           for lang, paths in language_files(args.dev, "--dev").items()}
    test = {lang: [e for path in paths for e in read_squad(path, lang)]
            for lang, paths in language_files(args.test, "--test").items()}
    return train, skipped_answers, dev, test


def run(args, progress: bool = True) -> dict:
    from ernie_m import ErnieMTokenizer

    head = TASK.head_class()
    with fine_tuning_run(args, progress) as session:
        train, skipped_answers, dev, test = TASK.read(args)
        if args.do_train and not dev:
            raise SetupError("give at least one --dev file: training chooses its checkpoint on it")
        tokenizer = ErnieMTokenizer.from_pretrained(args.model)
        paddle.seed(args.seed)
        model = load_model(head, args.model)
        with_language_ids = model.config.num_languages > 0
        if with_language_ids:
            check_languages(tokenizer, {args.train_language, *dev, *test} if train else {*dev, *test})
        collate = make_collate(tokenizer.pad_token_id)
        max_length, doc_stride = window_shape(model.config, args)

        def features(examples, training=False):
            return encode(tokenizer, examples, max_length, doc_stride, args.max_query_length,
                          with_language_ids, training)

        # Training needs only the model inputs: dropping each window's offsets saves memory on SQuAD's 88k questions.
        train_features = [{k: v for k, v in f.items() if k in TRAINING_INPUTS} for f in features(train, True)]
        evaluate_dev = evaluator(dev, {lang: features(e) for lang, e in dev.items()}, collate, args, {})
        final, result = train_and_select(session, args, head, model, tokenizer, train_features, collate,
                                         evaluate_dev)
        summary = {"task": "qa", "model": args.model, "skipped_training_answers": skipped_answers}
        if result is not None:
            summary.update(best_dev=result["best"], best_step=result["best_step"])
        if args.do_eval and dev:
            summary["dev_f1"] = dev_scores(args, result, final, evaluate_dev)
        if args.do_predict and test:
            details: dict = {}
            f1 = evaluator(test, {lang: features(e) for lang, e in test.items()}, collate, args, details)(final)
            summary.update(test_f1=with_average(f1), test_exact_match=with_average(
                {lang: d["exact_match"] for lang, d in details.items()}))
        return save_results(args.output_dir, summary)


def window_shape(config, args):
    """(window length, stride): the length cut at what the model's positions hold; when that cut leaves the stride
    no room (the defaults, 384 and 128, on a 130-position checkpoint), the stride shrinks to half of what a window
    keeps for the context, with one line saying so."""
    import sys

    from ernie_m.configuration import fit_max_length

    max_length = fit_max_length(config, args.max_length)
    room = max_length - args.max_query_length - 4  # [CLS] question [SEP] [SEP] context [SEP]
    if max_length < args.max_length and args.doc_stride >= room and room >= 2:
        print(f"doc_stride {args.doc_stride} does not fit windows of {max_length} tokens; using {room // 2}",
              file=sys.stderr)
        return max_length, room // 2
    return max_length, args.doc_stride


TRAINING_INPUTS = ("input_ids", "language_ids", "start_positions", "end_positions")


def read_training(args):
    """The training questions with usable answers, and how many were left out by kind: an answer whose span does
    not fit its context would teach the wrong span."""
    if not args.train_file:
        raise SetupError("--train_file is needed to train (SQuAD v1.1's train-v1.1.json for MLQA/XQuAD)")
    train = read_squad(args.train_file, args.train_language)
    skipped = dict(Counter(e.answer_problem for e in train if e.answer_problem))
    train = [e for e in train if not e.answer_problem]
    if not train:
        raise BenchmarkDataError(f"{args.train_file}: no question with a usable answer span (skipped: {skipped})")
    return train, skipped


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train_file", help="SQuAD-format training file (SQuAD v1.1 for MLQA/XQuAD)")
    p.add_argument("--train_language", default="en")
    p.add_argument("--dev", nargs="+", help="language:path of SQuAD-format development files")
    p.add_argument("--test", nargs="*", help="language:path of SQuAD-format test files")
    add_training_arguments(p, learning_rate=3e-4, weight_decay=0.0, epochs=2, batch_size=32, max_length=384)
    p.add_argument("--doc_stride", type=integer_from(1), default=128, help="tokens shared by consecutive windows")
    p.add_argument("--max_query_length", type=integer_from(1), default=64)
    p.add_argument("--max_answer_length", type=int, default=30)
    p.add_argument("--n_best", type=int, default=20)
    return p


def shown(summary: dict) -> dict:
    if "test_f1" in summary:
        return {"f1": summary["test_f1"], "exact_match": summary["test_exact_match"]}
    return summary.get("dev_f1") or summary.get("best_dev") or {}


def main(argv=None) -> None:
    task_main(parser, run, shown, argv)


TASK = register(Task("qa", "question_answering", read=read_data, metric=qa_scores, main=main))


if __name__ == "__main__":
    main()
