"""Example streams for the pretraining loop: language sampling, tokenization, length bucketing, resumable state.

One `ExampleStream` per data kind (parallel or monolingual). Each draw picks a file with XLM-R's smoothed
probability p_i ∝ q_i^alpha (q_i = the file's share of the corpus bytes), so small languages are not drowned;
alpha = 1 keeps the natural distribution, alpha = 0 is uniform.

Length bucketing: a stream reads and tokenizes `bucket_batches` batches' worth of examples, sorts them by length,
cuts them into batches of neighbours (by count, or by a budget of padded tokens) and hands those out in random
order, which cuts padding without changing what is seen.
Everything that decides the next batch (reader positions, the pending batches, the generator) is in `state()`.
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Dict, List, Optional, Sequence

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
        # Batches already bucketed: (raw (file index, fields) pairs, for the state; their tokenized examples).
        self.pending: List[tuple] = []
        self._pending_shape: tuple = (None, None)

    # ---- state ----------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "readers": [reader.state() for reader in self.readers],
            "rng": self.rng.bit_generator.state,
            "pending": [[[index, list(fields)] for index, fields in raw] for raw, _ in self.pending],
            "pending_shape": list(self._pending_shape),
        }

    def load_state(self, state: dict) -> None:
        for reader, reader_state in zip(self.readers, state["readers"]):
            reader.load_state(reader_state)
        self._iterators = [iter(reader) for reader in self.readers]
        self.rng.bit_generator.state = state["rng"]
        raws = [[(index, tuple(fields)) for index, fields in batch] for batch in state["pending"]]
        self.pending = [(raw, self._tokenize(raw)) for raw in raws]
        self._pending_shape = tuple(state["pending_shape"])

    def bad_lines(self) -> Counter:
        total: Counter = Counter()
        for reader in self.readers:
            total.update(reader.bad_lines)
        return total

    # ---- batches --------------------------------------------------------------------------------------------
    def _tokenize(self, raw) -> list:
        """(file index, text fields) -> `Parallel` / `Monolingual` examples, one batched tokenizer call."""
        width = 2 if self.parallel else 1
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

    @staticmethod
    def _template_length(example) -> int:
        if isinstance(example, Parallel):
            return len(example.source) + len(example.target) + 4
        return len(example.tokens) + 2

    def _refill(self, batch_size: int, max_tokens: Optional[int]) -> None:
        chosen = self.rng.choice(len(self.files), size=batch_size * self.bucket_batches, p=self.probabilities)
        raw = [(int(index), next(self._iterators[index])[1]) for index in chosen]
        examples = self._tokenize(raw)
        lengths = [self._template_length(example) for example in examples]
        order = sorted(range(len(raw)), key=lengths.__getitem__)
        batches, current, longest = [], [], 0
        for i in order:
            # A batch closes at batch_size examples or when one more would pass max_tokens padded tokens.
            grown = max(longest, lengths[i]) * (len(current) + 1)
            if current and (len(current) == batch_size or (max_tokens and grown > max_tokens)):
                batches.append(current)
                current, longest = [], 0
            current.append(i)
            longest = max(longest, lengths[i])
        batches.append(current)
        self.pending = [([raw[i] for i in batches[b]], [examples[i] for i in batches[b]])
                        for b in self.rng.permutation(len(batches))]
        self._pending_shape = (batch_size, max_tokens)

    def next_batch(self, batch_size: int, max_tokens: Optional[int] = None):
        """Up to `batch_size` tokenized examples of similar length, at most `max_tokens` padded tokens if given."""
        if not self.pending or self._pending_shape != (batch_size, max_tokens):
            # (a new stage with another batch shape drops the batches bucketed for the old one)
            self._refill(batch_size, max_tokens)
        return self.pending.pop(0)[1]
