"""The compute-optimal frontier: which strategy is best at each compute level, per class.

Strategies are measured at their own budgets, so their compute points differ. Each curve is
read at every compute level by linear interpolation on the log2 compute axis, never beyond
the compute that strategy was measured at. Interpolation is linear in the per-problem scores,
so every statistic here is a mean over problems.

Two kinds of noise, one bootstrap: each replicate resamples the problems (all strategies
share the draw) and, within each problem, the samples its score came from
(`bootstrap.two_level_means`). A strategy scored from a pool (`consistency.link_pools`:
majority@k, pass@k, `single` as its pool's per-sample accuracy) gets its pool resampled and
re-scored by its own estimator (`noise.pool_noise`), the same draw for every strategy of that
pool. A strategy scored on one draw per problem (estimator `direct`) gets a Bernoulli draw
around its observed score: no change for a 0/1 score, since one draw holds no estimate of its
own spread, and it needs none: the spread of one-draw scores over problems already holds their
within-problem variance, so the problem level carries it. An expectation over a pool that
cannot be re-scored here (weighted_vote, best_of_n with a learned verifier, a pool whose calls
were not read) is treated the same way: the problem level carries its noise once.

Why resample pools at all, when the problem level already carries a pool average's noise
once? The second level adds it once more (about p(1-p)/n per problem for a pool of n; the
benchmark `benchmarks/two_level_bootstrap.py` prints the effect on widths): a deliberately
conservative choice, so a report does not crown a draw that the samples do not support.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ttcbench.analysis.bootstrap import paired_bootstrap_diff, two_level_means
from ttcbench.analysis.curves import curve_of, groups, log2_compute, problem_index
from ttcbench.analysis.noise import within_noise

LEVEL_COLUMNS = ["compute", "strategy", "accuracy", "ci_low", "ci_high", "p_best", "at_compute"]
TIE = 1e-12
"""Accuracies closer than this are one value: `single` and majority@1 of one pool tie."""


def _unlog(level: float) -> float:
    """Compute from log2 compute, without the round-trip's last-digit noise (800, not
    800.0000000000001), so levels can be looked up by the values they were measured at."""
    return float(f"{2.0**level:.12g}")


def interpolation_weights(xs: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """(budgets x levels) weights that read a curve measured at log2 compute `xs` at each
    level by linear interpolation; columns outside the measured range are NaN. A level within
    1e-9 of a measured point reads that point alone."""
    order = np.argsort(xs)
    sx = xs[order]
    weights = np.full((len(xs), len(levels)), np.nan)
    for j, level in enumerate(levels):
        if not sx[0] - 1e-9 <= level <= sx[-1] + 1e-9:
            continue
        column = np.zeros(len(xs))
        near = np.flatnonzero(np.abs(sx - level) <= 1e-9)
        hi = int(np.clip(np.searchsorted(sx, level), 1, max(len(sx) - 1, 1)))
        if near.size:
            column[order[near[0]]] = 1.0
        elif len(sx) == 1 or sx[hi] == sx[hi - 1]:
            column[order[min(hi, len(sx) - 1)]] = 1.0
        else:
            t = float(np.clip((level - sx[hi - 1]) / (sx[hi] - sx[hi - 1]), 0.0, 1.0))
            column[order[hi - 1]], column[order[hi]] = 1.0 - t, t
        weights[:, j] = column
    return weights


def _merge_levels(xs: np.ndarray) -> np.ndarray:
    """Distinct log2 compute levels, points within 1e-9 of each other counted once (one pool's
    `single` and majority@1 cost the same up to rounding)."""
    xs = np.unique(xs)
    keep = np.concatenate([[True], np.diff(xs) > 1e-9]) if xs.size else xs.astype(bool)
    return xs[keep]


def per_problem_levels(
    group: pd.DataFrame, x: str, index: pd.Index, levels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One strategy's per-problem scores read at compute `levels` (problems x levels, rows
    aligned to `index`) and its measured log2 compute; levels default to its own points.

    NaN where the level is outside the measured range, or where a score it reads is missing
    (a failed attempt): that problem is left out of that level only.
    """
    out, xs, _, _ = _read_levels(group, x, index, levels)
    return out, xs


def _read_levels(group, x, index, levels):
    """`per_problem_levels`, plus the weights (budgets x levels) and the curve's budgets."""
    curve = curve_of(group, x)
    xs = log2_compute(curve.mean_compute())
    weights = interpolation_weights(xs, xs if levels is None else levels)
    scores = pd.DataFrame(curve.scores, index=curve.problems).reindex(index).to_numpy()
    used = np.nan_to_num(weights)
    out = np.nan_to_num(scores) @ used
    out[(np.isnan(scores).astype(float) @ (used > 0)) > 0] = np.nan
    out[:, np.isnan(weights).all(axis=0)] = np.nan
    return out, xs, used, (curve.budgets, scores)


