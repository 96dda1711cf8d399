"""ERNIE-M pretraining: stages of CAMLM / MMLM / TLM / BTMLM steps, data parallel through fleet, exact resume.

    python pretrain/run_pretrain.py --config pretrain/configs/smoke.yaml --output_dir out
    python -m paddle.distributed.launch --nproc_per_node 8 pretrain/run_pretrain.py --config ... --output_dir ...
    ... --resume                     # continue from the latest checkpoint in --output_dir
    ... train.save_steps=500 optimizer.lr=2e-4   # any config field, dotted, after the flags

Every step runs one objective for the whole global batch, chosen from the step number (`schedule.objective_at`), so
all ranks agree without communicating. Randomness is derived from (seed, step, rank): masking, BTMLM sampling and
dropout come out the same after a resume, so only the step, the optimizer and the data positions are saved.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from typing import Dict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ernie_m  # noqa: E402,F401  (first: it picks MKL's kernels before Paddle loads; see ernie_m/cpu.py)
import numpy as np  # noqa: E402
import paddle  # noqa: E402
import yaml  # noqa: E402
from ernie_m import (  # noqa: E402
    ErnieMConfig, ErnieMForPretraining, ErnieMTokenizer, UnsafeCheckpointError, load_state_dict, parameter_digest,
)
from ernie_m.cpu import keep_freed_memory_on_cpu  # noqa: E402
from ernie_m.distributed import run_entry  # noqa: E402
from ernie_m.objectives import BTMLM, CAMLM, MMLM, TLM, MaskingConfig, SpecialIds, masked_lm_loss  # noqa: E402
from ernie_m.pretraining import (  # noqa: E402
    CorpusError, ExampleStream, Stage, find_monolingual_files, find_parallel_files, objective_at, stage_at,
)
from ernie_m.pretraining.checkpointing import CheckpointManager  # noqa: E402
from ernie_m.pretraining.evaluation import BTMLMGate, HeldOutSet, evaluate_held_out  # noqa: E402

PARALLEL_OBJECTIVES = {"camlm", "tlm"}
MONOLINGUAL_OBJECTIVES = {"mmlm", "btmlm"}
MAX_DRAWS = 100


# ---- configuration --------------------------------------------------------------------------------------------

def parse_value(raw: str):
    """YAML, but "2e-4" is a number (YAML 1.1 reads exponents without a dot as strings)."""
    value = yaml.safe_load(raw)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def apply_override(config: dict, assignment: str) -> None:
    """`a.b.c=value` (a number indexes a list: `stages.0.steps=20`), the value read as YAML."""
    if "=" not in assignment:
        raise SystemExit(f"run_pretrain: override {assignment!r} is not of the form key.path=value")
    path, raw = assignment.split("=", 1)
    node = config
    keys = [int(key) if key.isdigit() else key for key in path.split(".")]
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        if isinstance(node, list) and isinstance(key, int) and key < len(node):
            if last:
                node[key] = parse_value(raw)
            else:
                node = node[key]
        elif isinstance(node, dict) and not isinstance(key, int):
            if last:
                node[key] = parse_value(raw)
            else:
                node = node.setdefault(key, {})
        else:
            raise SystemExit(f"run_pretrain: override {assignment!r}: no such field {key!r} here")


def load_config(args) -> dict:
    if not os.path.isfile(args.config):
        raise SystemExit(f"run_pretrain: config file not found: {args.config}")
    with open(args.config) as handle:
        config = yaml.safe_load(handle) or {}
    for assignment in args.overrides:
        apply_override(config, assignment)
    for section in ("model", "data", "optimizer", "train"):
        config.setdefault(section, {})
    if not config.get("stages"):
        raise SystemExit(f"run_pretrain: {args.config} defines no stages")
    if not config.get("tokenizer"):
        raise SystemExit(f"run_pretrain: {args.config} names no tokenizer directory")
    return config


# ---- the pieces the loop needs ----------------------------------------------------------------------------------

def build_model(model_config: dict, vocab_size: int, num_languages: int) -> ErnieMForPretraining:
    """From `init_from` (a directory or a released name) or a preset; language embedding sized to the languages."""
    overrides = dict(model_config.get("overrides") or {}, num_languages=num_languages)
    if model_config.get("init_from"):
        return ErnieMForPretraining.from_pretrained(model_config["init_from"], **overrides)
    config = ErnieMConfig.from_preset(model_config.get("preset", "ernie-m-base"), vocab_size=vocab_size, **overrides)
    return ErnieMForPretraining(config)


def build_optimizer(model, optimizer_config: dict, total_steps: int):
    from paddlenlp.transformers import LinearDecayWithWarmup

    warmup = optimizer_config.get("warmup_steps", 0.1)
    schedule = LinearDecayWithWarmup(float(optimizer_config.get("lr", 1e-4)), total_steps, warmup)
    # The usual exclusions: no weight decay on biases and LayerNorm parameters.
    decay = {p.name for n, p in model.named_parameters() if not ("bias" in n or "norm" in n)}
    optimizer = paddle.optimizer.AdamW(
        learning_rate=schedule,
        parameters=model.parameters(),
        beta1=float(optimizer_config.get("beta1", 0.9)),
        beta2=float(optimizer_config.get("beta2", 0.98)),
        epsilon=float(optimizer_config.get("epsilon", 1e-6)),
        weight_decay=float(optimizer_config.get("weight_decay", 0.01)),
        apply_decay_param_fun=lambda name: name in decay,
        grad_clip=paddle.nn.ClipGradByGlobalNorm(float(optimizer_config.get("max_grad_norm", 1.0))),
    )
    return optimizer, schedule


def build_streams(config: dict, stages, tokenizer, language_ids, rank: int, world: int) -> Dict[str, ExampleStream]:
    """One stream per data kind the stages need; missing data is an error before training starts."""
    needed = {name for stage in stages for name, weight in stage.objectives.items() if weight > 0}
    data = config["data"]
    # A pool is tokenized and bucketed together: a few of the largest batches' worth.
    pool_size = int(data.get("pool_size") or int(data.get("bucket_batches", 8)) * max(s.batch_size for s in stages))
    streams = {}
    for kind, objectives, directory_key, finder in (
        ("parallel", PARALLEL_OBJECTIVES, "parallel_dir", find_parallel_files),
        ("monolingual", MONOLINGUAL_OBJECTIVES, "monolingual_dir", find_monolingual_files),
    ):
        if not needed & objectives:
            continue
        directory = data.get(directory_key)
        if not directory:
            raise CorpusError(f"objectives {sorted(needed & objectives)} need data.{directory_key}")
        streams[kind] = ExampleStream(
            finder(directory), tokenizer, language_ids, alpha=float(data.get("alpha", 0.3)),
            seed=int(config["train"].get("seed", 42)) * 1000 + rank, shard=rank, num_shards=world,
            pool_size=pool_size, num_workers=int(data.get("num_workers", 0)),
        )
    return streams


def btmlm_target_languages(config: dict, language_ids: Dict[str, int]) -> list:
    """`btmlm.target_languages`, or by default the languages the model learns to produce from parallel data (the
    languages of data.parallel_dir's files); every language when there is no parallel data."""
    codes = config.get("btmlm", {}).get("target_languages")
    if codes is None:
        directory = config["data"].get("parallel_dir")
        codes = sorted({lang for f in find_parallel_files(directory) for lang in (f.source_language,
                                                                                   f.target_language)}
                       if directory else language_ids)
    unknown = [code for code in codes if code not in language_ids]
    if unknown or not codes:
        raise SystemExit(f"run_pretrain: btmlm.target_languages: {unknown or 'empty'} not among the configured "
                         f"languages {sorted(language_ids)}")
    return sorted(language_ids[code] for code in codes)


def camlm_mask_prob(config: dict) -> float:
    return float(config.get("camlm", {}).get("mask_prob", 0.15))


def build_objective(name: str, stage: Stage, tokenizer, language_ids, config: dict):
    special = SpecialIds.from_tokenizer(tokenizer)
    common = dict(special=special, vocab_size=len(tokenizer), max_length=stage.max_length)
    if name == "mmlm":
        return MMLM(**common)
    if name == "tlm":
        return TLM(**common)
    if name == "camlm":
        return CAMLM(**common, masking=MaskingConfig(mask_prob=camlm_mask_prob(config)))
    btmlm = config.get("btmlm", {})
    return BTMLM(**common, target_languages=btmlm_target_languages(config, language_ids),
                 sample=bool(btmlm.get("sample", False)), temperature=float(btmlm.get("temperature", 1.0)))


def build_held_out(config: dict, tokenizer, language_ids):
    """The held-out pairs of data.eval_parallel_dir (None without one); CAMLM is scored on the pairs whose
    languages both have parallel training data."""
    directory = config["data"].get("eval_parallel_dir")
    if not directory:
        return None
    parallel_dir = config["data"].get("parallel_dir")
    trained = ({lang for f in find_parallel_files(parallel_dir) for lang in (f.source_language, f.target_language)}
               if parallel_dir else set())
    return HeldOutSet.from_files(find_parallel_files(directory), tokenizer, language_ids, trained,
                                 max_pairs=int(config["data"].get("eval_max_pairs", 200)))


def amp_settings(requested, rank: int):
    """The autocast dtype for `train.amp` (bf16 / fp16), or None: mixed precision is a GPU path."""
    if requested in (None, False, "none", "fp32"):
        return None
    dtypes = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16"}
    if requested not in dtypes:
        raise SystemExit(f"run_pretrain: train.amp must be bf16, fp16 or null, got {requested!r}")
    if not paddle.is_compiled_with_cuda() or paddle.device.get_device().startswith("cpu"):
        if rank == 0:
            print(f"train.amp={requested} ignored: mixed precision needs a GPU; training in float32")
        return None
    return dtypes[requested]


# ---- the loop ----------------------------------------------------------------------------------------------------

def all_ranks_finite(loss: float, world: int) -> bool:
    """Is the loss finite on every rank? One rank's NaN reaches all of them through the gradient all-reduce, so
    all must skip the update together."""
    finite = math.isfinite(loss)
    if world == 1:
        return finite
    flag = paddle.to_tensor([0 if finite else 1], dtype="int32")
    paddle.distributed.all_reduce(flag, op=paddle.distributed.ReduceOp.MAX)
    return int(flag.item()) == 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML file (see pretrain/configs/)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--max_steps", type=int, help="stop after this many steps (default: all stages)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    parser.add_argument("overrides", nargs="*", help="key.path=value")
    args = parser.parse_args(argv)
    config = load_config(args)
    train = config["train"]
    seed = int(train.get("seed", 42))

    keep_freed_memory_on_cpu()  # each step's 768 MB embedding gradients reuse memory, not fresh pages
    world = paddle.distributed.get_world_size()
    sharding = bool(train.get("sharding", False)) and world > 1
    if world > 1:
        from paddle.distributed import fleet

        # Data parallel over all ranks, or (train.sharding) optimizer state sharded over them (ZeRO stage 1).
        strategy = fleet.DistributedStrategy()
        strategy.hybrid_configs = {"dp_degree": 1 if sharding else world, "mp_degree": 1, "pp_degree": 1,
                                   "sharding_degree": world if sharding else 1}
        fleet.init(is_collective=True, strategy=strategy)
    rank = paddle.distributed.get_rank()
    barrier = paddle.distributed.barrier if world > 1 else None

    stages = [Stage(**stage) for stage in config["stages"]]
    total_steps = args.max_steps or sum(stage.steps for stage in stages)
    tokenizer = ErnieMTokenizer.from_pretrained(config["tokenizer"])
    languages = config.get("languages") or tokenizer.languages
    if len(languages) < 2:
        raise SystemExit("run_pretrain: configure at least two languages (config 'languages' or the tokenizer's)")
    language_ids = {code: index for index, code in enumerate(languages)}
    try:
        streams = build_streams(config, stages, tokenizer, language_ids, rank, world)
    except CorpusError as error:
        raise SystemExit(f"run_pretrain: {error}")

    try:
        held_out = build_held_out(config, tokenizer, language_ids)
    except CorpusError as error:
        raise SystemExit(f"run_pretrain: data.eval_parallel_dir: {error}")
    btmlm_config = config.get("btmlm", {})
    gate = BTMLMGate(float(btmlm_config.get("min_camlm_gain", 0.0)),
                     float(btmlm_config.get("min_distinct_share", 0.0)))
    eval_steps = int(train.get("eval_steps", 0))
    if gate.enabled and (held_out is None or not held_out.parallel or eval_steps <= 0):
        raise SystemExit("run_pretrain: btmlm.min_camlm_gain / btmlm.min_distinct_share gate BTMLM on held-out "
                         "pairs: set data.eval_parallel_dir (pairs in languages with parallel data) and "
                         "train.eval_steps > 0")
    uses_btmlm = any(s.objectives.get("btmlm", 0) > 0 for s in stages)
    if uses_btmlm:
        btmlm_target_languages(config, language_ids)  # a bad list is refused now, not at the first BTMLM step
    if gate.enabled and any(set(s.objectives) == {"btmlm"} for s in stages):
        raise SystemExit("run_pretrain: a stage with BTMLM alone cannot wait for the BTMLM gate; give it another "
                         "objective or set btmlm.min_camlm_gain and btmlm.min_distinct_share to 0")
    # The step from which BTMLM runs; until then its draws go to the stage's other objectives.
    btmlm_ready_at = None if gate.enabled else 0

    paddle.seed(seed)  # identical initial weights on every rank
    model = build_model(config["model"], len(tokenizer), len(languages))
    model.config.recompute = bool(train.get("recompute", False))
    amp = amp_settings(train.get("amp"), rank)
    scaler = paddle.amp.GradScaler(init_loss_scaling=2.0**15) if amp == "float16" else None
    optimizer, schedule = build_optimizer(model, config["optimizer"], total_steps)
    manager = CheckpointManager(args.output_dir, keep=int(train.get("keep_checkpoints", 3)))

    start_step = 0
    if args.resume and manager.latest():
        path = manager.latest()
        try:
            state = manager.load_trainer_state(path)
            if len(state["data"]) != world:
                raise SystemExit(f"run_pretrain: {path} was written by {len(state['data'])} rank(s); this run has "
                                 f"{world}. Resume with the same number of ranks (the data position is per rank)")
            model.set_state_dict(load_state_dict(os.path.join(path, "model_state.pdparams")))
            if not sharding:
                manager.load_optimizer(path, optimizer)
        except (OSError, ValueError, KeyError, UnsafeCheckpointError) as error:  # truncated, corrupted, crafted files
            raise SystemExit(f"run_pretrain: cannot resume from {path}: {str(error).splitlines()[0]}. Remove that "
                             f"directory to resume from the checkpoint before it.") from None
        try:
            for kind, stream in streams.items():
                stream.load_state(state["data"][rank][kind])
        except CorpusError as error:
            raise SystemExit(f"run_pretrain: cannot resume from {path}: {error}")
        start_step = int(state["step"])
        btmlm_ready_at = state.get("btmlm_ready_at", btmlm_ready_at)
        if rank == 0:
            print(f"resumed from {path} at step {start_step}")

    train_model = model
    if world > 1:
        from paddle.distributed import fleet

        train_model = fleet.distributed_model(model)
        optimizer = fleet.distributed_optimizer(optimizer)
        if sharding and start_step:  # each rank owns its shard of the optimizer state
            manager.load_optimizer(manager.latest(), optimizer, rank, world)

    writer = None
    if rank == 0:
        from visualdl import LogWriter

        writer = LogWriter(logdir=os.path.join(args.output_dir, "visualdl"))
    from tqdm import tqdm

    progress = tqdm(total=total_steps, initial=start_step, disable=rank != 0, desc="pretrain", dynamic_ncols=True)
    objectives: dict = {}
    accumulate = int(train.get("accumulate_steps", 1))
    save_steps = int(train.get("save_steps", 1000))
    log_path = os.path.join(args.output_dir, f"log_rank{rank}.jsonl")
    # A non-finite loss skips its update; this many in a row stop the run (the weights stopped moving anyway).
    max_nonfinite = int(train.get("max_nonfinite_steps", 20))
    nonfinite_total, nonfinite_run = 0, 0  # this process's count: a resumed run starts again from 0

    def stop(message: str):
        """End the run with one line (the progress bar closed first, so that the line is the last one shown)."""
        progress.close()
        for stream in streams.values():
            stream.close()
        raise SystemExit(f"run_pretrain: {message}")

    model.train()
    for step in range(start_step, total_steps):
        _, stage = stage_at(stages, step)
        name = objective_at(stage, step, seed)
        if name == "btmlm" and btmlm_ready_at is None:
            name = objective_at(stage, step, seed, exclude=("btmlm",))
        key = (name, stage.max_length)
        if key not in objectives:
            objectives[key] = build_objective(name, stage, tokenizer, language_ids, config)
        objective = objectives[key]
        stream = streams["parallel" if name in PARALLEL_OBJECTIVES else "monolingual"]
        started = time.perf_counter()
        step_metrics, tokens = {}, 0
        for micro in range(accumulate):
            rng = np.random.default_rng([seed, step, rank, micro])
            paddle.seed(seed * 1_000_003 + step * 1009 + rank * 17 + micro)  # dropout, reproducible on resume
            batch = None
            for _ in range(MAX_DRAWS):  # every example dropped: draw again (every rank must run a backward)
                examples = stream.next_batch(stage.batch_size, stage.batch_tokens, objective.length_factor,
                                             stage.budget == "real", stage.max_length)
                batch = objective(examples, rng, model=model)
                if batch is not None:
                    break
            else:
                raise SystemExit(f"run_pretrain: {MAX_DRAWS} {name} batches in a row had no usable example")
            # Gradients are reduced across ranks once per step, at the last micro-step.
            last = micro == accumulate - 1
            sync = contextlib.nullcontext() if last or not hasattr(train_model, "no_sync") else train_model.no_sync()
            with sync:
                with paddle.amp.auto_cast(enable=amp is not None, dtype=amp or "float16", level="O1"):
                    loss, metrics = masked_lm_loss(train_model, batch)
                scaled = loss / accumulate
                (scaler.scale(scaled) if scaler else scaled).backward()
            tokens += batch.real_tokens
            for metric, value in metrics.items():
                step_metrics[metric] = step_metrics.get(metric, 0.0) + value / accumulate
        if not all_ranks_finite(step_metrics.get(f"{name}_loss", 0.0), world):
            optimizer.clear_grad()  # a non-finite loss on any rank: every rank skips the update
            nonfinite_run, nonfinite_total = nonfinite_run + 1, nonfinite_total + 1
        else:
            nonfinite_run = 0
            if scaler is not None:
                scaler.step(optimizer)  # skips the update itself when fp16 gradients overflowed
                scaler.update()
            else:
                optimizer.step()
            optimizer.clear_grad()
        schedule.step()
        elapsed = time.perf_counter() - started
        step_metrics.update(lr=schedule.get_lr(), tokens=tokens * world, tokens_per_second=tokens * world / elapsed,
                            skipped_nonfinite=nonfinite_total)
        with open(log_path, "a") as handle:
            handle.write(json.dumps({"step": step + 1, "objective": name, **step_metrics}) + "\n")
        if writer is not None:
            for metric, value in step_metrics.items():
                writer.add_scalar(f"{name}/{metric}" if metric.startswith(name) else metric, value, step + 1)
        progress.set_postfix(objective=name, loss=f"{step_metrics.get(f'{name}_loss', float('nan')):.3f}",
                             lr=f"{schedule.get_lr():.2e}")
        progress.update(1)
        if nonfinite_run >= max_nonfinite:
            stop(f"{nonfinite_run} non-finite losses in a row (steps {step + 2 - nonfinite_run}-{step + 1}; "
                 f"train.max_nonfinite_steps={max_nonfinite}): stopped without saving. The last good checkpoint is "
                 f"{manager.latest() or 'none (none was written yet)'}; lower optimizer.lr or check the data before "
                 f"resuming from it.")

        if eval_steps > 0 and held_out is not None and ((step + 1) % eval_steps == 0 or step + 1 == total_steps):
            btmlm_key = ("btmlm", stages[-1].max_length)
            if uses_btmlm and btmlm_key not in objectives:
                objectives[btmlm_key] = build_objective("btmlm", stages[-1], tokenizer, language_ids, config)
            scores = evaluate_held_out(model, held_out, SpecialIds.from_tokenizer(tokenizer), len(tokenizer),
                                       stage.max_length, camlm_mask_prob(config),
                                       btmlm=objectives.get(btmlm_key), seed=seed)
            if btmlm_ready_at is None and gate.ready(scores):
                btmlm_ready_at = step + 1
            record = {"eval_step": step + 1, **scores, "btmlm_ready": btmlm_ready_at is not None}
            with open(log_path, "a") as handle:
                handle.write(json.dumps(record) + "\n")
            if writer is not None:
                for metric, value in scores.items():
                    writer.add_scalar(f"eval/{metric}", value, step + 1)

        if (step + 1) % save_steps == 0 or step + 1 == total_steps:
            data_state = {kind: stream.state() for kind, stream in streams.items()}
            if world > 1:
                gathered = []
                paddle.distributed.all_gather_object(gathered, data_state)
            else:
                gathered = [data_state]
            bad = {kind: dict(stream.bad_lines()) for kind, stream in streams.items()}
            try:
                manager.save(step + 1, model, optimizer, tokenizer,
                             {"data": gathered, "bad_lines": bad, "btmlm_ready_at": btmlm_ready_at}, rank=rank,
                             world_size=world, sharded_optimizer=sharding, barrier=barrier)
            except OSError as error:  # a full disk, a lost mount: the unfinished directory is already removed
                stop(f"could not write checkpoint-{step + 1} in {args.output_dir} ({error}); training stopped. The "
                     f"last complete checkpoint is {manager.latest() or 'none'}; free space, then --resume.")
    progress.close()
    for stream in streams.values():
        stream.close()
    # Replicas must hold identical weights; the digest lets a user (and the tests) check it across ranks.
    with open(log_path, "a") as handle:
        handle.write(json.dumps({"final_parameter_sha256": parameter_digest(model)}) + "\n")
    if rank == 0:
        for kind, stream in streams.items():
            if stream.bad_lines():
                print(f"skipped bad {kind} lines on rank 0: {dict(stream.bad_lines())}")
    if writer is not None:
        writer.close()


if __name__ == "__main__":
    run_entry(main)  # a rank of a launched job ends without exit-time teardown (see ernie_m/distributed.py)
