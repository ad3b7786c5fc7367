"""Exact estimators of budget-k accuracy from one pool of n samples per problem.

The runner samples n independent answers once, at the largest budget; the score at a smaller
budget k is the expectation over uniformly random k-subsets of that pool (without replacement),
which is unbiased and far less noisy than drawing a fresh subset.

Voting rules shared by the estimators:

- ``answers[i]`` is sample i's canonical answer; equal strings vote together. ``None`` means no
  answer was extracted: the sample abstains. A subset in which every sample abstains scores 0.
- A vote group's score is the mean of its members' scores over the whole pool (the members are
  equal when grading is consistent).
- Ties: when t groups tie for the win, the winner is drawn uniformly at random, so each tied
  group earns 1/t of its score (the expectation of random tie-breaking). For ``best_of_k``
  samples with equal verifier scores tie the same way. Verifier scores tie on exact equality;
  summed verifier scores (``weighted_vote_at_k``) tie within a relative 1e-12, so float rounding
  of a sum cannot decide a vote.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

# Majority-vote terms and many-way-tie rows whose weight is below this fraction of the
# normaliser are skipped. Each skip loses at most that weight (times the summed group score),
# and there are at most ~n * groups of them, so the absolute error stays near 1e-11 at worst:
# far under the 1e-9 promised, while hopeless vote counts and ties cost nothing.
_NEGLIGIBLE = 1e-17
# Relative tolerance under which two summed verifier scores count as a tie.
_TIE_RTOL = 1e-12


def _check_k(n: int, k: int) -> None:
    if n < 1:
        raise ValueError("the pool is empty: need at least one sample (n >= 1)")
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the pool size n={n}")


def _check_lengths(*columns: Sequence[object]) -> None:
    if len({len(column) for column in columns}) > 1:
        sizes = ", ".join(str(len(column)) for column in columns)
        raise ValueError(f"per-sample inputs must have the same length, got {sizes}")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k).

    Evaluated as the Codex product 1 - prod_{i=n-c+1}^{n} (1 - k/i), summed in log space so a
    tiny pass@k keeps its relative precision instead of cancelling against 1.
    """
    _check_k(n, k)
    if not 0 <= c <= n:
        raise ValueError(f"c={c} correct samples is outside 0..n={n}")
    if n - c < k:
        return 1.0  # every k-subset holds a correct sample
    log_fail = math.fsum(math.log1p(-k / i) for i in range(n - c + 1, n + 1))
    return -math.expm1(log_fail)


def pass_at_k_array(n: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """`pass_at_k` for many problems at once (n and c broadcast together).

    Problems share few pool sizes, so one cumulative sum of log(1 - k/i) per distinct n answers
    every c at once: no Python loop over problems. Each prefix sums same-sign terms, so the
    result keeps ~1e-13 relative precision.
    """
    n_arr, c_arr = np.broadcast_arrays(np.asarray(n, np.int64), np.asarray(c, np.int64))
    if k < 1 or (n_arr < k).any():
        raise ValueError(f"k={k} must be between 1 and every problem's pool size n")
    if ((c_arr < 0) | (c_arr > n_arr)).any():
        raise ValueError("every c (correct samples) must lie within 0..n of its problem")
    n_flat, c_flat = n_arr.ravel(), c_arr.ravel()
    out = np.ones(n_flat.shape)
    sizes, inverse = np.unique(n_flat, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(sizes)))[:-1]
    for size, rows in zip(sizes, np.split(order, bounds), strict=True):
        # log_fail[c] = sum_{i=size-c+1}^{size} log(1 - k/i) for c = 0..size-k
        log_fail = np.concatenate([[0.0], np.cumsum(np.log1p(-k / np.arange(size, k, -1)))])
        rows = rows[c_flat[rows] <= size - k]  # the others keep 1.0: no all-wrong k-subset
        out[rows] = -np.expm1(log_fail[c_flat[rows]])
    return out.reshape(n_arr.shape)


def _vote_groups(
    answers: Sequence[str | None], scores: Sequence[float]
) -> tuple[list[int], list[float], int]:
    """Sizes and mean scores of the vote groups (first-seen order), and the abstainer count."""
    _check_lengths(answers, scores)
    members: dict[str, list[float]] = {}
    for answer, score in zip(answers, scores, strict=True):
        if answer is not None:
            members.setdefault(answer, []).append(float(score))
    sizes = [len(group) for group in members.values()]
    means = [math.fsum(group) / len(group) for group in members.values()]
    return sizes, means, len(answers) - sum(sizes)


def _fit(poly: np.ndarray, length: int) -> np.ndarray:
    """Truncate or zero-pad a coefficient array to `length`."""
    return poly[:length] if len(poly) >= length else np.pad(poly, (0, length - len(poly)))


