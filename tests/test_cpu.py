"""ernie_m.cpu: MKL's AVX2 kernels chosen on AMD processors, before Paddle loads, and nowhere else."""
import os
import subprocess
import sys

import pytest

from ernie_m.cpu import _cpu_facts, prefer_fast_mkl_kernels

AMD = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 avx512f\n"
INTEL = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx avx2 avx512f\n"
OLD_AMD = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx\n"


@pytest.mark.parametrize("cpuinfo, environ, modules, expected", [
    (AMD, {}, {}, "5"),
    (INTEL, {}, {}, None),  # Intel: MKL already picks its best kernels (AVX-512), the variable would hold it back
    (OLD_AMD, {}, {}, None),  # no AVX2: nothing better to pick
    (AMD, {"MKL_DEBUG_CPU_TYPE": "2"}, {}, "2"),  # the user's own choice stands
    (AMD, {}, {"paddle": object()}, None),  # too late: MKL has read its settings
])
def test_the_setting_is_made_only_where_it_helps(tmp_path, cpuinfo, environ, modules, expected):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    changed = prefer_fast_mkl_kernels(str(path), environ, modules)
    assert environ.get("MKL_DEBUG_CPU_TYPE") == expected
    assert changed == (expected == "5" and cpuinfo == AMD and not modules)


def test_an_unreadable_cpuinfo_changes_nothing(tmp_path):
    environ = {}
    assert prefer_fast_mkl_kernels(str(tmp_path / "missing"), environ, {}) is False and environ == {}


@pytest.mark.skipif(_cpu_facts("/proc/cpuinfo")[0] != "AuthenticAMD", reason="an AMD processor is needed")
def test_importing_ernie_m_first_speeds_paddles_matrix_multiply_on_this_amd_machine():
    """The setting reaches MKL: in a fresh process, `import ernie_m` before Paddle leaves it set for Paddle's load,
    and Paddle's own matmul result is unchanged in value (only the kernel differs)."""
    code = ("import os, ernie_m, paddle, numpy as np; print(os.environ.get('MKL_DEBUG_CPU_TYPE')); "
            "a = np.arange(64, dtype='float32').reshape(8, 8) / 64; "
            "print(abs(paddle.matmul(paddle.to_tensor(a), paddle.to_tensor(a)).numpy() - a @ a).max() < 1e-5)")
    env = {k: v for k, v in os.environ.items() if k != "MKL_DEBUG_CPU_TYPE"}
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.split()[-2:] == ["5", "True"], out.stderr[-1000:]
