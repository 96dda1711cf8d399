"""`ernie-m`: sentence embeddings, prediction, export, conversion and tokenizer training, from the command line.

    ernie-m embed MODEL texts.txt vectors.npy [--layer 8] [--language de | --language_column 1]
    ernie-m predict CHECKPOINT texts.txt [--pairs pairs.txt] [--output predictions.jsonl]   (classification)
    ernie-m predict CHECKPOINT texts.txt [--output tags.jsonl]                             (token classification)
    ernie-m export CHECKPOINT OUTPUT_DIR
    ernie-m convert to-hf|from-hf SOURCE DESTINATION
    ernie-m convert from-static PARAMS_DIR DESTINATION --config ernie_m_config.json [--tokenizer DIR]
    ernie-m train-tokenizer --input en.txt de.txt --vocab_size 32000 --output_dir my_tokenizer [--languages en de]
    ernie-m {embed,predict,export,convert,train-tokenizer} --help

MODEL / CHECKPOINT: a `from_pretrained` directory (ours or PaddleNLP's) or a released name when online. Bad paths
and wrong checkpoint kinds get one line on stderr and exit status 2. A model with a language embedding needs the
texts' language: `--language de` for a whole file, or `--language_column 1` (2) when each line is
`language<TAB>text` (`text<TAB>language`); the column is read from `--pairs` too.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import List, Optional, Sequence, Tuple

from .architectures import ARCHITECTURES, saved_architecture, with_head
from .argtypes import ArgumentParser, integer_from
from .atomic import atomic_file
from .errors import first_line, reason, unforeseen_error_line
from .cpu import configure_process, keep_freed_memory_on_cpu


class CommandError(Exception):
    """A problem the user can fix: printed as one line, exit status 2."""


def _read_lines(path: str) -> List[str]:
    if not os.path.isfile(path):
        raise CommandError(f"text file not found: {path}")
    lines = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                lines.append(raw.decode("utf-8").rstrip("\r\n"))
            except UnicodeDecodeError as error:
                raise CommandError(f"{path}:{number}: not valid UTF-8 (byte {raw[error.start]:#04x} at column "
                                   f"{error.start + 1})") from None
    if not lines:
        raise CommandError(f"{path} is empty: expected one text a line")
    return lines


def _split_language_column(path: str, lines: List[str], column: int) -> Tuple[List[str], List[str]]:
    """(texts, languages) from lines `language<TAB>text` (column 1) or `text<TAB>language` (column 2)."""
    texts, languages = [], []
    for number, line in enumerate(lines, 1):
        parts = line.split("\t", 1) if column == 1 else line.rsplit("\t", 1)
        if len(parts) != 2 or not parts[column - 1].strip():
            raise CommandError(f"{path}:{number}: --language_column {column} expects "
                               f"{'language<TAB>text' if column == 1 else 'text<TAB>language'}, found no language")
        languages.append(parts[column - 1].strip())
        texts.append(parts[2 - column])
    return texts, languages


def _read_texts(path: str, args) -> Tuple[List[str], Optional[List[str]]]:
    """The file's texts, and their languages when `--language_column` says where they are."""
    lines = _read_lines(path)
    return _split_language_column(path, lines, args.language_column) if args.language_column else (lines, None)


def _language_argument(model, tokenizer, args, languages: Optional[list]):
    """The tokenizer's `language=` for this model: None for a model without a language embedding (it has no use
    for one), else the file's language or the lines' own; refused when missing or unknown to the tokenizer."""
    if model.config.num_languages == 0:
        return None
    language = languages if languages is not None else args.language
    if language is None:
        raise CommandError("this model has a language embedding: give --language, or --language_column when each "
                           "line carries its own")
    codes = [language] if isinstance(language, str) else [c for item in language for c in
                                                           ((item,) if isinstance(item, str) else item)]
    for code in dict.fromkeys(codes):
        try:
            tokenizer.language_id(code)
        except ValueError as error:
            raise CommandError(str(error)) from None
    return language


def _languages_of_batch(language, start: int, size: int):
    """The part of `_language_argument`'s result for texts[start:start + size]: one code serves every batch."""
    return language if language is None or isinstance(language, str) else language[start:start + size]


def _check_output_file(path: Optional[str]) -> None:
    """Before any work: the file's directory exists and is writable (else the result would be lost at the end), and
    the path is not a directory or a device."""
    if path is None:
        return
    if os.path.exists(path) and not os.path.isfile(path):
        raise CommandError(f"output {path} exists and is not a regular file (a directory or a device)")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CommandError(f"output directory does not exist: {directory}")
    if not os.access(directory, os.W_OK):
        raise CommandError(f"output directory is not writable: {directory}")


