"""Where the demo's training step spends its time: phases and operator families (a profile, not a benchmark).

    OMP_NUM_THREADS=1 python -m tools.bench.profile_step --output outputs/profile.md

Runs the demo's ERNIE-M arm exactly as `make demo` configures it (pretrain/configs/demo.yaml with the demo's
overrides: model, vocabulary, length, token budget, CAMLM masking, no dropout) on the demo's own corpus and
tokenizer (built into --work_dir as the demo builds them, or reused), through `Pretraining.train_step`, the
function the run loop calls, plus the loop's logging. After --warmup untimed steps it times --steps steps:
- phases, wall clock: data (reading, tokenizing, building the objective's batch), forward and loss, backward,
  optimizer (finiteness check, gradient clipping, AdamW, schedule), logging;
- operators, from Paddle's profiler over the same steps, grouped by family, forward and backward apart; what the
  phases spend outside any operator is Python and framework overhead.
Stage 1's steps (CAMLM and MMLM, drawn as the demo draws them) by default; `--stage 2` profiles stage 2 with BTMLM's
gate open (BTMLM's generation pass is counted in data, where the objective runs it).
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import os
import tempfile
import time
from typing import Dict, List

FAMILIES = [  # (family, pieces of Paddle's operator names, compared without case and underscores), first match wins
    ("matrix products (linear, attention, LM head)", ("matmul", "addmm", "ernie_m_linear", "bmm")),
    ("LayerNorm", ("layer_norm",)),
    ("GELU", ("gelu",)),
    ("cross-entropy and argmax", ("cross_entropy", "argmax")),
    ("attention softmax", ("softmax",)),
    ("embeddings and gathers", ("embedding", "gather", "index")),
    ("reshapes and transposes", ("reshape", "transpose", "unsqueeze", "squeeze", "slice", "concat", "stack")),
    ("optimizer and clipping", ("adamw", "squared_l2", "sqrt", "clip", "isfinite", "isnan", "isinf", "divide",
                                "maximum", "sum")),
    ("other element-wise", ("add", "scale", "multiply", "subtract", "cast", "equal", "full", "mean", "tanh",
                            "dropout", "where", "fill", "assign")),
]


def _plain(name: str) -> str:
    return name.lower().replace("_", "")


def family(op_name: str) -> str:
    plain = _plain(op_name)
    for name, needles in FAMILIES:
        if any(_plain(needle) in plain for needle in needles):
            return name
    return "other operators"


def demo_run(work_dir: str, stage: int):
    """A `Pretraining` run set up as the demo's ERNIE-M arm (seed 1) on the demo's corpus and tokenizer."""
    from ernie_m.pretraining.config import load_config
    from ernie_m.pretraining.trainer import Pretraining
    from tools.demo.corpus import MONOLINGUAL_ONLY_LANGUAGES, PARALLEL_LANGUAGES, build_corpus
    from tools.demo.run import CONFIG, parse_args, pretrain_command
    from ernie_m.tokenizer_training import train_tokenizer

    corpus, tokenizer = os.path.join(work_dir, "corpus"), os.path.join(work_dir, "tokenizer")
    args = parse_args(["--output_dir", work_dir])
    if not os.path.exists(os.path.join(tokenizer, "tokenizer_config.json")):
        manifest = build_corpus(corpus, args.cache_dir, PARALLEL_LANGUAGES, MONOLINGUAL_ONLY_LANGUAGES,
                                seed=args.seed, dev_pairs=args.dev_pairs, test_pairs=args.test_pairs)
        languages = ["en", *manifest["parallel_languages"], *manifest["monolingual_only_languages"]]
        train_tokenizer([os.path.join(corpus, "monolingual", f"{lang}.txt") for lang in languages], tokenizer,
                        vocab_size=args.vocab_size, languages=languages)
    run_dir = tempfile.mkdtemp(prefix="ernie_m_profile_")
    command = pretrain_command("ernie-m", 1, args, corpus, tokenizer, run_dir)
    overrides = command[command.index("--output_dir") + 2:]
    if stage == 2:  # BTMLM from the first step of stage 2, without waiting for the gate
        overrides += ["btmlm.min_camlm_gain=0", "btmlm.min_distinct_share=0"]
    return Pretraining(load_config(CONFIG, overrides), run_dir), args.stage_steps[0] if stage == 2 else 0


class PhaseClock:
    """Wall-clock seconds per phase, accumulated through wrappers around the functions the step calls."""

    def __init__(self):
        self.seconds: Dict[str, float] = collections.defaultdict(float)

    def wrap(self, phase: str, function):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - start
        return timed


@contextlib.contextmanager
def instrumented(run, clock: PhaseClock):
    """Wrap the step's pieces: the streams and objectives (data), the loss (forward), the backward pass, the
    finiteness check and update (optimizer). Restored afterwards."""
    import paddle

    from ernie_m.pretraining import trainer

    saved = {name: getattr(trainer, name) for name in ("masked_lm_loss", "step_finite", "apply_update")}
    trainer.masked_lm_loss = clock.wrap("forward and loss", saved["masked_lm_loss"])
    trainer.step_finite = clock.wrap("optimizer", saved["step_finite"])
    trainer.apply_update = clock.wrap("optimizer", saved["apply_update"])
    backward = paddle.Tensor.backward
    paddle.Tensor.backward = clock.wrap("backward", backward)
    original_objective = run.objective
    run.objective = lambda *a: _timed_objective(original_objective(*a), clock)
    streams = {kind: stream.next_batch for kind, stream in run.streams.items()}
    for kind, stream in run.streams.items():
        stream.next_batch = clock.wrap("data", streams[kind])
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(trainer, name, function)
        paddle.Tensor.backward = backward
        run.objective = original_objective
        for kind, stream in run.streams.items():
            stream.next_batch = streams[kind]


def _timed_objective(objective, clock: PhaseClock):
    class Timed:
        data_kind, length_factor = objective.data_kind, objective.length_factor

        def __call__(self, *args, **kwargs):
            return clock.wrap("data", objective)(*args, **kwargs)

    return Timed()


def profile(work_dir: str, steps: int, warmup: int, stage: int) -> dict:
    import paddle
    import paddle.profiler as profiler

    run, first = demo_run(work_dir, stage)
    run.log.bar.disable = True
    run.model.train()
    if stage == 2:
        run.ready_at["btmlm"] = 0
    step = first
    for _ in range(warmup):
        name, metrics = run.train_step(step)
        run._log_step(step, name, metrics)
        step += 1
    clock = PhaseClock()
    objectives = collections.Counter()
    records: List[tuple] = []

    def on_ready(prof):
        records.extend(_operator_records(prof))

    prof = profiler.Profiler(targets=[profiler.ProfilerTarget.CPU], on_trace_ready=on_ready, timer_only=False)
    _record_native_events(True)
    with instrumented(run, clock):
        started = time.perf_counter()
        prof.start()
        for _ in range(steps):
            name, metrics = run.train_step(step)
            clock.wrap("logging", run._log_step)(step, name, metrics)
            objectives[name] += 1
            step += 1
            prof.step()
        prof.stop()
        wall = time.perf_counter() - started
    _record_native_events(False)
    # The same steps again without the profiler, for the phase times (the profiler's own cost is not in them).
    clock = PhaseClock()
    with instrumented(run, clock):
        started = time.perf_counter()
        for _ in range(steps):
            name, metrics = run.train_step(step)
            clock.wrap("logging", run._log_step)(step, name, metrics)
            step += 1
        unprofiled = time.perf_counter() - started
    run.close()
    by_family = collections.defaultdict(lambda: [0.0, 0.0])
    for op_name, seconds in records:
        backward = "grad" in op_name.lower()
        by_family[family(op_name.replace("_grad", "").replace("GradNode", ""))][1 if backward else 0] += seconds
    phases = dict(clock.seconds)
    phases["other (Python in the step, schedule, seeding)"] = unprofiled - sum(phases.values())
    return {"steps": steps, "objectives": dict(objectives), "step_seconds": unprofiled / steps,
            "profiled_step_seconds": wall / steps, "threads": os.environ.get("OMP_NUM_THREADS"),
            "phases": {k: v / steps for k, v in phases.items()},
            "families": {k: [v[0] / steps, v[1] / steps] for k, v in by_family.items()}}


def _record_native_events(enabled: bool) -> None:
    try:
        from ernie_m.kernels import native
    except ImportError:  # a version without the C++ operators
        return
    native.record_events(enabled)


def _operator_records(prof):
    """(operator name, seconds) summed over the profiled steps, forward and backward operators, as Paddle's own
    operator summary counts them."""
    from paddle.profiler.profiler_statistic import StatisticData

    data = StatisticData(prof.profiler_result.get_data(), prof.profiler_result.get_extra_info())
    summary = data.event_summary
    return [(name, item.cpu_time / 1e9) for name, item in summary.items.items()] + \
        [(name, item.cpu_time / 1e9) for name, item in summary.userdefined_items.items() if name.startswith("ernie_m_")]


def markdown(result: dict) -> str:
    ms = 1e3
    total = result["step_seconds"]
    lines = [f"{result['steps']} steps ({', '.join(f'{n} {k}' for k, n in sorted(result['objectives'].items()))}), "
             f"OMP_NUM_THREADS={result['threads']}: {total * ms:.1f} ms a step "
             f"({result['profiled_step_seconds'] * ms:.1f} ms under the profiler).", "",
             "| phase | ms a step | share |", "|---|---|---|"]
    for phase, seconds in sorted(result["phases"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {phase} | {seconds * ms:.1f} | {seconds / total:.0%} |")
    op_total = sum(f + b for f, b in result["families"].values())
    lines += ["", "| operator family (profiled) | forward ms | backward ms | share of operator time |",
              "|---|---|---|---|"]
    for name, (fwd, bwd) in sorted(result["families"].items(), key=lambda kv: -sum(kv[1])):
        lines.append(f"| {name} | {fwd * ms:.1f} | {bwd * ms:.1f} | {(fwd + bwd) / op_total:.0%} |")
    lines.append(f"| all operators | | | {op_total * ms:.1f} ms of the {result['profiled_step_seconds'] * ms:.1f} ms "
                 f"profiled step |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.profile_step", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", default="outputs/demo", help="the demo's output directory (corpus, tokenizer)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--stage", type=int, choices=(1, 2), default=1)
    parser.add_argument("--output", help="also write the tables to this markdown file")
    args = parser.parse_args(argv)
    from ernie_m.cpu import configure_process, keep_freed_memory

    configure_process()
    keep_freed_memory()  # as the pretraining entry does on a CPU
    from paddlenlp.utils.log import logger

    logger.set_level("ERROR")
    text = markdown(profile(args.work_dir, args.steps, args.warmup, args.stage))
    print(text)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
