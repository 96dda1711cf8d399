"""ernie_m.pretraining.corpus: line readers that skip and count bad lines, shard, resume, and find their files."""
import pytest

from ernie_m.pretraining import CorpusError, LineReader, find_monolingual_files, find_parallel_files


def take(iterator, n):
    return [next(iterator) for _ in range(n)]


def test_reader_skips_and_counts_bad_lines_and_handles_bom_and_crlf(tmp_path):
    path = tmp_path / "en-de.tsv"
    path.write_bytes(b"\xef\xbb\xbfhello\tHallo\r\nno tab here\n\tempty\nbad \xff\tx\na\tb\tc\nworld\tWelt\n")
    reader = LineReader(str(path), columns=2)
    lines = take(iter(reader), 4)
    assert [fields for _, fields in lines] == [("hello", "Hallo"), ("world", "Welt")] * 2
    assert [number for number, _ in lines[:2]] == [0, 5]
    assert reader.epoch == 1
    assert reader.bad_lines == {"wrong_columns": 4, "empty_side": 2, "invalid_utf8": 2}


def test_reader_shards_and_resumes_exactly(tmp_path):
    path = tmp_path / "en.txt"
    path.write_text("".join(f"line {i}\n" for i in range(10)))
    shards = [[fields[0] for _, fields in take(iter(LineReader(str(path), 1, shard, 3)), 4)] for shard in range(3)]
    assert shards[0] == ["line 0", "line 3", "line 6", "line 9"]
    assert shards[1] == ["line 1", "line 4", "line 7", "line 1"]  # wraps into the next epoch
    reader = LineReader(str(path), 1)
    iterator = iter(reader)
    take(iterator, 13)
    state = reader.state()
    rest = take(iterator, 5)
    again = LineReader(str(path), 1)
    again.load_state(state)
    assert take(iter(again), 5) == rest


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
