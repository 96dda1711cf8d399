"""Inference side by side: the encoder's forward pass at batch 1 (latency) and batch 32 (throughput).

Backends, all with the same weights' shape and the same token ids (no padding, so no backend gains from a mask):
ours in the dynamic graph, ours exported to Paddle Inference (oneDNN on, as one would deploy it on a CPU) and to
ONNX Runtime, PaddleNLP's `ErnieMModel` in the dynamic graph, and transformers' `XLMRobertaModel` in PyTorch.
Each backend runs in a fresh process (why: the comment above BACKENDS).
"""
from __future__ import annotations

import os
import tempfile
from typing import Dict

import numpy as np

from .common import encoder_forward_flops, in_fresh_process, median_seconds, paddlenlp_config, xlmr_config


def _ours_dynamic(config):
    import paddle

    import ernie_m

    paddle.seed(0)
    model = ernie_m.ErnieMModel(config)
    model.eval()

    def run(ids: np.ndarray):
        with paddle.no_grad():
            return model(paddle.to_tensor(ids))[0].numpy()

    return model, run


def _paddlenlp(config):
    import paddle
    from paddlenlp.transformers import ErnieMModel as PaddleNLPModel

    paddle.seed(0)
    model = PaddleNLPModel(paddlenlp_config(config))
    model.eval()

    def run(ids: np.ndarray):
        with paddle.no_grad():
            return model(paddle.to_tensor(ids))[0].numpy()

    return run


def _hf_xlmr(config):
    import torch
    from transformers import XLMRobertaModel

    model = XLMRobertaModel(xlmr_config(config), add_pooling_layer=True)
    model.eval()

    def run(ids: np.ndarray):
        with torch.inference_mode():
            return model(input_ids=torch.from_numpy(ids)).last_hidden_state.numpy()

    return run


def _exported(config, directory: str, onnx: bool) -> None:
    """Our model (the same seeded weights as `_ours_dynamic`'s) exported for Paddle Inference, and to ONNX."""
    from ernie_m.inference import export, export_onnx

    model, _ = _ours_dynamic(config)
    export(model, directory)
    if onnx:
        export_onnx(directory)


def _backend_seconds(name: str, config, inputs: Dict[int, np.ndarray], repeats: int) -> Dict[str, dict]:
    """Median seconds of one backend's forward at each batch; runs in its own process (see `run`)."""
    threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count())
    with tempfile.TemporaryDirectory() as directory:
        if name.startswith("ours/dynamic"):
            forward = _ours_dynamic(config)[1]
        elif name == "ours/paddle_inference":
            from ernie_m.inference import StaticPredictor

            _exported(config, directory, onnx=False)
            predictor = StaticPredictor(directory, onednn=True, threads=threads)
            forward = lambda ids: predictor(ids)[0]  # noqa: E731
        elif name == "ours/onnxruntime":
            from ernie_m.inference import OnnxPredictor

            _exported(config, directory, onnx=True)
            session = OnnxPredictor(directory, threads=threads)
            forward = lambda ids: session(ids)[0]  # noqa: E731
        elif name == "paddlenlp/dynamic":
            forward = _paddlenlp(config)
        elif name == "hf/xlmr_torch":
            forward = _hf_xlmr(config)
        else:
            raise ValueError(f"unknown backend {name!r}")
        return {f"batch_{batch}": median_seconds(lambda: forward(ids), repeats) for batch, ids in inputs.items()}


# Each backend runs in a fresh process: once a Paddle Inference predictor has run in a process, Paddle's eager
# matrix multiplies there slow down (2048^2: 368 -> 248 GFLOP/s; our forward at 32 x 128: 2.5 -> 3.9-4.2 s, measured),
# which in one shared process penalised the dynamic-graph backends measured after it. Every backend uses the
# default malloc, as a library's users get it; ours also with freed memory kept, to show what that is worth.
BACKENDS = [("ours/dynamic", False), ("ours/paddle_inference", False), ("ours/onnxruntime", False),
            ("paddlenlp/dynamic", False), ("hf/xlmr_torch", False), ("ours/dynamic (kept memory)", True)]


def run(config, length: int, batches, repeats: int, peak_gflops: float) -> Dict[str, object]:
    rng = np.random.default_rng(0)
    inputs = {batch: rng.integers(4, config.vocab_size - 1, (batch, length)).astype(np.int64) for batch in batches}
    results: Dict[str, Dict[str, dict]] = {}
    for name, keep in BACKENDS:
        figures_by_batch = in_fresh_process(_backend_seconds, (name, config, inputs, repeats), keep)
        for batch in batches:
            figures = figures_by_batch[f"batch_{batch}"]
            figures["sequences_per_s"] = batch / figures["median_s"]
            figures["mfu"] = encoder_forward_flops(config.hidden_size, config.num_hidden_layers,
                                                   config.intermediate_size, batch, length) / \
                figures["median_s"] / (peak_gflops * 1e9)
            results.setdefault(name, {})[f"batch_{batch}"] = figures

    largest = f"batch_{max(batches)}"
    ratios = {f"{name}_over_hf_xlmr_{largest}": results[name][largest]["sequences_per_s"] /
              results["hf/xlmr_torch"][largest]["sequences_per_s"] for name in results if name != "hf/xlmr_torch"}
    return {"length": length, "results": results, "ratios": ratios}
