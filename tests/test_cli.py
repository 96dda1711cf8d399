"""The `ernie-m` command line: help for every subcommand, the three jobs, and one-line errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ernie_m import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ernie_m(*args, cwd=None):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "ernie_m.cli", *args], capture_output=True, text=True, env=env,
                          timeout=180, cwd=cwd or ROOT)


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, tokenizer_dir):
    import paddle

    from ernie_m import ErnieMConfig, ErnieMForSequenceClassification, ErnieMTokenizer

    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    out = str(tmp_path_factory.mktemp("classifier"))
    paddle.seed(1)
    config = ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=len(tokenizer), num_labels=2,
                                      id2label={0: "no", 1: "yes"}, label2id={"no": 0, "yes": 1})
    ErnieMForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.mark.parametrize("command", [[], ["embed"], ["predict"], ["export"], ["convert"]])
def test_every_subcommand_has_help(command):
    result = ernie_m(*command, "--help")
    assert result.returncode == 0 and "usage: ernie-m" in result.stdout


def test_embed_writes_the_library_embeddings(tiny_model_dir, tmp_path):
    from ernie_m import ErnieMModel, ErnieMTokenizer
    from ernie_m.embeddings import sentence_embeddings

    texts = ["The cat sleeps.", "Die Katze schläft.", "Кошка спит."]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    cli.main(["embed", tiny_model_dir, str(tmp_path / "texts.txt"), str(tmp_path / "v.npy"), "--layer", "1"])
    vectors = np.load(tmp_path / "v.npy")
    model, tokenizer = ErnieMModel.from_pretrained(tiny_model_dir), ErnieMTokenizer.from_pretrained(tiny_model_dir)
    np.testing.assert_allclose(vectors, sentence_embeddings(model, tokenizer, texts, layer=1), atol=1e-6)


def test_predict_names_the_labels(classifier_dir, tmp_path):
    (tmp_path / "a.txt").write_text("A man eats.\nIt rains.\n")
    (tmp_path / "b.txt").write_text("Someone eats.\nThe sun shines.\n")
    cli.main(["predict", classifier_dir, str(tmp_path / "a.txt"), "--pairs", str(tmp_path / "b.txt"), "--output",
              str(tmp_path / "p.jsonl")])
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(row["label"] in ("no", "yes") and 0.5 <= row["score"] <= 1 for row in rows)


def test_predict_tags_entities_with_a_token_classification_checkpoint(tokenizer_dir, tmp_path):
    import paddle

    from ernie_m import ErnieMConfig, ErnieMForTokenClassification, ErnieMTokenizer
    from ernie_m.tagging import tag_texts

    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    paddle.seed(2)
    labels = ["O", "B-PER", "I-PER", "B-LOC"]
    model = ErnieMForTokenClassification(ErnieMConfig.from_preset(
        "ernie-m-tiny", vocab_size=len(tokenizer), num_labels=4, id2label=dict(enumerate(labels))))
    model.classifier.weight.set_value(model.classifier.weight * 40)  # decisive tags from random weights
    model.save_pretrained(str(tmp_path / "tagger"))
    tokenizer.save_pretrained(str(tmp_path / "tagger"))
    texts = ["Anna lives in Berlin near the river.", "Иван живёт в Москве."]
    (tmp_path / "t.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    cli.main(["predict", str(tmp_path / "tagger"), str(tmp_path / "t.txt"), "--output", str(tmp_path / "tags.jsonl")])
    rows = [json.loads(line) for line in (tmp_path / "tags.jsonl").read_text(encoding="utf-8").splitlines()]
    expected = tag_texts(model, tokenizer, texts)
    assert [[tuple(s) for s in row["segments"]] for row in rows] == expected
    assert ["".join(text for text, _ in row["segments"]) for row in rows] == texts
    assert any(row["entities"] for row in rows), "no entity: the check would be empty"


def test_export_then_paddle_inference(classifier_dir, tmp_path):
    result = ernie_m("export", classifier_dir, str(tmp_path / "static"))
    assert result.returncode == 0, result.stderr[-2000:]
    from ernie_m.inference import StaticPredictor

    logits, = StaticPredictor(str(tmp_path / "static"))(np.array([[0, 10, 11, 2]]))
    assert logits.shape == (1, 2)


@pytest.mark.parametrize("args, message", [
    (["embed", "no/such/model", "{texts}", "v.npy"], "no/such/model is neither a checkpoint directory nor a released"),
    (["embed", "{model}", "missing.txt", "v.npy"], "text file not found: missing.txt"),
    (["predict", "{model}", "{texts}"], "is an ErnieMModel checkpoint; predict needs a fine-tuned "
                                        "ErnieMForSequenceClassification or ErnieMForTokenClassification"),
    (["export", "{empty}", "out"], "has no config.json: not a from_pretrained checkpoint directory"),
])
def test_bad_input_gets_one_line(tiny_model_dir, tmp_path, args, message, capsys, monkeypatch):
    from tests.helpers import one_line_exit

    (tmp_path / "texts.txt").write_text("hello\n")
    (tmp_path / "empty").mkdir()
    filled = [a.format(model=tiny_model_dir, texts=tmp_path / "texts.txt", empty=tmp_path / "empty") for a in args]
    monkeypatch.chdir(tmp_path)
    assert message in one_line_exit(capsys, cli.main, filled, 2)  # one line, nothing else


def _broken_checkpoint(source, destination, kind):
    import shutil

    from ernie_m.weights import load_state_dict, save_state_dict

    shutil.copytree(source, destination)
    config_file = os.path.join(destination, "config.json")
    if kind == "config is a list":
        open(config_file, "w").write("[1, 2]")
    elif kind == "complex dtype":
        config = json.load(open(config_file))
        json.dump(dict(config, dtype="complex128"), open(config_file, "w"))
    elif kind == "wrong shape":
        path = os.path.join(destination, "model_state.pdparams")
        state = load_state_dict(path)
        key = next(k for k in state if k.endswith("linear1.weight"))
        save_state_dict(dict(state, **{key: state[key][:, :100]}), path)
    elif kind == "no tokenizer":
        for name in ("sentencepiece.bpe.model", "vocab.txt"):
            os.remove(os.path.join(destination, name))
    elif kind in ("missing tensor", "no head"):
        path = os.path.join(destination, "model_state.pdparams")
        dropped = "encoder.layers.1." if kind == "missing tensor" else "classifier."
        save_state_dict({k: v for k, v in load_state_dict(path).items() if dropped not in k}, path)
    return destination


@pytest.mark.parametrize("args, message", [
    (["embed", "{model}", "{bad_utf8}", "v.npy"], "bad.txt:2: not valid UTF-8 (byte 0xff at column 5)"),
    (["embed", "{model}", "{texts}", "missing/dir/v.npy"], "output directory does not exist: "),
    (["predict", "{classifier}", "{texts}", "--output", "missing/p.jsonl"], "output directory does not exist: "),
    (["embed", "{model}", "{texts}", "v.npy", "--batch_size", "-3"], "argument --batch_size: must be at least 1"),
    (["embed", "{model}", "{texts}", "v.npy", "--max_length", "1"], "argument --max_length: must be at least 3"),
    (["embed", "{config is a list}", "{texts}", "v.npy"], "config.json: expected a JSON object, found list"),
    (["embed", "{complex dtype}", "{texts}", "v.npy"], "set_default_dtype only supports"),
    (["embed", "{wrong shape}", "{texts}", "v.npy"], "linear1.weight receives a shape [64, 100], but the expected "
                                                     "shape is [64, 256]"),
    (["embed", "{missing tensor}", "{texts}", "v.npy", "--layer", "2"], "no weight 'encoder.layers.1."),
    (["predict", "{no head}", "{texts}"], "its task head is not in the checkpoint"),
    (["export", "{no tokenizer}", "out"], "has no tokenizer: sentencepiece.bpe.model and vocab.txt not found"),
])
def test_hostile_input_ends_in_one_line_and_status_2_before_any_output(tiny_model_dir, classifier_dir, tmp_path,
                                                                        args, message, capsys, monkeypatch):
    """Invalid UTF-8, a config.json that is a list, a complex dtype, weights of a wrong shape, a missing output
    directory, `--batch_size -3`, and a checkpoint missing an encoder layer or its classifier: each is one line and
    status 2, found before any computation and before anything is written."""
    (tmp_path / "texts.txt").write_text("hello\n")
    (tmp_path / "bad.txt").write_bytes(b"good\nbad \xff line\n")
    paths = {"model": tiny_model_dir, "classifier": classifier_dir, "texts": tmp_path / "texts.txt",
             "bad_utf8": tmp_path / "bad.txt"}
    for kind in ("config is a list", "complex dtype", "wrong shape", "missing tensor", "no head", "no tokenizer"):
        source = classifier_dir if kind == "no head" else tiny_model_dir
        paths[kind] = _broken_checkpoint(source, str(tmp_path / kind.replace(" ", "_")), kind)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as caught:  # in process: the command's main, as the console script calls it
        cli.main([a.format(**paths) for a in args])
    stderr = capsys.readouterr().err
    assert caught.value.code == 2, stderr[-2000:]
    assert message in stderr.strip().splitlines()[-1]
    assert not (tmp_path / "v.npy").exists()


def test_help_and_version_answer_without_loading_paddle():
    code = ("import sys\nfrom ernie_m import cli\nfor argv in (['--help'], ['embed', '--help'], ['--version']):\n"
            "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
            "print('paddle' in sys.modules, 'paddlenlp' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "False False", result.stderr[-2000:]
    assert "ernie-m 0.1.0" in result.stdout


def test_framework_log_lines_are_off_unless_verbose(tiny_model_dir, classifier_dir, tmp_path):
    """Embedding with a classifier's encoder prints our one result line, not PaddleNLP's WARNING about the unused head;
    `--verbose` keeps the frameworks' lines."""
    (tmp_path / "texts.txt").write_text("hello\n")
    quiet = ernie_m("embed", tiny_model_dir, str(tmp_path / "texts.txt"), str(tmp_path / "v.npy"))
    assert quiet.returncode == 0 and "INFO" not in quiet.stderr, quiet.stderr[-2000:]
    assert quiet.stdout.strip() == f"1 embeddings of size 64 written to {tmp_path / 'v.npy'}"
    verbose = ernie_m("--verbose", "embed", tiny_model_dir, str(tmp_path / "texts.txt"), str(tmp_path / "v.npy"))
    assert verbose.returncode == 0 and "INFO" in verbose.stderr
    quiet = ernie_m("embed", classifier_dir, str(tmp_path / "texts.txt"), str(tmp_path / "v.npy"))
    assert quiet.returncode == 0 and quiet.stderr.strip() == "", quiet.stderr[-2000:]


