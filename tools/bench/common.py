"""What every benchmark section shares: median timing, the matrix-multiply peak, FLOP counts, the machine."""
from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable, Dict, List, Optional


def median_seconds(step: Callable[[], object], repeats: int, warmup: int = 1) -> Dict[str, object]:
    """Median wall time of `step` over `repeats` runs after `warmup` untimed ones (the first runs pay for kernel
    selection and allocation)."""
    for _ in range(warmup):
        step()
    runs: List[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        runs.append(time.perf_counter() - start)
    return {"median_s": statistics.median(runs), "runs_s": runs}


def in_fresh_process(function: Callable, args: tuple, keep_freed_memory: bool):
    """`function(*args)` in a new process (spawned: nothing inherited but the environment), so that no variant runs
    on memory or thread state another left behind (a Paddle Inference predictor that has run slows Paddle's eager
    kernels in its process), and a process-wide allocator setting reaches only the variant it is meant for.
    `keep_freed_memory`: make the setting the training entry points make on CPU (ernie_m/cpu.py)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if SHARED_PROCESS["on"]:
        return _run_here(function, args, keep_freed_memory)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_run_here, function, args, keep_freed_memory).result()


# `--shared_process`: every variant in the benchmark's own process. For smoke tests of the tool only: the figures
# then carry each other's memory and thread state and are not comparable.
SHARED_PROCESS = {"on": False}


def _run_here(function: Callable, args: tuple, keep_freed_memory: bool):
    import ernie_m.cpu

    ernie_m.cpu.configure_process()  # before Paddle loads in this process: MKL's kernels
    if keep_freed_memory:
        ernie_m.cpu.keep_freed_memory()
    return function(*args)


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> Dict[str, float]:
    """float32 matrix-multiply throughput by each library a backend here uses: Paddle's eager kernel (MKL), Paddle
    Inference's oneDNN, and PyTorch, each in a fresh process (a predictor that has run slows Paddle's eager kernels
    in its process; see inference.py). The best is the machine's peak, the denominator of every MFU, so that no
    backend's MFU can exceed 100% by using a better library than the peak was measured with."""
    figures = {"paddle": in_fresh_process(_paddle_matmul_gflops, (size, repeats), False),
               "paddle_inference_onednn": in_fresh_process(_onednn_matmul_gflops, (size, repeats), False)}
    torch_figure = in_fresh_process(_torch_matmul_gflops, (size, repeats), False)
    if torch_figure is not None:
        figures["torch"] = torch_figure
    figures["peak"] = max(figures.values())
    return figures


def _paddle_matmul_gflops(size: int, repeats: int) -> float:
    import numpy as np
    import paddle

    a = paddle.to_tensor(np.random.rand(size, size).astype("float32"))
    b = paddle.to_tensor(np.random.rand(size, size).astype("float32"))
    return 2.0 * size ** 3 / median_seconds(lambda: paddle.matmul(a, b).numpy(), repeats)["median_s"] / 1e9


def _torch_matmul_gflops(size: int, repeats: int) -> Optional[float]:
    try:
        import torch
    except ImportError:
        return None
    x, y = torch.rand(size, size), torch.rand(size, size)
    return 2.0 * size ** 3 / median_seconds(lambda: torch.matmul(x, y), repeats)["median_s"] / 1e9


def _onednn_matmul_gflops(size: int, repeats: int) -> float:
    return 2.0 * size ** 3 / _onednn_matmul_seconds(size, repeats) / 1e9


def _onednn_matmul_seconds(size: int, repeats: int) -> float:
    """One matmul exported as a static graph and run by Paddle Inference with oneDNN, as the predictors run."""
    import tempfile

    import numpy as np
    import paddle

    class MatMul(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.weight = self.create_parameter([size, size])

        def forward(self, x):
            return paddle.matmul(x, self.weight)

    threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count())
    with tempfile.TemporaryDirectory() as directory:
        prefix = os.path.join(directory, "matmul")
        spec = [paddle.static.InputSpec([size, size], "float32", "x")]
        paddle.jit.save(paddle.jit.to_static(MatMul(), input_spec=spec, full_graph=True), prefix)
        config = paddle.inference.Config(prefix + ".json", prefix + ".pdiparams")
        config.disable_gpu()
        config.enable_mkldnn()
        config.set_cpu_math_library_num_threads(threads)
        predictor = paddle.inference.create_predictor(config)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.copy_from_cpu(np.random.rand(size, size).astype("float32"))
    output = predictor.get_output_handle(predictor.get_output_names()[0])
    seconds = median_seconds(predictor.run, repeats)["median_s"]
    output.copy_to_cpu()  # the product was computed (copying it out is not matrix work, so it is not timed)
    return seconds


def paddlenlp_config(config):
    """PaddleNLP's ErnieMConfig with our config's shape and dropout (the peer in every Paddle comparison)."""
    from paddlenlp.transformers import ErnieMConfig as PaddleNLPConfig

    return PaddleNLPConfig(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position_embeddings, hidden_dropout_prob=config.hidden_dropout_prob,
        attention_probs_dropout_prob=config.attention_probs_dropout_prob)


def xlmr_config(config):
    """transformers' XLMRobertaConfig with our config's shape and dropout, and torch on this run's threads."""
    import torch
    from transformers import XLMRobertaConfig

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count()))
    torch.manual_seed(0)
    return XLMRobertaConfig(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position_embeddings, type_vocab_size=1, layer_norm_eps=1e-5,
        pad_token_id=1, hidden_dropout_prob=config.hidden_dropout_prob,
        attention_probs_dropout_prob=config.attention_probs_dropout_prob)


def encoder_forward_flops(hidden: int, layers: int, intermediate: int, batch: int, length: int) -> float:
    """Matrix FLOPs of one encoder forward pass: Q, K, V and output projections, the two feed-forward layers, and
    the two attention products (scores and context). Embedding lookups, norms and softmax are not matrix work."""
    tokens = batch * length
    projections = 4 * 2 * tokens * hidden * hidden
    feed_forward = 2 * 2 * tokens * hidden * intermediate
    attention = 2 * 2 * batch * length * length * hidden
    return float(layers * (projections + feed_forward + attention))


def lm_head_forward_flops(hidden: int, vocab: int, positions: int) -> float:
    """The LM head at `positions` tokens: the dense transform and the tied projection onto the vocabulary."""
    return float(2 * positions * hidden * hidden + 2 * positions * hidden * vocab)


def machine() -> Dict[str, object]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {}
    for name in ("paddle", "paddlenlp", "torch", "transformers", "onnxruntime", "sentencepiece", "tokenizers"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "python": platform.python_version(), **versions}
