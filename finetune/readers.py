"""Readers for the benchmarks' official layouts (DESIGN §5), from a local path. A missing file or a malformed line
is a `BenchmarkDataError` naming the file, the line and the layout expected.

- XNLI: `xnli.dev.tsv` / `xnli.test.tsv` (header row; columns `language`, `gold_label`, `sentence1`, `sentence2`);
  English training data is MultiNLI's `multinli_1.0_train.txt` (header row; `gold_label`, `sentence1`, `sentence2`).
- PAWS-X: `x-final/<lang>/{train,translated_train,dev_2k,test_2k}.tsv` (header `id sentence1 sentence2 label`).
- CoNLL-2002/2003 and WikiANN: one `token ... label` line per token (the label last), a blank line between
  sentences, `-DOCSTART-` lines ignored.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

NLI_LABELS = ("contradiction", "entailment", "neutral")


class BenchmarkDataError(ValueError):
    """Benchmark data that cannot be read: the message names the file, the line and the expected layout."""


@dataclass(frozen=True)
class PairExample:
    text_a: str
    text_b: Optional[str]  # None for single-sentence tasks
    label: int
    language: str


@dataclass(frozen=True)
class TaggedSentence:
    tokens: List[str]
    labels: List[str]
    language: str


def language_files(specs: Optional[Sequence[str]], flag: str) -> Dict[str, List[str]]:
    """`["en:eng.train", "de:deu.train"]` -> {"en": ["eng.train"], "de": ["deu.train"]} (a language may repeat)."""
    out: Dict[str, List[str]] = {}
    for spec in specs or []:
        language, separator, path = spec.partition(":")
        if not separator or not language or not path:
            raise BenchmarkDataError(f"{flag} takes language:path, got {spec!r}")
        out.setdefault(language, []).append(path)
    return out


def known_languages(asked: Optional[Sequence[str]], known: Sequence[str], task: str) -> List[str]:
    """The languages asked for (all `known` when none are), each one a code the task has data for."""
    unknown = [language for language in asked or [] if language not in known]
    if unknown:
        raise BenchmarkDataError(f"--languages: {task} has no language {', '.join(map(repr, unknown))}; its codes are "
                                 f"{' '.join(known)}")
    return list(asked or known)


def require_file(path: str, layout: str) -> None:
    if not os.path.isfile(path):  # also refuses FIFOs and devices, which would block or never end
        raise BenchmarkDataError(f"{path}: file not found (expected {layout})")


def text_lines(path: str):
    """(line number, line) of a UTF-8 file, the line's ending kept; invalid UTF-8 is named by file and line."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise BenchmarkDataError(f"{path}:{number}: not valid UTF-8 (byte {raw[error.start]:#04x} at "
                                         f"column {error.start + 1})") from None


def _tsv_rows(path: str, required: Sequence[str], layout: str):
    """(line number, row dict) for each data row of a headed TSV file."""
    require_file(path, layout)
    lines = text_lines(path)
    # One row a line (no quoting), so the row's number is the line's; fields may be as long as a line.
    reader = csv.reader((line for _, line in lines), delimiter="\t", quoting=csv.QUOTE_NONE)
    try:
        header = next(reader, None)
        missing = [name for name in required if not header or name not in header]
        if missing:
            raise BenchmarkDataError(f"{path}:1: header lacks column(s) {missing} (expected {layout})")
        index = {name: header.index(name) for name in required}
        found = False
        for number, row in enumerate(reader, 2):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) <= max(index.values()):
                raise BenchmarkDataError(f"{path}:{number}: {len(row)} column(s), the header names {len(header)} "
                                         f"(expected {layout})")
            found = True
            yield number, {name: row[i] for name, i in index.items()}
        if not found:
            raise BenchmarkDataError(f"{path}: no data rows, a header only (expected {layout})")
    except csv.Error as error:
        raise BenchmarkDataError(f"{path}:{reader.line_num}: {error} (expected {layout})") from None


XNLI_LAYOUT = "XNLI's xnli.{dev,test}.tsv: a header, then language, gold_label, ..., sentence1, sentence2 columns"
MNLI_LAYOUT = "MultiNLI's multinli_1.0_train.txt: a header, then gold_label, ..., sentence1, sentence2 columns"


