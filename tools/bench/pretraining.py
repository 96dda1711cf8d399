"""Pretraining steps side by side: ours (CAMLM, BTMLM) against a naive PaddleNLP step and HF XLM-R in PyTorch.

Every variant trains on the same tokens: one CAMLM batch of `batch` translation pairs padded to `length`, with
CAMLM's attention pattern and its predicted positions. A step is forward, backward and an AdamW update.
- ours/camlm: `ErnieMForPretraining` with the LM head at the predicted positions only.
- ours/btmlm: BTMLM's generation pass (placeholders filled by the model) plus the training step on the result.
- ours/camlm_building_its_batch: CAMLM building its batch from the pairs (masking, layout) every step, then the
  step: what BTMLM's step (which builds its batch every step too) is compared with.
- paddlenlp/naive: PaddleNLP's `ErnieMModel` with the same head (dense, GELU, LayerNorm, projection tied to the
  word embeddings) run over every token, and the loss at the predicted ones (labels -100 elsewhere).
- hf/xlmr: transformers' `XLMRobertaForMaskedLM` (the same shape; its head also runs over every token) in PyTorch
  with `torch.optim.AdamW`.
The encoder alone (ours) is also timed forward + backward, for its model FLOPs utilisation.

Each variant runs in a fresh process. Ours run with the allocator setting our training entry points make on CPU
(ernie_m/cpu.py keep_freed_memory), the peers as their users get them; ours CAMLM without the setting and the peers
with it are timed too, so the table shows what the setting is worth on each side.
"""
from __future__ import annotations

import statistics
from typing import Dict

import numpy as np

from .common import (
    encoder_forward_flops, in_fresh_process, lm_head_forward_flops, median_seconds, paddlenlp_config, xlmr_config,
)

DEFAULT_MALLOC, KEPT_MEMORY = " (default malloc)", " (kept memory)"
# Untimed steps before the timed ones. With freed memory kept, the heap grows over the first two or three steps
# until every large tensor finds a free block (measured: 187 thousand page faults a step, then none); the figures
# are for the steady state a long run spends its time in. Every variant gets the same warm-up.
WARMUP = 4


def _camlm_examples(config, batch: int, length: int, mask_prob: float, seed: int = 0):
    """(CAMLM objective, translation pairs filling `length`, its random generator)."""
    from ernie_m.objectives import CAMLM, MaskingConfig, Parallel, SpecialIds

    rng = np.random.default_rng(seed)
    vocab = config.vocab_size
    side = (length - 4) // 2  # [CLS] a [SEP] [SEP] b [SEP]
    pairs = [Parallel(rng.integers(4, vocab - 1, side), 0, rng.integers(4, vocab - 1, side), 1) for _ in range(batch)]
    camlm = CAMLM(SpecialIds(mask=vocab - 1), vocab, max_length=length, masking=MaskingConfig(mask_prob=mask_prob))
    return camlm, pairs, rng


def _camlm_batch(config, batch: int, length: int, mask_prob: float, seed: int = 0):
    camlm, pairs, rng = _camlm_examples(config, batch, length, mask_prob, seed)
    return camlm(pairs, rng)


