"""Example streams for the pretraining loop: language sampling, tokenization in DataLoader workers, length
bucketing, and a position that resumes exactly.

The work is split in two:

- `PoolSource` (in a DataLoader worker, or in the training process when `num_workers=0`) reads its shard of the
  corpus, picks a file for each example with XLM-R's smoothed probability p_i ∝ q_i^alpha (q_i = the file's share
  of the corpus bytes; alpha = 1 keeps the natural distribution, 0 is uniform), and tokenizes a *pool* of
  `pool_size` examples at a time. Worker w of W on rank r reads the lines whose number modulo (ranks x W) is r x W + w.
- `ExampleStream` (in the training process) takes the pools in worker order, sorts each by length and cuts it into
  batches of neighbours (by count, or by a budget of padded tokens), handed out in random order: padding is cut
  without changing what is seen. The batch shape comes from the training step, so workers need not know the stage.

Exact resume: each pool arrives with its worker's state after producing it. The stream keeps, per worker, the
state behind the last pool it consumed, which worker comes next (a DataLoader hands pools out round-robin), its own
generator and the batches not yet handed out. On resume, worker i restarts as the worker that was due i-th.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..objectives.examples import Monolingual, Parallel
from .corpus import CorpusError, LineReader, ParallelFile

__all__ = ["sampling_probabilities", "PoolSource", "ExampleStream"]


def sampling_probabilities(sizes: Sequence[float], alpha: float) -> np.ndarray:
    """p_i ∝ (size_i / total)^alpha."""
    sizes = np.asarray(sizes, dtype=np.float64)
    if (sizes <= 0).any():
        raise CorpusError("every corpus file must be non-empty")
    shares = sizes / sizes.sum()
    weights = shares ** alpha
    return weights / weights.sum()


# ---- examples in transit: flat numpy arrays between processes, JSON lists in checkpoints ---------------------------

def _segments(example) -> list:
    if isinstance(example, Parallel):
        return [(example.source, example.source_language), (example.target, example.target_language)]
    return [(example.tokens, example.language)]


def _from_segments(segments, parallel: bool):
    if parallel:
        (source, source_language), (target, target_language) = segments
        return Parallel(source, int(source_language), target, int(target_language))
    (tokens, language), = segments
    return Monolingual(tokens, int(language))


def pack_pool(examples) -> Dict[str, np.ndarray]:
    """Examples -> three flat arrays (ids, segment lengths, segment languages): what a DataLoader moves cheaply."""
    segments = [segment for example in examples for segment in _segments(example)]
    return {
        "ids": np.concatenate([tokens for tokens, _ in segments]).astype(np.int64) if segments
        else np.zeros([0], np.int64),
        "lengths": np.asarray([len(tokens) for tokens, _ in segments], dtype=np.int64),
        "languages": np.asarray([language for _, language in segments], dtype=np.int64),
    }


def unpack_pool(arrays: Dict[str, np.ndarray], parallel: bool) -> list:
    ids, lengths, languages = (np.asarray(arrays[key]) for key in ("ids", "lengths", "languages"))
    pieces = np.split(ids, np.cumsum(lengths)[:-1]) if len(lengths) else []
    width = 2 if parallel else 1
    segments = list(zip(pieces, languages))
    return [_from_segments(segments[i:i + width], parallel) for i in range(0, len(segments), width)]


def _example_to_json(example) -> list:
    return [[tokens.tolist(), int(language)] for tokens, language in _segments(example)]


def _example_from_json(item, parallel: bool):
    return _from_segments([(np.asarray(tokens, dtype=np.int64), language) for tokens, language in item], parallel)


# ---- the worker side -----------------------------------------------------------------------------------------------

class PoolSource:
    """Reads and tokenizes pools of examples from one shard of the corpus files."""

    def __init__(self, files, tokenizer, language_ids: Dict[str, int], probabilities: np.ndarray, seed,
                 shard: int, num_shards: int, pool_size: int):
        self.files = list(files)
        self.parallel = isinstance(self.files[0], ParallelFile)
        self.tokenizer = tokenizer
        self.language_ids = language_ids
        self.probabilities = probabilities
        self.pool_size = pool_size
        self.readers = [LineReader(f.path, 2 if self.parallel else 1, shard, num_shards) for f in self.files]
        self._iterators = [iter(reader) for reader in self.readers]
        self.rng = np.random.default_rng(seed)

    def state(self) -> dict:
        return {"readers": [reader.state() for reader in self.readers], "rng": self.rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        for reader, reader_state in zip(self.readers, state["readers"]):
            reader.load_state(reader_state)
        self._iterators = [iter(reader) for reader in self.readers]
        self.rng.bit_generator.state = state["rng"]

    def next_pool(self) -> list:
        chosen = self.rng.choice(len(self.files), size=self.pool_size, p=self.probabilities)
        raw = [(int(index), next(self._iterators[index])[1]) for index in chosen]
        width = 2 if self.parallel else 1
        # One batched tokenizer call for the whole pool (sentencepiece's C++ encoder does the work).
        ids = self.tokenizer.encode_batch_ids([field for _, fields in raw for field in fields])
        examples = []
        for position, (index, _) in enumerate(raw):
            file = self.files[index]
            tokens = [np.asarray(t, dtype=np.int64) for t in ids[position * width:(position + 1) * width]]
            if self.parallel:
                examples.append(Parallel(tokens[0], self.language_ids[file.source_language], tokens[1],
                                         self.language_ids[file.target_language]))
            else:
                examples.append(Monolingual(tokens[0], self.language_ids[file.language]))
        return examples


def _identity(item):
    return item


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when the training process dies: after a SIGKILL of the trainer, Paddle's
    DataLoader workers otherwise stay blocked on their queues forever."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _pool_dataset(make_source, role_states: list, first_role: int):
    """An IterableDataset whose worker i plays role (first_role + i) mod W, from that role's saved state."""
    from paddle.io import IterableDataset, get_worker_info

    class PoolDataset(IterableDataset):
        def __iter__(self):
            info = get_worker_info()
            if info is not None:
                _die_with_parent()
                # Workers are separate processes: one sentencepiece thread each, not one per core.
                make_source.tokenizer.num_threads = 1
            role = (first_role + (info.id if info is not None else 0)) % len(role_states)
            source = make_source(role)
            if role_states[role] is not None:
                source.load_state(role_states[role])
            while True:
                examples = source.next_pool()
                yield {**pack_pool(examples), "state": json.dumps({"role": role, **source.state()})}

    return PoolDataset()


