"""Speed, side by side, in one run: pretraining steps, MFU, inference and tokenization (a benchmark, not a test).

    OMP_NUM_THREADS=$(nproc) python -m tools.bench --output_dir outputs/bench            # the base shape, ~12 min
    python -m tools.bench --preset ernie-m-mini --vocab_size 8000 --sections tokenizer,inference
    python -m tools.bench --sections data --data_megabytes 1024                             # the data path, 1 GB

Every figure is a median over `--repeats` runs after a warm-up, and every comparison a ratio taken in this run,
on this machine (shared machines are noisy: compare ratios, not absolute times across runs). Writes
results.json, report.md and speed.png into --output_dir. docs/benchmarks.md explains how to read them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

SECTIONS = ("pretraining", "inference", "tokenizer", "data")
DEFAULT_SECTIONS = ("pretraining", "inference", "tokenizer")  # `data` on request: it generates a 1 GiB corpus


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="ernie-m-base",
                        help="a model preset, or `demo`: the demo's model, vocabulary, length, token budget, CAMLM "
                             "masking and threads per job (tools/bench/demo_shape.py); flags given override it")
    parser.add_argument("--vocab_size", type=int)
    parser.add_argument("--length", type=int, help="sequence length of every batch")
    parser.add_argument("--train_batch", type=int, help="pairs (CAMLM) / sentences (BTMLM) a step")
    parser.add_argument("--camlm_mask_prob", type=float, help="CAMLM's masking rate on the predicted side")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS of every variant (default: the environment's, "
                                                    "else the cores; with --preset demo, a demo job's)")
    parser.add_argument("--inference_batches", default="1,32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1,
                        help="pretraining: run every variant this many times over (each in a fresh process), the "
                             "median over all their steps")
    parser.add_argument("--sections", default=",".join(DEFAULT_SECTIONS), help=f"any of {','.join(SECTIONS)}")
    parser.add_argument("--tokenizer_lines", type=int, default=20000)
    parser.add_argument("--tokenizer_vocab", type=int, default=32000)
    parser.add_argument("--data_megabytes", type=float, default=1024, help="size of the generated corpus (data)")
    parser.add_argument("--data_min_piece_bytes", type=int, default=1 << 20,
                        help="data.min_shard_bytes for the data section (small corpora need small pieces)")
    parser.add_argument("--cache_dir", default="outputs/package_cache", help="where the demo caches its packages")
    parser.add_argument("--output_dir", default="outputs/bench")
    parser.add_argument("--shared_process", action="store_true",
                        help="run every variant in this process (smoke tests of the tool: figures not comparable)")
    args = parser.parse_args(argv)
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    args.model_overrides = {}
    shape = dict(model_preset=args.preset, vocab_size=250002, length=128, train_batch=8, camlm_mask_prob=0.15,
                 threads=None)
    if args.preset == "demo":
        from .demo_shape import demo_shape

        shape = demo_shape()
        args.model_overrides = shape.pop("overrides")
    args.model_preset = shape["model_preset"]
    for field in ("vocab_size", "length", "train_batch", "camlm_mask_prob", "threads"):
        if getattr(args, field) is None:
            setattr(args, field, shape[field])
    return args


def main(argv=None) -> None:
    from ernie_m.cpu import configure_process

    configure_process()  # before Paddle loads in this process (ernie_m/cpu.py); `--preset demo` loads it
    args = parse_args(argv)
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count()))
    import ernie_m

    from . import common
    from .report import write_report

    common.SHARED_PROCESS["on"] = args.shared_process
    config = ernie_m.ErnieMConfig.from_preset(args.model_preset, vocab_size=args.vocab_size, **args.model_overrides)
    sections = args.sections.split(",")
    results = {
        "command": "python -m tools.bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": common.machine(),
        "shape": {"preset": args.preset, "model_preset": args.model_preset, "vocab_size": args.vocab_size,
                  "length": args.length, "camlm_mask_prob": args.camlm_mask_prob,
                  "dropout": config.hidden_dropout_prob, "num_languages": config.num_languages,
                  "hidden_size": config.hidden_size, "layers": config.num_hidden_layers,
                  "train_batch": args.train_batch, "inference_batches": args.inference_batches,
                  "repeats": args.repeats, "rounds": args.rounds},
    }
    if "pretraining" in sections or "inference" in sections:
        results["matmul_peak_gflops"] = common.matmul_peak_gflops()
        print(f"matrix-multiply peak: {results['matmul_peak_gflops']}", flush=True)
    peak = results.get("matmul_peak_gflops", {}).get("peak")
    if "pretraining" in sections:
        from . import pretraining

        results["pretraining"] = pretraining.run(config, args.train_batch, args.length, args.repeats, peak,
                                                 args.camlm_mask_prob, args.rounds)
        print(json.dumps(results["pretraining"]["ratios"]), flush=True)
    if "inference" in sections:
        from . import inference

        batches = [int(b) for b in args.inference_batches.split(",")]
        results["inference"] = inference.run(config, args.length, batches, args.repeats, peak)
        print(json.dumps(results["inference"]["ratios"]), flush=True)
    if "tokenizer" in sections:
        from . import tokenizer

        with tempfile.TemporaryDirectory() as work_dir:
            results["tokenizer"] = tokenizer.run(work_dir, args.cache_dir, args.tokenizer_lines, 256, args.repeats,
                                                 args.tokenizer_vocab)
        print(json.dumps(results["tokenizer"]["ratios"]), flush=True)

    if "data" in sections:
        from . import data

        with tempfile.TemporaryDirectory() as work_dir:
            results["data"] = data.run(work_dir, args.data_megabytes, min_piece_bytes=args.data_min_piece_bytes)
        print(json.dumps(results["data"]["ratios"]), flush=True)

    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "results.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    print(write_report(results, args.output_dir))


if __name__ == "__main__":
    main()
