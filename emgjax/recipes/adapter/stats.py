"""The adapter benchmark's statistics: means with 95 % intervals and paired comparisons, over data seeds.

Every row holds one measurement per run: per (data seed, init seed) for a
trained row, per data seed for an untrained one (its init seed is None).

The units are data seeds. A data seed draws the users (train and held-out);
an init seed only changes a model's initial parameters and dropout. Runs of one
data seed share their users, and the spread between data seeds is far larger
than between init seeds (docs/adapter_benchmark.md), so the runs of a data
seed are not independent measurements: treating 5 data seeds x 3 init seeds as
15 independent runs would shrink the intervals and p-values about sqrt(3)-fold
for no new users (pseudo-replication). Hence, with the design nested (init
seeds within data seeds):

- a row's headline (``row_ci``) is the Student-t 95 % interval
  (``scipy.stats.t``, df = data seeds - 1) over its per-data-seed means
  (``data_seed_means``: the mean over that data seed's init seeds);
- two rows are compared (``paired_comparison``) per data seed: the mean over
  matched init seeds of (a - b) (an untrained row's run stands for every init
  seed of its data seed), then a one-sample t-test of those per-data-seed
  differences against 0 (``scipy.stats.ttest_1samp``, df = data seeds - 1).
  ``significant`` (p < 0.05) comes from this test.

The run-level numbers (every run as if independent: the interval over all runs,
the paired t-test over all matched runs) are kept beside them under
``run_level`` for comparison; they overstate certainty and decide nothing.
With so few data seeds the data-seed test has little power: a difference it
does not call significant may still be real, it is just not shown by these users.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "ALPHA",
    "RunKey",
    "mean_ci",
    "run_values",
    "data_seed_means",
    "row_ci",
    "difference_test",
    "paired_comparison",
]

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


def data_seed_means(values: Mapping[RunKey, float]) -> dict[int, float]:
    """{data seed: mean over its runs (init seeds)}: one number per independent draw of users."""
    by_seed: dict[int, list[float]] = {}
    for (data_seed, _), value in values.items():
        if math.isfinite(value):
            by_seed.setdefault(data_seed, []).append(value)
    return {d: float(np.mean(v)) for d, v in sorted(by_seed.items())}


def row_ci(values: Mapping[RunKey, float], alpha: float = ALPHA) -> tuple[float, float]:
    """A row's headline (mean, 95 % half-width): Student t over its per-data-seed means (df = data seeds - 1)."""
    return mean_ci(list(data_seed_means(values).values()), alpha)


def difference_test(diff: Sequence[float], alpha: float = ALPHA) -> dict[str, float | int | bool] | None:
    """One-sample t-test of differences against 0: mean, 95 % half-width, two-sided p, n, significant (p < alpha).

    None for fewer than 2 differences. Differences all exactly 0 (identical rows) give p = 1; a constant
    non-zero difference (zero spread: the t statistic is infinite) gives p = 0.
    """
    d = np.asarray(diff, float)
    if d.size < 2:
        return None
    mean, half = mean_ci(d.tolist(), alpha)
    if np.all(d == 0):
        p = 1.0
    elif np.allclose(d, d[0]):
        p = 0.0
    else:
        p = float(stats.ttest_1samp(d, 0.0).pvalue)
    return {"diff": mean, "ci95": half, "p": p, "n": int(d.size), "significant": bool(p < alpha)}


def _matched(a: Mapping[RunKey, float], b: Mapping[RunKey, float]) -> list[tuple[int, float, float]]:
    """(data seed, a, b) on matched runs; an untrained row's (data seed, None) matches every init seed."""
    trained = [row for row in (a, b) if any(seed is not None for _, seed in row)]
    keys = sorted(trained[0] if trained else a, key=lambda k: (k[0], -1 if k[1] is None else k[1]))
    out = []
    for data_seed, seed in keys:
        x = a.get((data_seed, seed), a.get((data_seed, None)))
        y = b.get((data_seed, seed), b.get((data_seed, None)))
        if x is not None and y is not None:
            out.append((data_seed, x, y))
    return out


def paired_comparison(
    a: Mapping[RunKey, float], b: Mapping[RunKey, float], alpha: float = ALPHA
) -> dict[str, Any] | None:
    """Row a minus row b, with data seeds as the units (see the module docstring).

    Per data seed the mean of (a - b) over its matched init seeds; then ``difference_test`` over data seeds:
    ``diff`` (mean difference), ``ci95`` (its 95 % half-width), ``p``, ``n`` (data seeds), ``significant``.
    ``run_level``: the same test over every matched run as if independent (n = runs; for comparison only).
    Returns None when fewer than 2 data seeds match.
    """
    matched = _matched(a, b)
    per_seed: dict[int, list[float]] = {}
    for data_seed, x, y in matched:
        per_seed.setdefault(data_seed, []).append(x - y)
    result = difference_test([float(np.mean(v)) for v in per_seed.values()], alpha)
    if result is None:
        return None
    return {**result, "run_level": difference_test([x - y for _, x, y in matched], alpha)}
