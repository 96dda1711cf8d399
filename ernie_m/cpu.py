"""CPU math-library settings that must be made before Paddle is imported.

Paddle's CPU wheel links Intel's MKL-ML (2019), which on AMD processors dispatches to its generic kernels: measured
on this project's AMD EPYC machine, Paddle's float32 matrix multiply ran at 96 GFLOP/s, against 220 for PyTorch
and 265 for NumPy's OpenBLAS on the same two cores. `MKL_DEBUG_CPU_TYPE=5` makes that MKL use its AVX2 kernels
(230 GFLOP/s measured). MKL reads the variable once, when Paddle loads it, so `import ernie_m` sets it before
importing Paddle, and only where it helps: an AMD processor with AVX2, the variable not already set (set it
yourself, to any value, to keep MKL's own choice), Paddle not yet imported (then export it in the shell instead).
On Intel processors nothing changes: there the variable would only hold MKL back from AVX-512.
"""
from __future__ import annotations

import os
import sys
from typing import MutableMapping, Optional

MKL_CPU_TYPE_AVX2 = "5"


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
    """Set MKL_DEBUG_CPU_TYPE=5 where it speeds Paddle up (see the module docstring); True when it was set."""
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    if "MKL_DEBUG_CPU_TYPE" in environ or "paddle" in modules:
        return False
    vendor, flags = _cpu_facts(cpuinfo)
    if vendor != "AuthenticAMD" or "avx2" not in flags:
        return False
    environ["MKL_DEBUG_CPU_TYPE"] = MKL_CPU_TYPE_AVX2
    return True
