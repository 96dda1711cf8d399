"""results.json -> report.md (the tables, the targets with the measured ratios) and speed.png."""
from __future__ import annotations

import os
from typing import Dict, List

TARGETS = [  # (what, where in the results, target, "min": at least the target / "max": at most)
    ("pretraining tokens/s: ours CAMLM over the naive PaddleNLP step", ("pretraining", "camlm_over_paddlenlp_naive"),
     2.0, "min"),
    ("pretraining tokens/s: ours CAMLM over HF XLM-R (PyTorch)", ("pretraining", "camlm_over_hf_xlmr"), 1.5, "min"),
    ("encoder MFU (forward + backward) over the matrix-multiply peak", ("pretraining", "encoder_mfu"), 0.5, "min"),
    ("Paddle Inference throughput at the largest batch over HF XLM-R", ("inference", "paddle_inference"), 1.0, "min"),
    ("tokenizer sentences/s: ours over PaddleNLP's ErnieMTokenizer", ("tokenizer", "ours_over_paddlenlp"), 3.0, "min"),
]
# At the demo's small shape (`--preset demo`) the matrices are small and the targets are its own.
DEMO_TARGETS = [
    ("pretraining tokens/s: ours CAMLM over HF XLM-R, both keeping freed memory",
     ("pretraining", "camlm_over_hf_xlmr_both_kept_memory"), 2.0, "min"),
    ("pretraining tokens/s: ours CAMLM over HF XLM-R, each as shipped", ("pretraining", "camlm_over_hf_xlmr"), 2.5,
     "min"),
    ("encoder MFU (forward + backward) over the matrix-multiply peak", ("pretraining", "encoder_mfu"), 0.25, "min"),
    ("BTMLM step (generation included) over the CAMLM step, time, both building their batches",
     ("pretraining", "btmlm_over_camlm_time"), 1.25, "max"),
]


def _measured(results: Dict, section: str, key: str):
    if section not in results:
        return None
    if key == "encoder_mfu":
        return results["pretraining"]["steps"]["ours/encoder_fwd_bwd"].get("mfu")
    if key == "paddle_inference":
        ratios = results["inference"]["ratios"]
        return next((v for k, v in ratios.items() if k.startswith("ours/paddle_inference")), None)
    return results[section]["ratios"].get(key)


