"""Within-problem noise for the two-level bootstrap: what re-drawing a problem's samples
does to its score, as zero-mean replicates (replicates x problems x budgets).

A strategy `consistency.link_pools` linked to a pool gets that pool resampled and re-scored by
its own estimator (`pool_noise`); a one-draw strategy gets a Bernoulli draw around a
fractional score and nothing for a 0/1 one (`within_noise`; why in `frontier`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ttcbench.analysis.curves import problem_keys
from ttcbench.analysis.estimators import pass_at_k_array
from ttcbench.analysis.pools import select_samples
from ttcbench.analysis.voting import pool_curve


def within_noise(
    group: pd.DataFrame,
    calls: pd.DataFrame | None,
    index: pd.Index,
    budgets: np.ndarray,
    scores: np.ndarray,
    *,
    n_resamples: int,
    seed: int,
) -> np.ndarray | None:
    """Within-problem noise of one strategy's scores (replicates x problems x budgets), or
    None where it adds nothing: its pool resampled and re-scored when `link_pools` linked it
    to one, else a Bernoulli draw around each fractional score (see the module docstring)."""
    kind = _pool_kind(group)
    if kind is not None and calls is not None and not calls.empty:
        return pool_noise(
            _pool_rows(group, calls),
            index,
            kind,
            [int(b) for b in budgets],
            n_resamples=n_resamples,
            seed=seed,
        )
    drawn = group["estimator"].isin(["direct"]).all() if "estimator" in group else True
    fractional = (scores > 0) & (scores < 1) & drawn
    if not fractional.any():
        return None  # 0/1 draws, or expectations over a pool we cannot re-score: see above
    rng = np.random.default_rng(seed + 1)
    p = np.where(fractional, scores, 0.0)
    return np.where(fractional, (rng.random((n_resamples, *scores.shape)) < p) - p, 0.0)


def _pool_kind(group: pd.DataFrame) -> str | None:
    if "pool_estimator" not in group:
        return None
    kinds = group["pool_estimator"].dropna().unique()
    return str(kinds[0]) if len(kinds) == 1 and group["pool_estimator"].notna().all() else None


def _pool_rows(group: pd.DataFrame, calls: pd.DataFrame) -> pd.DataFrame:
    """The generate calls of the group's pools: same problem, and same run where known."""
    keys = [k for k in ("task", "problem_id") if k in group and k in calls]
    gen = calls[calls["role"] == "generate"] if "role" in calls else calls
    if "run" in calls and group["pool_run"].notna().all():
        wanted = group[["pool_run", *keys]].drop_duplicates().rename(columns={"pool_run": "run"})
        return gen.merge(wanted, on=["run", *keys])
    return gen.merge(group[keys].drop_duplicates(), on=keys)


