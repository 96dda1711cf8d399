"""ernie_m.cpu: MKL's AVX2 kernels chosen on AMD processors, before Paddle loads, and nowhere else."""
import os
import subprocess
import sys

import pytest

from ernie_m.cpu import _cpu_facts, prefer_fast_mkl_kernels

AMD = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512dq avx512vl\n"
AMD_AVX2 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2\n"
INTEL = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx avx2 avx512f\n"
OLD_AMD = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx\n"


@pytest.mark.parametrize("cpuinfo, environ, modules, expected", [
    (AMD, {}, {}, "7"),  # AVX-512 kernels
    (AMD_AVX2, {}, {}, "5"),  # AVX2 kernels
    (INTEL, {}, {}, None),  # Intel: MKL already picks its best kernels (AVX-512), the variable would hold it back
    (OLD_AMD, {}, {}, None),  # no AVX2: nothing better to pick
    (AMD, {"MKL_DEBUG_CPU_TYPE": "2"}, {}, "2"),  # the user's own choice stands
    (AMD, {}, {"paddle": object()}, None),  # too late: MKL has read its settings
])
def test_the_setting_is_made_only_where_it_helps(tmp_path, cpuinfo, environ, modules, expected):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    before = dict(environ)
    changed = prefer_fast_mkl_kernels(str(path), environ, modules)
    assert environ.get("MKL_DEBUG_CPU_TYPE") == expected
    assert changed == (environ != before)


def test_an_unreadable_cpuinfo_changes_nothing(tmp_path):
    environ = {}
    assert prefer_fast_mkl_kernels(str(tmp_path / "missing"), environ, {}) is False and environ == {}


@pytest.mark.skipif(_cpu_facts("/proc/cpuinfo")[0] != "AuthenticAMD", reason="an AMD processor is needed")
def test_on_this_amd_machine_the_setting_reaches_paddle_and_results_stay_exact():
    """In a fresh process, `import ernie_m` before Paddle leaves the variable set for Paddle's load, and Paddle's
    matrix products (odd and model shapes) equal a float64 reference within 1e-5 relative."""
    code = """
import os, ernie_m, paddle, numpy as np
print(os.environ.get("MKL_DEBUG_CPU_TYPE"))
rng, worst = np.random.default_rng(0), 0.0
for m, k, n in [(1, 768, 768), (7, 13, 5), (333, 1000, 77), (512, 768, 3072)]:
    a, b = rng.standard_normal((m, k)).astype("float32"), rng.standard_normal((k, n)).astype("float32")
    ref = a.astype("float64") @ b.astype("float64")
    got = paddle.matmul(paddle.to_tensor(a), paddle.to_tensor(b)).numpy()
    worst = max(worst, float(np.abs(got - ref).max() / np.abs(ref).max()))
print(worst < 1e-5)
"""
    env = {k: v for k, v in os.environ.items() if k != "MKL_DEBUG_CPU_TYPE"}
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.split()[-2] in ("5", "7") and out.stdout.split()[-1] == "True", out.stderr[-1000:]