@contextlib.contextmanager
def _output(path: Optional[str], binary: bool = False):
    """Standard output, or a file that appears under `path` only once complete (a failure mid-write, a full disk,
    leaves an earlier file of that name as it was)."""
    if path is None:
        yield sys.stdout
        return
    with atomic_file(path) as temporary, open(temporary, "wb" if binary else "w",
                                               **({} if binary else {"encoding": "utf-8"})) as handle:
        yield handle


def _architecture(checkpoint: str) -> str:
    """The class a checkpoint directory was saved from (config.json `architectures`)."""
    if not os.path.isdir(checkpoint):
        raise CommandError(f"checkpoint directory not found: {checkpoint}")
    try:
        architecture = saved_architecture(checkpoint)
    except ValueError as error:
        raise CommandError(str(error)) from None
    if architecture is None:
        raise CommandError(f"{checkpoint} has no config.json: not a from_pretrained checkpoint directory")
    if architecture not in ARCHITECTURES:
        raise CommandError(f"{checkpoint} holds a {architecture}, not an ERNIE-M model")
    return architecture


PREDICTING_HEADS = ("sequence_classification", "token_classification")  # labels, and entity tags


def _load(checkpoint: str, architecture: Optional[str] = None):
    import ernie_m
    from ernie_m.configuration import RELEASED_MODELS

    _quiet_paddlenlp()
    if not os.path.isdir(checkpoint) and checkpoint not in RELEASED_MODELS:
        raise CommandError(f"{checkpoint} is neither a checkpoint directory nor a released model "
                           f"({', '.join(RELEASED_MODELS)})")
    # A directory's config.json names its class; a released name is an encoder.
    saved = _architecture(checkpoint) if os.path.isdir(checkpoint) else with_head("encoder").name
    architecture = architecture or saved
    try:
        model = ARCHITECTURES[architecture].model_class.from_pretrained(checkpoint, allow_new_head=False)
        tokenizer = ernie_m.ErnieMTokenizer.from_pretrained(checkpoint)
    except (OSError, ValueError, TypeError, RuntimeError, ernie_m.CheckpointFormatError,
            ernie_m.UnsafeCheckpointError) as error:  # TypeError: a config.json field of a wrong type (dtype);
        # RuntimeError: PaddleNLP's refusal of weights whose shapes differ from config.json's
        raise CommandError(f"cannot load {checkpoint}: {reason(error)}") from None
    model.eval()
    keep_freed_memory_on_cpu()  # the command's process is ours: big activations reuse memory (docs/benchmarks.md)
    return model, tokenizer


def embed(args) -> None:
    import numpy as np

    from ernie_m.embeddings import sentence_embeddings

    texts, languages = _read_texts(args.texts, args)
    _check_output_file(args.output)
    model, tokenizer = _load(args.model, with_head("encoder").name)
    try:
        language = _language_argument(model, tokenizer, args, languages)
        vectors = sentence_embeddings(model, tokenizer, texts, args.layer, language, args.max_length, args.batch_size)
    except ValueError as error:
        raise CommandError(str(error)) from None
    with _output(args.output, binary=True) as handle:
        np.save(handle, vectors)  # a handle: np.save given a name would append .npy to it
    print(f"{vectors.shape[0]} embeddings of size {vectors.shape[1]} written to {args.output}")


def predict(args) -> None:
    import numpy as np
    import paddle

    from ernie_m.configuration import fit_max_length

    architecture = _architecture(args.checkpoint)
    predicting = [with_head(head).name for head in PREDICTING_HEADS]
    if architecture not in predicting:
        raise CommandError(f"{args.checkpoint} is an {architecture} checkpoint; predict needs a fine-tuned "
                           f"{' or '.join(predicting)} (e.g. finetune/ output_dir/best)")
    if ARCHITECTURES[architecture].head == "token_classification":
        return _tag(args)
    texts, languages = _read_texts(args.texts, args)
    pairs, pair_languages = _read_texts(args.pairs, args) if args.pairs else (None, None)
    if pairs is not None and len(pairs) != len(texts):
        raise CommandError(f"{args.pairs} has {len(pairs)} lines, {args.texts} has {len(texts)}")
    if pair_languages is not None:
        languages = list(zip(languages, pair_languages))  # each text of a pair in its own language
    _check_output_file(args.output)
    model, tokenizer = _load(args.checkpoint, architecture)
    language = _language_argument(model, tokenizer, args, languages)
    names = getattr(model.config, "id2label", None) or {}
    max_length = fit_max_length(model.config, args.max_length)
    with paddle.no_grad(), _output(args.output) as out:
        for start in range(0, len(texts), args.batch_size):
            batch_language = _languages_of_batch(language, start, args.batch_size)
            kwargs = {} if batch_language is None else {"language": batch_language}
            batch = tokenizer(texts[start:start + args.batch_size],
                              pairs[start:start + args.batch_size] if pairs else None, max_length=max_length,
                              truncation=True, padding=True, return_attention_mask=True, **kwargs)
            inputs = {k: paddle.to_tensor(np.asarray(batch[k], dtype=np.int64))
                      for k in ("input_ids", "attention_mask", "language_ids") if k in batch}
            probabilities = paddle.nn.functional.softmax(model(**inputs, return_dict=True).logits, -1).numpy()
            for row in probabilities:
                label = int(row.argmax())
                out.write(json.dumps({"label": names.get(label, names.get(str(label), label)),
                                      "label_id": label, "score": float(row[label])}, ensure_ascii=False) + "\n")


