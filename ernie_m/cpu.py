"""CPU settings: the math library's kernels (made before Paddle is imported) and the allocator's reuse of memory.

Paddle's CPU wheel links Intel's MKL-ML (2019), which on AMD processors dispatches to its generic kernels: measured
on this project's AMD EPYC (Zen 5) machine, Paddle's float32 2048^2 matrix multiply ran at 96 GFLOP/s, against 220
for PyTorch and 265 for NumPy's OpenBLAS on the same two cores. `MKL_DEBUG_CPU_TYPE` makes that MKL take the kernels
of a given instruction set: 5 (AVX2) gave 230 GFLOP/s, 7 (AVX-512) 395, with results equal to a float64 reference
within 1e-6 relative. MKL reads the variable once, when Paddle loads it, so `import ernie_m` sets it before
importing Paddle, and only where it helps: an AMD processor (7 with AVX-512 F/BW/DQ/VL, else 5 with AVX2), the
variable not already set (set it yourself, to any value, to keep MKL's own choice), Paddle not yet imported (then
export it in the shell instead). On Intel processors nothing changes: MKL already picks its best kernels there.

`keep_freed_memory()` is for training on CPU. Paddle takes each tensor from malloc and gives it back when freed;
glibc serves blocks over 32 MiB with mmap and returns them to the kernel on free, so every step's large tensors
(the 250k-row embedding gradient and the tied head's, 768 MB each, the vocabulary logits) arrive as fresh pages, each
one a page fault. Measured on the base shape with the 250k vocabulary (2 cores, a virtual machine where faults are
dear): an encoder forward + backward took 2.3 s with 190-220 thousand faults a step, and 1.98 s with none; a whole
CAMLM step 4.5-5.0 s with 730-870 thousand faults, and 2.80 s with none. The setting makes malloc keep freed memory
for reuse (no mmap, no trimming), as PyTorch's recommended jemalloc/tcmalloc set-ups do; the price is that the
process's resident memory stays at its peak. The training entry points and the `ernie-m` command call it when
they run on CPU (the library does not: the setting is process-wide); set ERNIE_M_KEEP_FREED_MEMORY=0 to leave
malloc as it is.
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys
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


def keep_freed_memory_on_cpu() -> bool:
    """`keep_freed_memory()` where Paddle's current device is the CPU: for the processes our entry points own."""
    import paddle

    return paddle.device.get_device().startswith("cpu") and keep_freed_memory()
