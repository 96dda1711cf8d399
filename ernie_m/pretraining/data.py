"""Example streams for the pretraining loop: language sampling, tokenization in DataLoader workers, length
bucketing, and a position that resumes exactly, or on another number of ranks.

The work is split in three:

- A *source* is what examples are drawn from: one language (monolingual) or one pair (parallel), with all its
  files. A source is picked for each example with XLM-R's smoothed probability p_i ∝ q_i^alpha (q_i = the source's
  share of the corpus bytes; alpha = 1 keeps the natural distribution, 0 is uniform).
- The corpus is read through a fixed number of virtual *shards* (`data.shards`, independent of the world size).
  Shard v holds its pieces of every source (ernie_m.pretraining.corpus) and its own generator; `ShardSource` reads
  and tokenizes pools of `pool_size` examples from one shard. Reader g of G (rank r's worker w, g = r x W + w, G =
  ranks x W) owns the shards v with v mod G = g and takes pools from them in turn. So each byte of the corpus is
  read once a pass, whatever the number of ranks and workers (a language too small to give every shard a piece of
  its own is shared, and each sharer reads it whole to take its turn of lines).
- `ExampleStream` (in the training process) takes the pools in worker order, sorts each by length and cuts it into
  batches of neighbours (by count, or by a budget of padded tokens), handed out in random order: padding is cut
  without changing what is seen. The batch shape comes from the training step, so workers need not know the stage.

The data position is the state of every shard (per piece, the byte offset of its next line, and its generator),
kept as of the last pool the training process consumed, plus each rank's batches cut but not handed out.
With the same ranks and workers a resume is exact (each worker restarts with the shard that was due). With others,
the shards are dealt again and each continues from its own position; the pending batches of the old rank r go to
the new rank r mod ranks. No line is repeated or skipped, but the order in which shards interleave differs.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..distributed import die_with_parent
from ..objectives.examples import Monolingual, Parallel
from .corpus import CorpusError, LineReader, ParallelFile, file_fingerprint, plan_pieces, shard_pieces

__all__ = ["sampling_probabilities", "Source", "sources_of", "ShardSource", "ExampleStream", "merge_positions"]


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


# ---- sources and shards --------------------------------------------------------------------------------------------

class Source:
    """One language (or pair) and its files, cut into pieces for the shards."""

    def __init__(self, key: tuple, files: list, shards: int, min_piece_bytes: int):
        self.key, self.files = key, list(files)
        self.size = sum(os.path.getsize(file.path) for file in self.files)
        self.pieces = plan_pieces([file.path for file in self.files], shards, min_piece_bytes)

    @property
    def name(self) -> str:
        return "-".join(self.key)

    def fingerprint(self) -> Dict[str, dict]:
        """File name -> size and sampled digest (`file_fingerprint`), over this source's files."""
        return {os.path.basename(file.path): file_fingerprint(
                    file.path, [piece.start for piece in self.pieces if piece.path == file.path])
                for file in self.files}

    def reader(self, shard: int, shards: int, parallel: bool) -> LineReader:
        """A reader of this source's lines in `shard`, falling back to the whole source when the shard's pieces
        hold no usable line."""
        return LineReader(shard_pieces(self.pieces, shard, shards), 2 if parallel else 1,
                          f"shard {shard} of {shards}", source_pieces=self.pieces)


def sources_of(files, shards: int, min_piece_bytes: int) -> List[Source]:
    """The files grouped by what they hold (a language, or a pair), in a stable order."""
    grouped: Dict[tuple, list] = {}
    for file in sorted(files, key=lambda f: f.path):
        grouped.setdefault(file.source, []).append(file)
    return [Source(key, grouped[key], shards, min_piece_bytes) for key in sorted(grouped)]