def test_console_script_is_declared():
    text = open(os.path.join(ROOT, "pyproject.toml")).read()
    assert 'ernie-m = "ernie_m.cli:main"' in text and callable(cli.main)


def test_commands_that_load_a_model_keep_freed_memory_on_cpu(tiny_model_dir, monkeypatch):
    """embed/predict run in a process of their own: they make malloc keep freed memory on CPU (ernie_m/cpu.py)."""
    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory_on_cpu", lambda: calls.append(1) or True)
    model, _ = cli._load(tiny_model_dir, "ErnieMModel")
    assert calls == [1] and not model.training


def _run_in_process(*argv):
    """The command's own function, without a new process (the parsing and the work are the same)."""
    args = cli.parser().parse_args(list(argv))
    args.run(args)


def test_language_per_line_for_embed_and_predict(tokenizer_dir, tmp_path):
    """Language-embedding models: `--language_column` gives each line its language; every command's output equals
    the library's with the same language ids, and differs from one language for the whole file."""
    import paddle

    from ernie_m import ErnieMForSequenceClassification, ErnieMForTokenClassification, ErnieMModel, ErnieMTokenizer
    from ernie_m.embeddings import sentence_embeddings
    from ernie_m.tagging import tag_texts
    from tests.helpers import save_language_model

    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    texts, languages = ["The cat sleeps.", "Die Katze schläft.", "Кошка спит."], ["en", "de", "ru"]
    (tmp_path / "lines.tsv").write_text("".join(f"{lang}\t{text}\n" for lang, text in zip(languages, texts)),
                                        encoding="utf-8")
    (tmp_path / "reversed.tsv").write_text("".join(f"{text}\t{lang}\n" for lang, text in zip(languages, texts)),
                                           encoding="utf-8")

    encoder = save_language_model(ErnieMModel, tokenizer, tmp_path / "encoder", seed=3)
    _run_in_process("embed", str(tmp_path / "encoder"), str(tmp_path / "lines.tsv"), str(tmp_path / "v.npy"),
                    "--language_column", "1", "--batch_size", "2")
    vectors = np.load(tmp_path / "v.npy")
    np.testing.assert_allclose(vectors, sentence_embeddings(encoder, tokenizer, texts, language=languages),
                               atol=1e-5)
    assert np.abs(vectors - sentence_embeddings(encoder, tokenizer, texts, language="en")).max() > 1e-3

    classifier = save_language_model(ErnieMForSequenceClassification, tokenizer, tmp_path / "classifier", seed=4,
                                     sharpen=["classifier"], num_labels=2)
    _run_in_process("predict", str(tmp_path / "classifier"), str(tmp_path / "lines.tsv"), "--pairs",
                    str(tmp_path / "lines.tsv"), "--language_column", "1", "--output", str(tmp_path / "p.jsonl"))
    scores = [json.loads(line)["score"] for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    with paddle.no_grad():
        for text, language, score in zip(texts, languages, scores):
            batch = tokenizer(text, text, language=language, return_tensors="pd")
            probabilities = paddle.nn.functional.softmax(classifier(**batch), -1).numpy()[0]
            assert abs(probabilities.max() - score) <= 1e-5

    tagger = save_language_model(ErnieMForTokenClassification, tokenizer, tmp_path / "tagger", seed=5,
                                 sharpen=["classifier"], num_labels=4,
                                 id2label=dict(enumerate(["O", "B-PER", "I-PER", "B-LOC"])))
    _run_in_process("predict", str(tmp_path / "tagger"), str(tmp_path / "reversed.tsv"), "--language_column", "2",
                    "--output", str(tmp_path / "tags.jsonl"))
    rows = [json.loads(line) for line in (tmp_path / "tags.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [[tuple(s) for s in row["segments"]] for row in rows] == tag_texts(tagger, tokenizer, texts,
                                                                               languages=languages)


@pytest.mark.parametrize("argv_tail, message", [
    (["--language_column", "1"], "no-language.txt:1: --language_column 1 expects language<TAB>text"),
    ([], "this model has a language embedding: give --language"),
    (["--language", "xx"], "unknown language 'xx'"),
])
def test_language_errors_name_the_line(tokenizer_dir, tmp_path, argv_tail, message, capsys):
    from ernie_m import ErnieMForSequenceClassification, ErnieMTokenizer
    from tests.helpers import save_language_model

    save_language_model(ErnieMForSequenceClassification, ErnieMTokenizer.from_pretrained(tokenizer_dir),
                        tmp_path / "m", seed=3)
    (tmp_path / "no-language.txt").write_text("just a text\n", encoding="utf-8")
    from tests.helpers import one_line_exit

    argv = ["predict", str(tmp_path / "m"), str(tmp_path / "no-language.txt"), *argv_tail]
    assert message in one_line_exit(capsys, cli.main, argv, 2)


def test_a_line_longer_than_the_models_positions_is_cut_with_one_line(tokenizer_dir, tmp_path, capsys, monkeypatch):
    """A checkpoint with 20 positions holds 18 tokens while `--max_length` defaults to 128 and 256: embed and predict
    cut a longer line to what the positions hold and say so in one line."""
    import paddle

    from ernie_m import ErnieMConfig, ErnieMForSequenceClassification, ErnieMModel, ErnieMTokenizer

    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    short = dict(vocab_size=len(tokenizer), max_position_embeddings=20)
    paddle.seed(3)
    ErnieMModel(ErnieMConfig.from_preset("ernie-m-tiny", **short)).save_pretrained(str(tmp_path / "encoder"))
    ErnieMForSequenceClassification(ErnieMConfig.from_preset("ernie-m-tiny", num_labels=2, **short)).save_pretrained(
        str(tmp_path / "classifier"))
    for name in ("encoder", "classifier"):
        tokenizer.save_pretrained(str(tmp_path / name))
    long_line = " ".join(["The quick brown fox jumps over the lazy dog."] * 10)
    (tmp_path / "texts.txt").write_text(f"Short.\n{long_line}\n", encoding="utf-8")
    from ernie_m import configuration

    monkeypatch.setattr(configuration, "_CAPS_SAID", set())  # the line is said once a process: this test's own
    capsys.readouterr()
    cli.main(["embed", str(tmp_path / "encoder"), str(tmp_path / "texts.txt"), str(tmp_path / "v.npy")])
    embedded = capsys.readouterr().err
    cli.main(["predict", str(tmp_path / "classifier"), str(tmp_path / "texts.txt"), "--output",
              str(tmp_path / "p.jsonl")])
    predicted = capsys.readouterr().err
    for stderr, requested in ((embedded, 128), (predicted, 256)):
        notices = [line for line in stderr.splitlines() if "positions hold" in line]
        assert notices == [f"max_length {requested} is more than this model's 20 positions hold; inputs are cut at "
                           "18 tokens"]
    assert np.load(tmp_path / "v.npy").shape[0] == 2
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 2


def test_outputs_are_written_whole_at_the_path_given(tiny_model_dir, tmp_path, monkeypatch, capsys):
    """`embed ... X` writes `X` itself (numpy would append `.npy`); a full disk leaves the previous output readable;
    an output that is a directory is refused in one line."""
    import numpy

    (tmp_path / "texts.txt").write_text("One.\nTwo.\n", encoding="utf-8")
    _run_in_process("embed", tiny_model_dir, str(tmp_path / "texts.txt"), str(tmp_path / "vectors"))
    assert sorted(os.listdir(tmp_path)) == ["texts.txt", "vectors"]
    before = (tmp_path / "vectors").read_bytes()
    assert np.load(tmp_path / "vectors").shape[0] == 2

    def full_disk(handle, array):
        handle.write(b"\x93NUMPY partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(numpy, "save", full_disk)
    capsys.readouterr()
    with pytest.raises(SystemExit) as caught:
        cli.main(["embed", tiny_model_dir, str(tmp_path / "texts.txt"), str(tmp_path / "vectors")])
    assert caught.value.code == 1 and capsys.readouterr().err.strip().endswith("No space left on device")
    assert (tmp_path / "vectors").read_bytes() == before and sorted(os.listdir(tmp_path)) == ["texts.txt", "vectors"]
    with pytest.raises(SystemExit) as caught:
        cli.main(["embed", tiny_model_dir, str(tmp_path / "texts.txt"), str(tmp_path)])
    assert caught.value.code == 2
    assert capsys.readouterr().err.strip() == (f"ernie-m embed: error: output {tmp_path} exists and is not a regular "
                                               f"file (a directory or a device)")


@pytest.mark.parametrize("direction", ["to-hf", "from-hf"])
def test_a_conversion_into_its_own_source_is_refused(tiny_model_dir, tmp_path, capsys, direction):
    """`convert to-hf X X` is refused before writing, so X still loads (writing would replace its files while reading
    them)."""
    import shutil

    from ernie_m import ErnieMModel

    source = tmp_path / "model"
    shutil.copytree(tiny_model_dir, source)
    files = {name: (source / name).read_bytes() for name in os.listdir(source)}
    with pytest.raises(SystemExit) as caught:
        cli.main(["convert", direction, str(source), str(source) + "/"])
    assert caught.value.code == 2
    assert "is the source: converting in place would overwrite the checkpoint" in capsys.readouterr().err
    assert {name: (source / name).read_bytes() for name in os.listdir(source)} == files
    ErnieMModel.from_pretrained(str(source))


@pytest.mark.parametrize("kind, message", [
    ("crafted pickle", "refused to load: the file asks for 'posix.system'"),
    ("unreadable safetensors", "model.safetensors: not a readable safetensors file"),
    ("config out of range", "config.json: ErnieMConfig.hidden_size must be in"),
    ("truncated pdparams", "model_state.pdparams: not a readable .pdparams state dict"),
    ("not a PyTorch file", "pytorch_model.bin: not a readable PyTorch state dict"),
])
def test_every_converter_error_is_one_line(tiny_model_dir, tmp_path, capsys, kind, message):
    """Each converter error class (UnsafeCheckpointError, CheckpointFormatError, SafetensorError, a config ValueError,
    torch's UnpicklingError) is one line, and a config out of range is refused rather than converted."""
    import pickle
    import shutil

    from tests.helpers import one_line_exit

    source = tmp_path / "source"
    shutil.copytree(tiny_model_dir, source)
    direction = "to-hf"
    if kind == "crafted pickle":
        class Crafted:
            def __reduce__(self):
                return (os.system, ("true",))

        (source / "model_state.pdparams").write_bytes(pickle.dumps({"a": Crafted()}))
    elif kind == "unreadable safetensors":
        (source / "model_state.pdparams").unlink()
        (source / "model.safetensors").write_bytes(b"\x10" + b"\x00" * 7 + b"{not json}")
    elif kind == "config out of range":
        config = json.loads((source / "config.json").read_text())
        (source / "config.json").write_text(json.dumps(dict(config, hidden_size=-4)))
    elif kind == "truncated pdparams":
        (source / "model_state.pdparams").write_bytes((source / "model_state.pdparams").read_bytes()[:100])
    else:
        cli.main(["convert", "to-hf", str(tiny_model_dir), str(source.with_name("hf"))])
        source = source.with_name("hf")
        (source / "model.safetensors").unlink()
        (source / "pytorch_model.bin").write_bytes(b"not a torch file")
        direction = "from-hf"
    line = one_line_exit(capsys, cli.main, ["convert", direction, str(source), str(tmp_path / "out")])
    assert line.startswith("ernie-m convert: error: ") and message in line, line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["export", "to-hf", "from-hf"])
def test_a_failed_export_or_conversion_leaves_the_destination_as_it_was(tiny_model_dir, tmp_path, capsys,
                                                                          monkeypatch, command):
    """Model A written to `out`, then model B (other weights) failing half-way: `out` still holds A alone, byte for
    byte, with the user's own file beside it (the outputs are staged, then moved in whole)."""
    import shutil

    import paddle

    import ernie_m.convert.hf as hf
    from ernie_m import ErnieMModel, ErnieMTokenizer

    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    model = ErnieMModel.from_pretrained(str(other))
    for parameter in model.parameters():
        parameter.set_value(parameter + 0.01)
    model.save_pretrained(str(other))
    sources = [tiny_model_dir, str(other)]
    if command == "from-hf":
        for index, source in enumerate(list(sources)):
            cli.main(["convert", "to-hf", source, str(tmp_path / f"hf{index}")])
            sources[index] = str(tmp_path / f"hf{index}")

    def argv(source):
        return (["export", source, str(tmp_path / "out")] if command == "export" else
                ["convert", command, source, str(tmp_path / "out")])

    cli.main(argv(sources[0]))
    before = {name: (tmp_path / "out" / name).read_bytes() for name in os.listdir(tmp_path / "out")}
    (tmp_path / "out" / "mine.txt").write_text("a file of the user's")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hf, "_copy_tokenizer", disk_full)
    monkeypatch.setattr(ErnieMTokenizer, "save_pretrained", disk_full)
    capsys.readouterr()
    with pytest.raises(SystemExit) as caught:
        cli.main(argv(sources[1]))
    assert caught.value.code == 1 and capsys.readouterr().err.strip().endswith("No space left on device")
    after = {name: (tmp_path / "out" / name).read_bytes() for name in os.listdir(tmp_path / "out")}
    assert after == dict(before, **{"mine.txt": b"a file of the user's"})
    assert not [name for name in os.listdir(tmp_path) if ".tmp" in name]
    paddle.disable_static()


def test_ctrl_c_ends_any_command_in_one_line_with_status_130(tmp_path, capsys, monkeypatch):
    """Interrupted mid-training (here, sentencepiece's training), the command says so in one line: no traceback."""
    import ernie_m.tokenizer_training as tokenizer_training
    from tests.helpers import one_line_exit

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tokenizer_training.spm.SentencePieceTrainer, "train", interrupted)
    (tmp_path / "text.txt").write_text("Some text.\n")
    line = one_line_exit(capsys, cli.main, ["train-tokenizer", "--input", str(tmp_path / "text.txt"),
                                            "--output_dir", str(tmp_path / "out")], status=130)
    assert line == "ernie-m train-tokenizer: interrupted"
