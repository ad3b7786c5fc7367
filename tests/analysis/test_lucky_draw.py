"""A lucky `single` draw is not crowned: single is its pool's per-sample accuracy, the
frontier resamples problems and samples, and it never goes down as compute grows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ttcbench.analysis.bootstrap import bootstrap_means
from ttcbench.analysis.consistency import POOLED, link_pools
from ttcbench.analysis.frontier import frontier, strategy_levels
from ttcbench.analysis.noise import _rescore, _vote_groups, pool_noise
from ttcbench.analysis.pools import pool_estimates
from ttcbench.analysis.report_data import load, series_labels
from ttcbench.analysis.summary import summarize

PROBLEMS, POOL = 30, 8


def _pool_calls(seed: int = 0) -> pd.DataFrame:
    """30 problems x 8 samples at p = 0.15, except sample 0, right on 45% of problems."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(PROBLEMS):
        for j in range(POOL):
            right = rng.random() < (0.45 if j == 0 else 0.15)
            rows.append(
                {"task": "arith", "problem_id": f"p{i}", "sample_index": j, "role": "generate",
                 "key": f"k{i}-{j}", "messages_hash": f"h{i}", "strategy": "majority_vote",
                 "extracted": "42" if right else str(rng.integers(1, 4)), "score": float(right),
                 "prompt_tokens": 40, "completion_tokens": int(rng.integers(60, 140)),
                 "latency_s": 0.1, "cost_usd": 0.0, "error": None}
            )  # fmt: skip
    return pd.DataFrame(rows)