def strategy_levels(
    attempts: pd.DataFrame,
    *,
    by: Sequence[str] = (),
    x: str = "tokens",
    level: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    calls: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every strategy's best accuracy reachable with at most each compute level of its class,
    with intervals and `p_best`, the share of two-level bootstrap replicates (module
    docstring) in which it is the best strategy there (strategies tied within TIE share).

    Levels are the union of the compute points measured by any strategy of the class. At each
    level a strategy's value is its best point estimate at or below that compute (`at_compute`
    says where), so a strategy measured only at low compute stays in the comparison above it;
    the choice is made on point estimates and the interval and `p_best` are that point's.
    `calls` (the runs' calls, with `link_pools` columns on the attempts) enables resampling the
    pools. Columns: *by, LEVEL_COLUMNS.
    """
    rows = []
    for labels, class_rows in _classes(attempts, by):
        members = list(groups(class_rows))
        index = problem_index(class_rows).unique()
        levels = _merge_levels(
            np.concatenate([per_problem_levels(g, x, index)[1] for _, g in members])
        )
        point, reps = [], []
        for _, g in members:
            per, _, used, (budgets, scores) = _read_levels(g, x, index, levels)
            noise = within_noise(
                g, calls, index, budgets, scores, n_resamples=n_resamples, seed=seed + 1
            )
            reps.append(
                _replicates(
                    per, None if noise is None else np.nan_to_num(noise) @ used, n_resamples, seed
                )
            )
            point.append(_column_means(per))
        names = [str(m["strategy"]) for m, _ in members]
        rows += _level_rows(labels, names, levels, np.array(point), np.array(reps), level)
    return pd.DataFrame(rows, columns=[*by, *LEVEL_COLUMNS])


def _column_means(per: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(per)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, per, 0.0).sum(axis=0) / valid.sum(axis=0)


def _level_rows(labels, names, levels, point, reps, level) -> list[dict[str, object]]:
    """Rows of the running best per strategy (S x L choices), with tie-shared P(best)."""
    alpha = (1.0 - level) / 2.0
    low, high = np.full((2, *point.shape), np.nan)  # S x L each
    measured = ~np.isnan(reps).all(axis=1)  # levels a strategy does not reach have no interval
    low[measured], high[measured] = np.nanquantile(
        reps.transpose(0, 2, 1)[measured], [alpha, 1.0 - alpha], axis=1
    )
    rows = []
    for j, value in enumerate(levels):
        reach = np.where(np.isnan(point[:, : j + 1]), -np.inf, point[:, : j + 1])
        choice = np.argmax(reach >= reach.max(axis=1, keepdims=True) - TIE, axis=1)
        present = np.isfinite(reach.max(axis=1))
        chosen = reps[np.arange(len(names)), :, choice]  # S x R
        chosen = np.where(present[:, None] & ~np.isnan(chosen), chosen, -np.inf)
        top = chosen >= chosen.max(axis=0, keepdims=True) - TIE
        share = (top / top.sum(axis=0, keepdims=True)).mean(axis=1)
        for s in np.flatnonzero(present):
            c = choice[s]
            rows.append(
                {
                    **labels,
                    "compute": _unlog(value),
                    "strategy": names[s],
                    "accuracy": point[s, c],
                    "ci_low": low[s, c],
                    "ci_high": high[s, c],
                    "p_best": float(share[s]),
                    "at_compute": _unlog(levels[c]),
                }
            )
    return rows


def _classes(attempts: pd.DataFrame, by: Sequence[str]):
    if not by:
        yield {}, attempts
        return
    for values, rows in attempts.groupby(list(by), sort=True, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        yield dict(zip(by, values, strict=True)), rows


def _replicates(
    per_problem: np.ndarray, noise: np.ndarray | None, n_resamples: int, seed: int
) -> np.ndarray:
    """Two-level bootstrap means per level; levels no problem reaches stay NaN."""
    out = np.full((n_resamples, per_problem.shape[1]), np.nan)
    measured = ~np.isnan(per_problem).all(axis=0)
    if measured.any():
        out[:, measured] = two_level_means(
            per_problem[:, measured],
            None if noise is None else noise[:, :, measured],
            n_resamples=n_resamples,
            seed=seed,
        )
    return out


def frontier(levels: pd.DataFrame, *, by: Sequence[str] = ()) -> pd.DataFrame:
    """The best strategy per class and compute level, from `strategy_levels`: the best
    accuracy reachable with at most that compute, so it never goes down as compute grows.

    `reached_at` is the compute at which the best strategy reaches it; `overlapping` lists
    the other strategies whose interval overlaps the best's: the data do not separate them
    from the best there. Columns: *by, compute, best_strategy, accuracy, ci_low, ci_high,
    p_best, overlapping, strategies, reached_at.
    """
    rows = []
    for _, at in levels.groupby([*by, "compute"], sort=True, dropna=False):
        best = at["accuracy"] >= at["accuracy"].max() - TIE
        top = at[best].sort_values(["at_compute", "p_best"], ascending=[True, False]).iloc[0]
        tied = at[
            (at["strategy"] != top["strategy"])
            & (at["ci_high"] >= top["ci_low"])
            & (at["ci_low"] <= top["ci_high"])
        ]
        rows.append(
            {
                **{k: top[k] for k in by},
                "compute": top["compute"],
                "best_strategy": top["strategy"],
                "accuracy": top["accuracy"],
                "ci_low": top["ci_low"],
                "ci_high": top["ci_high"],
                "p_best": top["p_best"],
                "overlapping": ", ".join(sorted(tied["strategy"])),
                "strategies": len(at),
                "reached_at": top["at_compute"],
            }
        )
    columns = [*by, "compute", "best_strategy", "accuracy", "ci_low", "ci_high", "p_best"]
    return pd.DataFrame(rows, columns=[*columns, "overlapping", "strategies", "reached_at"])


ALLOCATION_COLUMNS = [
    "compute", "oracle_accuracy", "single_strategy", "single_accuracy", "gain", "gain_low",
    "gain_high", "allocation",
]  # fmt: skip


def allocation_value(
    attempts: pd.DataFrame,
    by: Sequence[str],
    *,
    x: str = "tokens",
    level: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    calls: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """What adaptive allocation is worth: per compute level, an oracle that runs each class's
    best strategy vs the best single strategy for every class.

    Levels are the union of all measured compute points; a level counts only where every
    class has a strategy measured there. The choices are made on the point estimates and the
    interval of the gain (paired over problems) is for those fixed choices: picking winners
    on the same data makes the oracle's point estimate slightly optimistic (winner's curse).
    The gain's interval is two-level, as in `strategy_levels` (`calls` resamples the pools).
    Columns: ALLOCATION_COLUMNS (`allocation` reads "class=strategy; ...").
    """
    index = problem_index(attempts).unique()
    per: dict[tuple[object, str], np.ndarray] = {}
    pieces = [(labels, rows) for labels, rows in _classes(attempts, by)]
    levels = _merge_levels(
        np.concatenate(
            [
                per_problem_levels(g, x, problem_index(g).unique())[1]
                for _, rows in pieces
                for _, g in groups(rows)
            ]
        )
    )
    noise: dict[tuple[object, str], np.ndarray | None] = {}
    for labels, rows in pieces:
        for strategy, g in groups(rows):
            key = (tuple(labels.values()), str(strategy["strategy"]))
            per[key], _, used, (budgets, scores) = _read_levels(g, x, index, levels)
            within = within_noise(
                g, calls, index, budgets, scores, n_resamples=n_resamples, seed=seed + 1
            )  # zero outside the class: its problems have no pool and no score there
            noise[key] = None if within is None else np.nan_to_num(within) @ used
    out = [_allocate(per, levels, j, n_resamples, level, seed, noise) for j in range(len(levels))]
    return pd.DataFrame([row for row in out if row], columns=ALLOCATION_COLUMNS)


def _allocate(per, levels, j, n_resamples, level, seed, noise) -> dict[str, object] | None:
    """Oracle and best-single accuracy at level j, with the paired interval of the gain."""
    classes = sorted({c for c, _ in per})
    strategies = sorted({s for _, s in per})
    means = {
        key: np.nanmean(v[:, j]) if (~np.isnan(v[:, j])).any() else np.nan for key, v in per.items()
    }
    choice = {}
    for c in classes:
        options = {s: means[(c, s)] for s in strategies if not np.isnan(means.get((c, s), np.nan))}
        if not options:
            return None  # some class has no strategy measured at this compute
        choice[c] = max(options, key=options.__getitem__)
    complete = [
        s for s in strategies if all(not np.isnan(means.get((c, s), np.nan)) for c in classes)
    ]
    if not complete:
        return None
    oracle = _collapse([per[(c, choice[c])][:, j] for c in classes])
    single_scores = {s: _collapse([per[(c, s)][:, j] for c in classes]) for s in complete}
    single = max(complete, key=lambda s: float(np.nanmean(single_scores[s])))
    diff = oracle - single_scores[single]
    both = ~np.isnan(diff)  # problems scored under both plans
    if not both.any():
        return None
    parts = [noise[(c, choice[c])] for c in classes] + [
        None if noise[(c, single)] is None else -noise[(c, single)] for c in classes
    ]
    within = sum(p[:, :, j] for p in parts if p is not None)
    _, low, high = paired_bootstrap_diff(
        oracle, single_scores[single], level=level, n_resamples=n_resamples, seed=seed,
        noise=None if isinstance(within, int) else within,
    )  # fmt: skip
    return {
        "compute": _unlog(levels[j]),
        "oracle_accuracy": float(np.mean(oracle[both])),
        "single_strategy": single,
        "single_accuracy": float(np.mean(single_scores[single][both])),
        "gain": float(np.mean(diff[both])),
        "gain_low": float(low),
        "gain_high": float(high),
        "allocation": "; ".join(f"{'/'.join(map(str, c))}={choice[c]}" for c in classes),
    }


def _collapse(per_class: list[np.ndarray]) -> np.ndarray:
    """One score per problem from per-class vectors that are NaN outside their class."""
    stack = np.stack(per_class)
    return np.where(np.isnan(stack).all(axis=0), np.nan, np.nansum(stack, axis=0))
