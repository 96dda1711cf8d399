"""Choose how BTMLM gets its share of the demo on the dev pairs: the split between the stages, the gate's
thresholds and BTMLM's share of stage 2.

    python -m tools.demo.sweep --output_dir outputs/sweep [--seeds 1 2] [--points base split600 ...]

Each point runs the demo pipeline for ERNIE-M and its no-BTMLM control (no transfer) over the given seeds, with the
`standard` preset's other settings, and reads only the dev pairs of the monolingual-only languages, the ones BTMLM
exists for: ERNIE-M's and the control's best-layer retrieval (full and low-overlap half) and their paired difference,
the share of stage 2 that BTMLM ran, and the dev chrF of the generation pass at the end. The test pairs are never
looked at. It writes sweep.json and sweep.md; docs/demo.md records the table and the values taken.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Dict, List

import numpy as np

# The settings before this sweep; the point taken (split600-no-gate) is the standard preset now.
BASE = {"stage_steps": [400, 400], "btmlm_share": 0.3, "gate": [0.02, 0.1]}
POINTS = {
    "base": {},
    "share0.5": {"btmlm_share": 0.5},
    "distinct0.05": {"btmlm_share": 0.5, "gate": [0.02, 0.05]},
    "split600": {"stage_steps": [600, 200], "btmlm_share": 0.5},
    "split600-no-gate": {"stage_steps": [600, 200], "btmlm_share": 0.5, "gate": [0.0, 0.0]},
    "no-gate": {"btmlm_share": 0.5, "gate": [0.0, 0.0]},
}


def dev_scores(run: dict, languages: List[str], subsets: Dict[str, np.ndarray] = None) -> np.ndarray:
    """[layers + 1]: one seed's dev retrieval per layer over `languages` (over `subsets[lang]` of the pairs)."""
    def score(lang):
        layers = np.asarray(run["retrieval"]["pairs_dev"][lang])
        return (layers if subsets is None else layers[:, subsets[lang]]).mean(axis=1)

    return np.mean([score(lang) for lang in languages], axis=0)


def paired_dev(results: dict, ours: str, theirs: str, languages: List[str], subsets=None) -> dict:
    """Each model at its own best dev layer (mean over seeds): means, and ours minus theirs per seed."""
    def per_seed(model):
        scores = np.asarray([dev_scores(run, languages, subsets) for run in results["models"][model]])
        return scores[:, int(scores.mean(0).argmax())]

    a, b = per_seed(ours), per_seed(theirs)
    difference = a - b
    return {ours: float(a.mean()), theirs: float(b.mean()), "difference": float(difference.mean()),
            "difference_sd": float(difference.std(ddof=1)) if len(difference) > 1 else 0.0}


def final_chrf(results: dict, arm: str) -> float:
    """Mean over seeds of the last evaluation's dev chrF (monolingual-only languages)."""
    return float(np.mean([info["evaluations"][-1].get("btmlm_chrf_monolingual_only", np.nan)
                          for info in results["pretraining"][arm]["seeds"].values()]))


def point_arguments(name: str, args) -> List[str]:
    settings = dict(BASE, **POINTS[name])
    gain, distinct = settings["gate"]
    return ["--output_dir", os.path.join(args.output_dir, name), "--cache_dir", args.cache_dir, "--arms", "ernie-m",
            "no-btmlm", "--skip_transfer", "--seeds", *map(str, args.seeds),
            "--stage_steps", *map(str, settings["stage_steps"]), "--btmlm_share", str(settings["btmlm_share"]),
            "--pretrain_override", f"btmlm.min_camlm_gain={gain}", f"btmlm.min_distinct_share={distinct}"]


def summarize_point(name: str, results: dict) -> dict:
    from tools.demo.report import overlap_halves

    monolingual = results["monolingual_only_languages"]
    low = {lang: overlap_halves(values)["low"] for lang, values in results["overlap_dev"].items()}
    seeds = results["pretraining"]["ernie-m"]["seeds"].values()
    stage_two = results["settings"]["stage_steps"][1]
    return {"settings": dict(BASE, **POINTS[name]),
            "monolingual_only": paired_dev(results, "ernie-m", "no-btmlm", monolingual),
            "monolingual_only_low_overlap": paired_dev(results, "ernie-m", "no-btmlm", monolingual, low),
            "btmlm_ready_at": [info["btmlm_ready_at"] for info in seeds],
            "btmlm_share_of_stage_two": [info["btmlm_steps"] / stage_two for info in seeds],
            "chrf": {arm: final_chrf(results, arm) for arm in ("ernie-m", "no-btmlm")},
            "source_copy_chrf": float(np.mean([info["evaluations"][-1].get("source_copy_chrf_monolingual_only",
                                                                           np.nan) for info in seeds]))}


def table(rows: Dict[str, dict]) -> List[str]:
    lines = ["| point | stages | gate (CAMLM gain, distinct share) | BTMLM share | gate opened at | BTMLM's share of "
             "stage 2, per seed | dev retrieval, monolingual-only: ernie-m | no-btmlm | difference | low-overlap "
             "half: ernie-m | no-btmlm | difference | dev chrF at the end: ernie-m | no-btmlm | source copy |",
             "|---" * 15 + "|"]
    for name, row in rows.items():
        settings = row["settings"]
        cells = [f"{settings['stage_steps'][0]} + {settings['stage_steps'][1]}",
                 "off" if not any(settings["gate"]) else f"{settings['gate'][0]}, {settings['gate'][1]}",
                 str(settings["btmlm_share"]), str(row["btmlm_ready_at"]) if any(settings["gate"]) else "–",
                 ", ".join(f"{100 * share:.0f}%" for share in row["btmlm_share_of_stage_two"])]
        for group in ("monolingual_only", "monolingual_only_low_overlap"):
            cell = row[group]
            cells += [f"{100 * cell['ernie-m']:.1f}", f"{100 * cell['no-btmlm']:.1f}",
                      f"{100 * cell['difference']:+.1f} ± {100 * cell['difference_sd']:.1f}"]
        cells += [f"{row['chrf']['ernie-m']:.1f}", f"{row['chrf']['no-btmlm']:.1f}", f"{row['source_copy_chrf']:.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default=os.path.join("outputs", "sweep"))
    parser.add_argument("--cache_dir", default=os.path.join("outputs", "package_cache"))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--points", nargs="+", default=list(POINTS), choices=list(POINTS))
    parser.add_argument("--summarize_only", action="store_true", help="rebuild the table from finished points")
    args = parser.parse_args(argv)
    from tools.demo import run

    rows = {}
    for name in args.points:
        point_dir = os.path.join(args.output_dir, name)
        if not args.summarize_only:
            print(f"== sweep point {name}", flush=True)
            run.main(point_arguments(name, args))
        with open(os.path.join(point_dir, "results.json")) as handle:
            rows[name] = summarize_point(name, json.load(handle))
    with open(os.path.join(args.output_dir, "sweep.json"), "w") as handle:
        json.dump(rows, handle, indent=1)
    lines = table(rows)
    with open(os.path.join(args.output_dir, "sweep.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