def _tag(args) -> None:
    from ernie_m.configuration import fit_max_length
    from ernie_m.tagging import tag_texts

    if args.pairs:
        raise CommandError("--pairs is for sentence-pair classification; a token-classification model tags one text")
    texts, languages = _read_texts(args.texts, args)
    _check_output_file(args.output)
    model, tokenizer = _load(args.checkpoint, with_head("token_classification").name)
    language = _language_argument(model, tokenizer, args, languages)
    with _output(args.output) as out:
        for start in range(0, len(texts), args.batch_size):
            chunk = texts[start:start + args.batch_size]
            for segments in tag_texts(model, tokenizer, chunk, fit_max_length(model.config, args.max_length),
                                      args.batch_size,
                                      languages=_languages_of_batch(language, start, args.batch_size)):
                entities = [{"text": text, "label": label} for text, label in segments if label != "O"]
                out.write(json.dumps({"segments": segments, "entities": entities}, ensure_ascii=False) + "\n")


def export(args) -> None:
    from ernie_m.inference import export as export_static

    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise CommandError(f"output directory {args.output_dir} is a file")
    model, tokenizer = _load(args.checkpoint)
    prefix = export_static(model, args.output_dir, tokenizer)
    print(f"{type(model).__name__} exported to {prefix}.json / {prefix}.pdiparams")


def convert(args) -> None:
    from ernie_m.convert.hf import ConversionError, convert_to_hf, from_hf
    from ernie_m.convert.static import from_static
    from ernie_m.weights import CheckpointFormatError, UnsafeCheckpointError

    if os.path.exists(args.destination) and os.path.realpath(args.destination) == os.path.realpath(args.source):
        raise CommandError(f"the destination {args.destination} is the source: converting in place would overwrite "
                           f"the checkpoint being read; give another directory")
    try:
        if args.direction == "from-static":
            if not os.path.exists(args.source):
                raise CommandError(f"checkpoint not found: {args.source}")
            if not args.config:
                raise CommandError("from-static needs --config (the release's ernie_m_config.json)")
            architecture, skipped = from_static(args.source, args.destination, args.config, args.tokenizer)
            left_out = f"; left out: {', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}" if skipped else ""
            print(f"{architecture} written to {args.destination}{left_out}")
            return
        if not os.path.isdir(args.source):
            raise CommandError(f"checkpoint directory not found: {args.source}")
        if args.direction == "to-hf":
            out, dropped = convert_to_hf(args.source, args.destination)
        else:
            out, dropped = from_hf(args.source, args.destination), []
    except (ConversionError, CheckpointFormatError, UnsafeCheckpointError) as error:
        raise CommandError(first_line(error)) from None
    note = f"; not carried over: {', '.join(dropped)}" if dropped else ""
    print(f"written to {out}{note}")


def train_tokenizer(args) -> None:
    from .tokenizer_training import train_tokenizer as train

    try:
        out = train(args.input, args.output_dir, args.vocab_size, args.character_coverage, args.input_sentence_size,
                    args.hard_vocab_limit, languages=args.languages)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(first_line(error)) from None
    print(f"tokenizer written to {out}")