def _runs(calls: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A majority_vote run (budgets 1..8 from the pool) and a single run reusing sample 0."""
    majority = pool_estimates(calls, [1, 2, 4, 8], estimators=("majority",)).assign(run="mv")
    first = calls[calls["sample_index"] == 0].assign(strategy="single", run="single")
    single = first[["task", "problem_id", "score", "prompt_tokens", "completion_tokens"]].assign(
        strategy="single", budget=1, calls=1.0, latency_s=0.1, cost_usd=0.0, error=None,
        verifier=None, estimator="direct", run="single", flops=np.nan,
        sequential_tokens=first["prompt_tokens"] + first["completion_tokens"],
    )  # fmt: skip
    attempts = pd.concat([majority, single], ignore_index=True)
    return attempts, pd.concat([calls.assign(run="mv"), first], ignore_index=True)


def _old_p_best(single: np.ndarray, majority: np.ndarray) -> float:
    """P(best) of `single` as ttcbench reported it before: sample 0 against majority@1,
    problems resampled, samples not."""
    means = bootstrap_means(np.column_stack([single, majority]), n_resamples=1000, seed=0)
    return float(np.mean(np.argmax(means, axis=1) == 0))


def test_lucky_single_is_not_crowned() -> None:
    calls = _pool_calls()
    attempts, all_calls = _runs(calls)
    raw_single = attempts.loc[attempts["strategy"] == "single", "score"].to_numpy()
    one = attempts[(attempts["strategy"] == "majority_vote") & (attempts["budget"] == 1)]
    before = _old_p_best(raw_single, one["score"].to_numpy())
    assert raw_single.mean() > one["score"].mean() + 0.15  # a lucky draw: 0.567 vs 0.229
    assert before > 0.9  # and the old report crowned it: P(best) 0.999 (now 0.5, a tie)

    linked, notes = link_pools(attempts, all_calls)
    labelled = linked.assign(strategy=series_labels(linked.assign(model="m")), verifier=None)
    levels = strategy_levels(labelled, calls=all_calls, n_resamples=1000)
    front = frontier(levels)
    at_one = levels[levels["compute"] == levels["compute"].min()].set_index("strategy")
    print(
        f"before: single {raw_single.mean():.3f} vs majority@1 {one['score'].mean():.3f}, "
        f"P(best single) {before:.3f}; after: single {at_one.loc['single', 'accuracy']:.3f}, "
        f"P(best single) {at_one.loc['single', 'p_best']:.3f}"
    )
    assert at_one.loc["single", "p_best"] < 0.9
    assert at_one.loc["single", "accuracy"] == pytest.approx(
        at_one.loc["majority_vote", "accuracy"], abs=1e-12
    )
    assert not ((front["best_strategy"] == "single") & (front["p_best"] >= 0.9)).any()
    assert any("per-sample accuracy of the 8-sample pool" in note for note in notes)


def test_single_equals_majority_at_one_on_the_same_pool(tmp_path: Path) -> None:
    attempts, all_calls = _runs(_pool_calls(seed=3))
    for run in ("mv", "single"):
        folder = tmp_path / run
        folder.mkdir()
        attempts[attempts["run"] == run].drop(columns="run").to_parquet(folder / "attempts.parquet")
        all_calls[all_calls["run"] == run].drop(columns="run").to_parquet(folder / "calls.parquet")
        (folder / "config.yaml").write_text(yaml.safe_dump({"model": {"name": "m"}}))
    runs = load([tmp_path])
    frame = runs.attempts
    single = frame[frame["strategy"] == "single"].set_index("problem_id")
    one = frame[(frame["strategy"] == "majority_vote") & (frame["budget"] == 1)]
    one = one.set_index("problem_id").loc[single.index]
    np.testing.assert_allclose(single["score"], one["score"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        single["completion_tokens"], one["completion_tokens"], rtol=0, atol=1e-9
    )
    assert (single["estimator"] == POOLED).all() and (single["pool_n"] == POOL).all()
    assert "single" in set(summarize(frame)["strategy"])
    # Alone, single is one draw per problem, and says so (as the run's own summary.csv does).
    alone = load([tmp_path / "single"])
    assert set(summarize(alone.attempts)["strategy"]) == {"single (1 draw)"}
    assert any("single (1 draw)" in note for note in alone.notes)


def test_frontier_never_goes_down() -> None:
    # "cheap" is good at low compute; "dear" is measured only above it, and worse.
    rng = np.random.default_rng(0)
    rows = [
        {"problem_id": f"p{i}", "strategy": name, "budget": b, "score": float(rng.random() < acc),
         "prompt_tokens": 0.0, "completion_tokens": tokens, "error": None}
        for name, b, acc, tokens in [("cheap", 1, 0.6, 100.0), ("dear", 1, 0.3, 400.0),
                                     ("dear", 2, 0.4, 800.0)]
        for i in range(200)
    ]  # fmt: skip
    levels = strategy_levels(pd.DataFrame(rows), n_resamples=300)
    front = frontier(levels).sort_values("compute")
    assert (np.diff(front["accuracy"]) >= 0).all()
    assert list(front["best_strategy"]) == ["cheap"] * 3
    assert list(front["reached_at"]) == [100.0] * 3
    assert (front["ci_low"] <= front["accuracy"]).all()
    assert (front["accuracy"] <= front["ci_high"]).all()


def test_pool_noise_shares_draws_and_is_centred() -> None:
    calls = _pool_calls(seed=5)
    index = pd.MultiIndex.from_frame(calls[["task", "problem_id"]].drop_duplicates())
    sample = pool_noise(calls, index, "sample_mean", [1], n_resamples=400)
    vote = pool_noise(calls, index, "majority", [1, 2, 8], n_resamples=400)
    np.testing.assert_array_equal(sample[:, :, 0], vote[:, :, 0])  # single moves with maj@1
    assert np.abs(vote.mean(axis=0)).max() < 1e-12
    assert (vote.std(axis=0)[:, 2] > 0).any()
    # Unresampled, the vote re-scorer is the exact estimator of `pool_estimates`.
    sizes, means, voter, n = _vote_groups(calls, index)
    exact = _rescore("majority", sizes[None].astype(np.int64), means, voter, n, [1, 2, 4, 8])[0]
    table = pool_estimates(calls, [1, 2, 4, 8], estimators=("majority",))
    wide = table.pivot(index=["task", "problem_id"], columns="budget", values="score")
    np.testing.assert_allclose(exact, wide.loc[index].to_numpy(), atol=1e-12)
