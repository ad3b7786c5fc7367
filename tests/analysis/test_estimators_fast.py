"""The memoised estimators give bit for bit what the straightforward formulas give.

`_majority` reads its binomial pmfs and `best_of_k` its subset-avoidance products from
caches keyed by (pool size, k); the references below recompute them on every call with
scipy, as the estimators did before. The best-of-k estimate must be the identical float; the
majority estimate agrees to 1e-12 relative (its pmfs are now exact integer ratios, scipy's are
within a few ulps) and its curve is bit for bit the one-k estimate.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy.stats import binom

from ttcbench.analysis import estimators
from ttcbench.analysis.estimators import _NEGLIGIBLE, _tie_weighted_rest, _vote_groups


def majority_reference(answers: list[str | None], scores: list[float], k: int) -> float:
    """`estimators._majority` with scipy called afresh for every pmf."""
    sizes, group_scores, n_abstain = _vote_groups(answers, scores)
    n = sum(sizes) + n_abstain
    p = k / n
    pmf = {m: binom.pmf(np.arange(m + 1), m, p) for m in set(sizes)}
    abstain = binom.pmf(np.arange(n_abstain + 1), n_abstain, p)
    norm = float(binom.pmf(k, n, p))
    score_by_size: dict[int, float] = {}
    for m, score in zip(sizes, group_scores, strict=True):
        score_by_size[m] = score_by_size.get(m, 0.0) + score
    total = 0.0
    for m_g, score in score_by_size.items():
        if score == 0.0:
            continue
        others = list(sizes)
        others.remove(m_g)
        for x in range(1, min(m_g, k) + 1):
            weight = score * float(pmf[m_g][x])
            fillable = x + sum(min(x, m) for m in others) + n_abstain >= k
            if fillable and abs(weight) >= _NEGLIGIBLE * norm:
                rest = _tie_weighted_rest(
                    x, [pmf[m] for m in others], abstain, k - x, _NEGLIGIBLE * norm
                )
                total += weight * rest
    return total / norm


def best_of_k_reference(verifier: list[float], scores: list[float], k: int) -> float:
    """`estimators.best_of_k` with the avoidance products recomputed on every call."""
    v, s = np.asarray(verifier, float), np.asarray(scores, float)
    n = len(v)
    i = np.arange(n)
    none_above = np.concatenate([[1.0], np.cumprod((n - k - i) / (n - i))])
    _, block, counts = np.unique(-v, return_inverse=True, return_counts=True)
    above = np.concatenate([[0], np.cumsum(counts)[:-1]])
    p_block = none_above[above] - none_above[above + counts]
    return float(p_block @ (np.bincount(block, weights=s) / counts))


def random_pool(rng: random.Random) -> tuple[list[str | None], list[float], list[float]]:
    n = rng.choice([1, 2, 3, 5, 8, 13, 16, 32, 64])
    labels = [None, *map(str, range(rng.randint(1, 6)))]
    answers = [rng.choice(labels) for _ in range(n)]
    scores = [rng.choice([0.0, 1.0, rng.random()]) for _ in range(n)]
    verifier = [rng.choice([0.5, float(rng.randint(0, 3)), rng.random()]) for _ in range(n)]
    return answers, scores, verifier


@pytest.mark.parametrize("seed", range(4))
def test_majority_at_k_matches_the_scipy_reference(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        answers, scores, _ = random_pool(rng)
        ks = sorted({1, len(answers), rng.randint(1, len(answers))})
        for k in ks:
            assert estimators.majority_at_k(answers, scores, k) == pytest.approx(
                majority_reference(answers, scores, k), rel=1e-12, abs=1e-15
            )
        curve = estimators.majority_at_k_curve(answers, scores, ks)
        assert curve == [estimators.majority_at_k(answers, scores, k) for k in ks]


@pytest.mark.parametrize("seed", range(4))
def test_best_of_k_is_bit_identical_to_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        _, scores, verifier = random_pool(rng)
        for k in {1, len(scores), rng.randint(1, len(scores))}:
            got = estimators.best_of_k(verifier, scores, k)
            assert got == best_of_k_reference(verifier, scores, k)
            assert estimators.best_of_k(verifier, scores, k) == got  # from the warm cache


def test_shared_tables_are_read_only() -> None:
    """The cached arrays are shared by every caller: none may write into them."""
    with pytest.raises(ValueError):
        estimators._binom_pmfs(4, 2, 8)[0] = 1.0
    with pytest.raises(ValueError):
        estimators._none_above(8, 2)[0] = 0.0