def _tie_weighted_rest(
    x: int, other_pmfs: list[np.ndarray], abstain: np.ndarray, slots: int, tiny: float
) -> float:
    """Weight of filling `slots` with the other groups (each at most x votes) and abstainers.

    polys[t][j] holds the pmf products of the configurations using j slots in which t other
    groups tie at exactly x; a tie of 1 + t leaders earns 1 / (1 + t) of the credit.
    """
    polys = [np.ones(1)]
    for pmf in other_pmfs:
        below, at = pmf[:x], (pmf[x] if x < len(pmf) else 0.0)  # counts 0..x-1, and exactly x
        length = min(slots + 1, len(polys[0]) + x)  # degree grows by at most x per group
        grown = [_fit(np.convolve(poly, below), length) for poly in polys]
        if at > 0.0 and x <= slots:
            grown.append(np.zeros(length))
            for t, poly in enumerate(polys):
                grown[t + 1][x:] += at * poly[: length - x]
        # Later factors never raise a row's mass, so a row below `tiny` stays negligible: drop
        # such trailing rows (many-way ties) to keep pools of many distinct answers fast.
        while len(grown) > 1 and grown[-1].sum() < tiny:
            grown.pop()
        polys = grown
    # Abstainers take the slots the voters left: j voter slots leave slots - j of them.
    rest = slots - np.arange(len(polys[0]))
    fill = np.where(rest < len(abstain), abstain[np.minimum(rest, len(abstain) - 1)], 0.0)
    return sum(float(poly @ fill) / (1 + t) for t, poly in enumerate(polys))


# Computed exactly with Python integers (p = k/n is rational, so C(m, i) k^i (n-k)^(m-i) / n^m
# is one correctly rounded division), not scipy's binom.pmf: importing scipy.stats costs
# ~0.5-1.5 s in the middle of sampling (the first vote), and a pmf ~30 us a call. Memoised:
# every problem of a run asks for the same few (pool size, k).
@lru_cache(maxsize=4096)
def _binom_pmfs(m: int, k: int, n: int) -> np.ndarray:
    """Binomial(m, k/n) pmf at 0..m (read-only: shared by every caller)."""
    pmf = np.array([_binom_pmf(i, m, k, n) for i in range(m + 1)])
    pmf.setflags(write=False)
    return pmf


@lru_cache(maxsize=4096)
def _binom_norm(k: int, n: int) -> float:
    """Binomial(n, k/n) pmf at k: the normaliser of `_majority`."""
    return _binom_pmf(k, n, k, n)


def _binom_pmf(i: int, m: int, k: int, n: int) -> float:
    """P(Binomial(m, k/n) = i), exact up to the final rounding (int / int is correctly
    rounded in Python however large the integers)."""
    return math.comb(m, i) * k**i * (n - k) ** (m - i) / n**m


def _majority(sizes: list[int], group_scores: list[float], n_abstain: int, k: int) -> float:
    """Exact majority@k from vote-group sizes, group scores and the number of abstainers."""
    n = sum(sizes) + n_abstain
    # Binomial(m, p) pmfs stand in for the counts C(m, y): a configuration's pmf product is
    # p^k (1-p)^(n-k) prod C(m_h, y_h), one constant times its count, so dividing by
    # binom.pmf(k, n, p) gives the hypergeometric probability while every intermediate stays
    # <= 1 (raw counts overflow floats near n = 1000; Python integers are too slow).
    pmf = {m: _binom_pmfs(m, k, n) for m in set(sizes)}
    abstain = _binom_pmfs(n_abstain, k, n)
    norm = _binom_norm(k, n)
    # A group's chance to win depends only on its size, so groups of equal size share one
    # computation with their scores summed (pools of many distinct answers stay fast).
    score_by_size: dict[int, float] = {}
    for m, score in zip(sizes, group_scores, strict=True):
        score_by_size[m] = score_by_size.get(m, 0.0) + score
    total = 0.0
    for m_g, score in score_by_size.items():
        if score == 0.0:
            continue  # zero-score groups add nothing: usually every wrong answer
        others = list(sizes)
        others.remove(m_g)
        for x in range(1, min(m_g, k) + 1):
            weight = score * float(pmf[m_g][x])
            fillable = x + sum(min(x, m) for m in others) + n_abstain >= k
            # _tie_weighted_rest is at most 1, so a skipped term changes the total < weight.
            if fillable and abs(weight) >= _NEGLIGIBLE * norm:
                rest = _tie_weighted_rest(
                    x, [pmf[m] for m in others], abstain, k - x, _NEGLIGIBLE * norm
                )
                total += weight * rest
    return total / norm


