"""results.json -> summary (layer chosen on dev, means ± sd over seeds, paired comparisons), report.md, scores.png."""
from __future__ import annotations

import os
from typing import Dict, List

import numpy as np

from .stats import format_mean_sd, mean_sd, paired_comparison

GROUPS = ("parallel_languages", "monolingual_only_languages")
MAIN, STAGE_ONE, CONTROL, UNTRAINED, TFIDF = "ernie-m", "ernie-m-stage1", "no-btmlm", "untrained", "tfidf"
# (ours, theirs, measure, group): the comparisons the report states. BTMLM's own effect is ERNIE-M against the run
# that differs from it in BTMLM alone, on the languages BTMLM exists for; then the paper's claim against the MLM
# baselines on the languages with parallel data.
COMPARISONS = [
    (MAIN, CONTROL, "retrieval", "monolingual_only_languages"),
    (MAIN, CONTROL, "retrieval_low_overlap", "monolingual_only_languages"),
    (MAIN, CONTROL, "udhr", "monolingual_only_languages"),
    (MAIN, CONTROL, "transfer", "monolingual_only_languages"),
    (MAIN, CONTROL, "chrf", "monolingual_only_languages"),
    (MAIN, CONTROL, "retrieval", "parallel_languages"),
    (MAIN, "mmlm", "retrieval", "parallel_languages"),
    (MAIN, "mmlm-tlm", "retrieval", "parallel_languages"),
    (MAIN, "mmlm", "retrieval_low_overlap", "parallel_languages"),
    (MAIN, "mmlm-tlm", "retrieval_low_overlap", "parallel_languages"),
    (MAIN, "mmlm", "udhr", "parallel_languages"),
    (MAIN, "mmlm-tlm", "udhr", "parallel_languages"),
    (MAIN, "mmlm", "transfer", "parallel_languages"),
    (MAIN, "mmlm-tlm", "transfer", "parallel_languages"),
    (MAIN, "mmlm", "retrieval", "monolingual_only_languages"),
]
MEASURES = {"retrieval": "in-domain retrieval (held-out catalog pairs, accuracy@1)",
            "retrieval_low_overlap": "in-domain retrieval, the half of each language's pairs sharing fewest subwords",
            "retrieval_high_overlap": "in-domain retrieval, the half sharing most subwords",
            "udhr": "out-of-domain retrieval (UDHR, accuracy@1)",
            "transfer": "zero-shot topic classification (trained on English, accuracy)"}
# chrF of BTMLM's generation pass into English, per language group (held-out test pairs, /100 like the others).
CHRF_KEYS = {"parallel_languages": "btmlm_chrf_parallel", "monolingual_only_languages": "btmlm_chrf_monolingual_only"}


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


def chrf_scores(run: dict) -> Dict[str, float]:
    """{group: chrF / 100} of one seed's pseudo-translations (none for the no-model baseline)."""
    held = run.get("held_out", {})
    return {group: held[key] / 100 for group, key in CHRF_KEYS.items() if key in held}


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
            chrf = chrf_scores(run)
            if chrf:
                scores["chrf"] = chrf
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
        members = [lang for lang in groups[group] if lang in a[0][measure]]  # chrF is scored per group only
        comparison = paired_comparison([s[measure][group] for s in a], [s[measure][group] for s in b],
                                       [[s[measure][lang] for lang in members] for s in a] if members else None,
                                       [[s[measure][lang] for lang in members] for s in b] if members else None)
        summary["comparisons"].append({"ours": ours, "theirs": theirs, "measure": measure, "group": group,
                                       **comparison})
    return summary


# ---- report.md -------------------------------------------------------------------------------------------------

def _points(value: float) -> str:
    return f"{100 * value:+.1f}"


SHORT = {"retrieval": "in-domain retrieval", "retrieval_low_overlap": "in-domain retrieval, low-overlap half",
         "retrieval_high_overlap": "in-domain retrieval, high-overlap half", "udhr": "UDHR retrieval",
         "transfer": "transfer", "chrf": "pseudo-translation chrF into English"}


