"""The shared fine-tuning loop: layer-wise learning-rate decay, warm-up and linear decay, evaluation per language,
best-checkpoint selection, VisualDL records, data parallel through `paddle.distributed.launch`, AMP on GPU.

A task supplies the model, its training features, and an `evaluate(model) -> {language: score}` function; this
module does the rest, the same way for every benchmark:

    result = fine_tune(model, tokenizer, train_features, collate, evaluate_dev, args)
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import paddle

from ernie_m import parameter_digest
from ernie_m.argtypes import integer_from, number_in
from ernie_m.errors import first_line, reason
from ernie_m.cpu import keep_freed_memory_on_cpu
from ernie_m.pretraining.checkpoints import CheckpointManager
from ernie_m.training.run_directory import truncate_log
from ernie_m.weights import UnsafeCheckpointError
from ernie_m.training import RunLog, amp_dtype, apply_update, atomic_directory, autocast, grad_scaler, step_finite
from ernie_m.training import build_optimizer as build_shared_optimizer

from .metrics import with_average


@dataclass
class TrainingArguments:
    output_dir: str
    learning_rate: float = 5e-5
    layer_decay: float = 0.8  # layer i of L: lr * decay^(L - i); embeddings decay^(L + 1); heads the full lr
    weight_decay: float = 0.0
    warmup: float = 0.1  # a fraction of the steps
    epochs: float = 5
    batch_size: int = 32  # per rank
    eval_batch_size: int = 64
    max_steps: Optional[int] = None  # stops early (tests, smoke runs)
    eval_steps: Optional[int] = None  # evaluate every N steps; default: at the end of each epoch
    logging_steps: int = 20
    seed: int = 42
    amp: Optional[str] = None  # bf16 / fp16 on GPU; ignored on CPU
    adam_epsilon: float = 1e-6
    max_grad_norm: Optional[float] = None
    progress: bool = True  # a progress bar on rank 0
    max_nonfinite_steps: int = 20  # skipped (non-finite) updates in a row that stop the run
    evaluate_only: bool = False  # no training: the model as given is scored and kept as `best`
    resume: bool = False  # continue from output_dir's checkpoint-<step> (written at every evaluation)


class TrainingError(RuntimeError):
    """Fine-tuning cannot go on (one line; the best checkpoint so far is left intact)."""


def add_training_arguments(parser, learning_rate: float, weight_decay: float, epochs: float, batch_size: int,
                           max_length: int) -> None:
    """The options every fine-tuning task shares; the defaults are the task's released recipe (DESIGN §6)."""
    parser.add_argument("--model", required=True, help="a released name (ernie-m-base) or a from_pretrained directory")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--learning_rate", type=number_in(0, 1, low_open=True), default=learning_rate)
    parser.add_argument("--layer_decay", type=number_in(0, 1, low_open=True), default=0.8)
    parser.add_argument("--weight_decay", type=number_in(0, 10), default=weight_decay)
    parser.add_argument("--warmup", type=number_in(0, 1e9), default=0.1, help="a fraction of the steps, or a count")
    parser.add_argument("--epochs", type=number_in(0, 1e6, low_open=True), default=epochs)
    parser.add_argument("--batch_size", type=integer_from(1), default=batch_size, help="per rank")
    parser.add_argument("--max_length", type=integer_from(3), default=max_length)
    parser.add_argument("--max_steps", type=integer_from(1))
    parser.add_argument("--eval_steps", type=integer_from(1))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--amp", choices=["bf16", "fp16"])
    parser.add_argument("--overwrite", action="store_true", help="replace what an earlier run left in --output_dir")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --output_dir from its last checkpoint (written at every evaluation) "
                             "with the same arguments")
    parser.add_argument("--do_eval", action="store_true",
                        help="no training: score --model (a fine-tuned checkpoint) on the dev and test sets and write "
                             "the same results.json")


def training_arguments(args, progress: bool = True) -> TrainingArguments:
    return TrainingArguments(
        output_dir=args.output_dir, learning_rate=args.learning_rate, layer_decay=args.layer_decay,
        weight_decay=args.weight_decay, warmup=args.warmup, epochs=args.epochs, batch_size=args.batch_size,
        max_steps=args.max_steps, eval_steps=args.eval_steps, seed=args.seed, amp=args.amp, progress=progress,
        evaluate_only=getattr(args, "do_eval", False), resume=getattr(args, "resume", False))


