"""Fine-tuning, the sibling of `ernie_m.pretraining.trainer.Pretraining`: one run of a task head over its training data.

A task supplies the model, its training features, a collate function and `evaluate(model) -> {language: score}`
on its development sets; `FineTuning` does the rest the same way for every task: layer-wise decay, warm-up and
linear decay, evaluation and best-checkpoint selection on dev, a resumable checkpoint at every evaluation, VisualDL
records, data parallel under `paddle.distributed.launch`, AMP on GPU.

    with FineTuning(arguments) as run:          # owns output_dir: a lock, --resume / --overwrite_output_dir
        run.setup(model, tokenizer, train_features, collate, evaluate_dev)
        result = run.train()
        model = run.final_model()               # the best on dev, or the last weights
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import paddle

from ernie_m import parameter_digest
from ernie_m.atomic import WRITE_ERRORS, atomic_file
from ernie_m.errors import first_line, reason
from ernie_m.training import RunLog, amp_dtype, apply_update, atomic_directory, autocast, grad_scaler, step_finite
from ernie_m.training import build_optimizer
from ernie_m.training.checkpoints import CheckpointManager
from ernie_m.training.precision import nonfinite_stop_message
from ernie_m.training.run_directory import RunDirectory, RunDirectoryError, truncate_log
from ernie_m.weights import UnsafeCheckpointError

from .arguments import RESUME_FIXED, FineTuningArguments
from .metrics import with_average

# What a finished fine-tuning run leaves besides its checkpoints: each marks an earlier run in output_dir.
RUN_OUTPUTS = ("best", "results.json", "dev_results.json", "test_results.json", "log_rank*.jsonl",
               "final_rank*.json")


class TrainingError(RuntimeError):
    """Fine-tuning cannot go on (one line; the best checkpoint so far is left intact). Exit status 1."""

    status = 1


class SetupError(TrainingError):
    """The command, its files or its output directory are not usable as given (one line). Exit status 2."""

    status = 2


def load_model(model_class, name_or_path: str, **kwargs):
    """The model to fine-tune, strictly: a local checkpoint missing encoder weights is refused (one line), not
    trained on from random weights; a wrong shape is PaddleNLP's refusal, in one line."""
    from ernie_m.training.loading import from_pretrained_for_training

    try:
        return from_pretrained_for_training(model_class, name_or_path, **kwargs)
    except (OSError, ValueError, RuntimeError) as error:
        raise SetupError(f"cannot load {name_or_path}: {reason(error, keywords=('shape',))}") from None


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


def save_model(model, tokenizer, directory: str) -> None:
    """`save_pretrained` of both, appearing under `directory` only once complete."""
    with atomic_directory(directory) as temporary:
        model.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)


