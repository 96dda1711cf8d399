"""CPU math-library settings that must be made before Paddle is imported.

Paddle's CPU wheel links Intel's MKL-ML (2019), which on AMD processors dispatches to its generic kernels: measured
on this project's AMD EPYC (Zen 5) machine, Paddle's float32 2048^2 matrix multiply ran at 96 GFLOP/s, against 220
for PyTorch and 265 for NumPy's OpenBLAS on the same two cores. `MKL_DEBUG_CPU_TYPE` makes that MKL take the kernels
of a given instruction set: 5 (AVX2) gave 230 GFLOP/s, 7 (AVX-512) 395, with results equal to a float64 reference
within 1e-6 relative. MKL reads the variable once, when Paddle loads it, so `import ernie_m` sets it before
importing Paddle, and only where it helps: an AMD processor (7 with AVX-512 F/BW/DQ/VL, else 5 with AVX2), the
variable not already set (set it yourself, to any value, to keep MKL's own choice), Paddle not yet imported (then
export it in the shell instead). On Intel processors nothing changes: MKL already picks its best kernels there.
"""
from __future__ import annotations

import os
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