def parser() -> argparse.ArgumentParser:
    from . import __version__

    top = ArgumentParser(prog="ernie-m", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"ernie-m {__version__}")
    top.add_argument("--verbose", action="store_true",
                     help="keep Paddle's and PaddleNLP's own log lines (off by default: one line of ours per result)")
    commands = top.add_subparsers(dest="command", required=True)

    p = commands.add_parser("embed", help="sentence embeddings of a text file, one a line, to .npy")
    p.add_argument("model", help="model directory or released name")
    p.add_argument("texts", help="UTF-8 text file, one sentence a line")
    p.add_argument("output", help="output .npy file ([lines, hidden] float32)")
    p.add_argument("--layer", type=integer_from(0), help="hidden layer (0 = embeddings; default: two thirds up)")
    _language_options(p)
    p.add_argument("--max_length", type=integer_from(3), default=128)
    p.add_argument("--batch_size", type=integer_from(1), default=32)
    p.set_defaults(run=embed)

    p = commands.add_parser("predict", help="labels from a fine-tuned sequence-classification checkpoint, or "
                                            "entity tags from a token-classification one")
    p.add_argument("checkpoint", help="fine-tuned checkpoint directory")
    p.add_argument("texts", help="UTF-8 text file, one input a line")
    p.add_argument("--pairs", help="second texts, line by line, for sentence-pair tasks (XNLI, PAWS-X)")
    p.add_argument("--output", help="JSON lines file (default: standard output)")
    _language_options(p)
    p.add_argument("--max_length", type=integer_from(3), default=256)
    p.add_argument("--batch_size", type=integer_from(1), default=32)
    p.set_defaults(run=predict)

    p = commands.add_parser("export", help="static graph for Paddle Inference (model.json + model.pdiparams)")
    p.add_argument("checkpoint", help="checkpoint directory (any ERNIE-M model or head)")
    p.add_argument("output_dir")
    p.set_defaults(run=export)

    p = commands.add_parser("convert", help="to or from HF transformers' ErnieM layout; from the original static graph")
    p.add_argument("direction", choices=["to-hf", "from-hf", "from-static"])
    p.add_argument("source", help="checkpoint directory to read (from-static: the release's params directory or a "
                                  "paddle.static.save .pdparams file)")
    p.add_argument("destination", help="directory to write")
    p.add_argument("--config", help="from-static: the release's ernie_m_config.json")
    p.add_argument("--tokenizer", help="from-static: directory with sentencepiece.bpe.model and vocab.txt to copy")
    p.set_defaults(run=convert)

    p = commands.add_parser("train-tokenizer", help="a sentencepiece BPE tokenizer in ERNIE-M's layout, from text")
    p.add_argument("--input", nargs="+", required=True, help="plain text files, one sentence a line")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--vocab_size", type=integer_from(8), default=8000, help="sentencepiece pieces (vocab.txt adds 2)")
    p.add_argument("--character_coverage", type=float, default=0.9995)
    p.add_argument("--input_sentence_size", type=integer_from(1), default=2_000_000)
    p.add_argument("--hard_vocab_limit", action="store_true", help="fail if the text cannot fill the vocabulary")
    p.add_argument("--languages", nargs="*", help="language codes in language-id order")
    p.set_defaults(run=train_tokenizer)
    return top


def _language_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--language", help="the texts' language code, for models with a language embedding")
    group.add_argument("--language_column", type=int, choices=(1, 2),
                       help="each line carries its language: 1 = language<TAB>text, 2 = text<TAB>language")


def quiet_frameworks() -> None:
    """Paddle's C++ logs (Paddle Inference's optimisation passes) and PaddleNLP's INFO lines off: set before Paddle
    loads for the former; PaddleNLP's logger is set when the model loads."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    _QUIET["paddlenlp"] = True


_QUIET = {"paddlenlp": False}


def _quiet_paddlenlp() -> None:
    if _QUIET["paddlenlp"]:
        from paddlenlp.utils.log import logger

        logger.set_level("ERROR")


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parser().parse_args(argv)  # before any heavy import: --help and --version answer at once
    configure_process()  # the command owns its process; before Paddle loads (ernie_m/cpu.py)
    if not args.verbose:
        quiet_frameworks()
    try:
        args.run(args)
    except CommandError as error:
        print(f"ernie-m {args.command}: error: {error}", file=sys.stderr)
        raise SystemExit(2)
    except OSError as error:  # a full disk, a lost mount: the output's earlier version is kept (`_output`)
        print(f"ernie-m {args.command}: error: {error}", file=sys.stderr)
        raise SystemExit(1)
    except KeyboardInterrupt:  # 130, as shells report Ctrl-C; the outputs of embed, predict, export, convert are whole
        print(f"ernie-m {args.command}: interrupted", file=sys.stderr)
        raise SystemExit(130)
    except Exception as error:  # noqa: BLE001  (the command's boundary: one line, the traceback kept in a file)
        print(unforeseen_error_line(f"ernie-m {args.command}", error), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