def _monolingual(config, batch: int, length: int, seed: int = 1):
    from ernie_m.objectives import Monolingual

    rng = np.random.default_rng(seed)
    return [Monolingual(rng.integers(4, config.vocab_size - 1, (length - 4) // 2), 0) for _ in range(batch)]


def _ours_trainer(config):
    """Our pretraining model and a function doing one training step (forward, backward, AdamW) on a batch."""
    import paddle

    import ernie_m
    from ernie_m.objectives import masked_lm_loss

    paddle.seed(0)
    model = ernie_m.ErnieMForPretraining(config)
    model.train()
    optimizer = paddle.optimizer.AdamW(learning_rate=1e-5, parameters=model.parameters())

    def train_on(batch):
        loss, _ = masked_lm_loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()

    return model, train_on


def _ours_camlm(config, batch_data, repeats: int) -> Dict[str, dict]:
    _, train_on = _ours_trainer(config)
    return {"ours/camlm": median_seconds(lambda: train_on(batch_data), repeats, WARMUP)}


def _ours(config, batch_data, sentences, repeats: int, mask_prob: float) -> Dict[str, dict]:
    """CAMLM on the shared batch; CAMLM building its batch from the pairs every step, as a training run does; BTMLM
    building its batch (the generation pass is part of that) every step."""
    from ernie_m.objectives import BTMLM, SpecialIds

    model, train_on = _ours_trainer(config)
    rng = np.random.default_rng(2)
    length = batch_data.input_ids.shape[1]
    btmlm = BTMLM(SpecialIds(mask=config.vocab_size - 1), config.vocab_size, max_length=length,
                  target_languages=[0, 1])
    out = {"ours/camlm": median_seconds(lambda: train_on(batch_data), repeats, WARMUP)}
    camlm, pairs, camlm_rng = _camlm_examples(config, len(sentences), length, mask_prob)
    out["ours/camlm_building_its_batch"] = median_seconds(lambda: train_on(camlm(pairs, camlm_rng)), repeats, WARMUP)
    btmlm_shapes = []

    def btmlm_step():
        batch = btmlm(sentences, rng, model=model)
        btmlm_shapes.append(batch.input_ids.shape)
        train_on(batch)

    out["ours/btmlm"] = median_seconds(btmlm_step, repeats, WARMUP)
    out["ours/btmlm"]["tokens"] = int(np.prod(btmlm_shapes[-1]))
    return out


def _ours_encoder(config, batch_data, repeats: int) -> Dict[str, dict]:
    """The encoder alone, forward + backward (no head, no optimizer), for its MFU."""
    import paddle

    import ernie_m

    paddle.seed(0)
    encoder = ernie_m.ErnieMModel(config)
    encoder.train()
    ids = paddle.to_tensor(batch_data.input_ids)

    def encoder_step():
        encoder(ids)[0].sum().backward()
        encoder.clear_gradients()

    return {"ours/encoder_fwd_bwd": median_seconds(encoder_step, repeats, WARMUP)}


def _paddlenlp_naive(config, batch_data, repeats: int) -> Dict[str, dict]:
    import paddle
    import paddle.nn as nn
    import paddle.nn.functional as F
    from paddlenlp.transformers import ErnieMModel as PaddleNLPModel

    paddle.seed(0)
    encoder = PaddleNLPModel(paddlenlp_config(config))
    hidden, vocab = config.hidden_size, config.vocab_size
    dense, norm = nn.Linear(hidden, hidden), nn.LayerNorm(hidden, epsilon=1e-5)
    bias = paddle.create_parameter([vocab], "float32", is_bias=True)
    parameters = encoder.parameters() + dense.parameters() + norm.parameters() + [bias]
    optimizer = paddle.optimizer.AdamW(learning_rate=1e-5, parameters=parameters)
    encoder.train()
    labels = np.full(batch_data.input_ids.size, -100, dtype=np.int64)
    labels[batch_data.masked_positions] = batch_data.masked_labels
    labels = paddle.to_tensor(labels)
    ids = paddle.to_tensor(batch_data.input_ids)
    mask = paddle.to_tensor((1.0 - batch_data.attention_mask.astype("float32"))[:, None] * -1e4)

    def step():
        positions = paddle.to_tensor(batch_data.position_ids)  # PaddleNLP adds 2 to it in place
        sequence = encoder(ids, position_ids=positions, attention_mask=mask)[0]
        transformed = norm(F.gelu(dense(sequence)))
        logits = paddle.matmul(transformed, encoder.embeddings.word_embeddings.weight, transpose_y=True) + bias
        loss = F.cross_entropy(logits.reshape([-1, vocab]), labels, ignore_index=-100)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()

    return {"paddlenlp/naive": median_seconds(step, repeats, WARMUP)}


def _hf_xlmr(config, batch_data, repeats: int) -> Dict[str, dict]:
    import torch
    from transformers import XLMRobertaForMaskedLM

    model = XLMRobertaForMaskedLM(xlmr_config(config))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    labels = np.full(batch_data.input_ids.size, -100, dtype=np.int64)
    labels[batch_data.masked_positions] = batch_data.masked_labels
    inputs = {
        "input_ids": torch.from_numpy(batch_data.input_ids),
        "attention_mask": torch.from_numpy(batch_data.attention_mask.astype(np.int64)),  # [batch, seq, seq]
        "labels": torch.from_numpy(labels.reshape(batch_data.input_ids.shape)),
    }

    def step():
        model(**inputs).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return {"hf/xlmr": median_seconds(step, repeats, WARMUP)}


def run(config, batch: int, length: int, repeats: int, peak_gflops: float, camlm_mask_prob: float = 0.15,
        rounds: int = 1) -> Dict[str, object]:
    """`rounds` > 1 runs the whole plan again that many times (every variant in a fresh process each round) and
    takes each variant's median over all its timed steps, so that a slow spell of a shared machine falls on every
    variant rather than on whichever ran during it."""
    batch_data = _camlm_batch(config, batch, length, camlm_mask_prob)
    sentences = _monolingual(config, batch, length)
    plan = [  # (variant, its arguments, keep freed memory, suffix of its names)
        (_ours, (config, batch_data, sentences, repeats, camlm_mask_prob), True, ""),
        (_ours_encoder, (config, batch_data, repeats), True, ""),
        (_paddlenlp_naive, (config, batch_data, repeats), False, ""),
        (_hf_xlmr, (config, batch_data, repeats), False, ""),
        (_ours_camlm, (config, batch_data, repeats), False, DEFAULT_MALLOC),
        (_paddlenlp_naive, (config, batch_data, repeats), True, KEPT_MEMORY),
        (_hf_xlmr, (config, batch_data, repeats), True, KEPT_MEMORY),
    ]
    steps = {}
    for _ in range(rounds):
        for variant, arguments, keep, suffix in plan:
            for name, figures in in_fresh_process(variant, arguments, keep).items():
                if name + suffix in steps:
                    figures = dict(figures, runs_s=steps[name + suffix]["runs_s"] + figures["runs_s"])
                    figures["median_s"] = statistics.median(figures["runs_s"])
                steps[name + suffix] = figures

    tokens = int(batch_data.input_ids.size)
    predicted = int(len(batch_data.masked_positions))
    hidden, layers, inner, vocab = config.hidden_size, config.num_hidden_layers, config.intermediate_size, \
        config.vocab_size
    encoder = encoder_forward_flops(hidden, layers, inner, batch, length)
    step_flops = {  # a training step is about 3x its forward matrix work (forward, and two products backward)
        "ours/camlm": 3 * (encoder + lm_head_forward_flops(hidden, vocab, predicted)),
        "paddlenlp/naive": 3 * (encoder + lm_head_forward_flops(hidden, vocab, tokens)),
        "hf/xlmr": 3 * (encoder + lm_head_forward_flops(hidden, vocab, tokens)),
        "ours/encoder_fwd_bwd": 3 * encoder,
    }
    for name, figures in steps.items():
        figures["tokens_per_s"] = figures.get("tokens", tokens) / figures["median_s"]
        figures["steps_per_s"] = 1.0 / figures["median_s"]
        flops = step_flops.get(name.replace(DEFAULT_MALLOC, "").replace(KEPT_MEMORY, ""))
        if flops is not None:
            figures["model_tflops"] = flops / 1e12
            figures["mfu"] = flops / figures["median_s"] / (peak_gflops * 1e9)
    base = steps["ours/camlm"]["tokens_per_s"]
    ratios = {  # ours as the entry points run it, over each peer as its users get it, then with the same malloc
        "camlm_over_paddlenlp_naive": base / steps["paddlenlp/naive"]["tokens_per_s"],
        "camlm_over_hf_xlmr": base / steps["hf/xlmr"]["tokens_per_s"],
        "camlm_over_paddlenlp_naive_both_kept_memory": base / steps["paddlenlp/naive" + KEPT_MEMORY]["tokens_per_s"],
        "camlm_over_hf_xlmr_both_kept_memory": base / steps["hf/xlmr" + KEPT_MEMORY]["tokens_per_s"],
        "camlm_over_paddlenlp_naive_both_default_malloc":
            steps["ours/camlm" + DEFAULT_MALLOC]["tokens_per_s"] / steps["paddlenlp/naive"]["tokens_per_s"],
        "camlm_over_hf_xlmr_both_default_malloc":
            steps["ours/camlm" + DEFAULT_MALLOC]["tokens_per_s"] / steps["hf/xlmr"]["tokens_per_s"],
        # Both steps building their batches, as in a training run (the generation pass is BTMLM's batch building),
        # and BTMLM's against CAMLM's on a batch built beforehand.
        "btmlm_over_camlm_time": steps["ours/btmlm"]["median_s"] / steps["ours/camlm_building_its_batch"]["median_s"],
        "btmlm_over_prebuilt_camlm_time": steps["ours/btmlm"]["median_s"] / steps["ours/camlm"]["median_s"],
    }
    return {"tokens_per_step": tokens, "predicted_per_step": predicted, "warmup_steps": WARMUP, "rounds": rounds,
            "steps": steps,
            "ratios": ratios}
