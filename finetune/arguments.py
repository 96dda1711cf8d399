"""The options every fine-tuning task shares, named as PaddleNLP's `TrainingArguments` names them.

The dataclass holds each default once; the command line takes its defaults from it, except the task's released
recipe (learning rate, weight decay, epochs, batch, length), which each task passes in. The names of the first
release (`--batch_size`, `--epochs`, `--overwrite`, `--warmup`) stay as aliases, so the benchmark scripts and
older commands keep working.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from typing import Optional

from ernie_m.argtypes import integer_from, number_in


@dataclass
class FineTuningArguments:
    output_dir: str
    learning_rate: float = 5e-5
    layer_decay: float = 0.8  # layer i of L: lr * decay^(L - i); embeddings decay^(L + 1); heads the full lr
    weight_decay: float = 0.0
    warmup: float = 0.1  # a fraction of the steps below 1, else a step count
    num_train_epochs: float = 5
    per_device_train_batch_size: int = 32
    per_device_eval_batch_size: int = 64
    max_steps: Optional[int] = None  # stops early (tests, smoke runs)
    eval_steps: Optional[int] = None  # evaluate every N steps; default: at the end of each epoch
    logging_steps: int = 20
    seed: int = 42
    amp: Optional[str] = None  # bf16 / fp16 on GPU; ignored on CPU
    adam_epsilon: float = 1e-6
    max_grad_norm: Optional[float] = None
    max_nonfinite_steps: int = 20  # skipped (non-finite) updates in a row that stop the run
    resume: bool = False  # continue from output_dir's checkpoint-<step> (written at every evaluation)
    overwrite_output_dir: bool = False  # delete what an earlier run left in output_dir and start over
    load_best_model_at_end: bool = True  # score and predict with the best dev checkpoint, not the last weights
    progress: bool = True  # a progress bar on rank 0

    @classmethod
    def from_namespace(cls, namespace: argparse.Namespace, **changes) -> "FineTuningArguments":
        """The dataclass from parsed arguments of the same names (the parser below uses them)."""
        values = {f.name: getattr(namespace, f.name) for f in fields(cls) if hasattr(namespace, f.name)}
        return cls(**{**values, **changes})


# What a resume must find as the run had it: the schedule and the data order follow from these.
RESUME_FIXED = ("learning_rate", "layer_decay", "weight_decay", "warmup", "num_train_epochs",
                "per_device_train_batch_size", "max_steps", "eval_steps", "seed", "amp", "adam_epsilon",
                "max_grad_norm")

_DEFAULTS = FineTuningArguments(output_dir="")


def boolean(text: str) -> bool:
    """PaddleNLP's way with booleans: `--flag`, `--flag true`, `--flag false`."""
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_training_arguments(parser: argparse.ArgumentParser, learning_rate: float, weight_decay: float,
                           epochs: float, batch_size: int, max_length: int) -> None:
    """The shared options; the numbers passed in are the task's released recipe (docs/finetuning.md)."""
    add = parser.add_argument
    add("--model", "--model_name_or_path", dest="model", required=True,
        help="a released name (ernie-m-base) or a from_pretrained directory")
    add("--output_dir", required=True)
    add("--do_train", action="store_true", help="train (with none of --do_train/--do_eval/--do_predict: all three)")
    add("--do_eval", action="store_true", help="score the development sets (after training, if --do_train)")
    add("--do_predict", action="store_true",
        help="score the test sets and write test_results.json (label, confidence per row)")
    add("--learning_rate", type=number_in(0, 1, low_open=True), default=learning_rate)
    add("--layer_decay", "--layerwise_decay", dest="layer_decay", type=number_in(0, 1, low_open=True),
        default=_DEFAULTS.layer_decay)
    add("--weight_decay", type=number_in(0, 10), default=weight_decay)
    add("--warmup", "--warmup_ratio", dest="warmup", type=number_in(0, 1e9), default=_DEFAULTS.warmup,
        help="a fraction of the steps, or a count")
    add("--num_train_epochs", "--epochs", dest="num_train_epochs", type=number_in(0, 1e6, low_open=True),
        default=epochs)
    add("--per_device_train_batch_size", "--batch_size", dest="per_device_train_batch_size",
        type=integer_from(1), default=batch_size, help="per rank")
    add("--per_device_eval_batch_size", type=integer_from(1), default=_DEFAULTS.per_device_eval_batch_size)
    add("--max_length", "--max_seq_length", dest="max_length", type=integer_from(3), default=max_length)
    add("--max_steps", type=integer_from(1))
    add("--eval_steps", type=integer_from(1))
    add("--logging_steps", type=integer_from(1), default=_DEFAULTS.logging_steps)
    add("--seed", type=int, default=_DEFAULTS.seed)
    add("--amp", choices=["bf16", "fp16"])
    add("--overwrite_output_dir", "--overwrite", dest="overwrite_output_dir", action="store_true",
        help="delete what an earlier run left in --output_dir and start over")
    add("--resume", action="store_true",
        help="continue the run in --output_dir from its last checkpoint (written at every evaluation) with the same "
             "arguments")
    add("--load_best_model_at_end", type=boolean, nargs="?", const=True, default=_DEFAULTS.load_best_model_at_end,
        help="score and predict with the checkpoint best on dev (default true); false: with the last weights")


def resolve_do_flags(args: argparse.Namespace) -> argparse.Namespace:
    """PaddleNLP's rule for --do_train/--do_eval/--do_predict, with none of them meaning all three."""
    if not (args.do_train or args.do_eval or args.do_predict):
        args.do_train = args.do_eval = args.do_predict = True
    return args
