"""Streaming corpus readers (DESIGN §5) with a resumable position, rank sharding and bad-line accounting.

- Parallel: TSV `source<TAB>target`, the pair named by the file (`en-de.tsv`).
- Monolingual: `<lang>.txt`, one sentence or paragraph a line.

A reader cycles over its file forever (an epoch counter goes up at each wrap), keeps only the lines of its shard
(line number modulo the number of shards), and skips bad lines (invalid UTF-8, wrong number of columns, an empty
side), counting each kind. `state()` / `load_state()` give the exact position for resuming.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

__all__ = ["CorpusError", "LineReader", "ParallelFile", "MonolingualFile", "find_parallel_files",
           "find_monolingual_files"]

_PAIR_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)-([A-Za-z][A-Za-z0-9_]*)\.tsv$")
_MONO_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\.txt$")


class CorpusError(ValueError):
    """The corpus cannot be used: a missing directory, no usable file, a language without data."""


@dataclass(frozen=True)
class ParallelFile:
    path: str
    source_language: str
    target_language: str


@dataclass(frozen=True)
class MonolingualFile:
    path: str
    language: str


def _find(directory: str, pattern: re.Pattern, expected: str, kind: str) -> List[re.Match]:
    if not os.path.isdir(directory):
        raise CorpusError(f"corpus directory not found: {directory} (expected {expected})")
    matches = [m for m in (pattern.match(name) for name in sorted(os.listdir(directory))) if m]
    if not matches:
        raise CorpusError(f"no {kind} files in {directory} (expected {expected})")
    return matches


def find_parallel_files(directory: str) -> List[ParallelFile]:
    """Every `<src>-<tgt>.tsv` in `directory`; other files are ignored."""
    matches = _find(directory, _PAIR_NAME, "files named <src>-<tgt>.tsv, one 'source<TAB>target' pair a line",
                    "parallel")
    return [ParallelFile(os.path.join(directory, m.group(0)), m.group(1), m.group(2)) for m in matches]


def find_monolingual_files(directory: str) -> List[MonolingualFile]:
    """Every `<lang>.txt` in `directory`."""
    matches = _find(directory, _MONO_NAME, "files named <lang>.txt, one sentence or paragraph a line",
                    "monolingual")
    return [MonolingualFile(os.path.join(directory, m.group(0)), m.group(1)) for m in matches]


class LineReader:
    """Cycles over one file, yielding (line number, fields) for the lines of its shard that are well formed.

    Args:
        columns: 2 for parallel TSV (both sides non-empty), 1 for monolingual text (non-empty).
        shard / num_shards: keep lines whose number modulo `num_shards` is `shard` (rank x workers).
    """

    # A line longer than this (bytes) is skipped and counted as "too_long": web text has megabyte "lines".
    max_line_bytes = 1 << 20

    def __init__(self, path: str, columns: int, shard: int = 0, num_shards: int = 1):
        if not os.path.isfile(path):
            raise CorpusError(f"corpus file not found: {path}")
        if not 0 <= shard < num_shards:
            raise ValueError(f"shard {shard} is not in [0, {num_shards})")
        self.path = path
        self.columns = columns
        self.shard = shard
        self.num_shards = num_shards
        self.epoch = 0
        self.offset = 0  # byte offset of the next line to read
        self.line_number = 0  # of that line, counted from 0 in the file
        self.bad_lines: Counter = Counter()
        self._empty_epochs = 0

    def state(self) -> Dict[str, object]:
        return {"epoch": self.epoch, "offset": self.offset, "line_number": self.line_number,
                "bad_lines": dict(self.bad_lines)}

    def load_state(self, state: Dict[str, object]) -> None:
        self.epoch = int(state["epoch"])
        self.offset = int(state["offset"])
        self.line_number = int(state["line_number"])
        self.bad_lines = Counter(state.get("bad_lines", {}))

    def _parse(self, raw: bytes) -> Optional[Tuple[str, ...]]:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.bad_lines["invalid_utf8"] += 1
            return None
        text = text.rstrip("\r\n").lstrip("\ufeff")
        fields = tuple(field.strip() for field in text.split("\t")) if self.columns > 1 else (text.strip(),)
        if len(fields) != self.columns:
            self.bad_lines["wrong_columns"] += 1
            return None
        if not all(fields):
            self.bad_lines["empty_side" if self.columns > 1 else "empty_line"] += 1
            return None
        return fields

    def __iter__(self) -> Iterator[Tuple[int, Tuple[str, ...]]]:
        while True:
            yielded = False
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                for raw in iter(lambda: handle.readline(self.max_line_bytes + 1), b""):
                    number = self.line_number
                    too_long = len(raw) > self.max_line_bytes and not raw.endswith(b"\n")
                    if too_long:  # read past the rest of the line in bounded pieces, never holding it whole
                        size = len(raw)
                        while raw and not raw.endswith(b"\n"):
                            raw = handle.readline(self.max_line_bytes + 1)
                            size += len(raw)
                    self.offset += size if too_long else len(raw)
                    self.line_number += 1
                    if number % self.num_shards != self.shard:
                        continue
                    if too_long:
                        self.bad_lines["too_long"] += 1
                        continue
                    fields = self._parse(raw)
                    if fields is not None:
                        yielded = True
                        self._empty_epochs = 0
                        yield number, fields
            self.epoch += 1
            self.offset = 0
            self.line_number = 0
            if not yielded:
                self._empty_epochs += 1
                if self._empty_epochs >= 2:
                    raise CorpusError(
                        f"{self.path}: no usable line for shard {self.shard} of {self.num_shards} "
                        f"(bad lines: {dict(self.bad_lines) or 'none'})"
                    )
