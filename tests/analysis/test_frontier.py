"""Frontier: best strategy per class and compute, the value of allocation, FLOPs matching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ttcbench.analysis.frontier import (
    allocation_value,
    frontier,
    interpolation_weights,
    strategy_levels,
)
from ttcbench.analysis.matched import flops_matched, load_runs


def _curve(strategy: str, cls: str, accuracy: list[float], tokens: float, problems: int = 200,
           model: str = "m", params_b: float = 1.0, seed: int = 0) -> list[dict]:  # fmt: skip
    """Bernoulli attempts at budgets 1, 2, 4, ... with the given accuracy per budget."""
    rng = np.random.default_rng(seed)
    return [
        {"problem_id": f"{cls}{i}", "strategy": strategy, "budget": 2**j, "model": model,
         "score": float(rng.random() < acc), "prompt_tokens": 0.0,
         "completion_tokens": tokens * 2**j, "flops": 2e9 * params_b * tokens * 2**j,
         "error": None, "class_kind": cls}
        for j, acc in enumerate(accuracy) for i in range(problems)
    ]  # fmt: skip


def _two_classes() -> pd.DataFrame:
    # "vote" wins on the easy class, "search" on the hard one, at the same compute points.
    rows = (
        _curve("vote", "easy", [0.6, 0.8, 0.9, 0.95], 100, seed=1)
        + _curve("search", "easy", [0.6, 0.65, 0.7, 0.72], 100, seed=2)
        + _curve("vote", "hard", [0.2, 0.22, 0.23, 0.24], 100, seed=3)
        + _curve("search", "hard", [0.2, 0.35, 0.5, 0.6], 100, seed=4)
    )
    return pd.DataFrame(rows)


def test_interpolation_weights() -> None:
    xs = np.array([1.0, 2.0, 4.0])
    weights = interpolation_weights(xs, np.array([1.0, 1.5, 3.0, 4.0, 5.0]))
    np.testing.assert_allclose(weights[:, :4], [[1, 0.5, 0, 0], [0, 0.5, 0.5, 0], [0, 0, 0.5, 1]])
    assert np.isnan(weights[:, 4]).all()  # beyond the measured compute: no value


def test_best_strategy_per_class_with_overlap() -> None:
    levels = strategy_levels(_two_classes(), by=["class_kind"], n_resamples=300)
    best = frontier(levels, by=["class_kind"]).set_index(["class_kind", "compute"])
    assert best.loc[("easy", 800.0), "best_strategy"] == "vote"
    assert best.loc[("hard", 800.0), "best_strategy"] == "search"
    assert best.loc[("hard", 800.0), "p_best"] > 0.99
    assert best.loc[("hard", 800.0), "overlapping"] == ""
    # At budget 1 both strategies are one sample of the same quality: intervals overlap.
    assert best.loc[("easy", 100.0), "overlapping"] != ""
    assert (best["strategies"] == 2).all()


def test_adaptive_allocation_beats_any_single_strategy() -> None:
    value = allocation_value(_two_classes(), ["class_kind"], n_resamples=300).set_index("compute")
    top = value.loc[800.0]
    assert top["allocation"] == "easy=vote; hard=search"
    assert top["gain"] > 0.05 and top["gain_low"] > 0.0  # expected 0.115: (0.95 + 0.6) / 2 - 0.66
    assert top["oracle_accuracy"] == pytest.approx(top["single_accuracy"] + top["gain"])
    same = pd.DataFrame(_curve("vote", "a", [0.3, 0.5, 0.6, 0.7], 100, seed=5)
                        + _curve("vote", "b", [0.1, 0.2, 0.3, 0.4], 100, seed=6))  # fmt: skip
    assert (allocation_value(same, ["class_kind"], n_resamples=100)["gain"] == 0.0).all()


def test_small_model_with_samples_vs_large_model_at_matched_flops(tmp_path: Path) -> None:
    # Small (1B) model: budgets 1..16 at 100 tokens each. Large (8B) model: one sample.
    small = _curve("majority_vote", "all", [0.3, 0.4, 0.5, 0.55, 0.58], 100, params_b=1.0)
    large = _curve("single", "all", [0.45], 100, model="big", params_b=8.0, seed=9)
    for name, rows in (("small", small), ("big", large)):
        folder = tmp_path / name
        folder.mkdir()
        frame = pd.DataFrame(rows).drop(columns=["model"])
        frame.to_parquet(folder / "attempts.parquet")
        (folder / "config.yaml").write_text(
            yaml.safe_dump({"model": {"name": name, "params_b": 1}})
        )
    attempts = load_runs([tmp_path / "small", tmp_path / "big"])
    assert set(attempts["model"]) == {"small", "big"}
    row = flops_matched(attempts, small="small", large="big", n_resamples=300).iloc[0]
    # 8x the FLOPs of one small sample: the small model's budget 8 (accuracy ~0.55).
    assert row["flops"] == pytest.approx(2e9 * 8 * 100)
    assert row["in_range"] and row["small_accuracy"] == pytest.approx(0.55, abs=0.06)
    assert row["diff_low"] <= row["diff"] <= row["diff_high"]
    huge = pd.DataFrame(_curve("single", "all", [0.7], 100, model="huge", params_b=64.0))
    beyond = flops_matched(pd.concat([attempts, huge]), small="small", large="huge").iloc[0]
    assert not beyond["in_range"] and np.isnan(beyond["small_accuracy"])
    with pytest.raises(ValueError, match="model"):
        flops_matched(attempts.drop(columns=["model"]), small="small", large="big")


def test_tied_strategies_share_p_best() -> None:
    # Two names for one estimate (single and majority@1 of one pool): neither is "the best".
    rows = pd.DataFrame(_curve("a", "all", [0.4], 100, seed=3))
    levels = strategy_levels(pd.concat([rows, rows.assign(strategy="b")]), n_resamples=200)
    assert levels["p_best"].tolist() == [0.5, 0.5]
    assert frontier(levels).loc[0, "overlapping"] in ("a", "b")