def pool_noise(
    pool: pd.DataFrame,
    index: pd.Index,
    kind: str,
    budgets: Sequence[int],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """Within-problem noise of a pool estimator: (n_resamples x problems x budgets).

    Each problem's pool (its successful calls in `pool`; rows follow `index`) is resampled
    with replacement, n from its n samples, and re-scored by `kind`: `sample_mean`
    (per-sample accuracy), `majority` (majority@k) or `pass_at_k`. A resample only changes
    how many samples each vote group (one answer; abstainers form one more group) holds, so
    the group counts are drawn as one multinomial per problem, with every estimator of one
    pool seeing the same draws for the same `seed` (so `single` and majority@1 move
    together). A vote group's samples share its mean score (equal answers grade equally).

    Returned centred: each value minus its mean over the replicates. Resampling with
    duplicates loses diversity, which biases pass@k and majority@k near k = n downwards;
    centring keeps the observed score as the centre and adds only the spread. Zero where a
    problem has no pool; NaN where k exceeds it.
    """
    sizes, means, voter, n = _vote_groups(pool, index)
    ks = sorted({int(k) for k in budgets})
    with np.errstate(invalid="ignore", divide="ignore"):
        pvals = np.where(n[:, None] > 0, sizes / np.maximum(n, 1)[:, None], 0.0)
    pvals[n == 0, 0] = 1.0  # an empty pool draws nothing; any valid pvals will do
    rng = np.random.default_rng(seed)
    out = np.zeros((n_resamples, len(index), len(budgets)))
    step = max(1, 2_000_000 // max(sizes.size, 1))
    pick = [ks.index(int(k)) for k in budgets]
    for start in range(0, n_resamples, step):
        reps = min(step, n_resamples - start)
        counts = rng.multinomial(n, pvals, size=(reps, len(n)))
        out[start : start + reps] = _rescore(kind, counts, means, voter, n, ks)[:, :, pick]
    with np.errstate(invalid="ignore"):
        out -= out.mean(axis=0)
    out[:, n == 0] = 0.0
    return out


def _vote_groups(pool: pd.DataFrame, index: pd.Index):
    """Per problem of `index`: vote-group sizes and mean scores (problems x groups, zero
    padded), which groups vote (abstainers do not), and the pool size."""
    frame = select_samples(pool)
    keys = problem_keys(frame)
    rows = pd.MultiIndex.from_frame(frame[keys]) if len(keys) > 1 else pd.Index(frame[keys[0]])
    position = index.get_indexer(rows)
    frame, position = frame[position >= 0], position[position >= 0]
    answers = frame["extracted"] if "extracted" in frame else pd.Series("", index=frame.index)
    votes = answers.notna().to_numpy()
    pair = pd.factorize(pd.Series(position.astype(str)) + "\x00" + answers.astype(str).to_numpy()
                        + votes.astype(str))[0]  # fmt: skip
    group = pd.Series(pair).groupby(position).rank(method="dense").to_numpy().astype(int) - 1
    width = int(group.max(initial=0)) + 1
    sizes = np.zeros((len(index), width))
    np.add.at(sizes, (position, group), 1.0)
    sums = np.zeros((len(index), width))
    np.add.at(sums, (position, group), pd.to_numeric(frame["score"], errors="coerce").fillna(0.0))
    voter = np.zeros((len(index), width), bool)
    voter[position, group] = votes
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(sizes > 0, sums / np.maximum(sizes, 1), 0.0)
    return sizes, means, voter, sizes.sum(axis=1).astype(np.int64)


def _rescore(kind, counts, means, voter, n, ks) -> np.ndarray:
    """The estimator `kind` on resampled pools: (reps, problems, len(ks)), NaN where k > n."""
    if kind not in ("sample_mean", "majority", "pass_at_k"):
        raise ValueError(f"unknown pool estimator {kind!r}")
    weight = means * voter if kind == "majority" else means  # abstainers score 0 in a vote
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (counts * weight).sum(axis=2) / n  # per-sample accuracy (= majority@1)
    out = np.full((*counts.shape[:2], len(ks)), np.nan)
    correct = (counts * (means >= 1.0 - 1e-9)).sum(axis=2) if kind == "pass_at_k" else None
    for j, k in enumerate(ks):
        fits = n >= k
        if kind == "sample_mean" or (kind == "majority" and k == 1):
            out[:, fits, j] = mean[:, fits]
        elif correct is not None:
            for size in np.unique(n[fits]):  # a table over c = 0..n per pool size: no sums
                table = pass_at_k_array(np.full(size + 1, size), np.arange(size + 1), k)
                out[:, n == size, j] = table[correct[:, n == size]]
    if kind == "majority" and max(ks) > 1:
        _rescore_votes(counts, means, voter, n, ks, out)
    return out


def _rescore_votes(counts, means, voter, n, ks, out) -> None:
    """majority@k (k >= 2) of resampled pools: one exact `pool_curve` per distinct pool."""
    reps, problems, width = counts.shape
    # A resampled pool is (its problem, its group counts): one integer in base n_max + 1.
    base = int(n.max(initial=0)) + 1
    if width * np.log2(base) + np.log2(problems + 1) < 62:
        codes = (counts * base ** np.arange(width)).sum(axis=2) + np.arange(problems) * (
            base**width
        )
        unique, first, inverse = np.unique(codes.ravel(), return_index=True, return_inverse=True)
    else:  # too many digits for one integer: hash the rows instead
        flat = np.concatenate(
            [counts.reshape(-1, width), np.tile(np.arange(problems), reps)[:, None]], 1
        )
        inverse = pd.DataFrame(flat).groupby(list(range(width + 1)), sort=False).ngroup().to_numpy()
        unique, first = np.unique(inverse, return_index=True)
    many = [j for j, k in enumerate(ks) if k >= 2]
    results = np.full((len(unique), len(many)), np.nan)
    flat_counts = counts.reshape(-1, width)
    for u, row in enumerate(first):
        p = row % problems
        fits = [j for j in many if ks[j] <= n[p]]
        if not fits:
            continue
        c = flat_counts[row]
        groups = tuple(sorted((int(c[g]), float(means[p, g])) for g in range(width)
                              if c[g] > 0 and voter[p, g]))  # fmt: skip
        abstain = int(c[~voter[p]].sum())
        if not groups:
            results[u, [many.index(j) for j in fits]] = 0.0
            continue
        values = pool_curve(groups, abstain, tuple(ks[j] for j in fits))
        results[u, [many.index(j) for j in fits]] = values
    out[:, :, many] = results[inverse.ravel()].reshape(reps, problems, len(many))
