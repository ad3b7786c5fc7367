"""Bootstrap confidence intervals with problems as the unit of resampling, and optionally
the samples within each problem as a second level (`two_level_means`).

Samples of one problem are correlated, so intervals resample whole problems (rows). Columns
are budgets of one curve: every column sees the same resampled problems, so the band around a
curve is coherent rather than each point jittering on its own draw.

NaN policy: a NaN entry (a failed attempt) is left out of its column only. Each resample
averages the non-NaN entries it drew in that column, so the point estimate equals the mean
after dropping that column's NaN rows; a resample that drew no non-NaN entry for a column is
ignored for that column. A column with no non-NaN entry at all has no problems: ValueError.
"""

from __future__ import annotations

import numpy as np


def _check_settings(level: float, n_resamples: int) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level} must lie strictly between 0 and 1 (e.g. 0.95)")
    if n_resamples < 1:
        raise ValueError(f"n_resamples={n_resamples} must be at least 1")


def _resample_counts(n_problems: int, n_resamples: int, seed: int) -> np.ndarray:
    """How often each problem is drawn in each resample, shape (n_resamples, n_problems)."""
    # Counts times values replaces gathering values[indices]: the gather would materialise
    # n_resamples x n_problems x columns floats (1000 x 10k x 8 = 640 MB), the counts only
    # n_resamples x n_problems (80 MB each for the draws, the counts and their float copy), and
    # the mean becomes one matrix product. bincount over offset indices is ~5x faster than
    # rng.multinomial for a few hundred problems and draws the same distribution.
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_problems, size=(n_resamples, n_problems))
    draws += np.arange(n_resamples)[:, None] * n_problems  # row r counts into its own block
    counts = np.bincount(draws.ravel(), minlength=n_resamples * n_problems)
    return counts.reshape(n_resamples, n_problems).astype(float)


def bootstrap_means(matrix: np.ndarray, *, n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """Column means of `n_resamples` problem resamples of a (problems x columns) matrix.

    The raw replicates, shape (n_resamples, columns), for statistics that are not a plain mean
    (slopes, fitted ceilings, a best-of-strategies maximum): every column of one replicate
    sees the same problems. NaN entries follow the module's policy (NaN where a replicate drew
    no non-NaN entry of a column).
    """
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(f"matrix must be 2-D with at least one problem, got {matrix.shape}")
    _check_settings(0.5, n_resamples)
    valid = ~np.isnan(matrix)
    empty = np.flatnonzero(~valid.any(axis=0))
    if empty.size:
        raise ValueError(f"column(s) {empty.tolist()} have no non-NaN values: no problems")
    counts = _resample_counts(len(matrix), n_resamples, seed)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 where a draw missed a column
        return (counts @ np.where(valid, matrix, 0.0)) / (counts @ valid)


def two_level_means(
    matrix: np.ndarray, noise: np.ndarray | None = None, *, n_resamples: int = 1000, seed: int = 0
) -> np.ndarray:
    """`bootstrap_means` over problems and, within each problem, over its samples.

    `noise` (n_resamples x problems x columns) is what re-drawing each problem's samples does
    to its score in each replicate, centred on zero (`noise.pool_noise` resamples a pool and
    re-scores it; a one-draw score has none to add, see `frontier.strategy_levels`). Replicate
    r averages matrix + noise[r] over the problems that problem resample r drew: the same
    problem draws as `bootstrap_means` with the same seed, so columns and strategies resampled
    with one seed stay paired. Without noise it equals `bootstrap_means`.
    """
    means = bootstrap_means(matrix, n_resamples=n_resamples, seed=seed)
    if noise is None:
        return means
    matrix = np.asarray(matrix, dtype=float)
    valid = ~np.isnan(matrix)
    counts = _resample_counts(len(matrix), n_resamples, seed)
    added = np.einsum("rp,rpc->rc", counts, np.where(valid, np.nan_to_num(noise), 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return means + added / (counts @ valid)


def bootstrap_ci(
    values: np.ndarray, *, level: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap interval of the mean over problems, per column.

    `values` is (n_problems,) or (n_problems, m); returns (low, high) of shape () or (m,).
    Resampling problems, not samples, gives intervals that reflect problem-to-problem spread.
    """
    data = np.asarray(values, dtype=float)
    if data.ndim not in (1, 2):
        raise ValueError(f"values must be 1-D or 2-D (problems x columns), got {data.ndim}-D")
    if data.shape[0] == 0:
        raise ValueError("no problems to bootstrap over: values has zero rows")
    _check_settings(level, n_resamples)
    matrix = data.reshape(data.shape[0], -1)
    means = bootstrap_means(matrix, n_resamples=n_resamples, seed=seed)
    alpha = (1.0 - level) / 2.0
    low, high = np.nanquantile(means, [alpha, 1.0 - alpha], axis=0)
    # Clipping to the data range is a no-op in exact arithmetic; it makes all-equal columns
    # (and a single problem) give exactly low == high == value instead of rounding noise.
    floor, ceiling = np.nanmin(matrix, axis=0), np.nanmax(matrix, axis=0)
    low, high = np.clip(low, floor, ceiling), np.clip(high, floor, ceiling)
    return low.reshape(data.shape[1:]), high.reshape(data.shape[1:])


def paired_bootstrap_diff(
    a: np.ndarray,
    b: np.ndarray,
    *,
    level: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    noise: np.ndarray | None = None,
) -> tuple[float, float, float]:
    """Mean difference a - b over the same problems and its percentile-bootstrap interval.

    Problems are resampled jointly, so the shared difficulty of each problem cancels and the
    interval is much tighter than comparing two separate intervals. `noise`
    (n_resamples x problems), the within-problem noise of a - b (see `two_level_means`), adds
    the second level. Returns (mean, low, high).
    """
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.ndim != 1 or a_arr.shape != b_arr.shape:
        raise ValueError(
            f"a and b must be 1-D over the same problems, got shapes {a_arr.shape}, {b_arr.shape}"
        )
    diff = a_arr - b_arr
    both = ~np.isnan(diff)  # a problem counts only where both sides have a result
    diff = diff[both]
    if diff.size == 0:
        raise ValueError("no problems with results on both sides to compare")
    if noise is None:
        low, high = bootstrap_ci(diff, level=level, n_resamples=n_resamples, seed=seed)
    else:
        _check_settings(level, n_resamples)
        reps = two_level_means(
            diff[:, None], np.asarray(noise)[:, both, None], n_resamples=n_resamples, seed=seed
        )[:, 0]
        low, high = np.nanquantile(reps, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    mean = np.clip(diff.mean(), diff.min(), diff.max())  # exact for all-equal differences
    return float(mean), float(low), float(high)
