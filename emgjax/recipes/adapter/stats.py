"""The adapter benchmark's statistics: means with 95 % confidence intervals and paired comparisons between rows.

Every row holds one measurement per run: per (data seed, init seed) for a
trained row, per data seed for an untrained one (its init seed is None). A
row's mean comes with a Student-t 95 % interval over its runs
(``scipy.stats.t``). Two rows are compared on matched runs (same data seed and
init seed; an untrained row's run stands for every init seed of its data seed)
with a paired t-test (``scipy.stats.ttest_rel``): the mean difference, its 95 %
interval and the two-sided p-value. Runs of one data seed share their users,
so they are not fully independent: the intervals describe the spread over the
benchmark's runs, not over a population of users (see docs/adapter_benchmark.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["ALPHA", "RunKey", "mean_ci", "run_values", "paired_comparison"]

ALPHA = 0.05  # two-sided: 95 % intervals, significance at p < 0.05

RunKey = tuple[int, int | None]  # (data seed, init seed or None for an untrained row)


def mean_ci(values: Sequence[float], alpha: float = ALPHA) -> tuple[float, float]:
    """(mean, half-width of the two-sided 1 - alpha Student-t interval); half-width nan for fewer than 2 values."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], float)
    if x.size == 0:
        return math.nan, math.nan
    if x.size < 2:
        return float(x[0]), math.nan
    half = stats.t.ppf(1.0 - alpha / 2.0, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean()), float(half)


def run_values(runs: Sequence[Mapping[str, Any]], metric: str) -> dict[RunKey, float]:
    """{(data_seed, seed): value} of one metric over a row's runs (runs without the metric left out)."""
    return {(r["data_seed"], r["seed"]): float(r[metric]) for r in runs if r.get(metric) is not None}


def _matched(a: Mapping[RunKey, float], b: Mapping[RunKey, float]) -> tuple[np.ndarray, np.ndarray]:
    """Values of a and b on matched runs; an untrained row's (data seed, None) matches every init seed."""
    trained = [row for row in (a, b) if any(seed is not None for _, seed in row)]
    keys = sorted(trained[0] if trained else a, key=lambda k: (k[0], -1 if k[1] is None else k[1]))
    xs, ys = [], []
    for data_seed, seed in keys:
        x = a.get((data_seed, seed), a.get((data_seed, None)))
        y = b.get((data_seed, seed), b.get((data_seed, None)))
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
    return np.asarray(xs), np.asarray(ys)


def paired_comparison(
    a: Mapping[RunKey, float], b: Mapping[RunKey, float], alpha: float = ALPHA
) -> dict[str, float | int | bool] | None:
    """Row a minus row b on matched runs: mean difference, 95 % half-width, paired t-test p-value.

    Returns None when fewer than 2 runs match. ``significant``: p < alpha. Differences that are exactly
    0 on every run (identical rows) give p = 1.
    """
    x, y = _matched(a, b)
    if x.size < 2:
        return None
    diff = x - y
    mean, half = mean_ci(diff.tolist(), alpha)
    if np.allclose(diff, diff[0]) and diff[0] == 0:
        p = 1.0
    elif np.allclose(diff, diff[0]):  # a constant non-zero difference: as certain as a difference gets
        p = 0.0
    else:
        p = float(stats.ttest_rel(x, y).pvalue)
    return {"diff": mean, "ci95": half, "p": p, "n": int(x.size), "significant": bool(p < alpha)}
