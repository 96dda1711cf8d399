"""Faults during pretraining: a kill in mid-checkpoint, a full disk, non-finite losses, a dying rank, config paths.

Each runs pretrain/run_pretrain.py on the smoke config (12 steps, checkpoints at 4, 8 and 12) in a subprocess, with
one fault injected by tests/faults.py. docs/reliability.md lists every case and its outcome.
"""
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import PRETRAIN_SCRIPT as SCRIPT
from tests.helpers import ROOT, read_log
from tests.helpers import SMOKE_CONFIG as CONFIG

FAULTS = os.path.join(ROOT, "tests", "faults.py")


def _arguments(corpus, tokenizer_dir, output_dir, *extra):
    return ["--config", CONFIG, "--output_dir", str(output_dir), f"tokenizer={tokenizer_dir}",
            f"data.parallel_dir={corpus / 'parallel'}", f"data.monolingual_dir={corpus / 'mono'}", *extra]


def _run(command, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def _with_fault(fault, corpus, tokenizer_dir, output_dir, *extra):
    return _run([sys.executable, FAULTS, fault, "--", *_arguments(corpus, tokenizer_dir, output_dir, *extra)])


def _checkpoints(output_dir):
    return sorted(name for name in os.listdir(output_dir) if "checkpoint" in name)


def _loads(checkpoint):
    from ernie_m import ErnieMModel

    model = ErnieMModel.from_pretrained(str(checkpoint))
    return all(np.isfinite(p.numpy()).all() for p in model.parameters())


def test_sigkill_in_the_middle_of_a_checkpoint_write_keeps_the_previous_one_and_resume_works(
        corpus, tokenizer_dir, tmp_path):
    out = tmp_path / "out"
    killed = _with_fault("kill-during-save:2", corpus, tokenizer_dir, out)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # checkpoint-8 was half written (its optimizer file is there): it exists only as the hidden temporary.
    assert _checkpoints(out) == [".tmp-checkpoint-8", "checkpoint-4"]
    assert sorted(os.listdir(out / ".tmp-checkpoint-8")) == ["optimizer.json", "optimizer.safetensors"]
    assert _loads(out / "checkpoint-4")

    resumed = _run([sys.executable, SCRIPT, *_arguments(corpus, tokenizer_dir, out), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from {out / 'checkpoint-4'} at step 4" in resumed.stdout
    assert _checkpoints(out) == ["checkpoint-12", "checkpoint-8"]  # the temporary is gone, keep_checkpoints=2
    assert sorted(k for k in read_log(out) if k != "final") == list(range(1, 13))


def test_a_truncated_checkpoint_stops_resume_with_a_message_naming_the_file(corpus, tokenizer_dir, tmp_path):
    out = tmp_path / "out"
    first = _run([sys.executable, SCRIPT, *_arguments(corpus, tokenizer_dir, out, "--max_steps", "4")])
    assert first.returncode == 0, first.stderr[-2000:]
    weights = out / "checkpoint-4" / "model_state.pdparams"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    resumed = _run([sys.executable, SCRIPT, *_arguments(corpus, tokenizer_dir, out), "--resume"])
    assert resumed.returncode == 1
    message = resumed.stderr.strip().splitlines()[-1]
    assert message.startswith(f"run_pretrain: cannot resume from {out / 'checkpoint-4'}: ")
    assert str(weights) in message and message.endswith("to resume from the checkpoint before it.")


def test_a_full_disk_stops_training_with_the_last_checkpoint_intact(corpus, tokenizer_dir, tmp_path):
    out = tmp_path / "out"
    result = _with_fault("enospc-at-save:2", corpus, tokenizer_dir, out)
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"run_pretrain: could not write checkpoint-8 in {out} ([Errno 28] No space left")
    assert message.endswith(f"The last complete checkpoint is {out / 'checkpoint-4'}; free space, then --resume.")
    assert _checkpoints(out) == ["checkpoint-4"]  # no half-written directory left behind
    assert _loads(out / "checkpoint-4")
    assert max(k for k in read_log(out) if k != "final") == 8


def test_non_finite_losses_are_skipped_counted_and_stop_the_run_when_they_persist(corpus, tokenizer_dir, tmp_path):
    out = tmp_path / "out"
    result = _with_fault("nan-from-call:6", corpus, tokenizer_dir, out, "train.max_nonfinite_steps=3")
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("run_pretrain: 3 non-finite steps in a row (loss or gradients; steps 6-8; "
                              "train.max_nonfinite_steps=3)")
    assert f"The last good checkpoint is {out / 'checkpoint-4'}" in message
    log = read_log(out)
    assert [log[step]["skipped_nonfinite"] for step in range(1, 9)] == [0, 0, 0, 0, 0, 1, 2, 3]
    assert _checkpoints(out) == ["checkpoint-4"]  # step 8's checkpoint was not written from a stalled run
    assert _loads(out / "checkpoint-4")


def test_a_finite_loss_with_nan_gradients_is_skipped_and_no_checkpoint_is_written_from_it(
        corpus, tokenizer_dir, tmp_path):
    """The gradients are checked as well as the loss: a step with NaN gradients is skipped, no checkpoint is written
    from it, and the good checkpoints stay."""
    out = tmp_path / "out"
    result = _with_fault("nan-grad-from-call:5", corpus, tokenizer_dir, out, "train.max_nonfinite_steps=3",
                         "train.save_steps=2", "train.keep_checkpoints=2")
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("run_pretrain: 3 non-finite steps in a row (loss or gradients; steps 5-7; ")
    assert f"The last good checkpoint is {out / 'checkpoint-4'}" in message
    log = read_log(out)
    assert all(math.isfinite(log[step][f"{log[step]['objective']}_loss"]) for step in range(5, 8))  # finite losses
    assert _checkpoints(out) == ["checkpoint-2", "checkpoint-4"]  # none written during the streak (step 6)
    assert _loads(out / "checkpoint-4")


def test_a_few_non_finite_losses_are_skipped_and_training_goes_on(corpus, tokenizer_dir, tmp_path):
    out = tmp_path / "out"
    # Four NaN steps, never three in a row: a finite step in between resets the streak.
    result = _with_fault("nan-at-calls:5,6,8,9", corpus, tokenizer_dir, out, "train.max_nonfinite_steps=3")
    assert result.returncode == 0, result.stderr[-2000:]
    log = read_log(out)
    assert [log[step]["skipped_nonfinite"] for step in range(4, 13)] == [0, 1, 2, 2, 3, 4, 4, 4, 4]
    assert _loads(out / "checkpoint-12")  # the skipped steps did not touch the weights


def test_one_rank_dying_ends_the_launch_promptly_with_a_failure(corpus, tokenizer_dir, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
               str(tmp_path / "logs"), FAULTS, "exit-rank:1:3", "--", *_arguments(corpus, tokenizer_dir, out)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError("the launch hung after a rank died") from None
    elapsed = time.monotonic() - started
    assert process.returncode != 0, output[-3000:]
    assert "faults.py: rank 1 exits" in output or "exit code" in output.lower() or "failed" in output.lower(), \
        output[-3000:]  # the launch says what happened
    logs = "".join(open(os.path.join(tmp_path / "logs", name), errors="replace").read()
                   for name in os.listdir(tmp_path / "logs"))
    assert "faults.py: rank 1 exits at loss 3" in logs
    assert elapsed < 60  # measured: under 4 s, start-up included
    # Nothing of the dead run is mistaken for a checkpoint.
    assert not [name for name in _checkpoints(out) if not name.startswith(".tmp")] or _loads(out / "checkpoint-4")


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


def _ended_within(pids, since, seconds):
    """Whether every process in `pids` has ended, waiting until `seconds` after `since` (a monotonic time)."""
    while any(_alive(pid) for pid in pids) and time.monotonic() - since < seconds:
        time.sleep(0.1)
    return not any(_alive(pid) for pid in pids)


def _kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_ranks_end_within_seconds_of_their_launcher_being_killed(corpus, tokenizer_dir, tmp_path):
    """SIGKILL of `paddle.distributed.launch` ends both ranks within seconds; none trains on unsupervised."""
    out, pids = tmp_path / "out", tmp_path / "pids"
    pids.mkdir()
    command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
               str(tmp_path / "logs"), FAULTS, "kill-launcher:3", "--",
               *_arguments(corpus, tokenizer_dir, out, "stages.1.steps=100000", "train.save_steps=100000")]
    env = dict(os.environ, OMP_NUM_THREADS="1", FAULTS_PID_DIR=str(pids))
    launcher = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    ranks = []
    try:
        launcher.wait(timeout=180)  # killed by rank 0 at its third step
        killed = time.monotonic()
        ranks = [int((pids / f"rank{rank}.pid").read_text()) for rank in (0, 1)]
        assert launcher.returncode == -signal.SIGKILL
        assert _ended_within(ranks, killed, 10), "a rank outlived its launcher by 10 s"
    finally:
        _kill_all([launcher.pid, *ranks])


def _children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().split(")")[-1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


def _command_line(pid):
    try:
        with open(f"/proc/{pid}/cmdline") as handle:
            return handle.read()
    except OSError:  # it has ended
        return ""


@pytest.mark.parametrize("delay", [0.0, 0.3, 2.0])
def test_ranks_end_when_their_launcher_is_killed_during_their_start_up(corpus, tokenizer_dir, tmp_path, delay):
    """SIGKILL of the launcher `delay` seconds after both ranks exist (interpreter start-up, importing Paddle, building
    the run): the ranks end and write no checkpoint."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
               str(tmp_path / "logs"), SCRIPT, *_arguments(corpus, tokenizer_dir, out, "train.save_steps=2")]
    launcher = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ranks = []
    try:
        deadline = time.monotonic() + 60
        while len(ranks) < 2 and time.monotonic() < deadline:
            ranks = [pid for pid in _children(launcher.pid) if SCRIPT in _command_line(pid)]
            time.sleep(0.01)
        assert len(ranks) == 2, "the launcher did not start two ranks"
        time.sleep(delay)
        os.kill(launcher.pid, signal.SIGKILL)
        killed = time.monotonic()
        assert _ended_within(ranks, killed, 10), f"a rank outlived its launcher (killed at {delay} s) by 10 s"
        assert not out.exists() or not _checkpoints(out)
    finally:
        _kill_all([launcher.pid, *ranks])


def test_config_values_cannot_make_the_run_write_outside_its_output_directory(corpus, tokenizer_dir, tmp_path):
    """Every string a config can hold, set to a path that climbs out: the run writes only under --output_dir."""
    sandbox = tmp_path / "sandbox"
    out = sandbox / "deep" / "out"
    out.mkdir(parents=True)
    escape = "../../../escaped"
    before = {p for p in tmp_path.rglob("*")}
    config = json.loads(json.dumps(_smoke_config()))
    for stage in config["stages"]:
        stage["name"] = escape
    config["train"]["keep_checkpoints"] = 1
    config_file = sandbox / "escape.json"
    config_file.write_text(json.dumps(config))
    result = _run([sys.executable, SCRIPT, "--config", str(config_file), "--output_dir", str(out),
                   f"tokenizer={tokenizer_dir}", f"data.parallel_dir={corpus / 'parallel'}",
                   f"data.monolingual_dir={corpus / 'mono'}", "--max_steps", "4"])
    assert result.returncode == 0, result.stderr[-2000:]
    created = {p for p in tmp_path.rglob("*")} - before - {config_file}
    outside = sorted(str(p) for p in created if out not in p.parents and p != out)
    assert outside == []
    assert not (tmp_path / "escaped").exists()


def _smoke_config():
    import yaml

    with open(CONFIG) as handle:
        return yaml.safe_load(handle)
