"""Example streams for the pretraining loop: language sampling, tokenization, length bucketing, resumable state.

One `ExampleStream` per data kind (parallel or monolingual). Each draw picks a file with XLM-R's smoothed
probability p_i ∝ q_i^alpha (q_i = the file's share of the corpus bytes), so small languages are not drowned;
alpha = 1 keeps the natural distribution, alpha = 0 is uniform.

Length bucketing: a stream reads `bucket_batches` batches' worth of examples, sorts them by text length, cuts them into
batches of neighbours and hands those out in random order, which cuts padding without changing what is seen.
Everything that decides the next batch (reader positions, the pending batches, the generator) is in `state()`.
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Dict, List, Sequence

import numpy as np

from ..objectives.examples import Monolingual, Parallel
from .corpus import CorpusError, LineReader, ParallelFile

__all__ = ["sampling_probabilities", "ExampleStream"]


def sampling_probabilities(sizes: Sequence[float], alpha: float) -> np.ndarray:
    """p_i ∝ (size_i / total)^alpha."""
    sizes = np.asarray(sizes, dtype=np.float64)
    if (sizes <= 0).any():
        raise CorpusError("every corpus file must be non-empty")
    shares = sizes / sizes.sum()
    weights = shares ** alpha
    return weights / weights.sum()


class ExampleStream:
    """Tokenized examples of one kind, drawn across languages, in length-bucketed batches.

    Args:
        files: `ParallelFile`s or `MonolingualFile`s.
        tokenizer: an `ErnieMTokenizer` (its `encode_batch_ids` does the work).
        language_ids: language code -> id; every file's languages must be in it.
        shard / num_shards: this process's share of every file's lines.
    """

    def __init__(self, files, tokenizer, language_ids: Dict[str, int], alpha: float, seed: int,
                 shard: int = 0, num_shards: int = 1, bucket_batches: int = 8):
        if not files:
            raise CorpusError("no corpus files for this stream")
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
        self.tokenizer = tokenizer
        self.language_ids = language_ids
        self.readers = [LineReader(f.path, 2 if self.parallel else 1, shard, num_shards) for f in self.files]
        self._iterators = [iter(reader) for reader in self.readers]
        self.probabilities = sampling_probabilities([os.path.getsize(f.path) for f in self.files], alpha)
        self.rng = np.random.default_rng(seed)
        self.bucket_batches = bucket_batches
        self.pending: List[list] = []  # batches already bucketed, as lists of raw (file index, fields)

    # ---- state ----------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "readers": [reader.state() for reader in self.readers],
            "rng": self.rng.bit_generator.state,
            "pending": [[[index, list(fields)] for index, fields in batch] for batch in self.pending],
        }

    def load_state(self, state: dict) -> None:
        for reader, reader_state in zip(self.readers, state["readers"]):
            reader.load_state(reader_state)
        self._iterators = [iter(reader) for reader in self.readers]
        self.rng.bit_generator.state = state["rng"]
        self.pending = [[(index, tuple(fields)) for index, fields in batch] for batch in state["pending"]]

    def bad_lines(self) -> Counter:
        total: Counter = Counter()
        for reader in self.readers:
            total.update(reader.bad_lines)
        return total

    # ---- batches --------------------------------------------------------------------------------------------
    def _refill(self, batch_size: int) -> None:
        chosen = self.rng.choice(len(self.files), size=batch_size * self.bucket_batches, p=self.probabilities)
        raw = [(int(index), next(self._iterators[index])[1]) for index in chosen]
        raw.sort(key=lambda item: sum(len(field) for field in item[1]))
        batches = [raw[i:i + batch_size] for i in range(0, len(raw), batch_size)]
        order = self.rng.permutation(len(batches))
        self.pending = [batches[i] for i in order]

    def next_batch(self, batch_size: int):
        """`batch_size` examples (`Parallel` or `Monolingual`), tokenized."""
        if not self.pending or len(self.pending[0]) != batch_size:
            # (a new stage with another batch size drops the batches bucketed for the old one)
            self._refill(batch_size)
        raw = self.pending.pop(0)
        texts = [field for _, fields in raw for field in fields]
        ids = self.tokenizer.encode_batch_ids(texts)
        examples = []
        width = 2 if self.parallel else 1
        for position, (index, _) in enumerate(raw):
            file = self.files[index]
            tokens = [np.asarray(t, dtype=np.int64) for t in ids[position * width:(position + 1) * width]]
            if self.parallel:
                examples.append(Parallel(tokens[0], self.language_ids[file.source_language], tokens[1],
                                         self.language_ids[file.target_language]))
            else:
                examples.append(Monolingual(tokens[0], self.language_ids[file.language]))
        return examples
