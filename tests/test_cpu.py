"""ernie_m.cpu: MKL's fast kernels picked on AMD before Paddle loads; malloc kept from unmapping freed memory."""
import os
import subprocess
import sys

import pytest

from ernie_m.cpu import _cpu_facts, keep_freed_memory, keep_freed_memory_on_cpu, prefer_fast_mkl_kernels

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
    """In a fresh process, `configure_process()` before Paddle leaves the variable set for Paddle's load, and
    Paddle's matrix products (odd and model shapes) equal a float64 reference within 1e-5 relative."""
    code = """
import os
from ernie_m.cpu import configure_process
configure_process()
import paddle, numpy as np
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


MALLOC_OF_A_LARGE_TENSOR = """
import ctypes, sys
import paddle
from ernie_m.cpu import keep_freed_memory

kept = keep_freed_memory() if sys.argv[1] == "keep" else False


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
tensor = paddle.ones([64 * 1024 * 1024])  # 256 MiB
during = libc.mallinfo2()
del tensor
print(kept, during.hblkhd, libc.mallinfo2().arena)
"""
MIB_256 = 256 << 20


def test_keep_freed_memory_serves_a_large_tensor_from_the_heap_and_keeps_it():
    """A 256 MiB tensor: by default glibc maps it on its own (and unmaps it on free, so the next one faults in fresh
    pages); after keep_freed_memory() it comes from the heap, which keeps the space once it is freed. Read from
    malloc's own accounting (mallinfo2), not from page faults, which this virtual machine's proactive reclaim
    (DAMON pageout) also causes now and then, whatever malloc does."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("ERNIE_M_KEEP_FREED_MEMORY", None)

    def measure(mode):
        out = subprocess.run([sys.executable, "-c", MALLOC_OF_A_LARGE_TENSOR, mode], capture_output=True, text=True,
                             env=env, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        kept, mapped_during, heap_after = out.stdout.split()[-3:]
        return kept, int(mapped_during), int(heap_after)

    kept, mapped_during, _ = measure("default")
    assert kept == "False" and mapped_during >= MIB_256  # its own mapping
    kept, mapped_during, heap_after = measure("keep")
    assert kept == "True" and mapped_during < MIB_256 and heap_after >= MIB_256  # from the heap, and kept


def test_keep_freed_memory_can_be_switched_off():
    assert keep_freed_memory({"ERNIE_M_KEEP_FREED_MEMORY": "0"}) is False


def test_on_cpu_only_where_paddle_runs_on_the_cpu(monkeypatch):
    import paddle

    import ernie_m.cpu

    made = []
    monkeypatch.setattr(ernie_m.cpu, "keep_freed_memory", lambda: made.append(1) or True)
    monkeypatch.setattr(paddle.device, "get_device", lambda: "gpu:0")
    assert keep_freed_memory_on_cpu() is False and made == []
    monkeypatch.setattr(paddle.device, "get_device", lambda: "cpu")
    assert keep_freed_memory_on_cpu() is True and made == [1]