class ShardSource:
    """Reads and tokenizes pools of examples from one virtual shard of the corpus."""

    def __init__(self, sources: Sequence[Source], shard: int, shards: int, tokenizer, language_ids: Dict[str, int],
                 probabilities: np.ndarray, seed, pool_size: int):
        self.sources = list(sources)
        self.parallel = isinstance(self.sources[0].files[0], ParallelFile)
        self.shard = shard
        self.tokenizer = tokenizer
        self.languages = [[language_ids[code] for code in source.key] for source in self.sources]
        self.probabilities = probabilities
        self.pool_size = pool_size
        self.readers = [source.reader(shard, shards, self.parallel) for source in self.sources]
        self._iterators = [iter(reader) for reader in self.readers]
        self.rng = np.random.default_rng(seed)

    def state(self) -> dict:
        return {"readers": [reader.state() for reader in self.readers], "rng": self.rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        if len(state["readers"]) != len(self.readers):
            raise CorpusError(f"shard {self.shard}'s saved position has {len(state['readers'])} sources, the corpus "
                              f"now has {len(self.readers)}: the corpus changed since the checkpoint")
        for reader, reader_state in zip(self.readers, state["readers"]):
            reader.load_state(reader_state)
        self._iterators = [iter(reader) for reader in self.readers]
        self.rng.bit_generator.state = state["rng"]

    def release(self) -> None:
        """Close the files the readers hold open between pools (a worker may own many shards of many sources);
        each reader reopens at its position when next read."""
        for iterator in self._iterators:
            iterator.close()
        self._iterators = [iter(reader) for reader in self.readers]

    def next_pool(self) -> list:
        chosen = self.rng.choice(len(self.sources), size=self.pool_size, p=self.probabilities)
        raw = [(int(index), next(self._iterators[index])[1]) for index in chosen]
        width = 2 if self.parallel else 1
        # One batched tokenizer call for the whole pool (sentencepiece's C++ encoder does the work).
        ids = self.tokenizer.encode_batch_ids([field for _, fields in raw for field in fields])
        examples = []
        for position, (index, _) in enumerate(raw):
            tokens = [np.asarray(t, dtype=np.int64) for t in ids[position * width:(position + 1) * width]]
            languages = self.languages[index]
            if self.parallel:
                examples.append(Parallel(tokens[0], languages[0], tokens[1], languages[1]))
            else:
                examples.append(Monolingual(tokens[0], languages[0]))
        return examples


def _identity(item):
    return item


def _pool_dataset(make_shard, positions: Dict[int, dict], cursors: List[int], first_role: int):
    """An IterableDataset whose worker i plays role (first_role + i) mod W: it takes pools from its role's shards in
    turn, from the shard that is due, each shard from its saved position."""
    from paddle.io import IterableDataset, get_worker_info

    class PoolDataset(IterableDataset):
        def __iter__(self):
            info = get_worker_info()
            if info is not None:
                die_with_parent()  # after a SIGKILL of the trainer, workers would wait on their queues forever
                # Workers are separate processes: one sentencepiece thread each, not one per core.
                make_shard.tokenizer.num_threads = 1
            role = (first_role + (info.id if info is not None else 0)) % len(cursors)
            owned, cursor, shards = make_shard.owned(role), cursors[role], {}
            while True:
                shard = owned[cursor % len(owned)]
                if shard not in shards:
                    shards[shard] = make_shard(shard)
                    if positions.get(shard) is not None:
                        shards[shard].load_state(positions[shard])
                try:
                    examples = shards[shard].next_pool()
                except CorpusError as error:
                    # Passed on as an item (with an array, as every item has): a worker's exception reaches the
                    # trainer only as Paddle's "Blocking queue is killed". The trainer stops at the first one.
                    failure = {"error": str(error), "array": np.zeros(1, dtype=np.int64)}
                    while True:
                        yield failure
                shards[shard].release()
                cursor += 1
                yield {**pack_pool(examples), "state": json.dumps({"role": role, "shard": shard, "cursor": cursor,
                                                                   "position": shards[shard].state()})}

    return PoolDataset()


class _ShardFactory:
    """Builds the `ShardSource` of a shard, and says which shards a worker role owns (a class rather than a
    closure so the tokenizer is reachable)."""

    def __init__(self, sources, shards, tokenizer, language_ids, probabilities, seed, pool_size, first_reader,
                 readers):
        self.sources, self.shards, self.tokenizer, self.language_ids = sources, shards, tokenizer, language_ids
        self.probabilities, self.seed, self.pool_size = probabilities, seed, pool_size
        self.first_reader, self.readers = first_reader, readers

    def owned(self, role: int) -> List[int]:
        return list(range(self.first_reader + role, self.shards, self.readers))

    def __call__(self, shard: int) -> ShardSource:
        return ShardSource(self.sources, shard, self.shards, self.tokenizer, self.language_ids, self.probabilities,
                           [self.seed, 0, shard], self.pool_size)


def merge_positions(saved: Sequence[dict], rank: int, ranks: int, num_workers: int) -> dict:
    """The data position rank `rank` of `ranks` resumes from, given every rank's saved one: the saved rank's own
    when the ranks and workers are the same (an exact resume); otherwise every shard's position (the stream keeps
    its own shards') and the pending batches of the old ranks r with r mod ranks = rank."""
    for state in saved:
        if "layout" not in state:
            raise CorpusError("the checkpoint's data position predates byte-range sharding (it is kept per reader, "
                              "not per shard); resume it with the version that wrote it, or start a new run")
    layout = saved[0]["layout"]
    if len(saved) == ranks and layout["num_workers"] == num_workers:
        return saved[rank]
    positions = {}
    for state in saved:
        positions.update(state["positions"])
    pending: Dict[str, list] = {}
    for old_rank, state in enumerate(saved):
        if old_rank % ranks == rank:
            for shape, batches in state["pending"]:
                pending.setdefault(json.dumps(shape), []).extend(batches)
    return {"layout": dict(layout, rank=rank, ranks=ranks, num_workers=num_workers), "positions": positions,
            "cursors": None, "next_role": 0, "rng": None,
            "pending": [[json.loads(shape), batches] for shape, batches in pending.items()]}


# ---- the training-process side -------------------------------------------------------------------------------------

class ExampleStream:
    """Tokenized examples of one kind, drawn across languages, in length-bucketed batches.

    Args:
        files: `ParallelFile`s or `MonolingualFile`s.
        tokenizer: an `ErnieMTokenizer` (its `encode_batch_ids` does the work).
        language_ids: language code -> id; every file's languages must be in it.
        alpha: the language sampling exponent.
        seed: the run's data seed (the same on every rank).
        shard / num_shards: this rank and the number of ranks.
        pool_size: examples tokenized and bucketed together (a few batches' worth).
        num_workers: DataLoader worker processes that read and tokenize; 0 does it in this process.
        shards: virtual shards of the corpus (at least ranks x workers; fixed for a run).
        min_piece_bytes: the smallest byte range a source is cut into.
    """

    def __init__(self, files, tokenizer, language_ids: Dict[str, int], alpha: float, seed: int,
                 shard: int = 0, num_shards: int = 1, pool_size: int = 64, num_workers: int = 0, shards: int = 1,
                 min_piece_bytes: int = 1 << 20):
        if not files:
            raise CorpusError("no corpus files for this stream")
        if pool_size < 1 or num_workers < 0:
            raise ValueError(f"pool_size must be >= 1 and num_workers >= 0, got {pool_size} and {num_workers}")
        roles = max(1, num_workers)
        if shards < num_shards * roles:
            raise CorpusError(f"data.shards={shards} is fewer than the readers (ranks x data.num_workers = "
                              f"{num_shards} x {roles}): every reader needs a shard of its own; raise data.shards")
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
        self.sources = sources_of(self.files, shards, min_piece_bytes)
        self.shard, self.num_shards, self.num_workers, self.shards = shard, num_shards, num_workers, shards
        self.probabilities = sampling_probabilities([source.size for source in self.sources], alpha)
        self._make_shard = _ShardFactory(self.sources, shards, tokenizer, language_ids, self.probabilities, seed,
                                         pool_size, shard * roles, num_shards * roles)
        self.owned_shards = [v for role in range(roles) for v in self._make_shard.owned(role)]
        self.positions: Dict[int, Optional[dict]] = {}  # shard -> position after the last pool consumed from it
        self.cursors = [0] * roles  # per worker role, how many pools it has produced
        self.next_role = 0
        self._seed = [seed + shard, 1]
        self.rng = np.random.default_rng(self._seed)
        # Batches cut but not yet handed out, per batch shape (objectives sharing a stream may ask for different
        # shapes; each keeps its own, so switching objectives drops nothing).
        self.pending: Dict[tuple, list] = {}
        self._pools = None  # the pool iterator, started at the first batch

    def check_files(self) -> None:
        """Raise CorpusError, naming the file, when a source has no usable line in a shard this rank's readers will
        read: found before training, not in a reader worker at the first step (where Paddle's DataLoader reports
        only a killed queue). Each check stops at the shard's first good line."""
        for shard in self.owned_shards:
            for source in self.sources:
                next(iter(source.reader(shard, self.shards, self.parallel)))

    # ---- pools ---------------------------------------------------------------------------------------------------
    def _start(self):
        dataset = _pool_dataset(self._make_shard, dict(self.positions), list(self.cursors), self.next_role)
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
        if "error" in item:
            raise CorpusError(item["error"])
        state = json.loads(item.pop("state"))
        role = state["role"]
        if role != self.next_role:  # the exact-resume bookkeeping rests on this order
            raise RuntimeError(f"pool from worker {role} arrived when worker {self.next_role} was due")
        self.positions[state["shard"]] = state["position"]
        self.cursors[role] = state["cursor"]
        self.next_role = (role + 1) % len(self.cursors)
        arrays = {key: value.numpy() if hasattr(value, "numpy") else value for key, value in item.items()}
        return unpack_pool(arrays, self.parallel)

    def close(self) -> None:
        """Stops the DataLoader workers (they also stop when this process exits)."""
        self._pools = None

    # ---- state ---------------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "layout": {"shards": self.shards, "rank": self.shard, "ranks": self.num_shards,
                       "num_workers": self.num_workers},
            "positions": {str(shard): position for shard, position in self.positions.items()},
            "cursors": list(self.cursors), "next_role": self.next_role, "rng": self.rng.bit_generator.state,
            "pending": [[list(shape), [[_example_to_json(example) for example in batch] for batch in batches]]
                        for shape, batches in self.pending.items()],
        }

    def load_state(self, state: dict) -> None:
        """Resume from a position: this rank's own saved one, or one `merge_positions` made for another number of
        ranks or workers."""
        if self._pools is not None:
            raise RuntimeError("load_state must come before the first batch")
        layout = state.get("layout") or {}
        if layout.get("shards") != self.shards:
            raise CorpusError(f"the checkpoint's data position is over data.shards={layout.get('shards')}; this run "
                              f"has data.shards={self.shards}. Resume with the saved value (the shards are the "
                              f"position's unit)")
        owned = set(self.owned_shards)
        self.positions = {int(shard): position for shard, position in state["positions"].items()
                          if int(shard) in owned}
        exact = layout.get("ranks") == self.num_shards and layout.get("num_workers") == self.num_workers
        if exact and state.get("cursors") is not None:
            self.cursors, self.next_role = list(state["cursors"]), int(state["next_role"])
        if state.get("rng") is not None:
            self.rng.bit_generator.state = state["rng"]
        for shard, position in self.positions.items():  # offsets checked here, not first in a reader worker
            if position is not None:
                self._make_shard(shard).load_state(position)
        saved = {tuple(shape): batches for shape, batches in state["pending"]}
        self.pending = {shape: [[_example_from_json(item, self.parallel) for item in batch] for batch in batches]
                        for shape, batches in saved.items()}

    def fingerprint(self) -> Dict[str, dict]:
        """What identifies the corpus a data position is over: every file's name, size and sampled digest."""
        return {name: print_ for source in self.sources for name, print_ in source.fingerprint().items()}

    @staticmethod
    def check_fingerprint(saved: Dict[str, dict], current: Dict[str, dict]) -> None:
        """Raise CorpusError naming the first file added, removed or changed between two `fingerprint()`s."""
        for name in sorted(set(saved) | set(current)):
            if name not in current:
                raise CorpusError(f"{name} was in the corpus at the checkpoint and is not now")
            if name not in saved:
                raise CorpusError(f"{name} is in the corpus now and was not at the checkpoint")
            if saved[name] != current[name]:
                was, now = saved[name].get("size"), current[name]["size"]
                what = f"its size was {was} bytes and is {now}" if was != now else "its content differs"
                raise CorpusError(f"{name} changed since the checkpoint: {what}")

    def bad_lines(self) -> Counter:
        """Bad lines met in the pools consumed so far, by kind, over this rank's shards."""
        total: Counter = Counter()
        for position in self.positions.values():
            for reader_state in (position or {}).get("readers", []):
                total.update(reader_state.get("bad_lines", {}))
        return total

    def bytes_read(self) -> int:
        """Bytes read from the corpus files for the pools consumed so far, over this rank's shards."""
        return sum(reader.get("bytes_read", 0) for position in self.positions.values()
                   for reader in (position or {}).get("readers", []))

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