def load_model(model_class, name_or_path: str, **kwargs):
    """The model to fine-tune, strictly: a local checkpoint missing encoder weights is refused (one line), not
    trained on from random weights; a wrong shape is PaddleNLP's refusal, in one line."""
    from ernie_m.training.loading import from_pretrained_for_training

    try:
        return from_pretrained_for_training(model_class, name_or_path, **kwargs)
    except (OSError, ValueError, RuntimeError) as error:
        raise TrainingError(f"cannot load {name_or_path}: {reason(error, keywords=('shape',))}") from None


def save_results(output_dir: str, summary: dict) -> dict:
    """`output_dir/results.json`, written by rank 0 only; returns the summary."""
    if paddle.distributed.get_rank() == 0:
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, "results.json"), "w") as handle:
            json.dump(summary, handle, indent=2)
    return summary


def _check_output_dir(args) -> None:
    """An earlier run's results are not replaced unless asked (`--overwrite`): one line, exit status 2, before
    any data is read."""
    directory = getattr(args, "output_dir", None)
    if os.environ.get("PADDLE_TRAINER_ID", "0") != "0":
        return  # rank 0 decides; the others may already see its first files
    if getattr(args, "resume", False) and getattr(args, "overwrite", False):
        print("finetune: --resume continues the run in --output_dir and --overwrite replaces it: pass one",
              file=sys.stderr)
        raise SystemExit(2)
    if not directory or not os.path.isdir(directory) or not os.listdir(directory) or \
            getattr(args, "overwrite", True) or getattr(args, "resume", False):
        return
    print(f"finetune: {directory} holds an earlier run ({', '.join(sorted(os.listdir(directory))[:4])}); pass "
          f"--resume to continue it, --overwrite to replace it, or choose another --output_dir", file=sys.stderr)
    raise SystemExit(2)


def task_main(build_parser, run, shown: Callable[[dict], dict], argv=None) -> None:
    """A task's command line: parse, run, turn bad benchmark data into one line, print the scores on rank 0."""
    from .readers import BenchmarkDataError

    args = build_parser().parse_args(argv)
    _check_output_dir(args)
    keep_freed_memory_on_cpu()  # the task's process is ours: large tensors reuse freed memory, not fresh pages
    try:
        summary = run(args)
    except (BenchmarkDataError, TrainingError) as error:
        raise SystemExit(f"finetune: {error}")
    if paddle.distributed.get_rank() == 0:
        print(json.dumps(shown(summary), indent=1))


def pad_inputs(features: List[dict], pad_id: int) -> Dict[str, np.ndarray]:
    """input_ids padded to the longest feature, the attention mask of the real tokens, and language ids (the
    padding takes the row's language) when the features carry them."""
    width = max(len(f["input_ids"]) for f in features)
    batch = {"input_ids": np.full([len(features), width], pad_id, dtype=np.int64),
             "attention_mask": np.zeros([len(features), width], dtype=np.int64)}
    if "language_ids" in features[0]:
        batch["language_ids"] = np.zeros([len(features), width], dtype=np.int64)
    for row, feature in enumerate(features):
        length = len(feature["input_ids"])
        batch["input_ids"][row, :length] = feature["input_ids"]
        batch["attention_mask"][row, :length] = 1
        if "language_ids" in batch:
            batch["language_ids"][row, :length] = feature["language_ids"]
            batch["language_ids"][row, length:] = feature["language_ids"][0]
    return batch


def build_optimizer(model, args: TrainingArguments, total_steps: int):
    """AdamW with the task's layer-wise decay (DESIGN §6), warm-up and linear decay."""
    return build_shared_optimizer(model, args.learning_rate, total_steps, args.warmup, args.weight_decay,
                                  layer_decay=args.layer_decay, epsilon=args.adam_epsilon,
                                  max_grad_norm=args.max_grad_norm)


def save_model(model, tokenizer, directory: str) -> None:
    """`save_pretrained` of both, appearing under `directory` only once complete."""
    with atomic_directory(directory) as temporary:
        model.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)