class _SourceFactory:
    """Builds the `PoolSource` of one worker role (a class rather than a closure so the tokenizer is reachable)."""

    def __init__(self, files, tokenizer, language_ids, probabilities, seed, shard, num_shards, num_workers,
                 pool_size):
        self.files, self.tokenizer, self.language_ids = files, tokenizer, language_ids
        self.probabilities, self.seed, self.pool_size = probabilities, seed, pool_size
        self.shard, self.num_shards, self.num_workers = shard, num_shards, num_workers

    def __call__(self, role: int) -> PoolSource:
        return PoolSource(self.files, self.tokenizer, self.language_ids, self.probabilities, [self.seed, 0, role],
                          shard=self.shard * self.num_workers + role, num_shards=self.num_shards * self.num_workers,
                          pool_size=self.pool_size)


# ---- the training-process side -------------------------------------------------------------------------------------

class ExampleStream:
    """Tokenized examples of one kind, drawn across languages, in length-bucketed batches.

    Args:
        files: `ParallelFile`s or `MonolingualFile`s.
        tokenizer: an `ErnieMTokenizer` (its `encode_batch_ids` does the work).
        language_ids: language code -> id; every file's languages must be in it.
        alpha: the language sampling exponent.
        shard / num_shards: this rank and the number of ranks.
        pool_size: examples tokenized and bucketed together (a few batches' worth).
        num_workers: DataLoader worker processes that read and tokenize; 0 does it in this process.
    """

    def __init__(self, files, tokenizer, language_ids: Dict[str, int], alpha: float, seed: int,
                 shard: int = 0, num_shards: int = 1, pool_size: int = 64, num_workers: int = 0):
        if not files:
            raise CorpusError("no corpus files for this stream")
        if pool_size < 1 or num_workers < 0:
            raise ValueError(f"pool_size must be >= 1 and num_workers >= 0, got {pool_size} and {num_workers}")
        self.parallel = isinstance(files[0], ParallelFile)
        for file in files:
            languages = (file.source_language, file.target_language) if self.parallel else (file.language,)
            unknown = [lang for lang in languages if lang not in language_ids]
            if unknown:
                raise CorpusError(
                    f"{file.path}: language {unknown[0]!r} is not among the configured languages "
                    f"{sorted(language_ids)}"
                )
        self.files = list(files)
        self.shard, self.num_shards, self.num_workers = shard, num_shards, num_workers
        self.probabilities = sampling_probabilities([os.path.getsize(f.path) for f in self.files], alpha)
        self._make_source = _SourceFactory(self.files, tokenizer, language_ids, self.probabilities, seed, shard,
                                           num_shards, max(1, num_workers), pool_size)
        self.role_states: List[Optional[dict]] = [None] * max(1, num_workers)
        self.next_role = 0
        self.rng = np.random.default_rng([seed, 1])
        # Batches cut but not yet handed out, per batch shape (objectives sharing a stream may ask for different
        # shapes; each keeps its own, so switching objectives drops nothing).
        self.pending: Dict[tuple, list] = {}
        self._pools = None  # the pool iterator, started at the first batch

    def check_files(self) -> None:
        """Raise CorpusError, naming the file, when a file has no usable line in a shard this rank's readers will
        read: found before training, not in a reader worker at the first step (where Paddle's DataLoader reports
        only a killed queue). Each check stops at the shard's first good line."""
        roles = max(1, self.num_workers)
        for role in range(roles):
            for file in self.files:
                reader = LineReader(file.path, 2 if self.parallel else 1, self.shard * roles + role,
                                    self.num_shards * roles)
                next(iter(reader))

    # ---- pools ---------------------------------------------------------------------------------------------------
    def _start(self):
        dataset = _pool_dataset(self._make_source, list(self.role_states), self.next_role)
        if self.num_workers == 0:
            return iter(dataset)
        from paddle.io import DataLoader

        loader = DataLoader(dataset, batch_size=None, num_workers=self.num_workers, collate_fn=_identity,
                            use_shared_memory=False)
        return iter(loader)

    def _next_pool(self) -> list:
        if self._pools is None:
            self._pools = self._start()
        item = next(self._pools)
        state = json.loads(item.pop("state"))
        role = state.pop("role")
        if role != self.next_role:  # the exact-resume bookkeeping rests on this order
            raise RuntimeError(f"pool from worker {role} arrived when worker {self.next_role} was due")
        self.role_states[role] = state
        self.next_role = (role + 1) % len(self.role_states)
        arrays = {key: value.numpy() if hasattr(value, "numpy") else value for key, value in item.items()}
        return unpack_pool(arrays, self.parallel)

    def close(self) -> None:
        """Stops the DataLoader workers (they also stop when this process exits)."""
        self._pools = None

    # ---- state ---------------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "shard": self.shard, "num_shards": self.num_shards, "num_workers": self.num_workers,
            "next_role": self.next_role, "roles": list(self.role_states), "rng": self.rng.bit_generator.state,
            "pending": [[list(shape), [[_example_to_json(example) for example in batch] for batch in batches]]
                        for shape, batches in self.pending.items()],
        }

    def load_state(self, state: dict) -> None:
        if self._pools is not None:
            raise RuntimeError("load_state must come before the first batch")
        saved = (state.get("num_shards"), state.get("num_workers"))
        if saved != (self.num_shards, self.num_workers) or state.get("shard") != self.shard:
            raise CorpusError(
                f"the checkpoint's data position is for {saved[0]} rank(s) with data.num_workers={saved[1]}; this run "
                f"has {self.num_shards} rank(s) with data.num_workers={self.num_workers}. Resume with the same "
                f"number of ranks and workers (each worker reads its own shard of the corpus)"
            )
        self.role_states = list(state["roles"])
        self.next_role = int(state["next_role"])
        self.rng.bit_generator.state = state["rng"]
        if "pending_shape" in state:  # written before batch shapes were kept apart: one shape's batches
            saved = {tuple(state["pending_shape"]) + (1.0, False, None): state["pending"]}
        else:
            saved = {tuple(shape): batches for shape, batches in state["pending"]}
        self.pending = {shape: [[_example_from_json(item, self.parallel) for item in batch] for batch in batches]
                        for shape, batches in saved.items()}

    def bad_lines(self) -> Counter:
        """Bad lines met in the pools consumed so far, by kind, over every worker."""
        total: Counter = Counter()
        for role_state in self.role_states:
            for reader_state in (role_state or {}).get("readers", []):
                total.update(reader_state.get("bad_lines", {}))
        return total

    # ---- batches -------------------------------------------------------------------------------------------------
    @staticmethod
    def _template_length(example) -> int:
        if isinstance(example, Parallel):
            return len(example.source) + len(example.target) + 4
        return len(example.tokens) + 2

    def _refill(self, batch_size: int, max_tokens: Optional[int], length_factor: float, real: bool,
                max_row_length: Optional[int]) -> None:
        examples = self._next_pool()
        cap = max_row_length or float("inf")  # the objective truncates longer rows to this
        lengths = [min(self._template_length(example) * length_factor, cap) for example in examples]
        order = sorted(range(len(examples)), key=lengths.__getitem__)
        batches, current, longest, total = [], [], 0, 0
        for i in order:
            # A batch closes at batch_size examples or when one more would pass max_tokens tokens: padded tokens
            # (the longest row times the rows), or with `real` the rows' own tokens.
            grown = total + lengths[i] if real else max(longest, lengths[i]) * (len(current) + 1)
            if current and (len(current) == batch_size or (max_tokens and grown > max_tokens)):
                batches.append(current)
                current, longest, total = [], 0, 0
            current.append(i)
            longest, total = max(longest, lengths[i]), total + lengths[i]
        batches.append(current)
        self.pending[(batch_size, max_tokens, length_factor, real, max_row_length)] = [
            [examples[i] for i in batches[b]] for b in self.rng.permutation(len(batches))]

    def next_batch(self, batch_size: int, max_tokens: Optional[int] = None, length_factor: float = 1.0,
                   real_tokens: bool = False, max_row_length: Optional[int] = None) -> list:
        """Up to `batch_size` tokenized examples of similar length, at most `max_tokens` tokens if given: padded
        tokens, or with `real_tokens` the tokens of the rows themselves (so that objectives whose rows pad
        differently train on as many tokens a step). `max_row_length`: the objective cuts rows to this length,
        so the budget counts no more.

        `length_factor` is how many tokens the objective's row has per token of the example's own template
        (`[CLS] x [SEP]` or `[CLS] a [SEP] [SEP] b [SEP]`): BTMLM adds as many placeholders as x has tokens, so
        its rows are twice the template, and the budget must count them."""
        shape = (batch_size, max_tokens, float(length_factor), bool(real_tokens), max_row_length)
        if not self.pending.get(shape):
            self._refill(*shape)
        return self.pending[shape].pop(0)
