"""How an entry point ends (ernie_m/distributed.py): a rank of a launched job skips the interpreter's teardown but
keeps Python's exit statuses, its atexit handlers, its non-daemon threads and its buffered output; one process
exits the usual way."""
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Loads ernie_m/distributed.py by path: it needs nothing from the package, and importing the package loads Paddle.
SCRIPT = textwrap.dedent("""
    import atexit, importlib.util, sys, threading, time

    spec = importlib.util.spec_from_file_location("distributed", sys.argv[1])
    distributed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(distributed)
    marks = sys.argv[2]

    def mark(name):
        with open(marks + "/" + name, "w") as handle:
            handle.write(name)

    class TornDownAtFinalization:
        def __init__(self, path):
            self.path, self.open = path, open  # module globals are gone by the time finalization gets here

        def __del__(self):
            with self.open(self.path, "w") as handle:
                handle.write("teardown")

    kept_until_finalization = TornDownAtFinalization(marks + "/teardown")
    atexit.register(mark, "atexit")

    def late_writer():
        time.sleep(0.3)
        mark("thread")

    def main(kind):
        sys.stdout.write("buffered output with no newline")
        threading.Thread(target=late_writer).start()
        if kind == "exit-3":
            raise SystemExit(3)
        if kind == "exit-message":
            raise SystemExit("bad value in field 'x'")
        if kind == "error":
            raise ValueError("broken on purpose")
        return {"main returns": "a result, not a status"}

    distributed.run_entry(main, sys.argv[3])
""")

STATUS = {"return": 0, "exit-3": 3, "exit-message": 1, "error": 1}


def _run(tmp_path, kind, ranks):
    script = tmp_path / "entry.py"
    script.write_text(SCRIPT)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PADDLE_TRAINERS_NUM"}
    if ranks is not None:
        env["PADDLE_TRAINERS_NUM"] = str(ranks)
    result = subprocess.run([sys.executable, str(script), os.path.join(ROOT, "ernie_m", "distributed.py"), str(marks),
                             kind], capture_output=True, text=True, timeout=60, env=env)
    return result, {path.name for path in marks.iterdir()}


@pytest.mark.parametrize("kind", sorted(STATUS))
def test_a_rank_keeps_python_exit_behaviour_but_skips_teardown(tmp_path, kind):
    result, marks = _run(tmp_path, kind, ranks=2)
    assert result.returncode == STATUS[kind], result.stderr
    assert result.stdout == "buffered output with no newline"
    assert marks == {"atexit", "thread"}  # handlers ran, the thread was waited for, finalization never came
    if kind == "exit-message":
        assert result.stderr.strip() == "bad value in field 'x'"
    if kind == "error":
        assert "ValueError: broken on purpose" in result.stderr and "Traceback" in result.stderr


@pytest.mark.parametrize("ranks", [None, 1])
@pytest.mark.parametrize("kind", ["return", "exit-3", "error"])
def test_one_process_exits_the_usual_way(tmp_path, kind, ranks):
    result, marks = _run(tmp_path, kind, ranks)
    assert result.returncode == STATUS[kind], result.stderr
    assert result.stdout == "buffered output with no newline"
    assert marks == {"atexit", "thread", "teardown"}


def _gone(pid: int) -> bool:
    """Ended: no such process, or a zombie nobody has reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_process_that_asks_to_die_with_its_parent_does(tmp_path):
    """The one parent-death request both a launched rank and a DataLoader worker make (ernie_m.distributed)."""
    import time

    grandchild = ("from ernie_m.distributed import die_with_parent; die_with_parent(); print('ready', flush=True); "
                  "import time; time.sleep(120)")
    parent_code = textwrap.dedent(f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", {grandchild!r}], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        print(child.pid, flush=True)
        time.sleep(120)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    pid = None
    try:
        pid = int(parent.stdout.readline())
        assert not _gone(pid)
        parent.kill()
        parent.wait(timeout=30)
        deadline = time.monotonic() + 10
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _gone(pid)
    finally:
        parent.kill()
        if pid is not None and not _gone(pid):
            os.kill(pid, 9)
