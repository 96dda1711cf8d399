"""ernie_m.pretraining.corpus: line readers that skip and count bad lines, read byte ranges, resume, and find their
files."""
import gzip
import os

import pytest

from ernie_m.pretraining import CorpusError, LineReader, find_monolingual_files, find_parallel_files
from ernie_m.pretraining.corpus import Piece, plan_pieces, shard_pieces


def take(iterator, n):
    return [next(iterator) for _ in range(n)]


def test_reader_skips_and_counts_bad_lines_and_handles_bom_and_crlf(tmp_path):
    path = tmp_path / "en-de.tsv"
    path.write_bytes(b"\xef\xbb\xbfhello\tHallo\r\nno tab here\n\tempty\nbad \xff\tx\na\tb\tc\nworld\tWelt\n")
    reader = LineReader(str(path), columns=2)
    lines = take(iter(reader), 4)
    assert [fields for _, fields in lines] == [("hello", "Hallo"), ("world", "Welt")] * 2
    assert [offset for offset, _ in lines[:2]] == [0, 49]  # the byte offsets of the lines
    assert reader.epoch == 1
    assert reader.bad_lines == {"wrong_columns": 4, "empty_side": 2, "invalid_utf8": 2}


def test_reader_resumes_exactly(tmp_path):
    path = tmp_path / "en.txt"
    path.write_text("".join(f"line {i}\n" for i in range(10)))
    reader = LineReader(str(path), 1)
    iterator = iter(reader)
    take(iterator, 13)
    state = reader.state()
    rest = take(iterator, 5)
    again = LineReader(str(path), 1)
    again.load_state(state)
    assert take(iter(again), 5) == rest


def _lines_of_pieces(pieces):
    """Every line the pieces give in one pass, in order, and the bytes read for them."""
    reader = LineReader(pieces, 1)
    out, read = [], 0
    for _, fields in reader:
        if reader.epoch:
            break
        out.append(fields[0])
        read = reader.bytes_read
    return out, read


@pytest.mark.parametrize("shards", [1, 2, 3, 7, 16, 50])
def test_byte_ranges_give_every_line_once_and_read_each_byte_about_once(tmp_path, shards):
    """A line belongs to the piece its first byte is in: over the shards, every line once, whatever the cut, and
    the bytes read add up to the file (plus at most a line per piece start, read to find the next line)."""
    lines = [f"{i}" + "x" * (i * 7 % 23) for i in range(200)]
    path = tmp_path / "en.txt"
    path.write_text("".join(line + "\n" for line in lines))
    pieces = plan_pieces([str(path)], shards, min_piece_bytes=1)
    assert len(pieces) == shards
    seen, read = [], 0
    for shard in range(shards):
        mine = shard_pieces(pieces, shard, shards)
        assert all(piece.every == 1 for piece in mine)  # whole ranges, no sharing
        got, bytes_read = _lines_of_pieces(mine)
        seen += got
        read += bytes_read
    assert sorted(seen) == sorted(lines)
    size = os.path.getsize(path)
    assert size <= read <= size + shards * max(map(len, lines)) + shards


def test_a_source_smaller_than_the_shards_is_shared_line_by_line(tmp_path):
    path = tmp_path / "en.txt"
    path.write_text("".join(f"line {i}\n" for i in range(10)))
    pieces = plan_pieces([str(path)], 4, min_piece_bytes=1 << 20)  # too small to cut: one piece, four sharers
    assert pieces == [Piece(str(path))]
    taken = [_lines_of_pieces(shard_pieces(pieces, shard, 4))[0] for shard in range(4)]
    assert taken[1] == ["line 1", "line 5", "line 9"]
    assert sorted(line for shard in taken for line in shard) == sorted(f"line {i}" for i in range(10))
    # A shard whose turn no line reaches (3 lines, 4 sharers) reads the whole piece rather than nothing.
    path.write_text("a\nb\nc\n")
    late = LineReader(shard_pieces(plan_pieces([str(path)], 4, 1 << 20), 3, 4), 1)
    assert [fields[0] for _, fields in take(iter(late), 3)] == ["a", "b", "c"] and late.whole_pieces


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_compressed_files_are_read_whole_and_resume(tmp_path, suffix):
    path = tmp_path / f"en.part1.txt{suffix}"
    text = "".join(f"line {i}\n" for i in range(20)).encode()
    if suffix == ".gz":
        path.write_bytes(gzip.compress(text))
    else:
        import zstandard

        path.write_bytes(zstandard.ZstdCompressor().compress(text))
    assert plan_pieces([str(path)], 8, min_piece_bytes=1) == [Piece(str(path))]  # no random access: one piece
    assert [f.language for f in find_monolingual_files(str(tmp_path))] == ["en"]
    reader = LineReader(str(path), 1)
    iterator = iter(reader)
    take(iterator, 7)
    state = reader.state()
    again = LineReader(str(path), 1)
    again.load_state(state)
    assert take(iter(again), 5) == take(iterator, 5)
    assert again.state()["offset"] == reader.state()["offset"]
    assert [fields[0] for _, fields in take(iter(LineReader(str(path), 1)), 20)] == text.decode().split("\n")[:-1]


def test_reader_with_no_usable_line_is_a_clear_error(tmp_path):
    path = tmp_path / "en.txt"
    path.write_text("\n\n   \n")
    with pytest.raises(CorpusError, match="en.txt: no usable line"):
        take(iter(LineReader(str(path), 1)), 1)
    with pytest.raises(CorpusError, match="corpus file not found"):
        LineReader(str(tmp_path / "missing.txt"), 1)


def test_finding_files_and_missing_directories(tmp_path):
    (tmp_path / "en-de.tsv").write_text("a\tb\n")
    (tmp_path / "README").write_text("not data")
    (tmp_path / "de.txt").write_text("x\n")
    assert [(f.source_language, f.target_language) for f in find_parallel_files(str(tmp_path))] == [("en", "de")]
    assert [f.language for f in find_monolingual_files(str(tmp_path))] == ["de"]
    with pytest.raises(CorpusError, match=r"corpus directory not found: .*nowhere \(expected files named"):
        find_parallel_files(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no parallel files in"):
        find_parallel_files(str(tmp_path / "empty"))
    with pytest.raises(CorpusError, match="no monolingual files in"):
        find_monolingual_files(str(tmp_path / "empty"))


def test_a_saved_position_that_is_no_longer_a_line_start_is_refused(tmp_path):
    """A file rewritten to the same size with other line lengths: the saved offset would cut a line."""
    path = tmp_path / "en.txt"
    path.write_text("".join(f"line {i}\n" for i in range(20)))
    reader = LineReader(str(path), 1)
    take(iter(reader), 5)
    state = reader.state()
    path.write_text("".join(f"lin {i}\n" for i in range(20)) + "x" * 20 + "\n")
    with pytest.raises(CorpusError, match=r"en.txt: the saved position \(byte 35\) is not the start of a line"):
        LineReader(str(path), 1).load_state(state)
