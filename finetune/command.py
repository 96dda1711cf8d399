"""What every task's command line shares: parse, run the asked stages, turn failures into one line, print scores.

Exit status: 0 done; 2 for a mistake in the command, its files or its output directory (as argparse does); 1 when
training cannot go on (the best checkpoint so far is kept); 130 for Ctrl-C, with the checkpoint to resume from.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Callable, Optional, Tuple

import paddle

from ernie_m.atomic import atomic_file
from ernie_m.cpu import keep_freed_memory_on_cpu
from ernie_m.errors import unforeseen_error_line

from .arguments import FineTuningArguments, resolve_do_flags
from .readers import BenchmarkDataError
from .trainer import FineTuning, SetupError, TrainingError, interrupted_message

INTERRUPTED = 130  # what shells and paddle.distributed.launch read as "stopped by Ctrl-C"


def save_results(output_dir: str, summary: dict, name: str = "results.json") -> dict:
    """`output_dir/<name>`, written by rank 0 only; returns the summary."""
    if paddle.distributed.get_rank() == 0:
        os.makedirs(output_dir, exist_ok=True)
        with atomic_file(os.path.join(output_dir, name)) as temporary, open(temporary, "w") as handle:
            json.dump(summary, handle, indent=2)
    return summary


def train_and_select(run: FineTuning, args, model_class, model, tokenizer, train_features, collate,
                     evaluate_dev) -> Tuple[object, Optional[dict]]:
    """--do_train (if asked) on the run, then the model to score: (model, training result or None)."""
    run.setup(model, tokenizer, train_features if args.do_train else [], collate, evaluate_dev)
    result = run.train() if args.do_train else None
    return run.final_model(model_class), result


def dev_scores(args, result: Optional[dict], model, evaluate_dev) -> dict:
    """--do_eval's scores: the kept checkpoint's, known from training when it chose on them, else computed now."""
    from .metrics import with_average

    if result is not None and args.load_best_model_at_end and result["best"] is not None:
        return result["best"]
    model.eval()
    return with_average(evaluate_dev(model))


def check_languages(tokenizer, codes) -> None:
    """A language id for every code the data uses, or one line naming the codes and the ones the model knows."""
    unknown = sorted(set(codes) - set(tokenizer.languages))
    if unknown:
        raise SetupError(f"the data's language(s) {unknown} have no language id in this model; its codes are "
                         f"{' '.join(tokenizer.languages)}")


def fine_tuning_run(args, progress: bool = True) -> FineTuning:
    """The run that owns `args.output_dir` (claimed before any data is read)."""
    resolve_do_flags(args)
    return FineTuning(FineTuningArguments.from_namespace(args, progress=progress))


def _fail(status: int, message: str) -> None:
    print(f"finetune: {message}", file=sys.stderr)
    raise SystemExit(status)


def task_main(build_parser, run, shown: Callable[[dict], dict], argv=None) -> None:
    """A task's command line: parse, run, one line for any failure, the scores on rank 0."""
    args = build_parser().parse_args(argv)
    keep_freed_memory_on_cpu()  # the task's process is ours: large tensors reuse freed memory, not fresh pages
    try:
        summary = run(args)
    except BenchmarkDataError as error:
        _fail(2, str(error))
    except TrainingError as error:
        _fail(error.status, str(error))
    except OSError as error:  # a full disk or a lost mount while writing results: best/ and checkpoints stay
        _fail(1, f"{error}; the checkpoints in {args.output_dir} are kept")
    except KeyboardInterrupt:
        # A training task (it has --do_train) names the checkpoint to resume from, or that there is none yet.
        _fail(INTERRUPTED, interrupted_message(args.output_dir) if hasattr(args, "do_train") else "interrupted")
    except Exception as error:  # noqa: BLE001  (the entry's boundary: one line, the traceback kept in a file)
        print(unforeseen_error_line("finetune", error), file=sys.stderr)
        raise SystemExit(1)
    if paddle.distributed.get_rank() == 0:
        print(json.dumps(shown(summary), indent=1))
