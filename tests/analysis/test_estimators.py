"""Exact k-subset estimators against brute-force enumeration of every k-subset."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

import numpy as np
import pytest

from ttcbench.analysis.estimators import (
    best_of_k,
    majority_at_k,
    majority_at_k_curve,
    pass_at_k,
    pass_at_k_array,
    weighted_vote_at_k,
)


def _group_means(answers: Sequence[str | None], scores: Sequence[float]) -> dict[str, float]:
    members: dict[str, list[float]] = {}
    for answer, score in zip(answers, scores, strict=True):
        if answer is not None:
            members.setdefault(answer, []).append(score)
    return {answer: sum(group) / len(group) for answer, group in members.items()}


def _vote(tally: dict[str, float], means: dict[str, float]) -> float:
    """Expected score of one subset's vote with uniform tie-breaking (0 if nobody voted)."""
    if not tally:
        return 0.0
    top = max(tally.values())
    winners = [answer for answer, votes in tally.items() if votes == top]
    return sum(means[answer] for answer in winners) / len(winners)


def _brute(n: int, k: int, score_subset) -> float:
    subsets = list(itertools.combinations(range(n), k))
    return sum(score_subset(subset) for subset in subsets) / len(subsets)


def brute_majority(answers: list[str | None], scores: list[float], k: int) -> float:
    means = _group_means(answers, scores)

    def score(subset: tuple[int, ...]) -> float:
        tally: dict[str, float] = {}
        for i in subset:
            if answers[i] is not None:
                tally[answers[i]] = tally.get(answers[i], 0) + 1
        return _vote(tally, means)

    return _brute(len(answers), k, score)


def brute_weighted(
    answers: list[str | None], verifier: list[float], scores: list[float], k: int
) -> float:
    means = _group_means(answers, scores)

    def score(subset: tuple[int, ...]) -> float:
        tally: dict[str, float] = {}
        for i in subset:
            if answers[i] is not None:
                tally[answers[i]] = tally.get(answers[i], 0.0) + verifier[i]
        return _vote(tally, means)

    return _brute(len(answers), k, score)


def brute_best(verifier: list[float], scores: list[float], k: int) -> float:
    def score(subset: tuple[int, ...]) -> float:
        top = max(verifier[i] for i in subset)
        tied = [scores[i] for i in subset if verifier[i] == top]
        return sum(tied) / len(tied)

    return _brute(len(verifier), k, score)


def random_pool(rng: random.Random) -> tuple[list[str | None], list[float]]:
    """A small pool: a few answer groups, abstentions, and a correct answer possibly absent."""
    n = rng.randint(1, 9)
    labels: list[str | None] = [None, *"abcd"[: rng.randint(1, 4)]]
    answers = [rng.choice(labels) for _ in range(n)]
    correct = rng.choice(["a", "b", "zz"])  # "zz" never appears: every vote is wrong
    return answers, [float(answer == correct) for answer in answers]


POOLS = [random_pool(random.Random(seed)) for seed in range(150)]


@pytest.mark.parametrize(("answers", "scores"), POOLS)
def test_majority_matches_enumeration(answers: list[str | None], scores: list[float]) -> None:
    for k in range(1, len(answers) + 1):
        assert majority_at_k(answers, scores, k) == pytest.approx(
            brute_majority(answers, scores, k), abs=1e-9
        )


def test_majority_special_pools() -> None:
    cases: list[tuple[list[str | None], list[float]]] = [
        (["a"] * 6, [1.0] * 6),  # all correct
        (["a", "b", "c", "d"], [0.0] * 4),  # all wrong, four-way ties
        ([None] * 5, [0.0] * 5),  # everyone abstains
        (["a", "a", "b", "b", None, None], [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]),  # exact ties
        (["a", "a", "b", "b", "c"], [1.0, 0.0, 0.5, 0.5, 1.0]),  # inconsistent grading
    ]
    for answers, scores in cases:
        for k in range(1, len(answers) + 1):
            assert majority_at_k(answers, scores, k) == pytest.approx(
                brute_majority(answers, scores, k), abs=1e-9
            )


def test_majority_edge_budgets() -> None:
    answers = ["7", "7", "3", None, "7", "3", None, "5", "3"]
    scores = [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    # k = 1: each voter wins alone with its group's score and an abstainer scores 0, so the
    # estimate is the voters' total score over the whole pool (abstainers in the denominator).
    assert majority_at_k(answers, scores, 1) == pytest.approx(3 / 9)
    # k = n: the whole pool votes; "7" and "3" tie at three votes each, splitting the credit.
    assert majority_at_k(answers, scores, len(answers)) == pytest.approx(0.5)
    curve = majority_at_k_curve(answers, scores, [1, 4, 9])
    assert curve == pytest.approx([majority_at_k(answers, scores, k) for k in (1, 4, 9)])


def test_majority_large_pool_is_consistent() -> None:
    # No timing assert: this only checks a 1000-sample pool runs and agrees with its limits.
    rng = np.random.default_rng(0)
    codes = rng.choice(5, size=1000, p=[0.15, 0.4, 0.25, 0.15, 0.05])
    answers = [None if code == 0 else str(code) for code in codes]
    scores = [float(answer == "1") for answer in answers]
    curve = majority_at_k_curve(answers, scores, [1, 64, 999, 1000])
    assert curve[0] == pytest.approx(sum(scores) / 1000)
    assert curve[-1] == 1.0  # "1" holds the plurality of the whole pool
    assert 0.99 < curve[2] <= 1.0
    assert all(0.0 <= value <= 1.0 for value in curve)


def test_majority_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="k=0"):
        majority_at_k(["a", "b"], [1.0, 0.0], 0)
    with pytest.raises(ValueError, match="k=3"):
        majority_at_k(["a", "b"], [1.0, 0.0], 3)
    with pytest.raises(ValueError, match="same length"):
        majority_at_k(["a", "b"], [1.0], 1)
    with pytest.raises(ValueError, match="empty"):
        majority_at_k([], [], 1)


