"""results.json -> report.md (tables and a plain reading of them) and scores.png (per-language bars)."""
from __future__ import annotations

import os
from typing import Dict, List

TASKS = {"retrieval": "sentence retrieval (UDHR, accuracy@1, mean of both directions)",
         "transfer": "zero-shot topic classification (trained on English, accuracy)"}


def averages(scores: Dict[str, float], parallel: List[str], monolingual: List[str]) -> Dict[str, float]:
    def mean(languages):
        values = [scores[lang] for lang in languages if lang in scores]
        return sum(values) / len(values) if values else float("nan")

    return {"average": mean(parallel + monolingual), "parallel_languages": mean(parallel),
            "monolingual_only_languages": mean(monolingual)}


def _table(results: dict, task: str, languages: List[str]) -> List[str]:
    models = list(results["models"])
    lines = ["| language | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for language in languages + ["average", "parallel_languages", "monolingual_only_languages"]:
        row = []
        for model in models:
            value = results["models"][model][task].get(language)
            row.append("–" if value is None else f"{100 * value:.1f}")
        lines.append(f"| {language.replace('_', ' ')} | " + " | ".join(row) + " |")
    return lines


def _reading(results: dict) -> List[str]:
    """Sentences computed from the numbers: who is ahead where, and by how much."""
    models = results["models"]
    full, baseline = results["main_model"], results["baseline_model"]
    lines = []
    for task in TASKS:
        for group in ("parallel_languages", "monolingual_only_languages"):
            ours, theirs = models[full][task][group], models[baseline][task][group]
            verb = "ahead of" if ours > theirs else ("level with" if ours == theirs else "behind")
            lines.append(f"- {task}, {group.replace('_', ' ')}: `{full}` is {verb} `{baseline}` "
                         f"({100 * ours:.1f} vs {100 * theirs:.1f}, {100 * (ours - theirs):+.1f} points).")
    stage_one = results.get("stage_one_model")
    if stage_one in models:
        for task in TASKS:
            gain = (models[full][task]["monolingual_only_languages"]
                    - models[stage_one][task]["monolingual_only_languages"])
            effect = "helps" if gain > 0 else "does not help"
            lines.append(f"- BTMLM (stage 2 over stage 1) {effect} {task} on the monolingual-only languages "
                         f"({100 * gain:+.1f} points).")
    return lines


def write_report(results: dict, output_dir: str) -> None:
    parallel, monolingual = results["parallel_languages"], results["monolingual_only_languages"]
    lines = [
        "# ERNIE-M demo: does CAMLM + BTMLM align languages better than MLM?", "",
        f"Corpus: {results['corpus_summary']}", "",
        "Pretraining (same steps and padded-token budget per step for every model; real tokens seen below):", "",
        "| model | objectives | steps | tokens | minutes |", "|---|---|---|---|---|",
    ]
    for name, info in results["pretraining"].items():
        minutes = "(within ernie-m)" if info["seconds"] is None else f"{info['seconds'] / 60:.1f}"
        lines.append(f"| {name} | {info['objectives']} | {info['steps']} | {info['tokens']:,} | {minutes} |")
    lines += ["", f"Parallel languages: {', '.join(parallel)}. Monolingual-only (their parallel data held back): "
              f"{', '.join(monolingual)}.", ""]
    for task, title in TASKS.items():
        extra = ["en"] if task == "transfer" else []
        lines += [f"## {title}", "", *_table(results, task, extra + parallel + monolingual), ""]
    lines += ["## What it shows", "", *_reading(results), "",
              "These are small models trained for minutes on a few thousand software-interface messages; differences "
              "of a few points sit within the noise of such a run (about 50 retrieval units and a few hundred test "
              "utterances per language). Read the table as a check that the pipeline measures alignment, not as a "
              "replication of the paper's numbers.", "", "![scores](scores.png)", ""]
    with open(os.path.join(output_dir, "report.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    plot(results, os.path.join(output_dir, "scores.png"))


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    languages = results["parallel_languages"] + results["monolingual_only_languages"]
    models = list(results["models"])
    figure, axes = plt.subplots(1, len(TASKS), figsize=(6 * len(TASKS), 4), squeeze=False)
    width = 0.8 / len(models)
    for axis, task in zip(axes[0], TASKS):
        positions = np.arange(len(languages))
        for index, model in enumerate(models):
            values = [100 * results["models"][model][task].get(lang, float("nan")) for lang in languages]
            axis.bar(positions + index * width, values, width, label=model)
        axis.set_xticks(positions + width * (len(models) - 1) / 2, languages)
        boundary = len(results["parallel_languages"]) - 0.5 + width * (len(models) - 1) / 2
        axis.axvline(boundary, color="grey", linestyle="--", linewidth=1)
        axis.set_title(task + " (left of the line: parallel; right: monolingual-only)", fontsize=9)
        axis.set_ylabel("accuracy, %")
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
