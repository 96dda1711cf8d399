"""Means with their spread, and paired comparisons over seeds: what the report may call "ahead", and what it must
call "not distinguishable"."""
from __future__ import annotations

import math
from typing import Dict, Sequence

import numpy as np

# Two-sided 95% quantiles of Student's t by degrees of freedom (1-10), then the normal value.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def t_quantile(degrees_of_freedom: int) -> float:
    return _T95.get(degrees_of_freedom, 1.96)


def mean_sd(values: Sequence[float]) -> Dict[str, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    if not len(values):
        return {"mean": float("nan"), "sd": float("nan"), "n": 0}
    sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "sd": sd, "n": int(len(values))}


def format_mean_sd(summary: Dict[str, float], scale: float = 100.0, digits: int = 1) -> str:
    if not summary.get("n"):
        return "–"
    text = f"{scale * summary['mean']:.{digits}f}"
    return text + (f" ± {scale * summary['sd']:.{digits}f}" if summary["n"] > 1 else "")


def paired_comparison(ours: Sequence[float], theirs: Sequence[float], cells_ours: Sequence[Sequence[float]] = None,
                      cells_theirs: Sequence[Sequence[float]] = None) -> Dict[str, object]:
    """Paired over seeds (seed k of one model against seed k of the other: same initial weights, same data order).

    `ours` / `theirs`: one group average per seed. The verdict is "ahead" or "behind" when the 95% confidence
    interval of the mean per-seed difference (Student's t) excludes 0, else "not distinguishable"; with one seed
    nothing can be told apart. `cells_*` ([seed][language]) add how many seed-language cells favour ours.
    """
    differences = np.asarray(ours, dtype=np.float64) - np.asarray(theirs, dtype=np.float64)
    n = len(differences)
    mean = float(differences.mean()) if n else float("nan")
    sd = float(differences.std(ddof=1)) if n > 1 else float("nan")
    if n > 1:
        half = t_quantile(n - 1) * sd / math.sqrt(n)
        low, high = mean - half, mean + half
        verdict = "ahead of" if low > 0 else ("behind" if high < 0 else "not distinguishable from")
    else:
        low = high = float("nan")
        verdict = "not distinguishable from"
    result = {"difference": mean, "sd": sd, "ci95": [low, high], "seeds": n, "verdict": verdict}
    if cells_ours is not None and cells_theirs is not None:
        a, b = np.asarray(cells_ours, dtype=np.float64), np.asarray(cells_theirs, dtype=np.float64)
        result["cells_ahead"] = int((a > b).sum())
        result["cells"] = int(a.size)
    return result
