"""What every benchmark section shares: median timing, the matrix-multiply peak, FLOP counts, the machine."""
from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from typing import Callable, Dict, List


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


def free_memory() -> None:
    gc.collect()


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> Dict[str, float]:
    """float32 matrix-multiply throughput of Paddle and of torch in this process: the denominator of MFU.

    Square `size` matrices are large enough to run at the BLAS kernel's best on a CPU; the better of the two
    libraries is taken as the machine's peak, so neither framework's MFU can exceed 100% by using the other's BLAS.
    """
    import numpy as np
    import paddle

    flops = 2.0 * size ** 3
    a = paddle.to_tensor(np.random.rand(size, size).astype("float32"))
    b = paddle.to_tensor(np.random.rand(size, size).astype("float32"))
    figures = {"paddle": flops / median_seconds(lambda: paddle.matmul(a, b).numpy(), repeats)["median_s"] / 1e9}
    try:
        import torch

        x, y = torch.rand(size, size), torch.rand(size, size)
        figures["torch"] = flops / median_seconds(lambda: torch.matmul(x, y), repeats)["median_s"] / 1e9
    except ImportError:
        pass
    figures["peak"] = max(figures.values())
    return figures


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
