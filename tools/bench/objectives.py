"""Benchmark of the pretraining objectives' training steps (forward + backward + optimizer), not a test.

Prints medians over repeated steps after a warm-up, and the ratios that matter:
- a CAMLM step with the LM head at predicted positions only, against the same step with the head over every token;
- a BTMLM step (generation pass + training step) against a CAMLM step.

Default: the base shape with the released 250,002-token vocabulary. Example:
    OMP_NUM_THREADS=2 python -m tools.bench.objectives --batch 4 --length 64 --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

if __name__ == "__main__":  # run as a program: its process-wide settings come before Paddle loads
    from ernie_m.cpu import configure_process

    configure_process()

import ernie_m  # noqa: E402
import numpy as np  # noqa: E402
import paddle  # noqa: E402
from ernie_m.objectives import BTMLM, CAMLM, Monolingual, Parallel, SpecialIds, masked_lm_loss  # noqa: E402
from ernie_m.objectives.criterion import model_inputs  # noqa: E402


def full_vocabulary_loss(model, batch):
    """The naive head: logits for every token of the batch, then the loss at the predicted ones."""
    inputs = model_inputs(model, batch)
    positions = inputs.pop("masked_positions")
    logits = model(**inputs)  # [batch, seq, vocab]
    logits = paddle.gather(logits.reshape([-1, logits.shape[-1]]), positions)
    return paddle.nn.functional.cross_entropy(logits, paddle.to_tensor(batch.masked_labels))


def timed_steps(step, repeats, warmup=1):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="ernie-m-base")
    parser.add_argument("--vocab_size", type=int, default=250002)
    parser.add_argument("--batch", type=int, default=4, help="pairs (CAMLM) or sentences (BTMLM) per step")
    parser.add_argument("--length", type=int, default=64, help="padded sequence length of a step")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    paddle.seed(0)
    rng = np.random.default_rng(0)
    config = ernie_m.ErnieMConfig.from_preset(args.preset, vocab_size=args.vocab_size)
    model = ernie_m.ErnieMForPretraining(config)
    model.train()
    optimizer = paddle.optimizer.AdamW(learning_rate=1e-5, parameters=model.parameters())
    special = SpecialIds(mask=args.vocab_size - 1)
    # Sentence lengths that fill `length` once the pair template is added.
    side = (args.length - 4) // 2
    pairs = [Parallel(rng.integers(4, args.vocab_size - 1, side), 0, rng.integers(4, args.vocab_size - 1, side), 1)
             for _ in range(args.batch)]
    sentences = [Monolingual(rng.integers(4, args.vocab_size - 1, side), 0) for _ in range(args.batch)]
    camlm = CAMLM(special, args.vocab_size, max_length=args.length)
    btmlm = BTMLM(special, args.vocab_size, max_length=args.length, target_languages=[0, 1])

    def train_on(loss):
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()

    def camlm_step():
        train_on(masked_lm_loss(model, camlm(pairs, rng))[0])

    def camlm_full_head_step():
        train_on(full_vocabulary_loss(model, camlm(pairs, rng)))

    def btmlm_step():
        train_on(masked_lm_loss(model, btmlm(sentences, rng, model=model))[0])

    figures = {
        "shape": f"{args.preset}, vocab {args.vocab_size}, batch {args.batch} x {args.length}",
        "threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "camlm_step_s": timed_steps(camlm_step, args.repeats),
        "camlm_full_vocabulary_head_step_s": timed_steps(camlm_full_head_step, args.repeats),
        "btmlm_step_s": timed_steps(btmlm_step, args.repeats),
    }
    figures["full_head_over_predicted_head"] = figures["camlm_full_vocabulary_head_step_s"] / figures["camlm_step_s"]
    figures["btmlm_over_camlm"] = figures["btmlm_step_s"] / figures["camlm_step_s"]
    for key, value in figures.items():
        print(f"{key:36s} {value:.3f}" if isinstance(value, float) else f"{key:36s} {value}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)


if __name__ == "__main__":
    main()
