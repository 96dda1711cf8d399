"""Process-wide settings for the programs that own their process (the pretraining and fine-tuning entries, the
`ernie-m` command, the test suite): the math library's kernel choice, malloc's reuse of freed memory, other
libraries' log noise. The library never makes them on import; `configure_process()` does, before Paddle loads.

- MKL on AMD: Paddle's CPU wheel links MKL-ML (2019), which takes its generic kernels on AMD processors.
  `MKL_DEBUG_CPU_TYPE` makes it take those of an instruction set (7 with AVX-512 F/BW/DQ/VL, else 5 with AVX2),
  only on AMD, never over a value the user set, and only before Paddle is imported (MKL reads it once, at load).
- `keep_freed_memory()`: glibc serves blocks over 32 MiB with mmap and unmaps them on free, so a training step's
  large tensors (embedding gradients, vocabulary logits) arrive as fresh pages; the setting keeps freed memory for
  reuse, as PyTorch's recommended jemalloc/tcmalloc set-ups do, at the price of resident memory staying at its peak.
  ERNIE_M_KEEP_FREED_MEMORY=0 leaves malloc alone.

The figures behind both are in docs/benchmarks.md ("What made it fast").
"""
from __future__ import annotations

import ctypes
import logging
import os
import platform
import sys
import warnings
from typing import MutableMapping, Optional

MKL_CPU_TYPE_AVX2 = "5"
MKL_CPU_TYPE_AVX512 = "7"
_AVX512 = {"avx512f", "avx512bw", "avx512dq", "avx512vl"}


def _cpu_facts(cpuinfo: str):
    vendor, flags = "", set()
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "vendor_id" and not vendor:
                    vendor = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
                if vendor and flags:
                    break
    except OSError:
        pass
    return vendor, flags


def prefer_fast_mkl_kernels(cpuinfo: str = "/proc/cpuinfo", environ: Optional[MutableMapping[str, str]] = None,
                            modules=None) -> bool:
    """Set MKL_DEBUG_CPU_TYPE where it speeds Paddle up (see the module docstring); True when it was set."""
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    if "MKL_DEBUG_CPU_TYPE" in environ or "paddle" in modules:
        return False
    vendor, flags = _cpu_facts(cpuinfo)
    if vendor != "AuthenticAMD" or "avx2" not in flags:
        return False
    environ["MKL_DEBUG_CPU_TYPE"] = MKL_CPU_TYPE_AVX512 if _AVX512 <= flags else MKL_CPU_TYPE_AVX2
    return True


# mallopt(3) parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory(environ: Optional[MutableMapping[str, str]] = None) -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of returning it to the kernel (see the module
    docstring). True when the setting was made; False off glibc Linux, or with ERNIE_M_KEEP_FREED_MEMORY=0."""
    environ = os.environ if environ is None else environ
    if environ.get("ERNIE_M_KEEP_FREED_MEMORY", "1") == "0":
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # no block is served by mmap (those are unmapped on free); the heap is never trimmed (-1 reads as SIZE_MAX)
    return libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, -1) == 1


def quiet_other_libraries() -> None:
    """PaddleNLP imports `datasets`, whose config logs "PyTorch version ... available." at INFO whenever torch is
    installed; importing Paddle warns that ccache is missing (it matters only when compiling custom operators) and
    that setuptools replaces distutils: noise on stderr for every program."""
    logging.getLogger("datasets").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="No ccache found")
    warnings.filterwarnings("ignore", message="Setuptools is replacing distutils")


def configure_process() -> None:
    """The settings a program makes for its own process, before it imports Paddle."""
    prefer_fast_mkl_kernels()
    quiet_other_libraries()


def keep_freed_memory_on_cpu() -> bool:
    """`keep_freed_memory()` where Paddle's current device is the CPU: for the processes our entry points own."""
    import paddle

    return paddle.device.get_device().startswith("cpu") and keep_freed_memory()
