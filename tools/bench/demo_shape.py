"""`--preset demo`: the shape the demo pretrains at, read from the demo's own settings, so that the benchmark follows
the demo when they change: model preset and overrides (dropout off) and the first stage's length and token budget
from `pretrain/configs/demo.yaml`; the vocabulary, CAMLM's masking rate and the threads each job gets from
`tools/demo/run.py`'s defaults (its standard preset, one job per core); the language-embedding size from the demo's
languages."""
from __future__ import annotations

from ernie_m.pretraining.config import load_config
from tools.demo.corpus import MONOLINGUAL_ONLY_LANGUAGES, PARALLEL_LANGUAGES
from tools.demo.run import CONFIG, parse_args, threads_per_job


def demo_shape() -> dict:
    config = load_config(CONFIG, ["tokenizer=unused"])  # the demo fills in its tokenizer; the shape needs none
    stage = config.stages[0]
    demo = parse_args([])  # `make demo`'s settings
    return {
        "model_preset": config.model.preset,
        "overrides": {**config.model.overrides,
                      "num_languages": len({"en", *PARALLEL_LANGUAGES, *MONOLINGUAL_ONLY_LANGUAGES})},
        "vocab_size": demo.vocab_size,
        "length": stage.max_length,
        "train_batch": stage.batch_tokens // stage.max_length,
        "camlm_mask_prob": demo.camlm_mask_prob,
        "threads": threads_per_job(demo.threads, demo.jobs),
    }
