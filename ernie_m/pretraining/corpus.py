"""Streaming corpus readers (DESIGN §5) over line-aligned byte ranges, with a resumable position and bad-line
accounting.

- Parallel: TSV `source<TAB>target`, the pair named by the file: `en-de.tsv`, or several files `en-de.<part>.tsv`.
- Monolingual: `<lang>.txt` (or `<lang>.<part>.txt`), one sentence or paragraph a line.
- Any of them may be compressed: `.gz` (gzip) or `.zst` (zstandard). A compressed file cannot be entered in the
  middle, so it is one piece, read whole by whoever owns it.

Sharding (DESIGN §10): a language's (or pair's) files are cut into *pieces*, line-aligned byte ranges of about
1/shards of its bytes (a line belongs to the piece its first byte falls in), and the pieces are dealt to a fixed
number of virtual shards. A shard's position is, per piece, the byte offset of its next line, so it does not depend
on how many processes read the shards. A source too small for one piece per shard is shared: the shards on one piece
take its lines in turn (line index modulo the sharers), so every line is still read once per pass. A shard whose
pieces hold no usable line (its byte ranges fall inside one long line, or all its lines are bad) reads its source's
whole file set instead, repeating what the other shards read, rather than stopping the run.

A reader cycles over its pieces forever (an epoch counter goes up at each wrap) and skips bad lines (invalid UTF-8,
wrong number of columns, an empty side, over-long lines), counting each kind. `state()` / `load_state()` give the
exact position for resuming.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ..errors import first_line

__all__ = ["CorpusError", "LineReader", "Piece", "ParallelFile", "MonolingualFile", "find_parallel_files",
           "find_monolingual_files", "plan_pieces", "shard_pieces", "is_compressed", "file_fingerprint"]

_COMPRESSED = (".gz", ".zst")
_PAIR_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)-([A-Za-z][A-Za-z0-9_]*)(\.[\w.-]+)?\.tsv(\.gz|\.zst)?$")
_MONO_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(\.[\w.-]+)?\.txt(\.gz|\.zst)?$")


class CorpusError(ValueError):
    """The corpus cannot be used: a missing directory, no usable file, a language without data."""


@dataclass(frozen=True)
class ParallelFile:
    path: str
    source_language: str
    target_language: str

    @property
    def source(self) -> Tuple[str, ...]:
        """What the file's lines are examples of: files of one source are sampled and sharded together."""
        return (self.source_language, self.target_language)


@dataclass(frozen=True)
class MonolingualFile:
    path: str
    language: str

    @property
    def source(self) -> Tuple[str, ...]:
        return (self.language,)


def _find(directory: str, pattern: re.Pattern, expected: str, kind: str) -> List[re.Match]:
    if not os.path.isdir(directory):
        raise CorpusError(f"corpus directory not found: {directory} (expected {expected})")
    matches = [m for m in (pattern.match(name) for name in sorted(os.listdir(directory))) if m]
    if not matches:
        raise CorpusError(f"no {kind} files in {directory} (expected {expected})")
    return matches


def _regular(path: str) -> str:
    if not os.path.isfile(path):  # a dangling or looping link, a directory, a FIFO
        raise CorpusError(f"{path}: not a readable regular file (a broken or looping link?)")
    return path


def find_parallel_files(directory: str) -> List[ParallelFile]:
    """Every `<src>-<tgt>[.<part>].tsv[.gz|.zst]` in `directory`; other files are ignored."""
    matches = _find(directory, _PAIR_NAME, "files named <src>-<tgt>.tsv, one 'source<TAB>target' pair a line",
                    "parallel")
    return [ParallelFile(_regular(os.path.join(directory, m.group(0))), m.group(1), m.group(2)) for m in matches]


def find_monolingual_files(directory: str) -> List[MonolingualFile]:
    """Every `<lang>[.<part>].txt[.gz|.zst]` in `directory`."""
    matches = _find(directory, _MONO_NAME, "files named <lang>.txt, one sentence or paragraph a line",
                    "monolingual")
    return [MonolingualFile(_regular(os.path.join(directory, m.group(0))), m.group(1)) for m in matches]


def is_compressed(path: str) -> bool:
    return path.endswith(_COMPRESSED)


def open_binary(path: str):
    """The file's bytes, decompressed for `.gz` and `.zst`."""
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.endswith(".zst"):
        try:
            import zstandard
        except ImportError:
            raise CorpusError(f"{path}: reading .zst needs the zstandard package (pip install zstandard)") from None
        raw = open(path, "rb")
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
    return open(path, "rb")


def _read_errors() -> tuple:
    """What reading a corpus file can raise: I/O errors, gzip's (not gzip, truncated, corrupt) and zstandard's."""
    errors = (OSError, EOFError, zlib.error)
    try:
        import zstandard
    except ImportError:
        return errors
    return errors + (zstandard.ZstdError,)


