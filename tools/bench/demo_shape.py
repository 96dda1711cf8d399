"""`--preset demo`: the shape the demo pretrains at, read from the demo's own settings, so that the benchmark follows
the demo when they change: model preset and overrides (dropout off) and the first stage's length and token budget
from `pretrain/configs/demo.yaml`, the vocabulary and CAMLM's masking rate from `tools/demo/run.py`'s standard
preset, the language-embedding size from the demo's languages, and the threads each demo job gets on this machine
(the demo runs one job per core, each on cores // jobs threads)."""
from __future__ import annotations

import os

from ernie_m.pretraining.config import load_config
from tools.demo.corpus import MONOLINGUAL_ONLY_LANGUAGES, PARALLEL_LANGUAGES
from tools.demo.run import CONFIG, PRESETS


def demo_shape() -> dict:
    config = load_config(CONFIG, ["tokenizer=unused"])  # the demo fills in its tokenizer; the shape needs none
    stage = config.stages[0]
    standard = PRESETS["standard"]
    cores = os.cpu_count() or 1
    jobs = max(1, cores)  # tools.demo.run: --jobs defaults to one per core
    return {
        "model_preset": config.model.preset,
        "overrides": {**config.model.overrides,
                      "num_languages": len({"en", *PARALLEL_LANGUAGES, *MONOLINGUAL_ONLY_LANGUAGES})},
        "vocab_size": standard["vocab_size"],
        "length": stage.max_length,
        "train_batch": stage.batch_tokens // stage.max_length,
        "camlm_mask_prob": standard["camlm_mask_prob"],
        "threads": max(1, cores // jobs),
    }