def _table(header: List[str], rows: List[List[str]]) -> List[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def write_report(results: Dict, output_dir: str) -> str:
    shape, machine = results["shape"], results["machine"]
    lines = ["# Speed, side by side", "",
             f"`{results['command']}`", "",
             f"Machine: {machine['cpu']}, {machine['cores']} cores, OMP_NUM_THREADS={machine['omp_num_threads']}; "
             f"paddle {machine['paddle']}, paddlenlp {machine['paddlenlp']}, torch {machine['torch']}, "
             f"transformers {machine['transformers']}, onnxruntime {machine['onnxruntime']}.",
             f"Shape: {shape['preset']} ({shape.get('model_preset', shape['preset'])}: {shape['layers']} layers, hidden "
             f"{shape['hidden_size']}, dropout {shape.get('dropout', 0.1)}), vocabulary {shape['vocab_size']}, sequence "
             f"{shape['length']}, CAMLM masking {shape.get('camlm_mask_prob', 0.15)}; medians of {shape['repeats']} "
             f"runs after a warm-up" + (f", in each of {shape['rounds']} rounds (pretraining)"
                                         if shape.get("rounds", 1) > 1 else "") + ".",
             ""]
    if "matmul_peak_gflops" in results:
        peak = results["matmul_peak_gflops"]
        lines += ["Matrix-multiply throughput (float32, 2048^2, each library in a fresh process; the best is the MFU "
                  "denominator): " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peak.items()), ""]
    rows = []
    for what, (section, key), target, direction in DEMO_TARGETS if shape["preset"] == "demo" else TARGETS:
        value = _measured(results, section, key)
        if value is None:
            continue
        shown = f"{value:.0%}" if key == "encoder_mfu" else f"{value:.2f}x"
        goal = f"{target:.0%}" if key == "encoder_mfu" else f"{target:.2f}x"
        met = value >= target if direction == "min" else value <= target
        rows.append([what, ("at least " if direction == "min" else "at most ") + goal, shown,
                     "met" if met else "not met"])
    if rows:
        lines += ["## Targets", ""] + _table(["what", "target", "measured", ""], rows) + [""]

    if "pretraining" in results:
        p = results["pretraining"]
        lines += ["## Pretraining steps", "",
                  f"{shape['train_batch']} examples x {shape['length']} tokens = {p['tokens_per_step']} tokens a step, "
                  f"{p['predicted_per_step']} of them predicted (CAMLM's batch, used by every variant); each variant "
                  f"in a fresh process, timed after {p.get('warmup_steps', 1)} untimed steps.", ""]
        base = p["steps"]["ours/camlm"]["median_s"]
        rows = [[name, f"{f['median_s']:.2f}", f"{f['tokens_per_s']:.0f}",
                 f"{f['mfu']:.0%}" if "mfu" in f else "-", f"{f['median_s'] / base:.2f}"]
                for name, f in p["steps"].items()]
        lines += _table(["step", "seconds", "tokens/s", "MFU", "time / ours CAMLM"], rows) + [""]
        ratios = p["ratios"]
        same = [[peer, f"{ratios[f'camlm_over_{key}']:.2f}x", f"{ratios[f'camlm_over_{key}_both_kept_memory']:.2f}x",
                 f"{ratios[f'camlm_over_{key}_both_default_malloc']:.2f}x"]
                for peer, key in (("naive PaddleNLP", "paddlenlp_naive"), ("HF XLM-R", "hf_xlmr"))
                if f"camlm_over_{key}_both_kept_memory" in ratios]
        if same:
            lines += ["Ours CAMLM tokens/s over each peer: as each is run (ours keeps freed memory, the peers use "
                      "the default malloc), and with the same malloc setting on both sides.", ""]
            lines += _table(["peer", "as run", "both keep freed memory", "both default malloc"], same) + [""]
        if "btmlm_over_prebuilt_camlm_time" in ratios:
            lines += [f"BTMLM's step over CAMLM's, time: {ratios['btmlm_over_camlm_time']:.2f}x with both building "
                      f"their batches every step (as in a run), {ratios['btmlm_over_prebuilt_camlm_time']:.2f}x "
                      f"against CAMLM on its batch built beforehand.", ""]
    if "inference" in results:
        inf = results["inference"]
        batches = sorted({key for r in inf["results"].values() for key in r}, key=lambda k: int(k.split("_")[1]))
        header = ["backend"] + [f"{b.replace('_', ' ')}: ms / seq/s / MFU" for b in batches]
        rows = [[name] + [f"{r[b]['median_s'] * 1e3:.0f} / {r[b]['sequences_per_s']:.1f} / {r[b]['mfu']:.0%}"
                          for b in batches] for name, r in inf["results"].items()]
        lines += ["## Inference (encoder forward)", ""] + _table(header, rows) + [""]
    if "tokenizer" in results:
        tok = results["tokenizer"]
        lines += ["## Tokenizer", "",
                  f"{tok['lines']} lines, {tok['characters']} characters, {len(tok['languages'])} languages; "
                  f"sentencepiece vocabulary {tok['vocab_size']}; ids identical to PaddleNLP's on "
                  f"{tok['identical_ids_with_paddlenlp']} lines.", ""]
        rows = [[name, f"{f['sentences_per_s']:.0f}", f"{f['median_s']:.2f}"] for name, f in tok["results"].items()]
        lines += _table(["tokenizer", "sentences/s", "seconds for all lines"], rows) + [""]
    if "data" in results:
        data = results["data"]
        lines += ["## Data path: reading as the readers grow", "",
                  f"A generated corpus of {data['corpus_bytes'] / (1 << 20):.0f} MiB (three languages), read for one "
                  f"pass through {data['shards']} virtual shards; each reader (rank x worker) reads only its shards' "
                  f"byte ranges. Before byte-range sharding every reader read every byte: the corpus times the "
                  f"readers.", ""]
        rows = [[str(r["ranks"]), str(r["readers"]), f"{r['bytes_read_over_corpus']:.4f}",
                 f"{r['lines_per_second_per_reader_median']:.0f}", f"{r['lines_per_second_per_reader_min']:.0f}"]
                for r in data["rows"]]
        lines += _table(["ranks", "readers", "bytes read / corpus", "lines/s per reader (median)", "(slowest)"],
                        rows) + [""]
    lines += ["![speed](speed.png)", ""]
    with open(os.path.join(output_dir, "report.md"), "w") as handle:
        handle.write("\n".join(lines))
    plot(results, os.path.join(output_dir, "speed.png"))
    return "\n".join(lines)


def plot(results: Dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    if "pretraining" in results:
        steps = results["pretraining"]["steps"]
        panels.append(("pretraining tokens/s", {k: v["tokens_per_s"] for k, v in steps.items()
                                                if k != "ours/encoder_fwd_bwd"}))
    if "inference" in results:
        inf = results["inference"]["results"]
        largest = max((key for r in inf.values() for key in r), key=lambda k: int(k.split("_")[1]))
        panels.append((f"inference sequences/s, {largest.replace('_', ' ')}",
                       {k: v[largest]["sequences_per_s"] for k, v in inf.items()}))
    if "tokenizer" in results:
        panels.append(("tokenizer sentences/s", {k: v["sentences_per_s"]
                                                 for k, v in results["tokenizer"]["results"].items()}))
    if not panels:
        return
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for axis, (title, values) in zip(axes[0], panels):
        names = list(values)
        colours = ["tab:blue" if name.startswith("ours") else "tab:gray" for name in names]
        axis.barh(names, [values[n] for n in names], color=colours)
        axis.set_title(title, fontsize=10)
        axis.invert_yaxis()
        axis.tick_params(labelsize=8)
    figure.suptitle(f"{results['shape']['preset']}, vocab {results['shape']['vocab_size']}, "
                    f"sequence {results['shape']['length']}, {results['machine']['cores']} cores "
                    f"(blue: this project)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
