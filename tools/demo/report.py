"""results.json -> summary (layer chosen on dev, means ± sd over seeds, paired comparisons), report.md, scores.png."""
from __future__ import annotations

import os
from typing import Dict, List

import numpy as np

from .stats import format_mean_sd, mean_sd, paired_comparison

GROUPS = ("parallel_languages", "monolingual_only_languages")
MAIN, STAGE_ONE, UNTRAINED, TFIDF = "ernie-m", "ernie-m-stage1", "untrained", "tfidf"
# (ours, theirs, measure, group): the comparisons the report states, the paper's claims first.
COMPARISONS = [
    (MAIN, "mmlm", "retrieval", "parallel_languages"),
    (MAIN, "mmlm-tlm", "retrieval", "parallel_languages"),
    (MAIN, "mmlm", "retrieval", "monolingual_only_languages"),
    (MAIN, STAGE_ONE, "retrieval", "monolingual_only_languages"),
    (MAIN, "mmlm", "retrieval_low_overlap", "parallel_languages"),
    (MAIN, "mmlm-tlm", "retrieval_low_overlap", "parallel_languages"),
    (MAIN, STAGE_ONE, "retrieval_low_overlap", "monolingual_only_languages"),
    (MAIN, "mmlm", "transfer", "parallel_languages"),
    (MAIN, "mmlm", "transfer", "monolingual_only_languages"),
    (MAIN, STAGE_ONE, "transfer", "monolingual_only_languages"),
]
MEASURES = {"retrieval": "in-domain retrieval (held-out catalog pairs, accuracy@1)",
            "retrieval_low_overlap": "in-domain retrieval, the half of each language's pairs sharing fewest subwords",
            "retrieval_high_overlap": "in-domain retrieval, the half sharing most subwords",
            "udhr": "out-of-domain retrieval (UDHR, accuracy@1)",
            "transfer": "zero-shot topic classification (trained on English, accuracy)"}


def overlap_halves(overlap: List[float]) -> Dict[str, np.ndarray]:
    """Indices of the lower and upper half of the pairs by subword overlap (ties broken by position)."""
    order = np.argsort(np.asarray(overlap), kind="stable")
    half = len(order) // 2
    return {"low": np.sort(order[:half]), "high": np.sort(order[half:])}


def choose_layer(runs: List[dict], languages: List[str]) -> int:
    """The layer with the best dev retrieval, averaged over seeds and languages (never the test pairs)."""
    dev = np.mean([[np.mean(run["retrieval"]["pairs_dev"][lang], axis=1) for lang in languages] for run in runs],
                  axis=(0, 1))
    return int(np.argmax(dev))


def per_seed_scores(run: dict, layer: int, languages: List[str], overlap: Dict[str, List[float]]) -> dict:
    """{measure: {language: score}} of one seed at `layer`."""
    scores = {measure: {} for measure in MEASURES}
    for lang in languages:
        test = np.asarray(run["retrieval"]["pairs_test"][lang][layer])
        halves = overlap_halves(overlap[lang])
        scores["retrieval"][lang] = float(test.mean())
        scores["retrieval_low_overlap"][lang] = float(test[halves["low"]].mean())
        scores["retrieval_high_overlap"][lang] = float(test[halves["high"]].mean())
        scores["udhr"][lang] = float(np.mean(run["retrieval"]["retrieval"][lang][layer]))
    if "transfer" in run:
        scores["transfer"] = dict(run["transfer"])
    else:
        del scores["transfer"]
    return scores


def _group_mean(scores: Dict[str, float], languages: List[str]) -> float:
    values = [scores[lang] for lang in languages if lang in scores]
    return float(np.mean(values)) if values else float("nan")