@dataclass(frozen=True)
class Piece:
    """Lines of `path` whose first byte is in [start, end) (end None: to the end of the file); of those, the ones
    whose index in the piece is `which` modulo `every` (a piece shared by `every` shards)."""

    path: str
    start: int = 0
    end: Optional[int] = None
    every: int = 1
    which: int = 0


def plan_pieces(paths: Sequence[str], shards: int, min_piece_bytes: int) -> List[Piece]:
    """One source's files cut into line-aligned byte ranges of about 1/`shards` of its bytes (at least
    `min_piece_bytes`); a compressed file is one piece."""
    sizes = [os.path.getsize(path) for path in paths]
    piece_bytes = max(min_piece_bytes, -(-sum(sizes) // shards), 1)
    pieces: List[Piece] = []
    for path, size in zip(paths, sizes):
        count = 1 if is_compressed(path) else max(1, -(-size // piece_bytes))
        pieces += [Piece(path, size * j // count, size * (j + 1) // count if j < count - 1 else None)
                   for j in range(count)]
    return pieces


def shard_pieces(pieces: Sequence[Piece], shard: int, shards: int) -> List[Piece]:
    """The pieces virtual shard `shard` of `shards` reads: every shards-th piece, or, when there are fewer pieces
    than shards, its turn of the lines of the piece it shares."""
    if len(pieces) >= shards:
        return [piece for index, piece in enumerate(pieces) if index % shards == shard]
    index = shard % len(pieces)
    sharers = list(range(index, shards, len(pieces)))
    return [dataclasses.replace(pieces[index], every=len(sharers), which=sharers.index(shard))]


# A corpus fingerprint hashes windows of this many bytes at up to this many piece starts a file, plus its end.
FINGERPRINT_WINDOW = 4096
FINGERPRINT_WINDOWS = 256


def file_fingerprint(path: str, starts: Sequence[int]) -> Dict[str, object]:
    """The file's size and a SHA-256 over sampled windows of its stored bytes: at the piece starts (evenly thinned to
    FINGERPRINT_WINDOWS) and at its end. Reads at most about 1 MiB, however large the file."""
    size = os.path.getsize(path)
    starts = sorted(set(starts))
    if len(starts) > FINGERPRINT_WINDOWS:
        starts = [starts[i * len(starts) // FINGERPRINT_WINDOWS] for i in range(FINGERPRINT_WINDOWS)]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for offset in starts + [max(size - FINGERPRINT_WINDOW, 0)]:
            handle.seek(max(offset - 1, 0))
            digest.update(handle.read(FINGERPRINT_WINDOW))
    return {"size": size, "sampled_sha256": digest.hexdigest()}


class LineReader:
    """Cycles over its pieces, yielding (byte offset in the file, fields) for their well-formed lines.

    Args:
        pieces: the pieces to read in turn, or a path (the whole file).
        columns: 2 for parallel TSV (both sides non-empty), 1 for monolingual text (non-empty).
        share: what part of the corpus the pieces are, for error messages ("shard 3 of 64").
        source_pieces: every piece of the source the pieces belong to: read instead when the reader's own pieces
            hold no usable line.
    """

    # A line longer than this (bytes) is skipped and counted as "too_long": web text has megabyte "lines".
    max_line_bytes = 1 << 20

    def __init__(self, pieces: Union[str, Sequence[Piece]], columns: int, share: str = "the whole file",
                 source_pieces: Optional[Sequence[Piece]] = None):
        self.own_pieces = [Piece(pieces)] if isinstance(pieces, str) else list(pieces)
        if not self.own_pieces:
            raise ValueError("a reader needs at least one piece")
        self.source_pieces = list(source_pieces) if source_pieces else None
        for path in dict.fromkeys(piece.path for piece in self.own_pieces + (self.source_pieces or [])):
            if not os.path.isfile(path):
                raise CorpusError(f"corpus file not found: {path}")
        self.columns = columns
        self.share = share
        self.epoch = 0
        self.piece = 0  # index of the piece being read
        self.offset: Optional[int] = None  # byte offset of its next line; None: the piece's start, not yet found
        self.index = 0  # of that line among the piece's lines
        self.bad_lines: Counter = Counter()
        self.bytes_read = 0  # from the files (decompressed bytes for compressed ones), for the data benchmark
        # A shared piece whose lines do not reach this reader's turn (a source with fewer lines than shards): then
        # it reads every line of the piece, repeating what the other sharers read, rather than nothing.
        self.whole_pieces = False
        self.whole_source = False  # reading source_pieces, its own pieces having no usable line
        self._empty_epochs = 0

    @property
    def pieces(self) -> List[Piece]:
        """The pieces being read: the reader's own, or its source's whole set once it fell back to them."""
        return self.source_pieces if self.whole_source else self.own_pieces

    @property
    def path(self) -> str:
        return self.pieces[self.piece].path

    def state(self) -> Dict[str, object]:
        return {"epoch": self.epoch, "piece": self.piece, "offset": self.offset, "index": self.index,
                "bad_lines": dict(self.bad_lines), "bytes_read": self.bytes_read, "whole_pieces": self.whole_pieces,
                "whole_source": self.whole_source}

    def load_state(self, state: Dict[str, object]) -> None:
        self.epoch = int(state["epoch"])
        self.piece = int(state["piece"])
        self.offset = None if state["offset"] is None else int(state["offset"])
        self.index = int(state["index"])
        self.bad_lines = Counter(state.get("bad_lines", {}))
        self.bytes_read = int(state.get("bytes_read", 0))
        self.whole_pieces = bool(state.get("whole_pieces", False))
        self.whole_source = bool(state.get("whole_source", False)) and self.source_pieces is not None
        if not 0 <= self.piece < len(self.pieces):
            raise CorpusError(f"a saved reader position names piece {self.piece} of {len(self.pieces)}: the corpus "
                              f"files changed since the checkpoint")
        self._check_line_start()

    def _check_line_start(self) -> None:
        """A saved offset must be where a line starts: after a newline (or at the file's start)."""
        path = self.path
        if not self.offset or is_compressed(path):
            return
        with open(path, "rb") as handle:
            handle.seek(self.offset - 1)
            before = handle.read(1)
        if before != b"\n":
            raise CorpusError(f"{path}: the saved position (byte {self.offset}) is not the start of a line: the "
                              f"file changed since the checkpoint")

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

    def _read_line(self, handle) -> Tuple[bytes, int, bool]:
        """(the line, or its first max_line_bytes + 1 bytes, its size, whether it was too long). An over-long line
        is read past in bounded pieces, never held whole."""
        raw = handle.readline(self.max_line_bytes + 1)
        size = len(raw)
        too_long = size > self.max_line_bytes and not raw.endswith(b"\n")
        while too_long and raw and not raw.endswith(b"\n"):
            raw = handle.readline(self.max_line_bytes + 1)
            size += len(raw)
        self.bytes_read += size
        return raw, size, too_long

    def _seek(self, handle, piece: Piece) -> None:
        """To the next line: the saved offset, or the first line that starts in the piece."""
        target = self.offset if self.offset is not None else max(piece.start - 1, 0)
        if is_compressed(piece.path):  # no random access: read up to the position
            remaining = target
            while remaining:
                chunk = handle.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                self.bytes_read += len(chunk)
                remaining -= len(chunk)
        else:
            handle.seek(target)
        if self.offset is None:
            # The line the byte before the start is in belongs to the previous piece: skip past its newline.
            self.offset = target + (self._read_line(handle)[1] if piece.start > 0 else 0)

    def _lines(self, piece: Piece) -> Iterator[Tuple[int, bytes, bool]]:
        """(offset, raw line, too long) of the piece's lines from the saved position; the position moves on as
        each line is read. A file that cannot be read or decompressed is a CorpusError naming it."""
        try:
            with open_binary(piece.path) as handle:
                self._seek(handle, piece)
                while piece.end is None or self.offset < piece.end:
                    offset = self.offset
                    raw, size, too_long = self._read_line(handle)
                    if not size:
                        return
                    self.offset += size
                    self.index += 1
                    yield offset, raw, too_long
        except _read_errors() as error:
            raise CorpusError(f"{piece.path}: cannot be read at byte {self.offset or 0} ({first_line(error)})") \
                from None

    def __iter__(self) -> Iterator[Tuple[int, Tuple[str, ...]]]:
        while True:
            yielded = False
            while self.piece < len(self.pieces):
                piece = self.pieces[self.piece]
                for offset, raw, too_long in self._lines(piece):
                    if not self.whole_pieces and (self.index - 1) % piece.every != piece.which:
                        continue  # another shard's turn of a shared piece
                    if too_long:
                        self.bad_lines["too_long"] += 1
                        continue
                    fields = self._parse(raw)
                    if fields is not None:
                        yielded = True
                        self._empty_epochs = 0
                        yield offset, fields
                self.piece, self.offset, self.index = self.piece + 1, None, 0
            self.epoch += 1
            self.piece = 0
            if not yielded and not self.whole_pieces and any(piece.every > 1 for piece in self.pieces):
                self.whole_pieces = True
                continue
            if not yielded and self.source_pieces is not None and not self.whole_source:
                self.whole_source = True
                continue
            if not yielded:
                self._empty_epochs += 1
                if self._empty_epochs >= 2:
                    files = ", ".join(dict.fromkeys(piece.path for piece in self.pieces))
                    share = "any shard" if self.whole_source else self.share
                    raise CorpusError(f"{files}: no usable line in {share} "
                                      f"(bad lines: {dict(self.bad_lines) or 'none'})")
