"""tools/bench runs end to end on a tiny shape (its figures are not checked: speed is measured, not tested)."""
import json
import os
import subprocess
import sys

from tools.bench.common import encoder_forward_flops, lm_head_forward_flops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_flop_counts_by_hand():
    # hidden 2, 1 layer, feed-forward 8, 1 sequence of 3: Q, K, V, O 4 x 2*3*2*2; FFN 2 x 2*3*2*8; QK^T and PV 2 x 2*9*2
    assert encoder_forward_flops(2, 1, 8, 1, 3) == 96 + 192 + 72
    assert lm_head_forward_flops(2, 10, 3) == 2 * 3 * 2 * 2 + 2 * 3 * 2 * 10


def test_the_benchmark_runs_and_reports(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--preset", "ernie-m-tiny", "--vocab_size", "500", "--length", "32",
         "--train_batch", "2", "--inference_batches", "1,4", "--repeats", "1", "--rounds", "2",
         "--sections", "pretraining,inference,data",
         "--data_megabytes", "2", "--data_min_piece_bytes", "4096", "--output_dir", str(tmp_path), "--shared_process"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["pretraining"]["steps"]) == {
        "ours/camlm", "ours/camlm_building_its_batch", "ours/btmlm", "ours/encoder_fwd_bwd", "paddlenlp/naive",
        "hf/xlmr", "ours/camlm (default malloc)", "paddlenlp/naive (kept memory)", "hf/xlmr (kept memory)"}
    # two rounds: every variant's median is over both rounds' steps
    assert all(len(r["runs_s"]) == 2 for r in results["pretraining"]["steps"].values())
    assert set(results["inference"]["results"]) == {"ours/dynamic", "ours/paddle_inference", "ours/onnxruntime",
                                                    "paddlenlp/dynamic", "hf/xlmr_torch", "ours/dynamic (kept memory)"}
    assert all(r["median_s"] > 0 for r in results["pretraining"]["steps"].values())
    report = (tmp_path / "report.md").read_text()
    assert "## Targets" in report and "| ours/camlm |" in report and "| HF XLM-R |" in report
    assert (tmp_path / "speed.png").stat().st_size > 1000
    # The data section: readers grow 2 -> 16 and together still read each byte of the corpus about once.
    rows = results["data"]["rows"]
    assert [row["readers"] for row in rows] == [2, 4, 8, 16]
    # (each piece start reads on to the next line: on 2 MB cut for 64 shards that is a few percent; on 1 GB, 0.01%)
    assert all(1.0 <= row["bytes_read_over_corpus"] < 1.1 for row in rows)
    assert "## Data path" in report


def test_the_demo_preset_takes_its_shape_from_the_demo_settings():
    from ernie_m.pretraining.config import load_config
    from tools.bench.__main__ import parse_args
    from tools.demo.run import CONFIG, PRESETS

    args = parse_args(["--preset", "demo", "--sections", "pretraining"])
    demo = load_config(CONFIG, ["tokenizer=unused"])
    stage = demo.stages[0]
    assert args.model_preset == demo.model.preset and args.length == stage.max_length
    assert args.train_batch * args.length == stage.batch_tokens
    assert args.vocab_size == PRESETS["standard"]["vocab_size"]
    assert args.camlm_mask_prob == PRESETS["standard"]["camlm_mask_prob"]
    assert args.model_overrides["hidden_dropout_prob"] == demo.model.overrides["hidden_dropout_prob"] == 0.0
    assert args.threads == 1  # the demo runs one job per core, each on cores // jobs threads
    # a flag given beside the preset wins
    assert parse_args(["--preset", "demo", "--length", "32"]).length == 32
