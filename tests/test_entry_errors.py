"""Every mistake a user can make at the pretraining entry ends in one line and a status, never a traceback: 2 for
the command or the configuration, 1 for data or a disk the run cannot go on with (docs/pretraining.md)."""
import gzip
import os
import shutil
import subprocess

import pytest

from pretrain import run_pretrain
from tests.helpers import SMOKE_CONFIG


def one_line_exit(capsys, main, argv, status):
    """Run the entry's main, which must stop with `status` and, besides its progress bar, one line on stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as caught:
        main(argv)
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if "it/s]" not in line]
    assert caught.value.code == status and len(lines) == 1, (caught.value.code, lines)
    return lines[0]


def _argv(corpus, tokenizer, output_dir, *extra, config=SMOKE_CONFIG):
    return ["--config", str(config), "--output_dir", str(output_dir), f"tokenizer={tokenizer}",
            f"data.parallel_dir={corpus / 'parallel'}", f"data.monolingual_dir={corpus / 'mono'}",
            "data.num_workers=0", *extra]


def _copy(corpus, tmp_path):
    mine = tmp_path / "corpus"
    shutil.copytree(corpus, mine)
    return mine


def _write(path, content):
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _setup(kind, corpus, tokenizer_dir, tmp_path):
    """(argv, status, what the line says) for one kind of mistake."""
    out = tmp_path / "out"
    if kind == "tokenizer directory missing":
        return _argv(corpus, tmp_path / "nope", out), 2, "tokenizer directory not found"
    if kind == "empty vocab.txt":
        tokenizer = tmp_path / "tokenizer"
        shutil.copytree(tokenizer_dir, tokenizer)
        _write(tokenizer / "vocab.txt", "")
        return _argv(corpus, tokenizer, out), 2, "vocab.txt is empty"
    if kind in ("YAML list", "YAML scalar", "YAML invalid UTF-8"):
        content = {"YAML list": "- 1\n- 2\n", "YAML scalar": "3\n", "YAML invalid UTF-8": b"tokenizer: \xff\n"}[kind]
        config = _write(tmp_path / "config.yaml", content)
        message = "config.yaml:1: not valid UTF-8" if "UTF-8" in kind else "expected a mapping of fields"
        return _argv(corpus, tokenizer_dir, out, config=config), 2, message
    if kind == "malformed override":
        return _argv(corpus, tokenizer_dir, out, "optimizer.lr=["), 2, "value '[' is not valid YAML"
    if kind in ("seed -1", "seed 2**70"):
        seed = -1 if kind == "seed -1" else 2 ** 70
        return _argv(corpus, tokenizer_dir, out, f"train.seed={seed}"), 2, "train.seed: must be in [0, 2**53)"
    if kind == "output_dir is a file":
        return _argv(corpus, tokenizer_dir, _write(tmp_path / "afile", "x")), 2, "exists and is not a directory"
    if kind in ("symlink loop", "dangling symlink"):
        mine = _copy(corpus, tmp_path)
        link = mine / "mono" / "de.more.txt"
        os.symlink(link if kind == "symlink loop" else mine / "nothing", link)
        return _argv(mine, tokenizer_dir, out), 1, "de.more.txt: not a readable regular file"
    if kind in ("not gzip", "garbage zst"):
        mine = _copy(corpus, tmp_path)
        name, message = ("de.more.txt.gz", "Not a gzipped file") if kind == "not gzip" else \
            ("de.more.txt.zst", "zstd decompress error")
        _write(mine / "mono" / name, "plain text\n" * 20)
        return _argv(mine, tokenizer_dir, out), 1, f"{name}: cannot be read at byte 0 ({message}"
    if kind.startswith("truncated gz"):
        mine = _copy(corpus, tmp_path)
        whole = gzip.compress("".join(f"Ein Satz {i}.\n" for i in range(300)).encode())
        _write(mine / "mono" / "de.more.txt.gz", whole[:len(whole) // 2])
        workers = "1" if kind.endswith("workers") else "0"
        return (_argv(mine, tokenizer_dir, out, f"data.num_workers={workers}"), 1,
                "Compressed file ended before the end-of-stream marker was reached); training stopped at step")
    if kind == "max_length beyond the positions":
        return (_argv(corpus, tokenizer_dir, out, "stages.1.max_length=1000"), 2,
                "stages.1.max_length=1000 is more than the model's 512 positions")
    if kind == "tokenizer without languages":
        from ernie_m.tokenizer_training import train_tokenizer

        text = _write(tmp_path / "text.txt", "".join(f"Ein Satz {i}. A sentence {i}.\n" for i in range(200)))
        train_tokenizer([str(text)], str(tmp_path / "plain"), vocab_size=300)
        return _argv(corpus, tmp_path / "plain", out), 2, "configure at least two languages"
    raise AssertionError(kind)


KINDS = ["tokenizer directory missing", "empty vocab.txt", "YAML list", "YAML scalar", "YAML invalid UTF-8",
         "malformed override", "seed -1", "seed 2**70", "output_dir is a file", "symlink loop", "dangling symlink",
         "not gzip", "garbage zst", "truncated gz", "truncated gz, reader workers", "max_length beyond the positions",
         "tokenizer without languages"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_mistake_ends_in_one_line_and_its_status(corpus, tokenizer_dir, tmp_path, capsys, kind):
    """Each mistake is one line with its status: 2 for the command or configuration (checked before fleet.init, and a
    missing tokenizer without an online lookup), 1 for the data (a truncated .gz included)."""
    argv, status, message = _setup(kind, corpus, tokenizer_dir, tmp_path)
    line = one_line_exit(capsys, run_pretrain.main, argv, status)
    assert line.startswith("run_pretrain: ") and message in line, line


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs with the given options; skipped where mounting is not permitted."""
    mounted = []

    def mount(name, options):
        point = tmp_path / name
        point.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True,
                                text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'not permitted'})")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def _fill(disk):
    descriptor = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(descriptor, b"x" * 4096):
            pass
    except OSError:  # no space left
        pass
    finally:
        os.close(descriptor)


