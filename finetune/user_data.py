"""Your own data: tables (TSV, CSV, JSON lines) with the columns named on the command line, and token-tagging files
(CoNLL-style columns or JSON lines of tokens and tags).

Every error names the file, the line and what was expected, in one line; a file without data rows is an error,
never a score of 0.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from .readers import BenchmarkDataError, PairExample, TaggedSentence, require_file, text_lines, read_conll

FORMATS = ("tsv", "csv", "jsonl")


@dataclass(frozen=True)
class Columns:
    """Which column holds what; `language` (a column) wins over `default_language` (one code for every row)."""
    text: str = "text"
    text_pair: Optional[str] = None
    label: str = "label"
    language: Optional[str] = None
    default_language: Optional[str] = None


def file_format(path: str, given: Optional[str] = None) -> str:
    """The format named by `given`, else by the file's extension (.tsv, .csv, .jsonl or .json)."""
    if given:
        return given
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if extension in ("tsv", "csv", "jsonl"):
        return extension
    if extension == "json":
        return "jsonl"
    raise BenchmarkDataError(f"{path}: cannot tell the format from the extension {extension!r}; name it with "
                             f"--data_format ({', '.join(FORMATS)})")


def _delimited_rows(path: str, delimiter: str) -> Iterator[Tuple[int, dict]]:
    lines = text_lines(path)
    # TSV: one row a line, quotes are text; CSV: quoted fields may span lines (the row's first line is named).
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader((line for _, line in lines), delimiter=delimiter, quoting=quoting)
    try:
        header = next(reader, None)
        if not header:
            return
        start = reader.line_num + 1
        for row in reader:
            number, start = start, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                raise BenchmarkDataError(f"{path}:{number}: {len(row)} column(s), the header names {len(header)} "
                                         f"({', '.join(header)})")
            yield number, dict(zip(header, row))
    except csv.Error as error:
        raise BenchmarkDataError(f"{path}:{reader.line_num}: {error}") from None


def _json_rows(path: str) -> Iterator[Tuple[int, dict]]:
    for number, line in text_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            raise BenchmarkDataError(f"{path}:{number}: not a JSON object ({error})") from None
        if not isinstance(row, dict):
            raise BenchmarkDataError(f"{path}:{number}: a JSON {type(row).__name__}, expected an object per line")
        yield number, row


def read_rows(path: str, data_format: Optional[str] = None) -> List[Tuple[int, dict]]:
    """(line number, {column: value}) of every data row; a file with none is refused."""
    kind = file_format(path, data_format)
    require_file(path, f"a {kind.upper()} file")
    rows = list(_json_rows(path) if kind == "jsonl" else _delimited_rows(path, "\t" if kind == "tsv" else ","))
    if not rows:
        raise BenchmarkDataError(f"{path}: no data rows (an empty file, or a header only)")
    return rows


def _field(path: str, number: int, row: dict, column: str, what: str) -> str:
    if column not in row:
        raise BenchmarkDataError(f"{path}:{number}: no column {column!r} ({what}); the row has "
                                 f"{', '.join(map(str, row)) or 'no columns'}")
    value = row[column]
    if isinstance(value, (dict, list)) or value is None:
        raise BenchmarkDataError(f"{path}:{number}: {column!r} ({what}) is {json.dumps(value)}, expected text")
    return str(value)


def _language(path: str, number: int, row: dict, columns: Columns) -> str:
    if columns.language:
        return _field(path, number, row, columns.language, "the row's language")
    if columns.default_language:
        return columns.default_language
    raise BenchmarkDataError(f"{path}: no language for the rows: give --language (one code for every row) or "
                             f"--language_column")


def read_labelled_texts(path: str, columns: Columns, data_format: Optional[str] = None
                        ) -> List[Tuple[int, str, Optional[str], str, str]]:
    """(line, text, text pair or None, label name, language) of every row."""
    out = []
    for number, row in read_rows(path, data_format):
        text = _field(path, number, row, columns.text, "the text")
        pair = _field(path, number, row, columns.text_pair, "the text pair") if columns.text_pair else None
        label = _field(path, number, row, columns.label, "the label")
        out.append((number, text, pair, label, _language(path, number, row, columns)))
    return out


def label_set(rows_by_file: Dict[str, list], given: Optional[Sequence[str]] = None) -> List[str]:
    """The label names in id order: `given`, else the training rows' labels sorted."""
    if given:
        return list(dict.fromkeys(given))
    return sorted({row[3] for rows in rows_by_file.values() for row in rows})


def pair_examples(path: str, rows, labels: Sequence[str]) -> List[PairExample]:
    """Rows as examples; a label outside `labels` is refused with its file and line."""
    index = {name: i for i, name in enumerate(labels)}
    examples = []
    for number, text, pair, label, language in rows:
        if label not in index:
            raise BenchmarkDataError(f"{path}:{number}: label {label!r} is not among the training labels "
                                     f"{list(labels)}")
        examples.append(PairExample(text, pair, index[label], language))
    return examples


def by_language(examples: Sequence) -> Dict[str, list]:
    out: Dict[str, list] = {}
    for example in examples:
        out.setdefault(example.language, []).append(example)
    return out


# ---- token tagging -------------------------------------------------------------------------------------------------

def read_tagged_sentences(path: str, language: Optional[str], tokens_field: str = "tokens",
                          tags_field: str = "tags", language_field: Optional[str] = None,
                          data_format: Optional[str] = None) -> List[TaggedSentence]:
    """CoNLL-style columns (`token ... tag` a line, blank lines between sentences), or JSON lines of
    {tokens: [...], tags: [...]} when the file ends in .jsonl/.json (or `data_format` says jsonl)."""
    kind = data_format or ("jsonl" if path.lower().endswith((".jsonl", ".json")) else "conll")
    if kind == "conll":
        if not language:
            raise BenchmarkDataError(f"{path}: no language for the sentences: give it as language:path or with "
                                     f"--language")
        sentences = read_conll(path, language)
    else:
        sentences = []
        for number, row in read_rows(path, "jsonl"):
            tokens, tags = row.get(tokens_field), row.get(tags_field)
            if not (isinstance(tokens, list) and isinstance(tags, list) and len(tokens) == len(tags) and tokens
                    and all(isinstance(x, str) for x in tokens + tags)):
                raise BenchmarkDataError(f"{path}:{number}: expected {tokens_field!r} and {tags_field!r}, two "
                                         f"non-empty lists of strings of the same length")
            row_language = _field(path, number, row, language_field, "the row's language") if language_field \
                else language
            if not row_language:
                raise BenchmarkDataError(f"{path}: no language for the sentences: give it as language:path, with "
                                         f"--language, or per row with --language_column")
            sentences.append(TaggedSentence(tokens, tags, row_language))
    if not sentences:
        raise BenchmarkDataError(f"{path}: no sentences (an empty file)")
    return sentences
