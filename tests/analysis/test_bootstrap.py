"""Bootstrap intervals over problems: coverage, determinism, shapes, NaN and degenerate input."""

from __future__ import annotations

import numpy as np
import pytest

from ttcbench.analysis.bootstrap import (
    bootstrap_ci,
    bootstrap_means,
    paired_bootstrap_diff,
    two_level_means,
)


def test_coverage_of_a_bernoulli_mean() -> None:
    rng = np.random.default_rng(0)
    hits = 0
    for repetition in range(200):
        values = (rng.random(400) < 0.3).astype(float)
        low, high = bootstrap_ci(values, n_resamples=500, seed=repetition)
        hits += bool(low <= 0.3 <= high)
    assert 0.88 <= hits / 200 <= 0.99


def test_fixed_seed_is_deterministic() -> None:
    values = np.random.default_rng(1).random((50, 3))
    first = bootstrap_ci(values, seed=4)
    second = bootstrap_ci(values, seed=4)
    other = bootstrap_ci(values, seed=5)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], other[0])


def test_shapes_and_shared_resamples() -> None:
    values = np.random.default_rng(2).random(80)
    low, high = bootstrap_ci(values)
    assert low.shape == () and high.shape == ()
    assert low < values.mean() < high
    # Identical columns see the same resampled problems, so their intervals are identical.
    low2, high2 = bootstrap_ci(np.column_stack([values, values, 2 * values]))
    assert low2.shape == (3,) and high2.shape == (3,)
    assert low2[0] == low2[1] == pytest.approx(low)
    assert low2[2] == pytest.approx(2 * low)
    assert high2[2] == pytest.approx(2 * high)


def test_nan_rows_are_dropped_per_column() -> None:
    values = np.random.default_rng(3).random((60, 2))
    with_nan = values.copy()
    with_nan[::4, 1] = np.nan
    low, high = bootstrap_ci(with_nan)
    first_low, first_high = bootstrap_ci(values[:, 0])
    # Column 0 is untouched by column 1's NaN (equal up to matrix-product rounding).
    assert (low[0], high[0]) == (pytest.approx(first_low), pytest.approx(first_high))
    kept = values[1::4, 1].tolist() + values[2::4, 1].tolist() + values[3::4, 1].tolist()
    assert low[1] < np.mean(kept) < high[1]
    with pytest.raises(ValueError, match="column"):
        bootstrap_ci(np.array([[1.0, np.nan], [0.0, np.nan]]))


def test_degenerate_and_invalid_input() -> None:
    assert bootstrap_ci(np.array([0.7])) == (0.7, 0.7)
    low, high = bootstrap_ci(np.full((9, 2), 0.1))
    np.testing.assert_array_equal(low, [0.1, 0.1])
    np.testing.assert_array_equal(high, [0.1, 0.1])
    with pytest.raises(ValueError, match="zero rows"):
        bootstrap_ci(np.array([]))
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(np.ones(3), level=1.5)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        bootstrap_ci(np.ones((2, 2, 2)))


def test_paired_diff() -> None:
    rng = np.random.default_rng(4)
    a = rng.random(300)
    assert paired_bootstrap_diff(a, a) == (0.0, 0.0, 0.0)
    shifted = a + 0.05 + rng.normal(0.0, 0.02, 300)
    mean, low, high = paired_bootstrap_diff(shifted, a)
    assert 0.0 < low < mean < high
    assert mean == pytest.approx(0.05, abs=0.01)
    # Pairing cancels the shared per-problem spread: far tighter than the unpaired intervals.
    assert high - low < 0.2 * (bootstrap_ci(a)[1] - bootstrap_ci(a)[0])


def test_paired_diff_nan_and_errors() -> None:
    a = np.array([1.0, np.nan, 0.0, 1.0])
    b = np.array([0.0, 1.0, np.nan, 0.0])
    assert paired_bootstrap_diff(a, b) == (1.0, 1.0, 1.0)  # only problems 0 and 3 count
    with pytest.raises(ValueError, match="same problems"):
        paired_bootstrap_diff(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="both sides"):
        paired_bootstrap_diff(np.array([np.nan]), np.array([1.0]))


def test_two_level_adds_the_within_problem_noise() -> None:
    rng = np.random.default_rng(7)
    values = rng.random((100, 2))
    plain = bootstrap_means(values, n_resamples=500, seed=3)
    np.testing.assert_array_equal(two_level_means(values, None, n_resamples=500, seed=3), plain)
    noise = rng.normal(0.0, 0.3, (500, 100, 2))
    noise -= noise.mean(axis=0)
    both = two_level_means(values, noise, n_resamples=500, seed=3)
    assert both.std(axis=0)[0] > 1.2 * plain.std(axis=0)[0]  # sd(noise)/10 on top of ~0.029
    assert np.abs(both.mean(axis=0) - values.mean(axis=0)).max() < 0.01  # still centred
    with_nan = values.copy()
    with_nan[:5, 1] = np.nan  # a missing score adds no noise either
    assert not np.isnan(two_level_means(with_nan, noise, n_resamples=500, seed=3)).any()


def test_paired_diff_with_noise_is_wider() -> None:
    rng = np.random.default_rng(8)
    a, b = rng.random(60), rng.random(60)
    _, low, high = paired_bootstrap_diff(a, b, n_resamples=400)
    noise = rng.normal(0.0, 0.5, (400, 60))
    mean, low2, high2 = paired_bootstrap_diff(a, b, n_resamples=400, noise=noise)
    assert mean == pytest.approx(np.mean(a - b))
    assert high2 - low2 > high - low
