"""ERNIE-M pretraining: stages of CAMLM / MMLM / TLM / BTMLM steps, data parallel through fleet, exact resume.

    python pretrain/run_pretrain.py --config pretrain/configs/smoke.yaml --output_dir out
    python -m paddle.distributed.launch --nproc_per_node 8 pretrain/run_pretrain.py --config ... --output_dir ...
    ... --resume                     # continue from the latest checkpoint in --output_dir
    ... --branch_from RUN/checkpoint-400 stages.1.objectives='{camlm: 1}'   # a new run from another's checkpoint
    ... train.save_steps=500 optimizer.lr=2e-4   # any config field, dotted, after the flags

The run itself is `ernie_m.pretraining.trainer.Pretraining`; the fields are `ernie_m.pretraining.config`'s.
"""
from __future__ import annotations

import argparse
import sys

from ernie_m.cpu import configure_process, keep_freed_memory_on_cpu
from ernie_m.distributed import end_with_launcher, run_entry

if __name__ == "__main__":  # before Paddle loads, as a program (importing this module changes nothing):
    end_with_launcher()  # a launcher killed while Paddle loads must not leave this rank running
    configure_process()  # MKL reads its kernel choice once (ernie_m/cpu.py)

from ernie_m.argtypes import ArgumentParser, integer_from  # noqa: E402
from ernie_m.errors import unforeseen_error_line  # noqa: E402
from ernie_m.pretraining.config import ConfigError, load_config  # noqa: E402
from ernie_m.pretraining.trainer import Pretraining, RunError  # noqa: E402


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML file (see pretrain/configs/)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--max_steps", type=integer_from(1),
                        help="stop after this many steps; the schedule keeps the stages' length, so --resume "
                             "continues it (default: all stages)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    parser.add_argument("--branch_from", metavar="CHECKPOINT",
                        help="start this run from another run's checkpoint, exactly where it stood; only the stages "
                             "that begin at or after its step may differ")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete an earlier run's checkpoints in --output_dir and start over")
    parser.add_argument("overrides", nargs="*", help="key.path=value")
    return parser.parse_args(argv)


def usage_error(message: str) -> None:
    """A mistake in the command or the configuration: one line, exit status 2 (as argparse does)."""
    print(f"run_pretrain: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv=None) -> None:
    args = parse_arguments(argv)
    if args.resume and (args.overwrite or args.branch_from):
        usage_error(f"--resume and {'--overwrite' if args.overwrite else '--branch_from'} exclude each other")
    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as error:
        usage_error(str(error))
    keep_freed_memory_on_cpu()  # each step's large gradients reuse memory, not fresh pages (ernie_m/cpu.py)
    try:
        Pretraining(config, args.output_dir, resume=args.resume, stop_at=args.max_steps,
                    overwrite=args.overwrite, branch_from=args.branch_from).train()
    except RunError as error:
        print(f"run_pretrain: {error}", file=sys.stderr)
        raise SystemExit(error.status)
    except Exception as error:  # noqa: BLE001  (the entry's boundary: one line, the traceback kept in a file)
        print(unforeseen_error_line("run_pretrain", error), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    run_entry(main)  # a rank of a launched job ends without exit-time teardown (see ernie_m/distributed.py)