class FineTuning:
    """One fine-tuning run in `arguments.output_dir`.

    Every evaluation writes `checkpoint-<step>` (weights, optimizer, trainer state; the last one kept), from which
    `resume` continues; the random state is reseeded from the step after each one, so a resumed run takes the same
    steps as one never stopped. The weights best on dev are kept in `best/`.
    """

    def __init__(self, arguments: FineTuningArguments):
        self.args = arguments
        self.world, self.rank = paddle.distributed.get_world_size(), paddle.distributed.get_rank()
        self.directory = RunDirectory(arguments.output_dir, RUN_OUTPUTS, overwrite_flag="--overwrite_output_dir")
        if self.world > 1:
            paddle.distributed.init_parallel_env()  # gloo on CPU ranks, NCCL on GPUs
        self.barrier = paddle.distributed.barrier if self.world > 1 else None
        self.checkpoints = CheckpointManager(arguments.output_dir, keep=1)
        if arguments.resume and arguments.overwrite_output_dir:
            raise SetupError("--resume continues the run in --output_dir and --overwrite_output_dir replaces it: "
                             "pass one")
        if self.rank == 0:
            try:
                self.directory.claim(arguments.resume, arguments.overwrite_output_dir, self.checkpoints.checkpoints)
            except RunDirectoryError as error:
                raise (SetupError if error.status == 2 else TrainingError)(str(error)) from None
        if self.barrier:
            self.barrier()  # the other ranks use the directory once rank 0 owns it
        self.log: Optional[RunLog] = None
        self.model = None
        self.best, self.best_step, self.history, self.step, self.nonfinite_run = None, 0, [], 0, 0

    def __enter__(self) -> "FineTuning":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """The progress bar closed first, so that a failure's one line is the last one shown; the directory freed."""
        if self.log is not None:
            self.log.close()
        self.directory.release()

    # ---- setup ----
    def setup(self, model, tokenizer, train_features: Sequence[dict], collate: Callable[[List[dict]], dict],
              evaluate: Callable[[object], Dict[str, float]]) -> None:
        """The task's model and data; with `resume`, the latest checkpoint's state."""
        args = self.args
        self.model, self.tokenizer, self.collate, self.evaluate_dev = model, tokenizer, collate, evaluate
        self.train_features = train_features
        if not train_features:
            return  # nothing to train: the model is scored as given
        paddle.seed(args.seed)
        self.sampler = paddle.io.DistributedBatchSampler(
            train_features, batch_size=args.per_device_train_batch_size, shuffle=True, num_replicas=self.world,
            rank=self.rank)
        self.loader = paddle.io.DataLoader(train_features, batch_sampler=self.sampler, collate_fn=collate,
                                           num_workers=0)
        self.steps_per_epoch = len(self.loader)
        self.total_steps = args.max_steps or math.ceil(args.num_train_epochs * self.steps_per_epoch)
        self.optimizer, self.schedule = build_optimizer(
            model, args.learning_rate, self.total_steps, args.warmup, args.weight_decay,
            layer_decay=args.layer_decay, epsilon=args.adam_epsilon, max_grad_norm=args.max_grad_norm)
        self.amp = amp_dtype(args.amp)
        self.scaler = grad_scaler(self.amp)
        self.train_model = paddle.DataParallel(model) if self.world > 1 else model
        if args.resume:
            self._resume()
        self.log = RunLog(args.output_dir, self.rank, self.total_steps, initial=self.step, desc="fine-tune",
                          jsonl=f"log_rank{self.rank}.jsonl", progress=args.progress)

    def _resume(self) -> None:
        """The latest checkpoint's weights, optimizer and trainer state, checked against this run."""
        path = self.checkpoints.latest()
        if path is None:
            raise SetupError(f"--resume: {self.args.output_dir} has no checkpoint-<step> to continue from (one is "
                             f"written at every evaluation)")
        try:
            state = self.checkpoints.load_trainer_state(path)
            self._check_resumable(state, path)
            self.checkpoints.load_model(path, self.model)
            self.checkpoints.load_optimizer(path, self.optimizer, model=self.model)
            self.step, self.best, self.best_step = int(state["step"]), state["best"], state["best_step"]
            self.history, self.nonfinite_run = state["history"], state["nonfinite_run"]
        except (OSError, ValueError, KeyError, TypeError, UnsafeCheckpointError) as error:
            raise SetupError(f"cannot resume from {path}: {first_line(error)}. Remove that directory and pass "
                             f"--overwrite_output_dir to start over") from None
        paddle.seed(self.args.seed + self.step)
        truncate_log(os.path.join(self.args.output_dir, f"log_rank{self.rank}.jsonl"), self.step)
        if self.rank == 0:
            print(f"resumed from {path} at step {self.step}")

    def _check_resumable(self, state: dict, path: str) -> None:
        saved = state.get("arguments") or {}
        changed = [f"{name} was {saved.get(name)!r} and is {getattr(self.args, name)!r}" for name in RESUME_FIXED
                   if saved.get(name) != getattr(self.args, name)]
        if changed:
            raise SetupError(f"cannot resume from {path}: {changed[0]}; resume with the run's arguments "
                             f"({path}/trainer_state.json)")
        if state.get("world_size") != self.world or state.get("total_steps") != self.total_steps:
            raise SetupError(f"cannot resume from {path}: it was written by {state.get('world_size')} rank(s) for "
                             f"{state.get('total_steps')} steps, this run has {self.world} for {self.total_steps} "
                             f"(the ranks or the training data differ)")

    # ---- the run ----
    def train(self) -> dict:
        """Train to the last step, evaluating every `eval_steps` (default: each epoch); the history and the best."""
        args, started = self.args, time.perf_counter()
        if not self.train_features:
            raise SetupError("no training examples: give a training file with data rows")
        self.model.train()
        # Epochs are whole passes over the loader, so the step says where the data stands.
        epoch, skip = divmod(self.step, self.steps_per_epoch)
        eval_steps = args.eval_steps or self.steps_per_epoch
        while self.step < self.total_steps:
            self.sampler.set_epoch(epoch)
            for index, batch in enumerate(self.loader):
                if index < skip:
                    continue  # a resumed epoch: these batches were trained on before the checkpoint
                self._train_step(batch)
                if self.step % eval_steps == 0 or self.step == self.total_steps:
                    self.evaluate()
                    self.save()
                if self.step >= self.total_steps:
                    break
            epoch, skip = epoch + 1, 0
        self.log.close()
        return self._finish(time.perf_counter() - started)

    def _train_step(self, batch: dict) -> None:
        with autocast(self.amp):
            loss = self.train_model(**batch, return_dict=True).loss
        (self.scaler.scale(loss) if self.scaler else loss).backward()
        loss_value = float(loss)  # one device synchronisation a step, for the check and the log
        # A non-finite loss or gradient on any rank: every rank skips the update (the fp16 scaler checks its own).
        finite = step_finite(loss_value, self.model.parameters(), self.world, check_gradients=self.scaler is None)
        apply_update(self.optimizer, self.scaler, finite)
        self.nonfinite_run = 0 if finite else self.nonfinite_run + 1
        if self.nonfinite_run >= self.args.max_nonfinite_steps:
            best = os.path.join(self.args.output_dir, "best") if self.best is not None else "none"
            raise TrainingError(nonfinite_stop_message(
                self.nonfinite_run, self.step + 1, f"max_nonfinite_steps={self.args.max_nonfinite_steps}",
                f"The best checkpoint so far is {best}", "--learning_rate"))
        self.schedule.step()
        self.step += 1
        self.log.advance(loss=f"{loss_value:.4f}", lr=f"{self.schedule.get_lr():.2e}")
        if self.step % self.args.logging_steps == 0:
            record = {"loss": loss_value, "lr": self.schedule.get_lr()}
            self.log.scalars(record, self.step, prefix="train/")
            self.log.record({"step": self.step, **record})

    def evaluate(self) -> dict:
        """Score the development sets now; the best weights so far go to `best/`."""
        self.model.eval()
        scores = with_average(self.evaluate_dev(self.model))
        self.model.train()
        self.history.append({"step": self.step, **scores})
        self.log.scalars(scores, self.step, prefix="dev/")
        self.log.record({"step": self.step, "dev": scores})
        if self.best is None or scores["average"] > self.best["average"]:
            self.best, self.best_step = scores, self.step
            if self.rank == 0:
                save_model(self.model, self.tokenizer, os.path.join(self.args.output_dir, "best"))
        self.log.message(json.dumps({"step": self.step, "dev": {k: round(v, 4) for k, v in scores.items()}}))
        return scores

    def save(self) -> None:
        """`checkpoint-<step>`: weights, optimizer and the loop's own state (no data positions: the step is one)."""
        state = {"total_steps": self.total_steps, "best": self.best, "best_step": self.best_step,
                 "history": self.history, "nonfinite_run": self.nonfinite_run, "arguments": asdict(self.args)}
        try:
            self.checkpoints.save(self.step, self.model, self.optimizer, self.tokenizer, state, rank=self.rank,
                                  world_size=self.world, barrier=self.barrier)
        except WRITE_ERRORS as error:
            raise TrainingError(f"could not write checkpoint-{self.step} in {self.args.output_dir} "
                                f"({first_line(error)}); training stopped. The last complete checkpoint is "
                                f"{self.checkpoints.latest() or 'none'}; free space, then --resume.") from None
        paddle.seed(self.args.seed + self.step)  # the same random stream after this point, resumed or not

    def _finish(self, seconds: float) -> dict:
        args = self.args
        result = {"best": self.best, "best_step": self.best_step, "history": self.history, "steps": self.step,
                  "seconds": seconds, "arguments": asdict(args)}
        if self.rank == 0:
            with atomic_file(os.path.join(args.output_dir, "dev_results.json")) as temporary, \
                    open(temporary, "w") as handle:
                json.dump(result, handle, indent=2)
        # Replicas must end with the same weights; each rank records its digest so that a user (and the tests) can
        # check.
        with open(os.path.join(args.output_dir, f"final_rank{self.rank}.json"), "w") as handle:
            json.dump({"rank": self.rank, "world_size": self.world,
                       "final_parameter_sha256": parameter_digest(self.model)}, handle)
        if self.barrier:
            self.barrier()  # rank 0 has written `best`: the others may now load it
        return result

    def final_model(self, model_class):
        """The model to score and predict with: `best/` when `load_best_model_at_end` and training kept one, else
        the weights in memory (the last step's, or the given model's when nothing was trained)."""
        best = os.path.join(self.args.output_dir, "best")
        if self.args.load_best_model_at_end and self.best is not None and os.path.isdir(best):
            return model_class.from_pretrained(best, allow_new_head=False)
        return self.model


def interrupted_message(output_dir: str) -> str:
    """What a Ctrl-C leaves in `output_dir`: the checkpoint to --resume from, or that there is none yet."""
    latest = CheckpointManager(output_dir).latest() if os.path.isdir(output_dir) else None
    if latest is None:
        return ("interrupted before the first checkpoint (one is written at every evaluation, --eval_steps); "
                "nothing to resume from")
    return f"interrupted; rerun the same command with --resume to continue from {latest}"