def _evaluate_only(model, tokenizer, evaluate, args: TrainingArguments, rank: int) -> dict:
    """`--do_eval`: score the given model on the development sets and keep it as `best`, so that the task's own
    code scores the test sets and writes results.json exactly as after training."""
    model.eval()
    scores = with_average(evaluate(model))
    if rank == 0:
        save_model(model, tokenizer, os.path.join(args.output_dir, "best"))
    if paddle.distributed.get_world_size() > 1:
        paddle.distributed.barrier()
    return {"best": scores, "best_step": 0, "history": [{"step": 0, **scores}], "steps": 0, "seconds": 0.0,
            "arguments": asdict(args)}


# What a resume must find as the run had it: the schedule and the data order follow from these.
RESUME_FIXED = ("learning_rate", "layer_decay", "weight_decay", "warmup", "epochs", "batch_size", "max_steps",
                "eval_steps", "seed", "amp", "adam_epsilon", "max_grad_norm")


def _resume_from(checkpoints: CheckpointManager, model, optimizer, args: TrainingArguments, total_steps: int,
                 world: int) -> dict:
    """Load the latest checkpoint's weights and optimizer into the run; its trainer state, checked against the run."""
    path = checkpoints.latest()
    if path is None:
        raise TrainingError(f"--resume: {args.output_dir} has no checkpoint-<step> to continue from (one is written "
                            f"at every evaluation)")
    try:
        state = checkpoints.load_trainer_state(path)
        saved = state.get("arguments") or {}
        changed = [f"{name} was {saved.get(name)!r} and is {getattr(args, name)!r}" for name in RESUME_FIXED
                   if saved.get(name) != getattr(args, name)]
        if changed:
            raise TrainingError(f"cannot resume from {path}: {changed[0]}; resume with the run's arguments "
                                f"({path}/trainer_state.json)")
        if state.get("world_size") != world or state.get("total_steps") != total_steps:
            raise TrainingError(f"cannot resume from {path}: it was written by {state.get('world_size')} rank(s) for "
                                f"{state.get('total_steps')} steps, this run has {world} for {total_steps} (the "
                                f"ranks or the training data differ)")
        checkpoints.load_model(path, model)
        checkpoints.load_optimizer(path, optimizer, model=model)
    except (OSError, ValueError, KeyError, TypeError, UnsafeCheckpointError) as error:
        raise TrainingError(f"cannot resume from {path}: {first_line(error)}. Remove that directory and pass "
                            f"--overwrite to start over") from None
    return state


