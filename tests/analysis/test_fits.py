"""Curve fits: parameter recovery, the extrapolation guard, degenerate data, class tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ttcbench.analysis.fits import ExtrapolationError, fit_coverage, fit_logistic, logistic
from ttcbench.analysis.scaling import fit_table, gain_table

TRUE = {"floor": 0.1, "ceiling": 0.85, "slope": 1.3, "midpoint": 9.0}
X = np.log2(100.0 * 2.0 ** np.arange(10))  # 100 .. 51200 tokens: the curve bends inside


def test_logistic_recovers_noise_free_parameters() -> None:
    fit = fit_logistic(X, logistic(X, **TRUE))
    assert fit.status == "ok"
    for name, value in TRUE.items():
        assert getattr(fit, name) == pytest.approx(value, abs=1e-6)
    assert fit.rmse < 1e-8


def test_logistic_recovers_parameters_under_binomial_noise() -> None:
    # 400 problems per point: the accuracy of each budget is Binomial(400, p) / 400.
    errors = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        y = rng.binomial(400, logistic(X, **TRUE)) / 400
        fit = fit_logistic(X, y)
        assert fit.status == "ok"
        errors.append([abs(getattr(fit, k) - v) for k, v in TRUE.items()])
    mean_error = dict(zip(TRUE, np.mean(errors, axis=0), strict=True))
    # Measured: floor 0.027 (it is below the smallest compute: extrapolated), ceiling 0.0065,
    # slope 0.13 (10%), midpoint 0.11 doublings.
    assert mean_error["floor"] < 0.04 and mean_error["ceiling"] < 0.015
    assert mean_error["slope"] < 0.2 and mean_error["midpoint"] < 0.2


def test_coverage_law_recovery() -> None:
    k = 2.0 ** np.arange(11)
    exact = np.exp(-2.0 * k**-0.6)
    fit = fit_coverage(k, exact)
    assert (fit.status, fit.a, fit.b) == ("ok", pytest.approx(2.0), pytest.approx(0.6))
    errors = []
    for seed in range(20):
        noisy = np.random.default_rng(seed).binomial(300, exact) / 300
        fit = fit_coverage(k, noisy)
        errors.append((abs(fit.a - 2.0), abs(fit.b - 0.6)))
    a_error, b_error = np.mean(errors, axis=0)  # measured: 0.095 (4.7% of a) and 0.019
    assert a_error < 0.15 and b_error < 0.03


def test_predictions_refuse_to_extrapolate() -> None:
    fit = fit_logistic(X, logistic(X, **TRUE))
    inside = fit.predict(X[[0, 4, -1]])
    np.testing.assert_allclose(inside, logistic(X[[0, 4, -1]], **TRUE), atol=1e-6)
    with pytest.raises(ExtrapolationError, match="extrapolate=True"):
        fit.predict(X[-1] + 1.0)
    with pytest.raises(ExtrapolationError):
        fit.predict(np.array([X[0] - 0.5, X[1]]))
    assert fit.predict(X[-1] + 3.0, extrapolate=True) > inside[-1]
    coverage = fit_coverage(np.array([1, 2, 4, 8]), np.exp(-2.0 * np.array([1, 2, 4, 8]) ** -0.6))
    with pytest.raises(ExtrapolationError):
        coverage.predict(16)
    assert coverage.predict(16, extrapolate=True) == pytest.approx(np.exp(-2.0 * 16**-0.6))


def test_compute_to_a_fraction_of_the_ceiling() -> None:
    fit = fit_logistic(X, logistic(X, **TRUE))
    x90 = fit.x_at_fraction(0.9)
    assert X[0] < x90 < X[-1]
    assert fit.predict(x90) == pytest.approx(0.9 * fit.ceiling)
    late = fit_logistic(X, logistic(X, 0.0, 0.9, 1.0, 20.0))  # still climbing at the end
    assert late.x_at_fraction(0.9) == np.inf  # reached only beyond the measured compute
    early = fit_logistic(X, logistic(X, 0.85, 0.9, 1.0, 3.0))  # already there at the start
    assert early.x_at_fraction(0.9) == X[0]


@pytest.mark.parametrize("level", [0.0, 1.0, 0.4])
def test_flat_curves_give_a_flat_fit(level: float) -> None:
    fit = fit_logistic(X, np.full(len(X), level))
    assert (fit.status, fit.floor, fit.ceiling, fit.slope) == ("flat", level, level, 0.0)
    np.testing.assert_array_equal(fit.predict(X[:3]), [level] * 3)
    assert fit.x_at_fraction(0.9) == X[0]


def test_degenerate_input_is_reported_not_raised() -> None:
    few = fit_logistic(X[:3], [0.1, 0.5, 0.6])
    assert few.status == "failed" and "4 distinct" in few.message
    assert np.isnan(few.predict(X[1])) and np.isnan(few.x_at_fraction())
    assert fit_logistic([], []).status == "failed"
    assert fit_coverage([1, 2, 4], [1.0, 1.0, 1.0]).status == "saturated"
    assert fit_coverage([1, 2, 4], [1.0, 1.0, 1.0]).predict(2).item() == 1.0
    zero = fit_coverage([1, 2, 4], [0.0, 0.0, 0.0])
    assert zero.status == "zero" and zero.predict(4).item() == 0.0
    one_point = fit_coverage([1, 2, 4], [0.3, 1.0, 1.0])
    assert one_point.status == "failed" and np.isnan(one_point.predict(2)).all()


def _attempts(accuracy: np.ndarray, problems: int, seed: int, cls: str = "a") -> pd.DataFrame:
    """Attempts whose budget-j accuracy is accuracy[j]: Bernoulli scores per problem."""
    rng = np.random.default_rng(seed)
    rows = [
        {"problem_id": f"{cls}{i}", "strategy": "majority_vote", "budget": 2**j,
         "score": float(rng.random() < acc), "prompt_tokens": 60.0 * 2**j,
         "completion_tokens": 40.0 * 2**j, "error": None, "class_kind": cls}
        for j, acc in enumerate(accuracy) for i in range(problems)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_gain_per_doubling_of_a_linear_curve() -> None:
    # Every problem scores exactly 0.1 + 0.05 j at budget 2^j: +5 points per doubling.
    frame = _attempts(np.zeros(6), 30, 0).assign(score=lambda f: 0.1 + 0.05 * np.log2(f.budget))
    table = gain_table(frame, n_resamples=200)
    np.testing.assert_allclose(table["gain_per_doubling"], 0.05)
    np.testing.assert_allclose(table[["gain_low", "gain_high"]], 0.05)
    np.testing.assert_allclose(table["compute"], 100.0 * 2.0 ** np.arange(6))


def test_fit_table_intervals_cover_the_true_ceiling() -> None:
    x = np.log2(100.0 * 2.0 ** np.arange(10))
    truth = logistic(x, 0.1, 0.7, 1.5, 10.0)
    frame = pd.concat([_attempts(truth, 400, 1), _attempts(np.zeros(10), 50, 2, "z")])
    table = fit_table(frame, by=["class_kind"], n_resamples=100).set_index("class_kind")
    climbing, zero = table.loc["a"], table.loc["z"]
    assert climbing["status"] == "ok" and climbing["fit_failures"] == 0
    assert climbing["ceiling_low"] <= 0.7 <= climbing["ceiling_high"]
    assert climbing["compute_90_low"] <= climbing["compute_90"] <= climbing["compute_90_high"]
    assert zero["status"] == "flat" and zero["ceiling"] == 0.0


def test_fit_failures_are_counted() -> None:
    frame = _attempts(np.array([0.1, 0.5, 0.6]), 40, 3)  # 3 budgets: 4 parameters can't fit
    row = fit_table(frame, n_resamples=50).iloc[0]
    assert row["status"] == "failed" and row["fit_failures"] == 50
    assert np.isnan(row["ceiling_low"])


def test_interval_between_finite_and_beyond_replicates_is_infinite_not_overflow() -> None:
    """Refits that reach 90% inside the measured compute in some replicates and only beyond it
    in others: the quantile interpolated between the two is "beyond" (+inf), never the 1e300
    stand-in scaled down (5e299 made `2 ** x` overflow in ttcbench-report)."""
    from ttcbench.analysis.scaling import _quantiles

    replicates = np.array([[3.0], [4.0], [np.inf], [np.inf], [np.nan]])
    low, high = _quantiles(replicates, 0.5)
    assert np.isfinite(low[0]) and 3.0 <= low[0] <= 4.0
    assert high[0] == np.inf
    assert np.all(np.isinf(_quantiles(np.full((4, 1), np.inf), 0.95)[0]))
    low, high = _quantiles(np.array([[1.0], [2.0], [3.0]]), 0.95)
    assert 1.0 <= low[0] <= high[0] <= 3.0