def summarize(results: dict) -> dict:
    parallel, monolingual = results["parallel_languages"], results["monolingual_only_languages"]
    languages = parallel + monolingual
    groups = {"parallel_languages": parallel, "monolingual_only_languages": monolingual, "average": languages}
    summary = {"layers": {}, "per_seed": {}, "table": {}, "gain_over_untrained": {}, "comparisons": [],
               "dev_by_layer": {}}
    for name, runs in results["models"].items():
        layer = 0 if name == TFIDF else choose_layer(runs, languages)
        summary["layers"][name] = layer
        summary["dev_by_layer"][name] = np.mean(
            [[np.mean(run["retrieval"]["pairs_dev"][lang], axis=1) for lang in languages] for run in runs],
            axis=(0, 1)).tolist()
        seeds = [per_seed_scores(run, layer, languages, results["overlap"]) for run in runs]
        for scores in seeds:
            for measure in list(scores):
                for group, members in groups.items():
                    scores[measure][group] = _group_mean(scores[measure], members)
            for key in ("mmlm_accuracy", "camlm_accuracy", "camlm_unigram_accuracy"):
                if key in runs[0].get("held_out", {}):
                    scores.setdefault("held_out", {})[key] = None
        for scores, run in zip(seeds, runs):
            if "held_out" in scores:
                scores["held_out"] = {key: run["held_out"].get(key) for key in scores["held_out"]}
        summary["per_seed"][name] = seeds
        table = {}
        for measure in seeds[0]:
            table[measure] = {key: mean_sd([s[measure][key] for s in seeds]) for key in seeds[0][measure]}
        summary["table"][name] = table
    untrained = summary["per_seed"].get(UNTRAINED)
    for name, seeds in summary["per_seed"].items():
        if untrained is None or name in (UNTRAINED, TFIDF):
            continue
        summary["gain_over_untrained"][name] = {
            f"{measure}:{group}": paired_comparison([s[measure][group] for s in seeds],
                                                    [u[measure][group] for u in untrained])
            for measure in ("retrieval", "retrieval_low_overlap", "transfer") if measure in seeds[0]
            for group in GROUPS}
    for ours, theirs, measure, group in COMPARISONS:
        a, b = summary["per_seed"].get(ours), summary["per_seed"].get(theirs)
        if not a or not b or measure not in a[0] or measure not in b[0]:
            continue
        members = groups[group]
        comparison = paired_comparison([s[measure][group] for s in a], [s[measure][group] for s in b],
                                       [[s[measure][lang] for lang in members] for s in a],
                                       [[s[measure][lang] for lang in members] for s in b])
        summary["comparisons"].append({"ours": ours, "theirs": theirs, "measure": measure, "group": group,
                                       **comparison})
    return summary


# ---- report.md -------------------------------------------------------------------------------------------------

def _points(value: float) -> str:
    return f"{100 * value:+.1f}"


SHORT = {"retrieval": "in-domain retrieval", "retrieval_low_overlap": "in-domain retrieval, low-overlap half",
         "retrieval_high_overlap": "in-domain retrieval, high-overlap half", "udhr": "UDHR retrieval",
         "transfer": "transfer"}


def comparison_sentence(c: dict) -> str:
    group = c["group"].replace("_", " ")
    low, high = c["ci95"]
    spread = (f"95% CI of the per-seed difference [{_points(low)}, {_points(high)}]" if c["seeds"] > 1
              else "one seed: no spread to compare against")
    cells = f"; ahead in {c['cells_ahead']} of {c['cells']} seed-language cells" if "cells" in c else ""
    return (f"- {SHORT[c['measure']]}, {group}: `{c['ours']}` is **{c['verdict']}** `{c['theirs']}` "
            f"({_points(c['difference'])} points, {spread}{cells}).")


def _models(summary: dict) -> List[str]:
    order = [UNTRAINED, TFIDF, "mmlm", "mmlm-tlm", STAGE_ONE, MAIN]
    return [name for name in order if name in summary["table"]]


