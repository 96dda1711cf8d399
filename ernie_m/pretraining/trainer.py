"""The pretraining run: setup, resume, one step, evaluation, save. `pretrain/run_pretrain.py` is its command line.

Every step runs one objective for the whole global batch, chosen from the step number (`schedule.objective_at`), so
all ranks agree without communicating. Randomness is derived from (seed, step, rank): masking, BTMLM sampling and
dropout come out the same after a resume, so only the step, the optimizer and the data positions are saved.

    run = Pretraining(load_config("pretrain/configs/smoke.yaml", ["tokenizer=..."]), "out")
    run.train()
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from typing import Dict, Optional

import numpy as np
import paddle

from ..atomic import WRITE_ERRORS
from ..configuration import POSITION_OFFSET, ErnieMConfig
from ..errors import first_line
from ..modeling import ErnieMForPretraining
from ..objectives import REGISTRY, ObjectiveContext, SpecialIds, masked_lm_loss
from ..tokenizer import ErnieMTokenizer
from ..training import (
    RunLog, amp_dtype, apply_update, autocast, build_optimizer, grad_scaler, step_finite, weights_finite,
)
from ..training.loading import from_pretrained_for_training
from ..training.precision import amp_requested, nonfinite_stop_message
from ..training.run_directory import RunDirectory, RunDirectoryError, truncate_log
from ..weights import UnsafeCheckpointError, parameter_digest
from ..training.checkpoints import CheckpointManager
from .config import CONFIG_FILE, ModelSection, PretrainingConfig, branch_conflict, resume_changes
from .corpus import CorpusError, find_monolingual_files, find_parallel_files
from .data import ExampleStream, merge_positions
from .evaluation import HeldOutSet, evaluate_held_out
from .schedule import objective_at, stage_at

__all__ = ["RunError", "Pretraining", "build_model", "build_objective"]

MAX_DRAWS = 100
_FINDERS = {"parallel": ("parallel_dir", find_parallel_files), "monolingual": ("monolingual_dir", find_monolingual_files)}


class RunError(Exception):
    """A run that cannot go on, in one line that says what to do; the last good checkpoint is left intact.
    `status` is the exit status: 2 for a mistake in the command or the configuration, 1 for the run's own failures
    (bad data, a resume that does not fit, a full disk)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def load_tokenizer(name_or_path: str) -> ErnieMTokenizer:
    """The run's tokenizer: a directory, or a released name (downloaded by PaddleNLP); anything else refused
    without PaddleNLP's online lookup."""
    if not os.path.isdir(name_or_path) and name_or_path not in ErnieMTokenizer.pretrained_init_configuration:
        raise RunError(f"tokenizer directory not found: {name_or_path}", status=2)
    try:
        return ErnieMTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise RunError(f"tokenizer {name_or_path}: {first_line(error)}", status=2) from None


# ---- the pieces a run is built from ------------------------------------------------------------------------------

def data_positions(state: dict, path: str) -> list:
    """The trainer state's per-rank data positions (pretraining's own entry: the checkpoint core knows only steps)."""
    data = state.get("data")
    if not isinstance(data, list) or not data or not all(isinstance(rank, dict) for rank in data):
        raise ValueError(f"{path}/trainer_state.json: 'data' must be a list with one object per rank (the data "
                         f"positions)")
    return data


def stale_log_ranks(output_dir: str, world: int) -> list:
    """Ranks at or above `world` with a log in `output_dir`: an earlier run on more ranks left them."""
    found = (re.fullmatch(r"log_rank(\d+)\.jsonl", name) for name in os.listdir(output_dir))
    return sorted(int(match.group(1)) for match in found if match and int(match.group(1)) >= world)


