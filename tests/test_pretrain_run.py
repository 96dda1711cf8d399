"""The pretraining entry: a two-stage run on a tiny corpus, and exact resume after SIGKILL."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest


from tests.helpers import PRETRAIN_SCRIPT as SCRIPT
from tests.helpers import ROOT, read_log
from tests.helpers import SMOKE_CONFIG as CONFIG


def command(corpus, tokenizer_dir, output_dir, *extra):
    return [sys.executable, SCRIPT, "--config", CONFIG, "--output_dir", str(output_dir),
            f"tokenizer={tokenizer_dir}", f"data.parallel_dir={corpus / 'parallel'}",
            f"data.monolingual_dir={corpus / 'mono'}", *extra]


def run(cmd, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def test_two_stage_run_uses_every_objective_and_counts_bad_lines(corpus, tokenizer_dir, tmp_path):
    result = run(command(corpus, tokenizer_dir, tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-3000:]
    log = read_log(tmp_path / "out")
    assert "final_parameter_sha256" in log.pop("final")
    assert sorted(log) == list(range(1, 13))
    assert {log[s]["objective"] for s in range(1, 7)} <= {"camlm", "mmlm"}
    assert "btmlm" in {log[s]["objective"] for s in range(7, 13)}
    assert all(r["tokens_per_second"] > 0 and 0 <= r[f"{r['objective']}_accuracy"] <= 1 for r in log.values())
    checkpoints = sorted(os.listdir(tmp_path / "out"))
    assert "checkpoint-12" in checkpoints and "checkpoint-8" in checkpoints and "checkpoint-4" not in checkpoints
    state = json.loads((tmp_path / "out" / "checkpoint-12" / "trainer_state.json").read_text())
    # Each pass over a file meets its bad lines again: every kind is counted, at least once.
    assert set(state["bad_lines"]["parallel"]) == {"wrong_columns", "empty_side", "invalid_utf8"}
    assert state["bad_lines"]["monolingual"]["empty_line"] >= 1

    from ernie_m import ErnieMModel
    from paddlenlp.transformers import ErnieMModel as PaddleNLPErnieMModel

    ErnieMModel.from_pretrained(str(tmp_path / "out" / "checkpoint-12"))
    PaddleNLPErnieMModel.from_pretrained(str(tmp_path / "out" / "checkpoint-12"))


def test_sigkill_then_resume_matches_an_uninterrupted_run(corpus, tokenizer_dir, tmp_path):
    """Killed mid-run with two DataLoader workers tokenizing: the resumed run repeats the losses step for step."""
    workers = "data.num_workers=2"
    reference = run(command(corpus, tokenizer_dir, tmp_path / "straight", workers))
    assert reference.returncode == 0, reference.stderr[-3000:]

    out = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen(command(corpus, tokenizer_dir, out, workers), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    log_file = out / "log_rank0.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline:
        if log_file.exists() and len(log_file.read_text().splitlines()) >= 5:
            break
        time.sleep(0.005)
    assert process.poll() is None, "the run ended before it could be killed"
    children = [int(pid) for pid in open(f"/proc/{process.pid}/task/{process.pid}/children").read().split()]
    assert len(children) == 4  # two DataLoader workers for each of the two streams
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    deadline = time.time() + 20  # the workers die with the trainer instead of hanging on their queues
    while time.time() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in children):
        time.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in children), "DataLoader workers outlived the trainer"
    assert not (out / "checkpoint-12").exists()
    killed_at = max(step for step in read_log(out) if step != "final")

    resumed = run(command(corpus, tokenizer_dir, out, workers, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout
    expected, got = read_log(tmp_path / "straight"), read_log(out)
    assert got.pop("final") == expected.pop("final")  # the same weights at the end
    assert sorted(got) == sorted(expected) == list(range(1, 13))
    assert killed_at < 12
    for step in expected:
        name = expected[step]["objective"]
        assert got[step]["objective"] == name
        assert got[step][f"{name}_loss"] == pytest.approx(expected[step][f"{name}_loss"], rel=1e-6, abs=1e-6), step


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_cpu_ranks_on_two_nodes_stay_identical_and_checkpoint_loads(corpus, tokenizer_dir, tmp_path):
    """2 ranks over gloo with 2 accumulated micro-steps (gradients reduced once per step), launched as two nodes
    the way docs/pretraining.md runs several machines, here two launchers on this one (`--nnodes 2 --master
    127.0.0.1:PORT --rank r`, one rank each), under a timeout so a hang fails instead of blocking."""
    out, port = tmp_path / "dist", free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "paddle.distributed.launch", "--nnodes", "2", "--master", f"127.0.0.1:{port}",
         "--rank", str(node), "--nproc_per_node", "1", "--log_dir", str(tmp_path / f"node{node}_logs")]
        + command(corpus, tokenizer_dir, out, "train.accumulate_steps=2")[1:],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT) for node in (0, 1)]
    try:
        outputs = [node.communicate(timeout=300)[0] for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    logs = "".join(p.read_text(errors="replace")[-1500:] for p in tmp_path.glob("node*_logs/workerlog.*"))
    assert [node.returncode for node in nodes] == [0, 0], "".join(o[-1500:] for o in outputs) + logs
    rank0, rank1 = (read_log(out, rank) for rank in (0, 1))
    assert rank0.pop("final")["final_parameter_sha256"] == rank1.pop("final")["final_parameter_sha256"]
    assert sorted(rank0) == sorted(rank1) == list(range(1, 13))
    assert [rank0[s]["objective"] for s in rank0] == [rank1[s]["objective"] for s in rank1]
    assert {"camlm", "btmlm"} <= {record["objective"] for record in rank0.values()}
    # The ranks read different shards, so their losses differ while their weights agree.
    assert any(rank0[s][f"{rank0[s]['objective']}_loss"] != rank1[s][f"{rank1[s]['objective']}_loss"]
               for s in rank0)
    state = json.loads((out / "checkpoint-12" / "trainer_state.json").read_text())
    assert len(state["data"]) == 2  # both ranks' data positions, for resume

    from ernie_m import ErnieMModel
    from paddlenlp.transformers import ErnieMModel as PaddleNLPErnieMModel

    ErnieMModel.from_pretrained(str(out / "checkpoint-12"))
    PaddleNLPErnieMModel.from_pretrained(str(out / "checkpoint-12"))


def test_smoke_script_pretrains_on_two_cpu_ranks(tmp_path):
    script = os.path.join(ROOT, "pretrain", "scripts", "smoke_cpu.sh")
    env = dict(os.environ, PYTHON=sys.executable)
    result = subprocess.run(["bash", script, str(tmp_path / "smoke")], capture_output=True, text=True, timeout=300,
                            env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    log = read_log(tmp_path / "smoke" / "model", 0)
    log.pop("final")
    assert {"camlm", "btmlm"} <= {record["objective"] for record in log.values()}
    assert (tmp_path / "smoke" / "model" / "checkpoint-26" / "model_state.pdparams").exists()


@pytest.mark.parametrize("sharding", [False, True])
def test_two_rank_resume_reproduces_the_run(corpus, tokenizer_dir, tmp_path, sharding):
    """2 ranks, data parallel or with the optimizer state sharded: resuming from step 8 ends with the same weights."""
    import shutil

    launch = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def launch_run(out, *extra):
        cmd = launch + ["--log_dir", str(out) + "_logs"] + command(corpus, tokenizer_dir, out)[1:] + [
            f"train.sharding={str(sharding).lower()}", *extra]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
        logs = "".join(p.read_text(errors="replace")[-1500:] for p in (tmp_path).glob("*_logs/workerlog.*"))
        assert result.returncode == 0, result.stderr[-1500:] + logs

    straight = tmp_path / "straight"
    launch_run(straight)
    shards = sorted(name for name in os.listdir(straight / "checkpoint-8") if name.startswith("optimizer"))
    if sharding:
        assert shards == ["optimizer.rank0.json", "optimizer.rank0.safetensors", "optimizer.rank1.json",
                          "optimizer.rank1.safetensors"]
    else:
        assert shards == ["optimizer.json", "optimizer.safetensors"]

    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(straight / "checkpoint-8", resumed / "checkpoint-8")
    launch_run(resumed, "--resume")
    for rank in (0, 1):
        expected, got = read_log(straight, rank), read_log(resumed, rank)
        assert sorted(s for s in got if s != "final") == [9, 10, 11, 12]
        assert got["final"] == expected["final"]
        for step in (9, 10, 11, 12):
            name = expected[step]["objective"]
            assert got[step][f"{name}_loss"] == pytest.approx(expected[step][f"{name}_loss"], rel=1e-6, abs=1e-6)
    assert read_log(straight, 0)["final"] == read_log(straight, 1)["final"]

    # On one rank: the data position is per shard, so a data-parallel run continues (before: refused, "written by
    # 2 rank(s)"); an optimizer state sharded over two ranks needs them back, and says so.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copytree(straight / "checkpoint-8", alone / "checkpoint-8")
    result = run(command(corpus, tokenizer_dir, alone, "--resume"))
    if sharding:
        assert result.returncode != 0 and "the optimizer state is sharded over 2 ranks" in result.stderr
    else:
        assert result.returncode == 0, result.stderr[-2000:]
        assert sorted(s for s in read_log(alone, 0) if s != "final") == [9, 10, 11, 12]


def test_btmlm_waits_for_its_gate_and_logs_held_out_evaluations(corpus, tokenizer_dir, tmp_path):
    gated = ["data.num_workers=0", f"data.eval_parallel_dir={corpus / 'parallel'}", "train.eval_steps=3",
             "train.save_steps=100"]
    # A gate no model passes: BTMLM's draws go to CAMLM / MMLM, and every evaluation says so.
    closed = run(command(corpus, tokenizer_dir, tmp_path / "closed", *gated, "btmlm.min_camlm_gain=0.99"))
    assert closed.returncode == 0, closed.stderr[-3000:]
    log = read_log(tmp_path / "closed")
    assert "btmlm" not in {record.get("objective") for record in log.values()}
    with open(tmp_path / "closed" / "log_rank0.jsonl") as handle:
        evaluations = [json.loads(line) for line in handle if '"eval_step"' in line]
    assert [e["eval_step"] for e in evaluations] == [0, 3, 6, 9, 12]  # 0: the untrained model, every curve's start
    assert all(not e["btmlm_ready"] and 0 <= e["camlm_accuracy"] <= 1 and 0 <= e["btmlm_distinct_share"] <= 1
               and 0 <= e["btmlm_chrf_parallel"] <= 100 for e in evaluations)
    state = json.loads((tmp_path / "closed" / "checkpoint-12" / "trainer_state.json").read_text())
    assert state["btmlm_ready_at"] is None
    # A gate any model passes opens at the first evaluation (before training), and stage 2 runs BTMLM again.
    opened = run(command(corpus, tokenizer_dir, tmp_path / "open", *gated, "btmlm.min_distinct_share=1e-9",
                     "btmlm.min_camlm_gain=-1"))
    assert opened.returncode == 0, opened.stderr[-3000:]
    assert "btmlm" in {record.get("objective") for record in read_log(tmp_path / "open").values()}
    state = json.loads((tmp_path / "open" / "checkpoint-12" / "trainer_state.json").read_text())
    assert state["btmlm_ready_at"] == 0


@pytest.mark.parametrize("overrides, message", [
    (["btmlm.min_camlm_gain=0.1"], "set data.eval_parallel_dir"),
    (["btmlm.target_languages=[xx]"], "btmlm.target_languages: ['xx'] not among the configured languages"),
])
def test_bad_btmlm_settings_are_refused_in_one_line(corpus, tokenizer_dir, tmp_path, overrides, message, capsys):
    from pretrain import run_pretrain
    from tests.helpers import one_line_exit

    argv = command(corpus, tokenizer_dir, tmp_path / "out", "stages.0.steps=1", "stages.1.steps=8", *overrides)[2:]
    assert message in one_line_exit(capsys, run_pretrain.main, argv, status=2)


@pytest.mark.parametrize("env, expected", [
    ({"IPS": "10.0.0.1,10.0.0.2"}, "--ips 10.0.0.1,10.0.0.2"),
    ({"HOSTFILE": "hosts.txt"}, "--ips 10.0.0.1,10.0.0.2"),
    ({"NNODES": "2", "MASTER": "10.0.0.1:8090", "NODE_RANK": "1"}, "--nnodes 2 --master 10.0.0.1:8090 --rank 1"),
])
def test_the_gpu_launch_script_builds_multi_node_commands(tmp_path, env, expected):
    (tmp_path / "hosts.txt").write_text("# the nodes\n10.0.0.1 slots=8\n\n10.0.0.2\n")
    script = os.path.join(ROOT, "pretrain", "scripts", "launch_gpu.sh")
    result = subprocess.run(["bash", script, "c.yaml", "out", "tok", "par", "mono", "--max_steps", "3"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env=dict(os.environ, DRY_RUN="1", **env))
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout and result.stdout.strip().endswith("data.monolingual_dir=mono --max_steps 3")