def comparison_sentence(c: dict) -> str:
    group = c["group"].replace("_", " ")
    low, high = c["ci95"]
    spread = (f"95% CI of the per-seed difference [{_points(low)}, {_points(high)}]" if c["seeds"] > 1
              else "one seed: no spread to compare against")
    cells = f"; ahead in {c['cells_ahead']} of {c['cells']} seed-language cells" if "cells" in c else ""
    return (f"- {SHORT[c['measure']]}, {group}: `{c['ours']}` is **{c['verdict']}** `{c['theirs']}` "
            f"({_points(c['difference'])} points, {spread}{cells}).")


def _models(summary: dict) -> List[str]:
    order = [UNTRAINED, TFIDF, "mmlm", "mmlm-tlm", STAGE_ONE, CONTROL, MAIN]
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
        generation = np.mean([info.get("generation_tokens", 0) for info in seeds.values()]) if seeds else 0
        cells.append((f"{np.mean(tokens):,.0f}" + (f" + {generation:,.0f}" if generation else "")) if tokens else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(chance_row(results, [group for _, group, _ in columns]))
    return lines


def chance_levels(results: dict) -> Dict[str, Dict[str, float]]:
    """What guessing scores, per measure and language: retrieval 1/N among N candidates, transfer the majority
    class's share of each language's test set."""
    languages = results["parallel_languages"] + results["monolingual_only_languages"]
    some_run = next(runs[0] for name, runs in results["models"].items() if name != TFIDF)
    levels = {"retrieval": {lang: 1 / len(results["overlap"][lang]) for lang in languages},
              "udhr": {lang: 1 / len(some_run["retrieval"]["retrieval"][lang][0]) for lang in languages}}
    levels["retrieval_low_overlap"] = levels["retrieval_high_overlap"] = levels["retrieval"]  # the same candidates
    if results.get("transfer_majority"):
        levels["transfer"] = dict(results["transfer_majority"])
    groups = {"parallel_languages": results["parallel_languages"],
              "monolingual_only_languages": results["monolingual_only_languages"], "average": languages}
    for scores in levels.values():
        scores.update({group: float(np.mean([scores[lang] for lang in members])) for group, members in groups.items()})
    return levels


def chance_row(results: dict, column_groups: List[str]) -> str:
    levels = chance_levels(results)
    measures = ["retrieval", "retrieval", "retrieval_low_overlap", "retrieval_low_overlap"]
    cells = ["–"]
    for measure, group in zip(measures, column_groups):
        cells += [f"{100 * levels[measure][group]:.1f}", "–"]
    cells.append(f"{100 * levels['udhr']['average']:.1f}")
    cells += [f"{100 * levels['transfer'][group]:.1f}" if "transfer" in levels else "–" for group in GROUPS]
    cells += ["–", "–", "–"]
    return "| *chance (retrieval: 1/N; transfer: majority class)* | " + " | ".join(cells) + " |"


def chrf_lines(results: dict) -> List[str]:
    """chrF of the generation pass on the test pairs per model, against the untranslated source."""
    summary = results["summary"]
    models = [m for m in _models(summary) if "chrf" in summary["table"][m]]
    if not models:
        return []
    lines = ["| model | chrF into English, parallel languages | monolingual-only languages |", "|---|---|---|"]
    for name in models:
        cells = [format_mean_sd(summary["table"][name]["chrf"].get(group, {})) for group in GROUPS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    held = results["models"][models[0]][0]["held_out"]
    copy = [f"{held.get(f'source_copy_chrf_{key}', float('nan')):.1f}" for key in ("parallel", "monolingual_only")]
    lines.append(f"| *the source, untranslated* | {copy[0]} | {copy[1]} |")
    return lines


def chrf_curve(results: dict) -> List[str]:
    """Dev-pair chrF of the generation pass (monolingual-only languages) at every evaluation during pretraining,
    mean ± sd over seeds, with ERNIE-M's distinct-token share."""
    runs = {name: results["pretraining"][name]["seeds"] for name in (MAIN, CONTROL, "mmlm", "mmlm-tlm")
            if name in results["pretraining"]}
    if MAIN not in runs:
        return []
    key = "btmlm_chrf_monolingual_only"

    def at(seeds, step, metric):
        values = [e[metric] for info in seeds.values() for e in info.get("evaluations", [])
                  if e.get("eval_step") == step and metric in e]
        return mean_sd(values) if len(values) == len(seeds) else {}

    steps = sorted({e["eval_step"] for info in runs[MAIN].values() for e in info.get("evaluations", [])})
    names = list(runs)
    lines = ["| step | " + " | ".join(names) + " | ernie-m distinct share | the source, untranslated |",
             "|---|" + "---|" * (len(names) + 2)]
    for step in steps:
        cells = [format_mean_sd(at(runs[name], step, key), scale=1.0) for name in names]
        cells.append(format_mean_sd(at(runs[MAIN], step, "btmlm_distinct_share"), scale=1.0, digits=2))
        cells.append(format_mean_sd(at(runs[MAIN], step, "source_copy_chrf_monolingual_only"), scale=1.0))
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return lines


def language_table(results: dict, measure: str) -> List[str]:
    summary = results["summary"]
    models = [m for m in _models(summary) if measure in summary["table"][m]]
    languages = (["en"] if measure == "transfer" else []) + results["parallel_languages"] + \
        results["monolingual_only_languages"]
    chance = chance_levels(results).get(measure)
    title = "majority class" if measure == "transfer" else "chance"
    lines = ["| language | " + " | ".join(models) + (f" | *{title}* |" if chance else " |"),
             "|---|" + "---|" * (len(models) + bool(chance))]
    for key in languages + list(GROUPS) + ["average"]:
        row = [format_mean_sd(summary["table"][m][measure].get(key, {})) for m in models]
        if chance:
            row.append(f"{100 * chance[key]:.1f}" if key in chance else "–")
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
        stage_two = results["settings"]["stage_steps"][1]
        ran = (f"BTMLM ran {info.get('btmlm_steps', 0)} of stage 2's {stage_two} steps "
               f"({100 * info.get('btmlm_steps', 0) / stage_two:.0f}%)")
        state = ("never opened (stage 2 ran CAMLM + MMLM only)" if opened is None else
                 f"was open from the start (none set, or open before training), so BTMLM could run from stage 2's "
                 f"first step; {ran}" if opened == 0 else f"opened at step {opened}; {ran}")
        detail = ""
        if last:
            detail = (f"; at the end: held-out CAMLM accuracy {100 * last.get('camlm_accuracy', float('nan')):.1f}% "
                      f"(unigram {100 * last.get('camlm_unigram_accuracy', float('nan')):.1f}%), pseudo-translation "
                      f"distinct share {last.get('btmlm_distinct_share', float('nan')):.2f}")
        lines.append(f"- seed {seed}: BTMLM gate {state}{detail}.")
    return lines


def budget_line(results: dict) -> str:
    means = {name: np.mean([info["tokens"] for info in results["pretraining"][name]["seeds"].values()])
             for name in (MAIN, CONTROL, "mmlm", "mmlm-tlm") if name in results["pretraining"]}
    if len(means) < 2:
        return ""
    spread = (max(means.values()) - min(means.values())) / min(means.values())
    verdict = "within" if spread <= 0.02 else "NOT within"
    return (f"Tokens trained on (mean over seeds, every token of every row counted): "
            f"{', '.join(f'{k} {v:,.0f}' for k, v in means.items())}: largest difference {100 * spread:.1f}%, "
            f"{verdict} the 2% the comparison needs. The `+` in the tokens column is BTMLM's generation pass: "
            "tokens run forward only, without gradient (about a third of a training token's compute), which the "
            "other arms do not pay.")


def stage_one_lr(results: dict) -> str:
    seeds = results["pretraining"].get(STAGE_ONE, {}).get("seeds", {})
    rates = [info["last_lr"] for info in seeds.values() if info.get("last_lr") is not None]
    return f"{np.mean(rates):.2e}" if rates else "(not logged)"


def write_report(results: dict, output_dir: str) -> None:
    summary = results["summary"]
    parallel, monolingual = results["parallel_languages"], results["monolingual_only_languages"]
    settings = results["settings"]
    one, two = settings["stage_steps"]
    btmlm_effect = [c for c in summary["comparisons"] if c["theirs"] == CONTROL]
    against_baselines = [c for c in summary["comparisons"] if c["theirs"] != CONTROL]
    lines = [
        "# ERNIE-M demo: does CAMLM + BTMLM align languages better than MLM?", "",
        "The paper's claims, in miniature: ERNIE-M (CAMLM, then + BTMLM) retrieves translations better than MMLM and "
        "MMLM + TLM for the languages with parallel data, and BTMLM reaches the languages with monolingual data "
        "only. Every number is a mean ± standard deviation over pretraining seeds "
        f"({', '.join(map(str, results['seeds']))}); a difference is called ahead or behind only when the 95% "
        "confidence interval of its per-seed paired difference excludes zero.", "",
        f"Corpus: {results['corpus_summary']}", "",
        f"Parallel languages: {', '.join(parallel)}. Monolingual-only (their parallel data held back): "
        f"{', '.join(monolingual)}. Model `{settings['model_preset']}`, stage 1 {one} steps and stage 2 {two}, "
        f"CAMLM masking {settings['camlm_mask_prob']}, BTMLM at {settings['btmlm_share']} of stage 2's steps "
        "(from when it began: below).", "",
        "## BTMLM's own effect", "",
        f"`{CONTROL}` is ERNIE-M without BTMLM: for each seed it branches from ERNIE-M's own checkpoint at step {one} "
        f"and runs stage 2 with CAMLM + MMLM only, the same steps, schedule and token budget. Until BTMLM first "
        "runs the two draw the same objectives on the same data, so they differ in BTMLM's steps alone.", "",
        *[comparison_sentence(c) for c in btmlm_effect], "",
        "## ERNIE-M against the MLM baselines", "", *[comparison_sentence(c) for c in against_baselines], "",
        f"`{STAGE_ONE}` is ERNIE-M's checkpoint at step {one} of the {one + two}-step schedule, taken at learning rate "
        f"{stage_one_lr(results)}, before the decay finished: it is a point on the way, not a model trained for "
        f"{one} steps, and it is compared with nothing above.", "",
        "Baselines: `untrained` is the same architecture and tokenizer with each seed's initial weights (what "
        "every arm starts from); `tfidf` is a bag-of-subwords TF-IDF with no model, which scores shared words "
        "alone; the chance row is what guessing scores (retrieval: one in the N candidates; transfer: always "
        "answering each language's most frequent topic). Gains are paired per seed against `untrained`.", "",
        *headline(results), "",
        "`layer`: the hidden layer used for retrieval, chosen per model on the dev pairs (0 = embeddings). Retrieval "
        "and transfer in %, UDHR averaged over all languages.", "",
        budget_line(results), "",
        "## Did the models learn, and did BTMLM run?", "", *gate_lines(results), "",
        "## How good are BTMLM's pseudo-translations?", "",
        "BTMLM's generation pass (the placeholders filled in one forward pass, greedy) translating each test pair's "
        "non-English side into English, scored against the real English with chrF (0-100), for the first 100 test "
        "pairs of each language; every model is run through the same pass, trained with BTMLM or not. The source "
        "copied untranslated is the no-model baseline: shared names and cognates score without any translation.",
        "", *chrf_lines(results), "",
        "The same on the dev pairs of the monolingual-only languages at every evaluation during pretraining (step 0: "
        f"the untrained model; stage 2 begins after step {one}):", "", *chrf_curve(results), "",
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
