"""Choose the demo's objective settings on the dev pairs: CAMLM's masking rate, BTMLM's share of stage 2, and
whether BTMLM waits for its readiness gate.

    python -m tools.demo.sweep --output_dir outputs/sweep [--seeds 1 2] [--points mask0.15 mask0.5 ...]

Each point runs the demo pipeline for ERNIE-M alone (no transfer), with the `standard` preset's other settings,
over the given seeds, and reads its dev-pair retrieval (best layer, per language group): the test pairs are never
looked at. It writes sweep.json and sweep.md; docs/demo.md records the table and the values taken.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Dict, List

import numpy as np

BASE = {"camlm_mask_prob": 0.5, "btmlm_share": 0.3}
NO_GATE = ["btmlm.min_camlm_gain=0", "btmlm.min_distinct_share=0"]
POINTS = {
    "mask0.15": {"camlm_mask_prob": 0.15},
    "mask0.3": {"camlm_mask_prob": 0.3},
    "mask0.5": {},
    "share0.15": {"btmlm_share": 0.15},
    "share0.5": {"btmlm_share": 0.5},
    "no-gate": {"pretrain_override": NO_GATE},
}


def dev_retrieval(runs: List[dict], languages: List[str], subsets: Dict[str, np.ndarray] = None) -> Dict[str, float]:
    """Best-layer dev retrieval of one model over `languages` (over `subsets[lang]` of the pairs if given): mean over
    seeds, and the spread over seeds."""
    def score(run, lang):
        layers = np.asarray(run["retrieval"]["pairs_dev"][lang])
        return (layers if subsets is None else layers[:, subsets[lang]]).mean(axis=1)

    per_seed = np.asarray([[score(run, lang) for lang in languages] for run in runs]).mean(axis=1)  # [seeds, layers]
    layer = int(per_seed.mean(0).argmax())
    values = per_seed[:, layer]
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "layer": layer}


def point_arguments(name: str, args) -> List[str]:
    settings = dict(BASE, **POINTS[name])
    command = ["--output_dir", os.path.join(args.output_dir, name), "--cache_dir", args.cache_dir, "--arms",
               "ernie-m", "--skip_transfer", "--seeds", *map(str, args.seeds),
               "--camlm_mask_prob", str(settings["camlm_mask_prob"]), "--btmlm_share", str(settings["btmlm_share"])]
    if settings.get("pretrain_override"):
        command += ["--pretrain_override", *settings["pretrain_override"]]
    if args.steps_per_stage:
        command += ["--steps_per_stage", str(args.steps_per_stage)]
    return command


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default=os.path.join("outputs", "sweep"))
    parser.add_argument("--cache_dir", default=os.path.join("outputs", "package_cache"))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--points", nargs="+", default=list(POINTS), choices=list(POINTS))
    parser.add_argument("--steps_per_stage", type=int, help="default: the standard preset's")
    parser.add_argument("--summarize_only", action="store_true", help="rebuild the table from finished points")
    args = parser.parse_args(argv)
    from tools.demo import run
    from tools.demo.evaluate import overlap_by_language
    from tools.demo.report import overlap_halves

    rows = {}
    for name in args.points:
        point_dir = os.path.join(args.output_dir, name)
        if not args.summarize_only:
            print(f"== sweep point {name}", flush=True)
            run.main(point_arguments(name, args))
        with open(os.path.join(point_dir, "results.json")) as handle:
            results = json.load(handle)
        parallel, monolingual = results["parallel_languages"], results["monolingual_only_languages"]
        overlap = results.get("overlap_dev") or overlap_by_language(
            os.path.join(point_dir, "tokenizer"), os.path.join(point_dir, "corpus"), parallel + monolingual,
            "pairs_dev")
        low = {lang: overlap_halves(values)["low"] for lang, values in overlap.items()}
        row = {"settings": dict(BASE, **POINTS[name])}
        for model in ("ernie-m-stage1", "ernie-m"):
            runs = results["models"][model]
            row[model] = {"parallel": dev_retrieval(runs, parallel),
                          "monolingual_only": dev_retrieval(runs, monolingual),
                          "parallel_low_overlap": dev_retrieval(runs, parallel, low),
                          "monolingual_only_low_overlap": dev_retrieval(runs, monolingual, low)}
        row["btmlm_ready_at"] = [info["btmlm_ready_at"] for info in
                                 results["pretraining"]["ernie-m"]["seeds"].values()]
        rows[name] = row
    with open(os.path.join(args.output_dir, "sweep.json"), "w") as handle:
        json.dump(rows, handle, indent=1)
    cells_of = [("ernie-m-stage1", "parallel"), ("ernie-m", "parallel"), ("ernie-m-stage1", "parallel_low_overlap"),
                ("ernie-m", "parallel_low_overlap"), ("ernie-m", "monolingual_only"),
                ("ernie-m-stage1", "monolingual_only_low_overlap"), ("ernie-m", "monolingual_only_low_overlap")]
    lines = ["| point | " + " | ".join(f"{'stage 1' if m.endswith('stage1') else 'final'}, {g.replace('_', ' ')}"
                                       for m, g in cells_of) + " | BTMLM gate opened at |",
             "|---|" + "---|" * (len(cells_of) + 1)]
    for name, row in rows.items():
        cells = [f"{100 * row[m][g]['mean']:.1f} ± {100 * row[m][g]['sd']:.1f} (layer {row[m][g]['layer']})"
                 for m, g in cells_of]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['btmlm_ready_at']} |")
    with open(os.path.join(args.output_dir, "sweep.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
