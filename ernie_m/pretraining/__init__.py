"""Pretraining: the typed configuration (`config`), the run (`trainer.Pretraining`, behind `pretrain/run_pretrain.py`),
and what it is built from: corpus readers, example streams, the objective schedule, held-out evaluation and
training checkpoints."""
from .corpus import CorpusError, LineReader, find_monolingual_files, find_parallel_files
from .data import ExampleStream, sampling_probabilities
from .schedule import Stage, objective_at, stage_at

__all__ = ["CorpusError", "LineReader", "find_parallel_files", "find_monolingual_files", "ExampleStream",
           "sampling_probabilities", "Stage", "stage_at", "objective_at"]
