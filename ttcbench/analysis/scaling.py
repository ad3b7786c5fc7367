"""Per-class scaling summaries: gain per doubling of compute, fitted ceiling, compute to 90%.

Each number comes with a percentile-bootstrap interval over problems: a replicate resamples
the group's problems, recomputes accuracy and mean compute at every budget from the same
draw, and recomputes the statistic (for ceilings, refits the logistic). Fits that fail in a
replicate are counted (`fit_failures`) and left out of the interval, never silently zeroed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ttcbench.analysis.bootstrap import bootstrap_means
from ttcbench.analysis.curves import Curve, curve_of, gradient, groups, log2_compute
from ttcbench.analysis.fits import LogisticFit, fit_logistic

GAIN_COLUMNS = [
    "budget", "problems", "compute", "log2_compute", "accuracy", "acc_low", "acc_high",
    "gain_per_doubling", "gain_low", "gain_high",
]  # fmt: skip
_BEYOND = 1e300  # stands in for +inf while interpolating quantiles
FIT_COLUMNS = [
    "problems", "budgets", "compute_min", "compute_max", "status", "floor", "ceiling",
    "ceiling_low", "ceiling_high", "slope", "midpoint", "rmse", "compute_90", "compute_90_low",
    "compute_90_high", "fit_failures", "n_resamples",
]  # fmt: skip


def _quantiles(replicates: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column, NaN-free replicates only; +inf (a target reached
    only beyond the measured compute) ranks above every finite value."""
    alpha = (1.0 - level) / 2.0
    shape = replicates.shape[1:]
    if replicates.size == 0 or np.isnan(replicates).all(axis=0).any():
        return np.full(shape, np.nan), np.full(shape, np.nan)
    finite = np.where(np.isposinf(replicates), _BEYOND, replicates)  # inf - inf would be NaN
    low, high = np.nanquantile(finite, [alpha, 1.0 - alpha], axis=0)
    # A quantile interpolated between a finite value and the stand-in is "beyond" too: it
    # lies above every finite replicate (mapping only >= _BEYOND left 5e299, and 2**x overflowed).
    top = np.where(np.isfinite(replicates), replicates, -np.inf).max(axis=0)
    return np.where(low > top, np.inf, low), np.where(high > top, np.inf, high)


def _replicates(curve: Curve, n_resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and log2 mean compute per budget in each replicate (same problems for both:
    the same seed and problem count give the same draws)."""
    acc = bootstrap_means(curve.scores, n_resamples=n_resamples, seed=seed)
    with np.errstate(divide="ignore"):
        x = np.log2(bootstrap_means(curve.compute, n_resamples=n_resamples, seed=seed))
    return acc, x


def gain_table(
    attempts: pd.DataFrame,
    *,
    by: Sequence[str] = (),
    x: str = "tokens",
    level: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy gained per doubling of compute at each budget, per (*by, strategy).

    The gain is d accuracy / d log2 compute by finite differences over the measured budgets
    (central inside, one-sided at the ends), so 0.05 means +5 points per doubling there.
    Columns: *by, strategy, then GAIN_COLUMNS.
    """
    rows = []
    for labels, group in groups(attempts, by):
        curve = curve_of(group, x)
        xs = log2_compute(curve.mean_compute())
        acc = curve.accuracy()
        gain = gradient(acc, xs)[0]
        acc_rep, x_rep = _replicates(curve, n_resamples, seed)
        acc_low, acc_high = _quantiles(acc_rep, level)
        gain_low, gain_high = _quantiles(gradient(acc_rep, x_rep), level)
        counts = (~np.isnan(curve.scores)).sum(axis=0)
        for j, budget in enumerate(curve.budgets):
            values = [
                int(budget), int(counts[j]), 2.0 ** xs[j], xs[j], acc[j], acc_low[j],
                acc_high[j], gain[j], gain_low[j], gain_high[j],
            ]  # fmt: skip
            rows.append({**labels, **dict(zip(GAIN_COLUMNS, values, strict=True))})
    return pd.DataFrame(rows, columns=[*by, "strategy", *GAIN_COLUMNS])


def _x90(fit: LogisticFit, fraction: float) -> float:
    return fit.x_at_fraction(fraction) if fit.ok else math.nan


def _refit(
    point: LogisticFit, acc_rep: np.ndarray, x_rep: np.ndarray, fraction: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Ceiling and x90 of each replicate's refit (NaN where it failed) and the failure count."""
    start = (point.floor, point.ceiling, point.slope, point.midpoint)
    p0 = start if point.status == "ok" else None  # warm start: one local solve per replicate
    ceilings, x90s, failures = np.full(len(acc_rep), np.nan), np.full(len(acc_rep), np.nan), 0
    for r in range(len(acc_rep)):
        fit = fit_logistic(x_rep[r], acc_rep[r], p0=p0)
        if not fit.ok:
            failures += 1
            continue
        ceilings[r], x90s[r] = fit.ceiling, _x90(fit, fraction)
    return ceilings, x90s, failures


def fit_table(
    attempts: pd.DataFrame,
    *,
    by: Sequence[str] = (),
    x: str = "tokens",
    fraction: float = 0.9,
    level: float = 0.95,
    n_resamples: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Logistic fit of accuracy vs log2 compute per (*by, strategy), with bootstrap intervals.

    `compute_90` is the compute where the fit first reaches `fraction` of its own ceiling:
    the smallest compute measured if it starts there, +inf if only beyond the largest
    (no extrapolation). Refitting costs one least-squares solve per replicate, hence the
    smaller default `n_resamples`. Columns: *by, strategy, then FIT_COLUMNS.
    """
    rows = []
    for labels, group in groups(attempts, by):
        curve = curve_of(group, x)
        xs = log2_compute(curve.mean_compute())
        point = fit_logistic(xs, curve.accuracy())
        acc_rep, x_rep = _replicates(curve, n_resamples, seed)
        ceilings, x90s, failures = _refit(point, acc_rep, x_rep, fraction)
        ceiling_ci = _quantiles(ceilings[:, None], level)
        x90_ci = _quantiles(x90s[:, None], level)
        values = [
            int((~np.isnan(curve.scores)).any(axis=1).sum()), len(curve.budgets),
            2.0 ** xs.min(), 2.0 ** xs.max(), point.status, point.floor, point.ceiling,
            float(ceiling_ci[0][0]), float(ceiling_ci[1][0]), point.slope, point.midpoint,
            point.rmse, 2.0 ** _x90(point, fraction), 2.0 ** float(x90_ci[0][0]),
            2.0 ** float(x90_ci[1][0]), failures, n_resamples,
        ]  # fmt: skip
        rows.append({**labels, **dict(zip(FIT_COLUMNS, values, strict=True))})
    return pd.DataFrame(rows, columns=[*by, "strategy", *FIT_COLUMNS])