def headline(results: dict) -> List[str]:
    summary = results["summary"]
    columns = [("retrieval", "parallel_languages", "retrieval, parallel"),
               ("retrieval", "monolingual_only_languages", "retrieval, monolingual-only"),
               ("retrieval_low_overlap", "parallel_languages", "low-overlap half, parallel"),
               ("retrieval_low_overlap", "monolingual_only_languages", "low-overlap half, monolingual-only")]
    header = "".join(f" {title} | gain over untrained |" for _, _, title in columns)
    lines = [f"| model | layer |{header} UDHR | transfer, parallel | transfer, monolingual-only | held-out MLM "
             "acc. | held-out CAMLM acc. | tokens |", "|---" * 16 + "|"]
    for name in _models(summary):
        table, gains = summary["table"][name], summary["gain_over_untrained"].get(name, {})
        cells = [str(summary["layers"][name]) if name != TFIDF else "–"]
        for measure, group, _ in columns:
            cells.append(format_mean_sd(table[measure][group]))
            gain = gains.get(f"{measure}:{group}")
            cells.append("–" if gain is None else f"{_points(gain['difference'])} ± {100 * (gain['sd'] or 0):.1f}")
        cells.append(format_mean_sd(table["udhr"]["average"]))
        for group in GROUPS:
            cells.append(format_mean_sd(table["transfer"][group]) if "transfer" in table else "–")
        held = table.get("held_out", {})
        cells.append(format_mean_sd(held["mmlm_accuracy"]) if "mmlm_accuracy" in held else "–")
        cells.append(format_mean_sd(held["camlm_accuracy"]) if "camlm_accuracy" in held else "–")
        seeds = results["pretraining"].get(name, {}).get("seeds", {})
        tokens = [info["tokens"] for info in seeds.values()]
        cells.append(f"{np.mean(tokens):,.0f}" if tokens else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def language_table(results: dict, measure: str) -> List[str]:
    summary = results["summary"]
    models = [m for m in _models(summary) if measure in summary["table"][m]]
    languages = (["en"] if measure == "transfer" else []) + results["parallel_languages"] + \
        results["monolingual_only_languages"]
    lines = ["| language | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for key in languages + list(GROUPS) + ["average"]:
        row = [format_mean_sd(summary["table"][m][measure].get(key, {})) for m in models]
        lines.append(f"| {key.replace('_', ' ')} | " + " | ".join(row) + " |")
    return lines


def overlap_table(results: dict) -> List[str]:
    lines = ["| language | mean overlap | median | low half (mean) | high half (mean) |", "|---|---|---|---|---|"]
    for lang, values in results["overlap"].items():
        values = np.asarray(values)
        halves = overlap_halves(values.tolist())
        lines.append(f"| {lang} | {values.mean():.2f} | {np.median(values):.2f} | "
                     f"{values[halves['low']].mean():.2f} | {values[halves['high']].mean():.2f} |")
    return lines


def gate_lines(results: dict) -> List[str]:
    seeds = results["pretraining"].get(MAIN, {}).get("seeds", {})
    lines = []
    for seed, info in sorted(seeds.items(), key=lambda item: int(item[0])):
        evaluations = info.get("evaluations", [])
        last = evaluations[-1] if evaluations else {}
        opened = info.get("btmlm_ready_at")
        state = f"opened at step {opened}" if opened else "never opened (stage 2 ran CAMLM + MMLM only)"
        detail = ""
        if last:
            detail = (f"; at the end: held-out CAMLM accuracy {100 * last.get('camlm_accuracy', float('nan')):.1f}% "
                      f"(unigram {100 * last.get('camlm_unigram_accuracy', float('nan')):.1f}%), pseudo-translation "
                      f"distinct share {last.get('btmlm_distinct_share', float('nan')):.2f}")
        lines.append(f"- seed {seed}: BTMLM gate {state}{detail}.")
    return lines


def budget_line(results: dict) -> str:
    means = {name: np.mean([info["tokens"] for info in results["pretraining"][name]["seeds"].values()])
             for name in ("ernie-m", "mmlm", "mmlm-tlm") if name in results["pretraining"]}
    if len(means) < 2:
        return ""
    spread = (max(means.values()) - min(means.values())) / min(means.values())
    verdict = "within" if spread <= 0.02 else "NOT within"
    return (f"Tokens trained on (mean over seeds, every token of every row counted): "
            f"{', '.join(f'{k} {v:,.0f}' for k, v in means.items())}: largest difference {100 * spread:.1f}%, "
            f"{verdict} the 2% the comparison needs.")


def write_report(results: dict, output_dir: str) -> None:
    summary = results["summary"]
    parallel, monolingual = results["parallel_languages"], results["monolingual_only_languages"]
    settings = results["settings"]
    lines = [
        "# ERNIE-M demo: does CAMLM + BTMLM align languages better than MLM?", "",
        "The paper's claim, in miniature: ERNIE-M (CAMLM, then + BTMLM) retrieves translations better than MMLM and "
        "MMLM + TLM for the languages with parallel data, and BTMLM improves on its stage 1 for languages with "
        "monolingual data only. Every number is a mean ± standard deviation over pretraining seeds "
        f"({', '.join(map(str, results['seeds']))}); a difference is called ahead or behind only when the 95% "
        "confidence interval of its per-seed paired difference excludes zero.", "",
        f"Corpus: {results['corpus_summary']}", "",
        f"Parallel languages: {', '.join(parallel)}. Monolingual-only (their parallel data held back): "
        f"{', '.join(monolingual)}. Model `{settings['model_preset']}`, {settings['steps_per_stage']} steps a "
        f"stage, CAMLM masking {settings['camlm_mask_prob']}, BTMLM share of stage 2 {settings['btmlm_share']} "
        "once its gate opens.", "",
        "## The answer", "", *[comparison_sentence(c) for c in summary["comparisons"]], "",
        f"`{MAIN}` against `{STAGE_ONE}` measures stage 2 as a whole: {settings['steps_per_stage']} more steps of "
        "CAMLM + MMLM, with BTMLM among them only after its gate opened (below). It is not BTMLM's effect alone.", "",
        "Baselines: `untrained` is the same architecture and tokenizer with each seed's initial weights (what "
        "every arm starts from); `tfidf` is a bag-of-subwords TF-IDF with no model, which scores shared words "
        "alone. Gains are paired per seed against `untrained`.", "",
        *headline(results), "",
        "`layer`: the hidden layer used for retrieval, chosen per model on the dev pairs (0 = embeddings). Retrieval "
        "and transfer in %, UDHR averaged over all languages.", "",
        budget_line(results), "",
        "## Did the models learn, and did BTMLM run?", "", *gate_lines(results), "",
    ]
    for measure, title in MEASURES.items():
        if any(measure in summary["table"][m] for m in summary["table"]):
            lines += [f"## {title}", "", *language_table(results, measure), ""]
    lines += ["## How much of each pair is shared subwords (test pairs)", "",
              "Overlap: the share of the translation's distinct subwords that also occur in the English side.", "",
              *overlap_table(results), "",
              "## Dev retrieval by layer (mean over seeds and languages)", "",
              "| model | " + " | ".join(f"layer {i}" for i in range(max(len(v) for v in
                                                                      summary["dev_by_layer"].values()))) + " |",
              "|---|" + "---|" * max(len(v) for v in summary["dev_by_layer"].values())]
    for name, values in summary["dev_by_layer"].items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * v:.1f}" for v in values) + " |")
    cut = ("Transfer was skipped (--skip_transfer)." if settings.get("skip_transfer") else
           "Transfer: one fine-tuning run per pretraining seed (the fine-tuning seed is the pretraining seed), so "
           "its ± mixes both sources of variance; separate fine-tuning seeds were cut to keep the demo's time.")
    lines += ["", "## What was cut", "", cut, "", "![scores](scores.png)", ""]
    with open(os.path.join(output_dir, "report.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    plot(results, os.path.join(output_dir, "scores.png"))


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = results["summary"]
    languages = results["parallel_languages"] + results["monolingual_only_languages"]
    measures = [m for m in ("retrieval", "retrieval_low_overlap", "transfer")
                if any(m in summary["table"][n] for n in summary["table"])]
    colors = {model: f"C{index}" for index, model in enumerate(_models(summary))}  # the same in every panel
    figure, axes = plt.subplots(1, len(measures), figsize=(7 * len(measures), 4), squeeze=False)
    for axis, measure in zip(axes[0], measures):
        models = [m for m in _models(summary) if measure in summary["table"][m]]
        width = 0.8 / len(models)
        positions = np.arange(len(languages))
        for index, model in enumerate(models):
            cells = [summary["table"][model][measure].get(lang, {}) for lang in languages]
            axis.bar(positions + index * width, [100 * c.get("mean", np.nan) for c in cells], width,
                     yerr=[100 * (c.get("sd") or 0) for c in cells], capsize=2, label=model, color=colors[model])
        axis.set_xticks(positions + width * (len(models) - 1) / 2, languages)
        boundary = len(results["parallel_languages"]) - 0.5 + width * (len(models) - 1) / 2
        axis.axvline(boundary, color="grey", linestyle="--", linewidth=1)
        axis.set_title(f"{MEASURES[measure]}\nmean ± sd over seeds; left of the line: parallel, right: "
                       "monolingual-only", fontsize=8)
        axis.set_ylabel("%")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