def _nli_label(path: str, number: int, raw: str, layout: str) -> Optional[int]:
    if raw == "-":  # MultiNLI: annotators did not agree; the official setup leaves these out
        return None
    if raw not in NLI_LABELS:
        raise BenchmarkDataError(f"{path}:{number}: label {raw!r} is not one of {NLI_LABELS} (expected {layout})")
    return NLI_LABELS.index(raw)


def read_xnli(directory: str, split: str, languages: Optional[Sequence[str]] = None) -> Dict[str, List[PairExample]]:
    """language -> examples of `xnli.<split>.tsv` (split: dev or test)."""
    path = os.path.join(directory, f"xnli.{split}.tsv")
    out: Dict[str, List[PairExample]] = {}
    for number, row in _tsv_rows(path, ("language", "gold_label", "sentence1", "sentence2"), XNLI_LAYOUT):
        if languages and row["language"] not in languages:
            continue
        label = _nli_label(path, number, row["gold_label"], XNLI_LAYOUT)
        if label is not None:
            out.setdefault(row["language"], []).append(
                PairExample(row["sentence1"], row["sentence2"], label, row["language"]))
    missing = [language for language in languages or [] if language not in out]
    if missing:
        raise BenchmarkDataError(f"{path}: no rows for language(s) {missing}; it has {sorted(out)}")
    return out


def read_multinli_train(path: str) -> List[PairExample]:
    examples = []
    for number, row in _tsv_rows(path, ("gold_label", "sentence1", "sentence2"), MNLI_LAYOUT):
        label = _nli_label(path, number, row["gold_label"], MNLI_LAYOUT)
        if label is not None:
            examples.append(PairExample(row["sentence1"], row["sentence2"], label, "en"))
    return examples


PAWSX_LAYOUT = "PAWS-X's x-final/<lang>/<split>.tsv: a header 'id sentence1 sentence2 label', label 0 or 1"


def read_pawsx(directory: str, language: str, split: str) -> List[PairExample]:
    """`split`: train (English), translated_train, dev_2k or test_2k."""
    path = os.path.join(directory, language, f"{split}.tsv")
    examples = []
    for number, row in _tsv_rows(path, ("sentence1", "sentence2", "label"), PAWSX_LAYOUT):
        if row["label"] not in ("0", "1"):
            raise BenchmarkDataError(f"{path}:{number}: label {row['label']!r} is not 0 or 1 "
                                     f"(expected {PAWSX_LAYOUT})")
        examples.append(PairExample(row["sentence1"], row["sentence2"], int(row["label"]), language))
    return examples


CONLL_LAYOUT = "CoNLL: 'token ... label' per line (label last), a blank line between sentences"


def read_conll(path: str, language: str, label_set: Optional[Sequence[str]] = None) -> List[TaggedSentence]:
    """Sentences of a CoNLL-2002/2003 or WikiANN file; `label_set`, if given, rejects unknown labels."""
    require_file(path, CONLL_LAYOUT)
    sentences, tokens, labels = [], [], []
    for number, line in text_lines(path):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if tokens:
                sentences.append(TaggedSentence(tokens, labels, language))
                tokens, labels = [], []
            continue
        if len(fields) < 2:
            raise BenchmarkDataError(f"{path}:{number}: one field {fields[0]!r}, no label (expected "
                                     f"{CONLL_LAYOUT})")
        if label_set is not None and fields[-1] not in label_set:
            raise BenchmarkDataError(f"{path}:{number}: label {fields[-1]!r} is not among {list(label_set)}")
        token = fields[0]
        if ":" in token and language and token.startswith(f"{language}:"):
            token = token[len(language) + 1:]  # WikiANN (XTREME) prefixes tokens with "<lang>:"
        tokens.append(token)
        labels.append(fields[-1])
    if tokens:
        sentences.append(TaggedSentence(tokens, labels, language))
    if not sentences:
        raise BenchmarkDataError(f"{path}: no sentences, an empty file (expected {CONLL_LAYOUT})")
    return sentences


TRANSLATED_LAYOUT = ("XTREME's XNLI-Translated/en-<lang>-translated.tsv: no header; premise, hypothesis, label "
                     "(contradiction or contradictory, entailment, neutral)")


