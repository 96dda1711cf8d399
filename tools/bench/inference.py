"""Inference side by side: the encoder's forward pass at batch 1 (latency) and batch 32 (throughput).

Backends, all with the same weights' shape and the same token ids (no padding, so no backend gains from a mask):
ours in the dynamic graph, ours exported to Paddle Inference (oneDNN on, as one would deploy it on a CPU) and to
ONNX Runtime, PaddleNLP's `ErnieMModel` in the dynamic graph, and transformers' `XLMRobertaModel` in PyTorch.
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable, Dict

import numpy as np

from .common import encoder_forward_flops, free_memory, median_seconds, paddlenlp_config, xlmr_config


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


def run(config, length: int, batches, repeats: int, peak_gflops: float) -> Dict[str, object]:
    from ernie_m.inference import OnnxPredictor, StaticPredictor, export, export_onnx

    threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count())
    rng = np.random.default_rng(0)
    inputs = {batch: rng.integers(4, config.vocab_size - 1, (batch, length)).astype(np.int64) for batch in batches}
    results: Dict[str, Dict[str, dict]] = {}

    def measure(name: str, forward: Callable[[np.ndarray], object]):
        for batch, ids in inputs.items():
            figures = median_seconds(lambda: forward(ids), repeats)
            figures["sequences_per_s"] = batch / figures["median_s"]
            figures["mfu"] = encoder_forward_flops(config.hidden_size, config.num_hidden_layers,
                                                   config.intermediate_size, batch, length) / \
                figures["median_s"] / (peak_gflops * 1e9)
            results.setdefault(name, {})[f"batch_{batch}"] = figures

    model, forward = _ours_dynamic(config)
    measure("ours/dynamic", forward)
    with tempfile.TemporaryDirectory() as directory:
        export(model, directory)
        del model, forward
        free_memory()
        predictor = StaticPredictor(directory, onednn=True, threads=threads)
        measure("ours/paddle_inference", lambda ids, run=predictor: run(ids)[0])
        del predictor
        free_memory()
        export_onnx(directory)
        session = OnnxPredictor(directory, threads=threads)
        measure("ours/onnxruntime", lambda ids, run=session: run(ids)[0])
        del session
        free_memory()
    forward = _paddlenlp(config)
    measure("paddlenlp/dynamic", forward)
    del forward
    free_memory()
    forward = _hf_xlmr(config)
    measure("hf/xlmr_torch", forward)
    del forward
    free_memory()

    largest = f"batch_{max(batches)}"
    ratios = {f"{name}_over_hf_xlmr_{largest}": results[name][largest]["sequences_per_s"] /
              results["hf/xlmr_torch"][largest]["sequences_per_s"] for name in results if name != "hf/xlmr_torch"}
    return {"length": length, "results": results, "ratios": ratios}
