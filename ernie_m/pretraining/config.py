"""The pretraining configuration, typed: every field, its default and its valid range live here and nowhere else.

A run's configuration comes from a YAML (or JSON) file plus dotted overrides (`optimizer.lr=2e-4`,
`stages.0.steps=20`). Unknown keys are refused with the closest valid name, values are converted and range-checked
once, and the result is saved with every checkpoint (`pretraining_config.json`). On resume the saved
configuration decides what must not change mid-run (see `FROZEN_ON_RESUME`).
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import inspect
import json
import math
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

import yaml

from ..errors import first_line
from ..objectives import REGISTRY, ObjectiveOptions
from ..training.precision import is_amp_setting
from .schedule import Stage

__all__ = ["ConfigError", "ModelSection", "DataSection", "OptimizerSection", "TrainSection", "PretrainingConfig",
           "load_config", "parse_value", "CONFIG_FILE", "branch_conflict"]

CONFIG_FILE = "pretraining_config.json"


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the field."""


def _check(condition: bool, path: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{path}: {message}")


@dataclass
class ModelSection:
    preset: str = "ernie-m-base"
    init_from: Optional[str] = None  # a from_pretrained directory or released name; wins over preset
    overrides: Dict[str, Any] = field(default_factory=dict)  # ErnieMConfig fields
    # One embedding row per language (DESIGN §9): how BTMLM names the language to generate. False keeps the
    # released architecture, which PaddleNLP's and HF's ErnieM classes run as trained.
    language_embedding: bool = True

    def validate(self, path: str) -> None:
        from ..configuration import ErnieMConfig

        fields = [name for name in inspect.signature(ErnieMConfig.__init__).parameters
                  if name not in ("self", "kwargs")]
        for key in self.overrides:
            if key not in fields:  # ErnieMConfig would keep an unknown keyword as an unused attribute
                close = difflib.get_close_matches(str(key), fields, n=1)
                hint = f"; did you mean {close[0]}?" if close else f"; valid: {', '.join(fields)}"
                raise ConfigError(f"{path}.overrides.{key}: not an ErnieMConfig field{hint}")


@dataclass
class DataSection:
    parallel_dir: Optional[str] = None  # <src>-<tgt>.tsv files (CAMLM, TLM)
    monolingual_dir: Optional[str] = None  # <lang>.txt files (MMLM, BTMLM)
    eval_parallel_dir: Optional[str] = None  # held-out pairs: evaluation and the BTMLM gate
    eval_max_pairs: int = 200
    alpha: float = 0.3  # language sampling exponent
    bucket_batches: int = 8  # a pool of this many of the largest batches is bucketed together
    pool_size: Optional[int] = None  # or the pool's size in examples
    num_workers: int = 0  # reader processes (0: in the training process)
    # The corpus is read through this many virtual shards, whatever the number of ranks x workers (at most this
    # many); the data position is kept per shard, so a run resumes on another number of ranks (DESIGN §10).
    shards: int = 64
    min_shard_bytes: int = 1 << 20  # a source is cut into byte ranges no smaller than this

    def validate(self, path: str) -> None:
        _check(0 < self.alpha <= 1, f"{path}.alpha", f"must be in (0, 1], got {self.alpha}")
        _check(self.eval_max_pairs > 0, f"{path}.eval_max_pairs", f"must be positive, got {self.eval_max_pairs}")
        _check(self.bucket_batches > 0, f"{path}.bucket_batches", f"must be positive, got {self.bucket_batches}")
        _check(self.pool_size is None or 0 < self.pool_size <= 10_000_000, f"{path}.pool_size",
               "must be in [1, 10000000] (examples tokenized together)")
        _check(self.bucket_batches <= 1024, f"{path}.bucket_batches", f"must be at most 1024, got {self.bucket_batches}")
        _check(0 <= self.num_workers <= 256, f"{path}.num_workers", f"must be in [0, 256], got {self.num_workers}")
        _check(1 <= self.shards <= 65536, f"{path}.shards", f"must be in [1, 65536], got {self.shards}")
        _check(self.min_shard_bytes >= 1, f"{path}.min_shard_bytes", f"must be at least 1, got {self.min_shard_bytes}")


@dataclass
class OptimizerSection:
    lr: float = 1e-4
    warmup_steps: float = 0.1  # a fraction of the schedule when below 1, else a step count
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.98
    epsilon: float = 1e-6
    max_grad_norm: float = 1.0

    def validate(self, path: str) -> None:
        _check(self.lr > 0, f"{path}.lr", f"must be positive, got {self.lr}")
        _check(self.warmup_steps >= 0, f"{path}.warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        _check(self.weight_decay >= 0, f"{path}.weight_decay", f"must be >= 0, got {self.weight_decay}")
        for name in ("beta1", "beta2"):
            _check(0 <= getattr(self, name) < 1, f"{path}.{name}", f"must be in [0, 1), got {getattr(self, name)}")
        _check(self.epsilon > 0, f"{path}.epsilon", f"must be positive, got {self.epsilon}")
        _check(self.max_grad_norm > 0, f"{path}.max_grad_norm", f"must be positive, got {self.max_grad_norm}")


@dataclass
class TrainSection:
    seed: int = 42
    accumulate_steps: int = 1
    save_steps: int = 1000
    keep_checkpoints: int = 3
    amp: Optional[str] = None  # bf16 / fp16 on GPU; ignored on CPU
    recompute: bool = False  # recompute layer activations in backward: less memory
    sharding: bool = False  # shard the optimizer state over the ranks (ZeRO stage 1)
    eval_steps: int = 0  # held-out evaluation every N steps (0: never)
    max_nonfinite_steps: int = 20  # non-finite losses in a row (each skips its update) that stop the run

    def validate(self, path: str) -> None:
        # The data seed is seed x 1000 and Paddle's generator takes an unsigned 64-bit seed.
        _check(0 <= self.seed < 2 ** 53, f"{path}.seed", f"must be in [0, 2**53), got {self.seed}")
        for name in ("accumulate_steps", "save_steps", "keep_checkpoints", "max_nonfinite_steps"):
            _check(getattr(self, name) > 0, f"{path}.{name}", f"must be positive, got {getattr(self, name)}")
        _check(self.eval_steps >= 0, f"{path}.eval_steps", f"must be >= 0, got {self.eval_steps}")
        _check(is_amp_setting(self.amp), f"{path}.amp", f"must be bf16, fp16 or null, got {self.amp!r}")


@dataclass
class PretrainingConfig:
    tokenizer: str  # directory with sentencepiece.bpe.model + vocab.txt
    stages: List[Stage]
    languages: Optional[List[str]] = None  # in language-id order; default: the tokenizer's
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optimizer: OptimizerSection = field(default_factory=OptimizerSection)
    train: TrainSection = field(default_factory=TrainSection)
    # Each registered objective's options, a top-level section named after it (`camlm:`), read as `config.camlm`.
    objectives: Dict[str, ObjectiveOptions] = field(default_factory=dict, init=False)

    def __post_init__(self):
        self.objectives = {name: objective.Options() for name, objective in REGISTRY.items()}

    def __getattr__(self, name: str):
        options = self.__dict__.get("objectives", {})
        if name in options:
            return options[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or objective section {name!r}")

    def validate(self, path: str) -> None:
        _check(bool(self.stages), "stages", "define at least one stage")
        _check(bool(self.tokenizer), "tokenizer", "name the tokenizer directory")

    @property
    def schedule_steps(self) -> int:
        """The learning-rate schedule's length: every stage's steps."""
        return sum(stage.steps for stage in self.stages)

    def uses(self, objective: str) -> bool:
        return any(stage.objectives.get(objective, 0) > 0 for stage in self.stages)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data.update(data.pop("objectives"))
        return data

    def save(self, directory: str) -> None:
        with open(os.path.join(directory, CONFIG_FILE), "w") as handle:
            json.dump(self.to_dict(), handle, indent=1)

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "PretrainingConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"config: expected a mapping, got {type(data).__name__}")
        sections = {key: value for key, value in data.items() if key in REGISTRY}
        config = _build(cls, {key: value for key, value in data.items() if key not in REGISTRY}, "",
                        also_valid=list(REGISTRY))
        for name, section in sections.items():
            config.objectives[name] = _build(REGISTRY[name].Options, section, name)
        if len(config.languages or ()) == 1:
            raise ConfigError("languages: configure at least two languages")
        return config

    @classmethod
    def from_saved(cls, directory: str) -> Optional["PretrainingConfig"]:
        """The configuration a checkpoint was written with (None for checkpoints older than this file)."""
        path = os.path.join(directory, CONFIG_FILE)
        if not os.path.isfile(path):
            return None
        with open(path) as handle:
            return cls.from_dict(json.load(handle), path)


# What a resumed run must share with the run that wrote the checkpoint: the schedule's length (the learning rate
# would jump), the language ids (embedding rows would change meaning), the model's shape and how the corpus is cut
# into shards (the data position is kept per shard).
FROZEN_ON_RESUME = {
    "schedule length (the sum of stages.*.steps)": lambda c: c.schedule_steps,
    "languages": lambda c: c.languages,
    "model": lambda c: dataclasses.asdict(c.model),
    "data.shards": lambda c: c.data.shards,
    "data.min_shard_bytes": lambda c: c.data.min_shard_bytes,
}


# What a resume may change, each change named in one line: how often to save and evaluate, where the held-out pairs
# are, how many reader processes, recomputation and optimizer sharding (memory layouts of the same computation; a
# sharded optimizer state still needs its ranks back, which loading checks), the tokenizer's path (its files are
# compared by digest), and the per-rank batch (a resume on another number of ranks keeps the global batch through
# it). Any other difference would make the resumed run another run than the one it continues, and is refused.
MAY_CHANGE_ON_RESUME = ("tokenizer", "train.save_steps", "train.keep_checkpoints", "train.eval_steps",
                        "train.max_nonfinite_steps", "train.recompute", "train.sharding", "data.num_workers",
                        "data.eval_parallel_dir", "data.eval_max_pairs", "stages.*.batch_size",
                        "stages.*.batch_tokens")


def _flat(value: Any, prefix: str = "") -> Dict[str, Any]:
    """Dotted names -> leaf values (list items by index)."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        items = enumerate(value)
    else:
        return {prefix: value}
    out: Dict[str, Any] = {}
    for key, item in items:
        out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def frozen_conflict(saved: "PretrainingConfig", current: "PretrainingConfig") -> Optional[str]:
    """A one-line description of the first value that no run continuing this one may change, or None."""
    for name, value_of in FROZEN_ON_RESUME.items():
        if value_of(saved) != value_of(current):
            return f"{name} was {value_of(saved)!r} in the saved run and is {value_of(current)!r} now"
    return None


def resume_changes(saved: "PretrainingConfig", current: "PretrainingConfig") -> Tuple[Optional[str], List[str]]:
    """(the first difference a resume refuses, in one line, or None; the differences it accepts, one line each)."""
    conflict = frozen_conflict(saved, current)
    if conflict:
        return conflict, []
    before, after = _flat(saved.to_dict()), _flat(current.to_dict())
    accepted = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) == after.get(name):
            continue
        line = f"{name} was {before.get(name)!r} in the saved run and is {after.get(name)!r} now"
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in MAY_CHANGE_ON_RESUME):
            return line, []
        accepted.append(line)
    return None, accepted


def resume_conflict(saved: "PretrainingConfig", current: "PretrainingConfig") -> Optional[str]:
    """A one-line description of the first difference a resume refuses, or None."""
    return resume_changes(saved, current)[0]


def branch_conflict(saved: "PretrainingConfig", current: "PretrainingConfig", step: int) -> Optional[str]:
    """For a run branching from `saved`'s checkpoint at `step`: a one-line description of the first difference
    outside the stages that begin at or after `step` (and the tokenizer path, whose files are compared by digest),
    or None. What trained the checkpoint must be what the branch claims it was."""
    conflict = frozen_conflict(saved, current)
    if conflict:
        return conflict
    starts = [sum(stage.steps for stage in saved.stages[:index]) for index in range(len(saved.stages))]
    begun = sum(1 for start in starts if start < step)
    if [s.steps for s in saved.stages] != [s.steps for s in current.stages]:
        return (f"the stages' steps were {[s.steps for s in saved.stages]} in the saved run and are "
                f"{[s.steps for s in current.stages]} now")
    for index in range(begun):
        if saved.stages[index] != current.stages[index]:
            return (f"stage {index} ({saved.stages[index].name!r}) had begun by step {step} and differs: it was "
                    f"{dataclasses.asdict(saved.stages[index])} and is {dataclasses.asdict(current.stages[index])}")
    sections = ("data", "optimizer", "train", *REGISTRY)  # languages and model: resume_conflict's
    for section in sections:
        before, after = getattr(saved, section), getattr(current, section)
        for field_name in (f.name for f in dataclasses.fields(before)):
            if getattr(before, field_name) != getattr(after, field_name):
                return (f"{section}.{field_name} was {getattr(before, field_name)!r} in the saved run and is "
                        f"{getattr(after, field_name)!r} now")
    return None


# ---- building dataclasses from plain data -----------------------------------------------------------------------

def _build(cls, data: Any, path: str, also_valid: List[str] = ()):
    """An instance of dataclass `cls` from plain data, each value converted and checked; `also_valid` are keys
    the caller reads itself (named in hints)."""
    where = path or "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            valid = [*fields, *also_valid]
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; valid: {', '.join(valid)}"
            raise ConfigError(f"{_join(path, key)}: unknown field{hint}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, spec in fields.items():
        if name in data:
            values[name] = _convert(data[name], hints[name], _join(path, name))
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_join(path, name)}: required")
    try:
        built = cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:  # a Stage refusing its values names the stage itself
        raise ConfigError(f"{where}: {error}") from None
    if hasattr(built, "validate"):
        try:
            built.validate(where)
        except ConfigError:
            raise
        except ValueError as error:  # an objective's options name their own field
            raise ConfigError(str(error)) from None
    return built


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def _convert(value: Any, kind, path: str):
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Union:  # Optional[X]
        if value is None:
            return None
        return _convert(value, next(a for a in args if a is not type(None)), path)
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, path)
    if origin in (list, List):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return [_convert(item, args[0], f"{path}.{index}") for index, item in enumerate(value)]
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return {str(k): _convert(v, args[1], f"{path}.{k}") for k, v in value.items()}
    if kind is Any:
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return int(value)
    if kind is float:
        if isinstance(value, str):  # YAML 1.1 reads "2e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{path}: no conversion for {kind}")


# ---- files and overrides ----------------------------------------------------------------------------------------

def parse_value(raw: str):
    """YAML, but "2e-4" is a number (YAML 1.1 reads exponents without a dot as strings)."""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise ConfigError(f"value {raw!r} is not valid YAML ({first_line(error)})") from None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def apply_override(data: dict, assignment: str) -> None:
    """`a.b.c=value` on plain data (a number indexes a list: `stages.0.steps=20`), the value read as YAML."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} is not of the form key.path=value")
    path, raw = assignment.split("=", 1)
    try:
        _assign(data, path, raw)
    except ConfigError as error:
        raise ConfigError(f"override {assignment!r}: {error}") from None


def _assign(data: dict, path: str, raw: str) -> None:
    node = data
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
                if node.get(key) is None:  # absent, or `section: null` in the file
                    node[key] = {}
                node = node[key]
        else:
            raise ConfigError(f"no such field {key!r} here")


def load_config(path: str, overrides: List[str] = ()) -> PretrainingConfig:
    """Read a YAML/JSON file, apply dotted overrides, build and validate the configuration."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8 (byte 0x{raw[error.start]:02x})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({first_line(error)})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields (tokenizer:, stages:, ...), found "
                          f"{type(data).__name__}")
    for assignment in overrides:
        apply_override(data, assignment)
    if not data.get("stages"):
        raise ConfigError(f"{path} defines no stages")
    if not data.get("tokenizer"):
        raise ConfigError(f"{path} names no tokenizer directory")
    # `section: null` in a file means the defaults.
    sections = {"model", "data", "optimizer", "train", *REGISTRY}
    data = {key: ({} if value is None and key in sections else value) for key, value in data.items()}
    return PretrainingConfig.from_dict(data, path)