def test_a_read_only_or_full_output_directory_is_one_line(corpus, tokenizer_dir, tmp_path, capsys, tmpfs):
    """A lock file that cannot be made (read-only, or a full disk) is one line with status 1."""
    read_only = tmpfs("read_only", "ro,size=1m")
    line = one_line_exit(capsys, run_pretrain.main, _argv(corpus, tokenizer_dir, read_only / "out"), 1)
    assert f"run_pretrain: cannot create {read_only / 'out'}: Read-only file system" == line
    line = one_line_exit(capsys, run_pretrain.main, _argv(corpus, tokenizer_dir, read_only), 1)
    assert f"run_pretrain: cannot write in {read_only}: Read-only file system" == line
    full = tmpfs("full", "size=64k")
    (full / "out").mkdir()
    _fill(full)
    line = one_line_exit(capsys, run_pretrain.main, _argv(corpus, tokenizer_dir, full / "out"), 1)
    assert f"run_pretrain: cannot write in {full / 'out'}: No space left on device" == line


def test_a_full_disk_when_a_resume_cuts_the_log_is_one_line_and_keeps_the_checkpoint(corpus, tokenizer_dir,
                                                                                     tmp_path, capsys, tmpfs):
    disk = tmpfs("disk", "size=4m")
    out = disk / "out"
    run_pretrain.main(["--max_steps", "2", *_argv(corpus, tokenizer_dir, out, "train.save_steps=2")])
    _fill(disk)
    line = one_line_exit(capsys, run_pretrain.main, ["--resume", *_argv(corpus, tokenizer_dir, out)], status=1)
    assert "No space left on device" in line, line
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()


# ---- hostile arguments and files at every entry point, by hypothesis -------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_FIELDS = ["train.seed", "optimizer.lr", "stages.0.steps", "stages.1.max_length", "data.alpha", "camlm.mask_prob",
           "model.overrides.hidden_size", "data.shards", "languages", "stages.9.steps", "model.preset", "nonsense"]
_VALUES = st.one_of(st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True), st.sampled_from(
    ["[", "{a: 1}", "", "null", "-1", "1e309", "[en]", "x" * 300, "\x00", "'", "ernie-m-huge"]), st.text(max_size=12))
_FILE_BYTES = st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode), st.sampled_from([
    b"", b"\n\n", b"\xff\xfe\x00", b"label\ttext\n", b"a,b\n\"unclosed\n", b"{\"text\": 1}\n[1, 2]\n",
    b"- 1\n- 2\n", b"stages: 3\ntokenizer: [1]\n"]))


def _entry_outcome(capsys, main, argv):
    """(status, stderr lines without progress bars); a traceback or an unforeseen error fails the test."""
    capsys.readouterr()
    try:
        main(argv)
        status = 0
    except SystemExit as stop:
        status = stop.code
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if "it/s]" not in line and "s/it]" not in line]
    assert "Traceback" not in err, err[-3000:]
    if status != 0:
        assert isinstance(status, int) and len(lines) == 1, (status, lines)
        assert "unforeseen" not in lines[0], lines[0]
    return status, lines