def test_best_of_k_matches_enumeration() -> None:
    rng = random.Random(7)
    for _ in range(150):
        n = rng.randint(1, 9)
        # Few distinct verifier values, so tie blocks are common.
        verifier = [rng.choice([0.1, 0.5, 0.5, 0.9, 2.0]) for _ in range(n)]
        scores = [rng.choice([0.0, 1.0, 0.5]) for _ in range(n)]
        for k in range(1, n + 1):
            assert best_of_k(verifier, scores, k) == pytest.approx(
                brute_best(verifier, scores, k), abs=1e-9
            )


def test_best_of_k_limits_and_errors() -> None:
    verifier, scores = [0.2, 0.9, 0.9, 0.4], [1.0, 0.0, 1.0, 1.0]
    assert best_of_k(verifier, scores, 1) == pytest.approx(np.mean(scores))
    assert best_of_k(verifier, scores, 4) == pytest.approx(0.5)  # the two 0.9s split the win
    with pytest.raises(ValueError, match="NaN"):
        best_of_k([0.1, float("nan")], [1.0, 0.0], 1)
    with pytest.raises(ValueError, match="k=5"):
        best_of_k(verifier, scores, 5)


def test_weighted_vote_matches_enumeration() -> None:
    rng = random.Random(3)
    for seed in range(100):
        answers, scores = random_pool(random.Random(1000 + seed))
        # Quarter steps sum exactly, so summed-score ties are real ties.
        verifier = [rng.choice([0.0, 0.25, 0.5, 1.0]) for _ in answers]
        for k in range(1, len(answers) + 1):
            estimate, error = weighted_vote_at_k(answers, verifier, scores, k)
            assert error == 0.0
            assert estimate == pytest.approx(brute_weighted(answers, verifier, scores, k), abs=1e-9)


def test_weighted_vote_with_equal_weights_is_majority() -> None:
    rng = np.random.default_rng(1)
    codes = rng.choice(4, size=40, p=[0.1, 0.45, 0.3, 0.15])
    answers = [None if code == 0 else str(code) for code in codes]
    scores = [float(answer == "1") for answer in answers]
    ones = [1.0] * len(answers)
    exact = majority_at_k(answers, scores, 3)
    assert weighted_vote_at_k(answers, ones, scores, 3, exact_limit=10**6) == (
        pytest.approx(exact, abs=1e-12),
        0.0,
    )
    # C(40, 9) is far above the limit: seeded Monte Carlo with a positive standard error.
    estimate, error = weighted_vote_at_k(answers, ones, scores, 9, n_resamples=4000, seed=5)
    assert error > 0.0
    assert abs(estimate - majority_at_k(answers, scores, 9)) < 4 * error
    assert weighted_vote_at_k(answers, ones, scores, 9, n_resamples=4000, seed=5) == (
        estimate,
        error,
    )


def test_weighted_vote_all_abstain_and_errors() -> None:
    assert weighted_vote_at_k([None, None], [0.3, 0.9], [0.0, 0.0], 1) == (0.0, 0.0)
    with pytest.raises(ValueError, match="same length"):
        weighted_vote_at_k(["a"], [0.3, 0.9], [0.0, 0.0], 1)


def _exact_pass(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)  # int / int rounds correctly


def test_pass_at_k_exact_values() -> None:
    for n, c, k in [(10, 0, 1), (10, 3, 1), (10, 3, 5), (10, 10, 10), (200, 1, 1), (1000, 7, 64)]:
        assert pass_at_k(n, c, k) == pytest.approx(_exact_pass(n, c, k), rel=1e-12, abs=0)
    assert pass_at_k(10, 6, 5) == 1.0  # only 4 wrong samples: no all-wrong 5-subset
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)


def test_pass_at_k_rejects_bad_input() -> None:
    for n, c, k in [(5, 1, 6), (5, 1, 0), (5, 6, 1), (5, -1, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)
    with pytest.raises(ValueError):
        pass_at_k_array(np.array([4, 8]), np.array([1, 1]), 5)
    with pytest.raises(ValueError):
        pass_at_k_array(np.array([4, 8]), np.array([5, 1]), 2)


@pytest.mark.parametrize("k", [1, 2, 7, 16])
def test_pass_at_k_array_matches_scalar(k: int) -> None:
    rng = np.random.default_rng(k)
    n = rng.choice([16, 20, 64, 300], size=500)  # a few shared pool sizes, as in a real run
    c = rng.integers(0, n + 1)
    expected = np.array([pass_at_k(int(a), int(b), k) for a, b in zip(n, c, strict=True)])
    np.testing.assert_allclose(pass_at_k_array(n, c, k), expected, rtol=1e-12, atol=0)
    grid = pass_at_k_array(n.reshape(20, 25), c.reshape(20, 25), k)
    assert grid.shape == (20, 25)
    np.testing.assert_allclose(grid.ravel(), expected, rtol=1e-12, atol=0)


def test_pass_at_k_array_broadcasts_scalar_n() -> None:
    c = np.arange(11)
    expected = [pass_at_k(10, int(ci), 3) for ci in c]
    np.testing.assert_allclose(pass_at_k_array(np.array(10), c, 3), expected, rtol=1e-12)