def fine_tune(model, tokenizer, train_features: Sequence[dict], collate: Callable[[List[dict]], Dict[str, np.ndarray]],
              evaluate: Callable[[object], Dict[str, float]], args: TrainingArguments) -> dict:
    """Train, evaluating on the development sets; keep the weights with the best average in `output_dir/best`.

    Returns {"best": {language: score, "average": ...}, "best_step": n, "history": [...]}.

    Every evaluation also writes `output_dir/checkpoint-<step>` (weights, optimizer, trainer state; the last one is
    kept), from which `args.resume` continues. The random state is reseeded from the step after each checkpoint, so
    a resumed run takes the same steps as one never stopped.
    """
    world, rank = paddle.distributed.get_world_size(), paddle.distributed.get_rank()
    os.makedirs(args.output_dir, exist_ok=True)
    if args.evaluate_only:
        return _evaluate_only(model, tokenizer, evaluate, args, rank)
    paddle.seed(args.seed)
    sampler = paddle.io.DistributedBatchSampler(train_features, batch_size=args.batch_size, shuffle=True,
                                                num_replicas=world, rank=rank)
    loader = paddle.io.DataLoader(train_features, batch_sampler=sampler, collate_fn=collate, num_workers=0)
    steps_per_epoch = len(loader)
    total_steps = args.max_steps or math.ceil(args.epochs * steps_per_epoch)
    optimizer, schedule = build_optimizer(model, args, total_steps)
    amp = amp_dtype(args.amp)
    scaler = grad_scaler(amp)
    if world > 1:
        paddle.distributed.init_parallel_env()  # gloo on CPU ranks, NCCL on GPUs
    train_model = paddle.DataParallel(model) if world > 1 else model
    checkpoints = CheckpointManager(args.output_dir, keep=1)
    barrier = paddle.distributed.barrier if world > 1 else None
    best, best_step, history, step, nonfinite_run = None, 0, [], 0, 0
    if not args.resume and rank == 0:
        for _, path in checkpoints.checkpoints():  # an earlier run's (--overwrite): never to be resumed into this one
            shutil.rmtree(path)
    if args.resume:
        state = _resume_from(checkpoints, model, optimizer, args, total_steps, world)
        step, best, best_step = int(state["step"]), state["best"], state["best_step"]
        history, nonfinite_run = state["history"], state["nonfinite_run"]
        paddle.seed(args.seed + step)
        truncate_log(os.path.join(args.output_dir, f"log_rank{rank}.jsonl"), step)
        if rank == 0:
            print(f"resumed from {checkpoints.latest()} at step {step}")
    log = RunLog(args.output_dir, rank, total_steps, initial=step, desc="fine-tune", jsonl=f"log_rank{rank}.jsonl",
                 progress=args.progress)
    eval_steps = args.eval_steps or steps_per_epoch
    # Epochs are whole passes over the loader, so the step says where the data stands.
    epoch, skip, started = step // steps_per_epoch, step % steps_per_epoch, time.perf_counter()

    def run_evaluation():
        nonlocal best, best_step
        model.eval()
        scores = with_average(evaluate(model))
        model.train()
        history.append({"step": step, **scores})
        log.scalars(scores, step, prefix="dev/")
        log.record({"step": step, "dev": scores})
        if best is None or scores["average"] > best["average"]:
            best, best_step = scores, step
            if rank == 0:
                save_model(model, tokenizer, os.path.join(args.output_dir, "best"))
        log.message(json.dumps({"step": step, "dev": {k: round(v, 4) for k, v in scores.items()}}))
        checkpoints.save(step, model, optimizer, tokenizer,
                         {"data": [{"epoch": epoch}] * world, "total_steps": total_steps, "best": best,
                          "best_step": best_step, "history": history, "nonfinite_run": nonfinite_run,
                          "arguments": asdict(args)},
                         rank=rank, world_size=world, barrier=barrier)
        paddle.seed(args.seed + step)  # the same random stream after this point, resumed or not

    model.train()
    while step < total_steps:
        sampler.set_epoch(epoch)
        for index, batch in enumerate(loader):
            if index < skip:
                continue  # a resumed epoch: these batches were trained on before the checkpoint
            with autocast(amp):
                loss = train_model(**batch, return_dict=True).loss
            (scaler.scale(loss) if scaler else loss).backward()
            loss_value = float(loss)  # one device synchronisation a step, for the check and the log
            # A non-finite loss or gradient on any rank: every rank skips the update (the fp16 scaler checks its own).
            finite = step_finite(loss_value, model.parameters(), world, check_gradients=scaler is None)
            apply_update(optimizer, scaler, finite)
            nonfinite_run = 0 if finite else nonfinite_run + 1
            if nonfinite_run >= args.max_nonfinite_steps:
                log.close()
                best_dir = os.path.join(args.output_dir, "best")
                raise TrainingError(f"{nonfinite_run} non-finite steps in a row (loss or gradients; steps "
                                    f"{step + 2 - nonfinite_run}-{step + 1}); stopped. The best checkpoint so far is "
                                    f"{best_dir if best is not None else 'none'}; lower --learning_rate or check "
                                    f"the data.")
            schedule.step()
            step += 1
            log.advance(loss=f"{loss_value:.4f}", lr=f"{schedule.get_lr():.2e}")
            if step % args.logging_steps == 0:
                record = {"loss": loss_value, "lr": schedule.get_lr()}
                log.scalars(record, step, prefix="train/")
                log.record({"step": step, **record})
            if step % eval_steps == 0 or step == total_steps:
                run_evaluation()
            if step >= total_steps:
                break
        epoch, skip = epoch + 1, 0
    log.close()
    result = {"best": best, "best_step": best_step, "history": history, "steps": step,
              "seconds": time.perf_counter() - started, "arguments": asdict(args)}
    if rank == 0:
        with open(os.path.join(args.output_dir, "dev_results.json"), "w") as handle:
            json.dump(result, handle, indent=2)
    # Replicas must end with the same weights; each rank records its digest so that a user (and the tests) can check.
    with open(os.path.join(args.output_dir, f"final_rank{rank}.json"), "w") as handle:
        json.dump({"rank": rank, "world_size": world, "final_parameter_sha256": parameter_digest(model)}, handle)
    if world > 1:
        paddle.distributed.barrier()  # rank 0 has written `best`: the others may now load it
    return result