def tokenizer_digest(tokenizer) -> str:
    """SHA-256 over the tokenizer's vocabulary and sentencepiece model: the ids a checkpoint was trained with."""
    digest = hashlib.sha256()
    for path in (tokenizer.vocab_file, tokenizer.sentencepiece_model_file):
        with open(path, "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()


def build_model(model: ModelSection, vocab_size: int, num_languages: int) -> ErnieMForPretraining:
    """From `init_from` (a directory or a released name) or a preset; language embedding sized to the languages
    unless the section turns it off."""
    overrides = dict(model.overrides, num_languages=num_languages if model.language_embedding else 0)
    if model.init_from:  # strictly: a checkpoint missing encoder weights is refused, not trained from random
        return from_pretrained_for_training(ErnieMForPretraining, model.init_from, **overrides)
    return ErnieMForPretraining(ErnieMConfig.from_preset(model.preset, vocab_size=vocab_size, **overrides))


def parallel_languages(directory: Optional[str]) -> set:
    """The languages of a directory of `<src>-<tgt>.tsv` files."""
    if not directory:
        return set()
    return {lang for f in find_parallel_files(directory) for lang in (f.source_language, f.target_language)}


def build_objective(name: str, config: PretrainingConfig, special: SpecialIds, vocab_size: int, max_length: int,
                    language_ids: Dict[str, int]):
    """The registered objective `name`, built from its section of the configuration."""
    context = ObjectiveContext(special, vocab_size, max_length, language_ids,
                               parallel_languages=lambda: parallel_languages(config.data.parallel_dir))
    try:
        return REGISTRY[name].from_options(config.objectives[name], context)
    except ValueError as error:
        raise RunError(first_line(error), status=2) from None


def build_streams(config: PretrainingConfig, tokenizer, language_ids, rank: int, world: int):
    """One stream per data kind the stages' objectives need; missing data is an error before training starts."""
    needed = {name for stage in config.stages for name, weight in stage.objectives.items() if weight > 0}
    data = config.data
    # A pool is tokenized and bucketed together: a few of the largest batches' worth.
    pool_size = data.pool_size or data.bucket_batches * max(stage.batch_size for stage in config.stages)
    streams = {}
    for kind, (directory_key, finder) in _FINDERS.items():
        objectives = sorted(name for name in needed if REGISTRY[name].data_kind == kind)
        if not objectives:
            continue
        directory = getattr(data, directory_key)
        if not directory:
            raise CorpusError(f"objectives {objectives} need data.{directory_key}")
        streams[kind] = ExampleStream(
            finder(directory), tokenizer, language_ids, alpha=data.alpha, seed=config.train.seed * 1000,
            shard=rank, num_shards=world, pool_size=pool_size, num_workers=data.num_workers, shards=data.shards,
            min_piece_bytes=data.min_shard_bytes,
        )
        streams[kind].check_files()
    return streams


def build_held_out(config: PretrainingConfig, tokenizer, language_ids) -> Optional[HeldOutSet]:
    """The held-out pairs of data.eval_parallel_dir (None without one); CAMLM is scored on the pairs whose
    languages both have parallel training data."""
    if not config.data.eval_parallel_dir:
        return None
    return HeldOutSet.from_files(find_parallel_files(config.data.eval_parallel_dir), tokenizer, language_ids,
                                 parallel_languages(config.data.parallel_dir), max_pairs=config.data.eval_max_pairs)


# ---- the run -----------------------------------------------------------------------------------------------------

class Pretraining:
    """One pretraining run into `output_dir`: built (and resumed) on construction, then `train()`.

    `stop_at` ends the run early without changing the learning-rate schedule, whose length is the stages' steps:
    a later resume continues the same schedule.

    `branch_from` starts a new run from another run's checkpoint, exactly where that run stood (weights, optimizer,
    step, data position, gate): the configuration may differ only in the stages that had not begun at that step.
    Two branches of one checkpoint are a controlled comparison of what follows it (the demo's no-BTMLM control).
    """

    def __init__(self, config: PretrainingConfig, output_dir: str, resume: bool = False,
                 stop_at: Optional[int] = None, overwrite: bool = False, branch_from: Optional[str] = None):
        self.config, self.output_dir = config, output_dir
        self.directory, self.streams, self.log = RunDirectory(output_dir), {}, None
        self.objectives: dict = {}  # (name, max_length) -> the objective built for it
        try:
            if resume and branch_from:
                raise RunError("--resume continues this directory's run and --branch_from starts one from another "
                               "run's checkpoint: give one of them", status=2)
            self._setup(resume, stop_at, overwrite, branch_from)
        except OSError as error:  # a read-only or full output directory while setting up
            self.close()
            raise RunError(first_line(error)) from None
        except BaseException:
            self.close()
            raise

    def _setup(self, resume: bool, stop_at: Optional[int], overwrite: bool, branch_from: Optional[str]) -> None:
        config, output_dir = self.config, self.output_dir
        train = config.train
        self.seed = train.seed
        self.total_steps = config.schedule_steps
        self.stop_at = self.total_steps if stop_at is None else stop_at
        if not 0 < self.stop_at <= self.total_steps:
            raise RunError(f"--max_steps {stop_at} is outside the schedule (1-{self.total_steps} steps, the sum of "
                           f"stages.*.steps); change the stages' steps to train longer", status=2)
        self.tokenizer = load_tokenizer(config.tokenizer)  # before fleet.init: a mistake here needs no peers
        languages = config.languages or self.tokenizer.languages
        if len(languages) < 2:
            raise RunError("configure at least two languages (config 'languages' or the tokenizer's)", status=2)
        self._init_distributed()
        self.checkpoints = CheckpointManager(output_dir, keep=train.keep_checkpoints)
        if self.rank == 0:
            try:
                self.directory.claim(resume, overwrite, self.checkpoints.checkpoints)
            except RunDirectoryError as error:
                raise RunError(str(error), status=error.status) from None
        if self.barrier:
            self.barrier()  # the other ranks use the directory once rank 0 owns it
        config.languages = list(languages)  # saved with every checkpoint, as the tokenizer's language map
        self.tokenizer.set_languages(languages)
        self.tokenizer_digest = tokenizer_digest(self.tokenizer)
        self.language_ids = {code: index for index, code in enumerate(languages)}
        try:
            self.streams = build_streams(config, self.tokenizer, self.language_ids, self.rank, self.world)
        except CorpusError as error:
            raise RunError(str(error))
        self.corpus_fingerprint = {kind: stream.fingerprint() for kind, stream in self.streams.items()}
        self._init_evaluation()

        paddle.seed(self.seed)  # identical initial weights on every rank
        try:
            self.model = build_model(config.model, len(self.tokenizer), len(languages))
        except (OSError, ValueError, TypeError) as error:  # a bad preset, override or init_from directory
            raise RunError(f"model: {first_line(error)}", status=2) from None
        positions = self.model.config.max_position_embeddings - POSITION_OFFSET
        for index, stage in enumerate(config.stages):
            if stage.max_length > positions:
                raise RunError(f"stages.{index}.max_length={stage.max_length} is more than the model's {positions} "
                               f"positions (model.max_position_embeddings - {POSITION_OFFSET})", status=2)
        self.model.config.recompute = train.recompute
        self.amp = amp_dtype(train.amp)
        if amp_requested(train.amp) and self.amp is None and self.rank == 0:
            print(f"train.amp={train.amp} ignored: mixed precision needs a GPU; training in float32")
        self.scaler = grad_scaler(self.amp)
        opt = config.optimizer
        self.optimizer, self.schedule = build_optimizer(
            self.model, opt.lr, self.total_steps, opt.warmup_steps, opt.weight_decay, beta1=opt.beta1,
            beta2=opt.beta2, epsilon=opt.epsilon, max_grad_norm=opt.max_grad_norm)
        self.restored_from = branch_from or (self.checkpoints.latest() if resume else None)
        self.start_step = self._restore(self.restored_from, branch=bool(branch_from)) if self.restored_from else 0
        if self.start_step > self.stop_at:
            raise RunError(f"{self.restored_from} is at step {self.start_step}, past --max_steps {self.stop_at}: "
                           f"nothing to train")
        truncate_log(os.path.join(output_dir, f"log_rank{self.rank}.jsonl"), self.start_step)
        if self.rank == 0:  # logs of ranks this run does not have (it resumed on fewer): cut to the same step
            for rank in stale_log_ranks(output_dir, self.world):
                truncate_log(os.path.join(output_dir, f"log_rank{rank}.jsonl"), self.start_step)
        self._wrap_distributed()
        self.nonfinite_total, self.nonfinite_run = 0, 0  # this process's count: a resumed run starts again from 0
        self.log = RunLog(output_dir, self.rank, self.stop_at, self.start_step, desc="pretrain",
                          jsonl=f"log_rank{self.rank}.jsonl")

    # ---- setup ----
    def _init_distributed(self) -> None:
        self.world = paddle.distributed.get_world_size()
        self.sharding = self.config.train.sharding and self.world > 1
        if self.world > 1:
            from paddle.distributed import fleet

            # Data parallel over all ranks, or (train.sharding) optimizer state sharded over them (ZeRO stage 1).
            strategy = fleet.DistributedStrategy()
            strategy.hybrid_configs = {"dp_degree": 1 if self.sharding else self.world, "mp_degree": 1,
                                       "pp_degree": 1, "sharding_degree": self.world if self.sharding else 1}
            fleet.init(is_collective=True, strategy=strategy)
        self.rank = paddle.distributed.get_rank()
        self.barrier = paddle.distributed.barrier if self.world > 1 else None

    def _init_evaluation(self) -> None:
        config = self.config
        try:
            self.held_out = build_held_out(config, self.tokenizer, self.language_ids)
        except CorpusError as error:
            raise RunError(f"data.eval_parallel_dir: {error}")
        # Objectives with a readiness gate, and the step from which each runs (None: not yet; until then its draws
        # go to the stage's other objectives).
        self.gates = {name: gate for name, objective in REGISTRY.items()
                      if (gate := objective.gate(config.objectives[name])) is not None}
        self.ready_at = {name: None if gate.enabled else 0 for name, gate in self.gates.items()}
        for name in (name for name, at in self.ready_at.items() if at is None):
            options = self.gates[name].options
            if self.held_out is None or not self.held_out.parallel or config.train.eval_steps <= 0:
                raise RunError(f"{' / '.join(options)} gate {name} on held-out pairs: set data.eval_parallel_dir "
                               f"(pairs in languages with parallel data) and train.eval_steps > 0", status=2)
            if any({n for n, weight in s.objectives.items() if weight > 0} == {name} for s in config.stages):
                raise RunError(f"a stage with {name} alone cannot wait for {name}'s gate; give it another objective "
                               f"or set {' and '.join(options)} to 0", status=2)
        for stage in config.stages:  # a bad option is refused now, not at the objective's first step
            for name in stage.objectives:
                self.objective(name, stage.max_length)

    def _restore(self, path: str, branch: bool) -> int:
        """Load a checkpoint's whole state (this run's latest on resume, another run's on a branch): its step."""
        verb = "branch" if branch else "resume"
        try:
            state = self.checkpoints.load_trainer_state(path)
            saved = PretrainingConfig.from_saved(path)
            if branch and saved is None:
                raise RunError(f"cannot branch from {path}: it has no {CONFIG_FILE} to compare this run's "
                               f"configuration with")
            if branch:
                conflict, accepted = branch_conflict(saved, self.config, int(state["step"])), []
            else:
                conflict, accepted = resume_changes(saved, self.config) if saved else (None, [])
            if conflict:
                advice = ("change only the stages that begin at or after its step" if branch else
                          f"resume with the saved configuration ({path}/{CONFIG_FILE}) or start a new --output_dir")
                raise RunError(f"cannot {verb} from {path}: {conflict}. {advice[0].upper()}{advice[1:]}")
            if state.get("tokenizer_sha256", self.tokenizer_digest) != self.tokenizer_digest:
                raise RunError(f"cannot {verb} from {path}: the tokenizer's files ({self.config.tokenizer}) differ "
                               f"from the ones the run was trained with (the checkpoint holds those); resume with "
                               f"tokenizer={path} or start a new --output_dir")
            self.checkpoints.load_model(path, self.model)
            if not self.sharding:
                self.checkpoints.load_optimizer(path, self.optimizer, model=self.model)
            positions = data_positions(state, path)
            for kind, saved_files in state.get("corpus", {}).items():
                if kind in self.streams:
                    self.streams[kind].check_fingerprint(saved_files, self.corpus_fingerprint[kind])
            for kind, stream in self.streams.items():  # on any number of ranks (ernie_m.pretraining.data)
                stream.load_state(merge_positions([rank_state[kind] for rank_state in positions], self.rank,
                                                  self.world, self.config.data.num_workers))
        except (OSError, ValueError, KeyError, TypeError, CorpusError, UnsafeCheckpointError) as error:
            # truncated, corrupted, incomplete or crafted files
            detail = first_line(error)
            if isinstance(error, KeyError):
                detail = f"{path}/trainer_state.json has no entry {error} for this run's data"
            advice = ("Branch from a complete checkpoint" if branch else
                      "Remove that directory to resume from the checkpoint before it")
            raise RunError(f"cannot {verb} from {path}: {detail}. {advice}.") from None
        for name in self.ready_at:
            self.ready_at[name] = state.get(f"{name}_ready_at", self.ready_at[name])
        if self.rank == 0:
            for change in accepted:
                print(f"resume: {change}")
            print(f"{'branched' if branch else 'resumed'} from {path} at step {int(state['step'])}")
        return int(state["step"])

    def _wrap_distributed(self) -> None:
        self.train_model = self.model
        if self.world > 1:
            from paddle.distributed import fleet

            self.train_model = fleet.distributed_model(self.model)
            self.optimizer = fleet.distributed_optimizer(self.optimizer)
            if self.sharding and self.start_step:  # each rank owns its shard of the optimizer state
                self.checkpoints.load_optimizer(self.restored_from, self.optimizer, self.rank, self.world,
                                                model=self.model)

    # ---- training ----
    def train(self) -> None:
        try:
            evaluating = self.config.train.eval_steps > 0 and self.held_out is not None
            if evaluating and self.start_step == 0:
                self.evaluate(-1)  # the untrained model: where every curve starts
            self.model.train()
            for step in range(self.start_step, self.stop_at):
                try:
                    name, metrics = self.train_step(step)
                except CorpusError as error:  # a file found unreadable mid-pass (a truncated .gz)
                    raise RunError(f"{error}; training stopped at step {step}. The last complete checkpoint is "
                                   f"{self.checkpoints.latest() or 'none'}") from None
                try:
                    self._log_step(step, name, metrics)
                except WRITE_ERRORS as error:
                    raise RunError(f"could not write the log in {self.output_dir} ({first_line(error)}); training "
                                   f"stopped. The last complete checkpoint is {self.checkpoints.latest() or 'none'}; "
                                   f"free space, then --resume.") from None
                if evaluating and ((step + 1) % self.config.train.eval_steps == 0 or step + 1 == self.stop_at):
                    self.evaluate(step)
                if (step + 1) % self.config.train.save_steps == 0 or step + 1 == self.stop_at:
                    self.save_if_finite(step + 1)
        finally:
            self.close()
        # Replicas must hold identical weights; the digest lets a user (and the tests) check it across ranks.
        self.log.record({"final_parameter_sha256": parameter_digest(self.model)})
        if self.rank == 0:
            for kind, stream in self.streams.items():
                if stream.bad_lines():
                    print(f"skipped bad {kind} lines on rank 0: {dict(stream.bad_lines())}")

    def objective(self, name: str, max_length: int):
        key = (name, max_length)
        if key not in self.objectives:
            self.objectives[key] = build_objective(name, self.config, SpecialIds.from_tokenizer(self.tokenizer),
                                                   len(self.tokenizer), max_length, self.language_ids)
        return self.objectives[key]

    def objective_name(self, step: int) -> str:
        """The step's objective, drawn once among the objectives open at that step: until its gate opens an objective
        (BTMLM) is closed, and its weight goes to the stage's other objectives in proportion to theirs."""
        _, stage = stage_at(self.config.stages, step)
        closed = tuple(name for name, at in self.ready_at.items() if at is None)
        return objective_at(stage, step, self.seed, exclude=closed)

    def train_step(self, step: int):
        """One optimizer step (accumulated micro-batches): (objective name, averaged metrics)."""
        _, stage = stage_at(self.config.stages, step)
        name = self.objective_name(step)
        objective = self.objective(name, stage.max_length)
        stream = self.streams[objective.data_kind]
        accumulate = self.config.train.accumulate_steps
        started = time.perf_counter()
        metrics, tokens, generation_tokens = {}, 0, 0
        for micro in range(accumulate):
            rng = np.random.default_rng([self.seed, step, self.rank, micro])
            paddle.seed(self.seed * 1_000_003 + step * 1009 + self.rank * 17 + micro)  # dropout, same on resume
            for _ in range(MAX_DRAWS):  # every example dropped: draw again (every rank must run a backward)
                examples = stream.next_batch(stage.batch_size, stage.batch_tokens, objective.length_factor,
                                             stage.budget == "real", stage.max_length)
                batch = objective(examples, rng, model=self.model)
                if batch is not None:
                    break
            else:
                raise RunError(f"{MAX_DRAWS} {name} batches in a row had no usable example")
            # Gradients are reduced across ranks once per step, at the last micro-step.
            last = micro == accumulate - 1
            no_sync = not last and hasattr(self.train_model, "no_sync")
            with self.train_model.no_sync() if no_sync else contextlib.nullcontext():
                with autocast(self.amp):
                    loss, micro_metrics = masked_lm_loss(self.train_model, batch)
                scaled = loss / accumulate
                (self.scaler.scale(scaled) if self.scaler else scaled).backward()
            tokens += batch.real_tokens
            generation_tokens += batch.stats.get("generation_tokens", 0)
            for metric, value in micro_metrics.items():
                metrics[metric] = metrics.get(metric, 0.0) + value / accumulate
        # Under fp16 the scaler checks the (scaled) gradients itself and skips overflowing steps.
        finite = step_finite(metrics.get(f"{name}_loss", 0.0), self.model.parameters(), self.world,
                             check_gradients=self.scaler is None)
        self.nonfinite_run = 0 if finite else self.nonfinite_run + 1
        self.nonfinite_total += 0 if finite else 1
        apply_update(self.optimizer, self.scaler, finite)  # non-finite on any rank: every rank skips the update
        self.schedule.step()
        elapsed = time.perf_counter() - started
        if generation_tokens:
            metrics["generation_tokens"] = generation_tokens * self.world
        metrics.update(lr=self.schedule.get_lr(), tokens=tokens * self.world,
                       tokens_per_second=tokens * self.world / elapsed, skipped_nonfinite=self.nonfinite_total)
        return name, metrics

    def _log_step(self, step: int, name: str, metrics: dict) -> None:
        self.log.record({"step": step + 1, "objective": name, **metrics})
        self.log.scalars({f"{name}/{metric}" if metric.startswith(name) else metric: value
                          for metric, value in metrics.items()}, step + 1)
        self.log.advance(objective=name, loss=f"{metrics.get(f'{name}_loss', float('nan')):.3f}",
                         lr=f"{self.schedule.get_lr():.2e}")
        limit = self.config.train.max_nonfinite_steps
        if self.nonfinite_run >= limit:
            raise RunError(nonfinite_stop_message(
                self.nonfinite_run, step + 1, f"train.max_nonfinite_steps={limit}",
                f"The last good checkpoint is {self.checkpoints.latest() or 'none (none was written yet)'}",
                "optimizer.lr"))

    def evaluate(self, step: int) -> dict:
        """Every registered objective's held-out scores after `step` (-1: before training), each objective built at
        the longest stage's length so that every evaluation of the run scores the same rows; opens the gates the
        scores pass. Objectives a run does not train are scored too: they are the baselines of those it does."""
        length = max(stage.max_length for stage in self.config.stages)
        objectives = [self.objective(name, length) for name in REGISTRY]
        scores = evaluate_held_out(self.model, self.held_out, objectives, seed=self.seed, tokenizer=self.tokenizer)
        for name, gate in self.gates.items():
            if self.ready_at[name] is None and gate.ready(scores):
                self.ready_at[name] = step + 1
        self.log.record({"eval_step": step + 1, **scores,
                         **{f"{name}_ready": at is not None for name, at in self.ready_at.items()}})
        self.log.scalars(scores, step + 1, prefix="eval/")
        return scores

    def save_if_finite(self, step: int) -> None:
        """Save, except during a streak of skipped (non-finite) steps: the last checkpoint stays the last good one."""
        if self.nonfinite_run == 0:
            self.save(step)
        elif step == self.stop_at:
            raise RunError(f"the run ended during {self.nonfinite_run} non-finite step(s) in a row, so no checkpoint "
                           f"was written for step {step}. The last good checkpoint is "
                           f"{self.checkpoints.latest() or 'none'}; lower optimizer.lr or check the data before "
                           f"resuming from it.")
        elif self.rank == 0:
            self.log.message(f"checkpoint-{step} not written: its step's update was skipped (non-finite)")

    def save(self, step: int) -> None:
        """`checkpoint-<step>`: every rank's data position, the model, optimizer, tokenizer and configuration."""
        data_state = {kind: stream.state() for kind, stream in self.streams.items()}
        if self.world > 1:
            gathered = []
            paddle.distributed.all_gather_object(gathered, data_state)
        else:
            gathered = [data_state]
        bad = {kind: dict(stream.bad_lines()) for kind, stream in self.streams.items()}
        if not weights_finite(self.model):  # the guarded update should make this impossible; a checkpoint must be good
            raise RunError(f"the weights at step {step} are not finite; checkpoint-{step} was not written. The last "
                           f"good checkpoint is {self.checkpoints.latest() or 'none'}.")
        try:
            self.checkpoints.save(step, self.model, self.optimizer, self.tokenizer,
                                  {"data": gathered, "bad_lines": bad,
                                   **{f"{name}_ready_at": at for name, at in self.ready_at.items()},
                                   "tokenizer_sha256": self.tokenizer_digest, "corpus": self.corpus_fingerprint},
                                  rank=self.rank, world_size=self.world, sharded_optimizer=self.sharding,
                                  barrier=self.barrier, run_config=self.config)
        except WRITE_ERRORS as error:  # a full disk, a lost mount: the unfinished directory is already removed
            raise RunError(f"could not write checkpoint-{step} in {self.output_dir} ({first_line(error)}); training "
                           f"stopped. The last complete checkpoint is {self.checkpoints.latest() or 'none'}; free "
                           f"space, then --resume.") from None

    def close(self) -> None:
        """The progress bar closed first, so that a failure's one line is the last one shown; readers stopped; the
        output directory released."""
        if self.log is not None:
            self.log.close()
        for stream in self.streams.values():
            stream.close()
        self.directory.release()