@FUZZ
@given(config=st.one_of(st.just(None), _FILE_BYTES), overrides=st.lists(st.tuples(st.sampled_from(_FIELDS), _VALUES),
                                                                        min_size=1, max_size=2),
       output=st.sampled_from(["fresh", "a file", "missing parent"]))
def test_pretraining_never_shows_a_traceback(corpus, tokenizer_dir, tmp_path_factory, capsys, config, overrides,
                                             output):
    """The shipped smoke config or hostile bytes, with hostile overrides; a run that is valid trains one step."""
    work = tmp_path_factory.mktemp("fuzz")
    config_file = SMOKE_CONFIG if config is None else _write(work / "config.yaml", config)
    out = {"fresh": work / "out", "a file": _write(work / "afile", "x"), "missing parent": work / "a" / "b"}[output]
    argv = _argv(corpus, tokenizer_dir, out, *[f"{key}={value}" for key, value in overrides], config=config_file)
    _entry_outcome(capsys, run_pretrain.main, ["--max_steps", "1", *argv])


@FUZZ
@given(text=_FILE_BYTES, options=st.lists(st.sampled_from([
    ("--max_length", st.integers(-3, 2000)), ("--batch_size", st.integers(-3, 70)), ("--layer", st.integers(-30, 30)),
    ("--language", st.text(max_size=4)), ("--language_column", st.integers(-2, 4))]), max_size=3, unique=True),
    data=st.data(), output=st.sampled_from(["v.npy", "", "/dev/full", "missing/v.npy", "."]))
def test_the_command_line_never_shows_a_traceback(tiny_model_dir, tmp_path_factory, capsys, monkeypatch, text,
                                                  options, data, output):
    from ernie_m import cli

    work = tmp_path_factory.mktemp("fuzz")
    monkeypatch.chdir(work)
    _write(work / "texts.txt", text)
    argv = ["embed", tiny_model_dir, "texts.txt", output]
    for flag, values in options:
        argv += [flag, str(data.draw(values))]
    _entry_outcome(capsys, cli.main, argv)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(train=_FILE_BYTES, suffix=st.sampled_from([".tsv", ".csv", ".jsonl", ".txt"]),
       options=st.lists(st.sampled_from([("--label_column", "nope"), ("--text_column", "label"),
                                         ("--language", "xx"), ("--labels", ","), ("--max_seq_length", "1"),
                                         ("--data_format", "parquet"), ("--num_train_epochs", "-1")]),
                        max_size=2, unique=True))
def test_fine_tuning_never_shows_a_traceback(tiny_model_dir, tmp_path_factory, capsys, train, suffix, options):
    from finetune import classification

    work = tmp_path_factory.mktemp("fuzz")
    good = "label\ttext\n" + "".join(f"{i % 2}\tein Satz {i}\n" for i in range(6))
    _write(work / f"train{suffix}", train)
    _write(work / "dev.tsv", good)
    argv = ["--task", "custom", "--train_file", str(work / f"train{suffix}"), "--dev_file", str(work / "dev.tsv"),
            "--model", tiny_model_dir, "--output_dir", str(work / "out"), "--max_steps", "2", "--language", "de",
            "--per_device_train_batch_size", "2"]
    for flag, value in options:
        argv += [flag, value]
    _entry_outcome(capsys, classification.main, argv)


def test_an_export_or_conversion_into_a_read_only_directory_is_one_line(tiny_model_dir, tmp_path, capsys, tmpfs):
    """Paddle's writer failing in a read-only directory is one line."""
    from ernie_m import cli

    read_only = tmpfs("read_only", "ro,size=1m")
    for argv in (["export", tiny_model_dir, str(read_only / "out")],
                 ["convert", "to-hf", tiny_model_dir, str(read_only / "out")]):
        line = one_line_exit(capsys, cli.main, argv, 1)
        assert line.startswith(f"ernie-m {argv[0]}: error: ") and "Read-only file system" in line, line


def test_an_unforeseen_error_is_one_line_with_its_traceback_kept_or_said_unsaved(monkeypatch):
    import tempfile

    from ernie_m.errors import unforeseen_error_line

    try:
        raise ValueError("boom")
    except ValueError as raised:
        error = raised
    line = unforeseen_error_line("ernie-m embed", error)
    path = line.split("the traceback is in ")[1].split(",")[0]
    assert line.startswith("ernie-m embed: unforeseen ValueError: boom (a bug; ") and "\n" not in line
    assert 'raise ValueError("boom")' in open(path).read()
    os.remove(path)

    def disk_full(**kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", disk_full)
    line = unforeseen_error_line("run_pretrain", error)
    assert line == ("run_pretrain: unforeseen ValueError: boom (a bug; the traceback could not be saved: [Errno 28] "
                    "No space left on device, please report it)")