def read_translated_pairs(path: str, language: str, labels: Sequence[str]) -> List[PairExample]:
    """Machine-translated training pairs for translate-train-all (XNLI)."""
    require_file(path, TRANSLATED_LAYOUT)
    examples = []
    for number, line in text_lines(path):
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) < 3:
            raise BenchmarkDataError(f"{path}:{number}: {len(fields)} column(s) (expected {TRANSLATED_LAYOUT})")
        label = "contradiction" if fields[2].strip() == "contradictory" else fields[2].strip()
        if label not in labels:
            raise BenchmarkDataError(f"{path}:{number}: label {fields[2]!r} is not one of {list(labels)}")
        examples.append(PairExample(fields[0], fields[1], labels.index(label), language))
    if not examples:
        raise BenchmarkDataError(f"{path}: no rows, an empty file (expected {TRANSLATED_LAYOUT})")
    return examples


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    context: str
    answers: List[str]
    answer_start: int  # of the first answer, in characters (-1 when there is none)
    language: str
    answer_problem: Optional[str] = None  # why the first answer's span cannot be trained on (see `answer_problem`)


SQUAD_LAYOUT = ("SQuAD JSON (SQuAD v1.1, MLQA, XQuAD): {'data': [{'paragraphs': [{'context': ..., 'qas': [{'id', "
                "'question', 'answers': [{'text', 'answer_start'}]}]}]}]}")


def answer_problem(context: str, text: str, start: int) -> Optional[str]:
    """What is wrong with an answer span, by kind, or None: training on it would teach the wrong span."""
    if not text.strip():
        return "empty_answer"
    if start < 0 or start + len(text) > len(context):
        return "answer_out_of_range"
    if context[start:start + len(text)] != text:
        return "answer_text_mismatch"
    return None


def _items(value, kind, path: str, where: str) -> list:
    if not isinstance(value, kind):
        raise BenchmarkDataError(f"{path}: {where} is a {type(value).__name__}, expected a "
                                 f"{'list' if kind is list else 'JSON object'} (expected {SQUAD_LAYOUT})")
    return value


def read_squad(path: str, language: str) -> List[QAExample]:
    """Every question of a SQuAD-format file; the error for a malformed entry names its place in the JSON. Answer
    spans that do not fit the context are kept but marked (`answer_problem`), never silently relabelled."""
    import json

    require_file(path, SQUAD_LAYOUT)
    try:
        with open(path, "rb") as handle:
            document = json.loads(handle.read().decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise BenchmarkDataError(f"{path}: not valid UTF-8 (byte offset {error.start}); expected {SQUAD_LAYOUT}") \
            from None
    except ValueError as error:
        raise BenchmarkDataError(f"{path}: not valid JSON ({error}); expected {SQUAD_LAYOUT}") from None
    examples = []
    data = _items(_items(document, dict, path, "the document").get("data", []), list, path, "data")
    for i, article in enumerate(data):
        paragraphs = _items(_items(article, dict, path, f"data[{i}]").get("paragraphs", []), list, path,
                            f"data[{i}].paragraphs")
        for j, paragraph in enumerate(paragraphs):
            where = f"data[{i}].paragraphs[{j}]"
            for k, qa in enumerate(_items(_items(paragraph, dict, path, where).get("qas", []), list, path,
                                          f"{where}.qas")):
                where = f"data[{i}].paragraphs[{j}].qas[{k}]"
                try:
                    answers = _items(_items(qa, dict, path, where).get("answers", []), list, path, f"{where}.answers")
                    context, texts = paragraph["context"], [a["text"] for a in answers]
                    if not isinstance(context, str) or not all(isinstance(t, str) for t in texts):
                        raise TypeError("context and answer texts must be strings")
                    start = int(answers[0]["answer_start"]) if answers else -1
                    problem = answer_problem(context, texts[0], start) if answers else None
                    examples.append(QAExample(str(qa["id"]), str(qa["question"]), context, texts, start, language,
                                              problem))
                except (KeyError, TypeError, ValueError) as error:
                    raise BenchmarkDataError(f"{path}: {where}: missing or bad field {error} "
                                             f"(expected {SQUAD_LAYOUT})") from None
    if not examples:
        raise BenchmarkDataError(f"{path}: no questions found (expected {SQUAD_LAYOUT})")
    return examples