def majority_at_k(answers: Sequence[str | None], scores: Sequence[float], k: int) -> float:
    """Expected score of a plurality vote over a uniformly random k-subset of the pool.

    Exact, by a dynamic programme over vote groups (see the module docstring for abstention
    and ties), so small budgets are not left to Monte Carlo noise.
    """
    sizes, group_scores, n_abstain = _vote_groups(answers, scores)
    _check_k(len(answers), k)
    return _majority(sizes, group_scores, n_abstain, k)


def majority_at_k_curve(
    answers: Sequence[str | None], scores: Sequence[float], ks: Sequence[int]
) -> list[float]:
    """`majority_at_k` at every budget in `ks`, grouping the pool once."""
    sizes, group_scores, n_abstain = _vote_groups(answers, scores)
    for k in ks:
        _check_k(len(answers), k)
    return [_majority(sizes, group_scores, n_abstain, k) for k in ks]


def best_of_k(verifier_scores: Sequence[float], scores: Sequence[float], k: int) -> float:
    """Expected score of the verifier's top sample in a uniformly random k-subset.

    Exact by order statistics over blocks of equal verifier score (ties broken uniformly), so
    best-of-k curves at every k come from one scored pool.
    """
    _check_lengths(verifier_scores, scores)
    v, s = np.asarray(verifier_scores, float), np.asarray(scores, float)
    n = len(v)
    _check_k(n, k)
    if np.isnan(v).any():
        raise ValueError("verifier scores contain NaN: they cannot be ranked")
    none_above = _none_above(n, k)
    _, block, counts = np.unique(-v, return_inverse=True, return_counts=True)  # best first
    above = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # A block holds the winner when the subset avoids everything ranked above it but not the
    # whole block; the winner is then uniform within the block, so it is worth the block mean.
    p_block = none_above[above] - none_above[above + counts]
    return float(p_block @ (np.bincount(block, weights=s) / counts))


@lru_cache(maxsize=4096)
def _none_above(n: int, k: int) -> np.ndarray:
    """none_above[r] = C(n-r, k) / C(n, k), the chance a k-subset avoids the r top-ranked
    samples, as a running product of factors in [0, 1]: no overflow, no cancellation.
    Read-only, shared by every caller with this (n, k)."""
    i = np.arange(n)
    none_above = np.concatenate([[1.0], np.cumprod((n - k - i) / (n - i))])
    none_above.setflags(write=False)
    return none_above


def _weighted_vote_credit(
    subsets: np.ndarray, onehot: np.ndarray, verifier: np.ndarray, group_score: np.ndarray
) -> np.ndarray:
    """Score of the weighted vote in each subset (rows of sample indices)."""
    member = np.zeros((len(subsets), onehot.shape[0]))
    np.put_along_axis(member, subsets, 1.0, axis=1)
    # (subsets x samples) @ (samples x groups) keeps memory at subsets x n, not x k x groups.
    present = member @ onehot > 0
    totals = np.where(present, (member * verifier) @ onehot, -np.inf)
    best = totals.max(axis=1, keepdims=True)
    winners = present & (totals >= best - _TIE_RTOL * np.abs(best))
    return (winners @ group_score) / np.maximum(winners.sum(axis=1), 1)  # all abstain: 0


def weighted_vote_at_k(
    answers: Sequence[str | None],
    verifier_scores: Sequence[float],
    scores: Sequence[float],
    k: int,
    *,
    exact_limit: int = 20000,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Expected score of a verifier-weighted vote over random k-subsets, with its MC error.

    The group with the largest summed verifier score wins. No closed form is known, so it
    enumerates all C(n, k) subsets when that is at most `exact_limit` (error 0.0) and otherwise
    averages `n_resamples` seeded random subsets, returning their standard error.
    """
    _check_lengths(answers, verifier_scores, scores)
    n = len(answers)
    _check_k(n, k)
    labels = {a: j for j, a in enumerate(dict.fromkeys(a for a in answers if a is not None))}
    if not labels:
        return 0.0, 0.0  # every sample abstains
    onehot = np.zeros((n, len(labels)))
    for i, answer in enumerate(answers):
        if answer is not None:
            onehot[i, labels[answer]] = 1.0
    group_score = onehot.T @ np.asarray(scores, float) / onehot.sum(axis=0)
    verifier = np.asarray(verifier_scores, float)
    if math.comb(n, k) <= exact_limit:
        subsets = np.array(list(itertools.combinations(range(n), k)))
        return float(_weighted_vote_credit(subsets, onehot, verifier, group_score).mean()), 0.0
    if n_resamples < 2:
        raise ValueError(f"n_resamples={n_resamples} must be at least 2 to estimate its error")
    rng = np.random.default_rng(seed)
    subsets = np.argsort(rng.random((n_resamples, n)), axis=1)[:, :k]
    credit = _weighted_vote_credit(subsets, onehot, verifier, group_score)
    return float(credit.mean()), float(credit.std(ddof=1) / math.sqrt(len(credit)))
