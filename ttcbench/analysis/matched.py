"""Small model with test-time compute vs a larger model's single sample, at equal FLOPs.

Attempts carry no model column (a run is one model), so `load_runs` reads run folders and
adds `model` and `params_b` from each run's config.yaml. `flops_matched` then asks, per
class and strategy: spending the FLOPs of one sample of the large model on the small model
(read off its curve at exactly those FLOPs per problem), which is more accurate?
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ttcbench.analysis.bootstrap import paired_bootstrap_diff
from ttcbench.analysis.curves import groups, problem_index
from ttcbench.analysis.frontier import _classes, _read_levels, per_problem_levels
from ttcbench.analysis.noise import within_noise

MATCHED_COLUMNS = [
    "small_model", "large_model", "strategy", "flops", "problems", "small_accuracy",
    "large_accuracy", "diff", "diff_low", "diff_high", "in_range",
]  # fmt: skip


def load_runs(run_dirs: Iterable[Path | str]) -> pd.DataFrame:
    """The attempts of several run folders in one frame, with `model`, `params_b` and
    `run_dir` columns from each run's config.yaml (attempts.parquet as exported)."""
    frames = []
    for run_dir in map(Path, run_dirs):
        config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
        model = config.get("model") or {}
        frame = pd.read_parquet(run_dir / "attempts.parquet")
        frames.append(
            frame.assign(
                model=model.get("name", run_dir.name),
                params_b=model.get("params_b"),
                run_dir=str(run_dir),
            )
        )
    if not frames:
        raise ValueError("no run folders given")
    return pd.concat(frames, ignore_index=True)


def _large_single(large: pd.DataFrame, strategy: str | None) -> pd.DataFrame:
    """The large model's budget-1 attempts: `strategy`, else `single`, else majority_vote's
    budget 1 (the expected score of one sample of its pool)."""
    ones = large[large["budget"] == 1]
    present = set(ones["strategy"])
    name = strategy or next((s for s in ("single", "majority_vote") if s in present), None)
    if name is None or name not in present:
        raise ValueError(
            f"no budget-1 attempts for the large model's {name or 'single'} "
            f"strategy; pass large_strategy= one of {sorted(present)}"
        )
    return ones[ones["strategy"] == name]


def flops_matched(
    attempts: pd.DataFrame,
    *,
    small: str,
    large: str,
    by: Sequence[str] = (),
    large_strategy: str | None = None,
    level: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    calls: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per (*by, small-model strategy): the small model's accuracy at the large model's
    single-sample FLOPs per problem vs the large model's accuracy, paired over the problems
    both answered. `in_range` is False (and accuracies NaN) when the small model's curve was
    not measured up to those FLOPs: no extrapolation. The difference's interval is two-level
    (problems and samples, `frontier.noise.within_noise`; `calls` resamples linked pools).
    Columns: *by, MATCHED_COLUMNS.
    """
    if "model" not in attempts:
        raise ValueError("attempts need a `model` column: build them with load_runs(run_dirs)")
    rows = []
    for labels, class_rows in _classes(attempts, by):
        big = _large_single(class_rows[class_rows["model"] == large], large_strategy)
        index = problem_index(big)
        large_scores = pd.to_numeric(big["score"], errors="coerce").mask(big["error"].notna())
        flops = float(pd.to_numeric(big["flops"], errors="coerce").mean())
        if np.isnan(flops):
            raise ValueError(f"the large model {large!r} has no flops: set its model.params_b")
        large_noise = _noise(big, calls, index, "flops", np.zeros(1), n_resamples, seed)
        for strategy, g in groups(class_rows[class_rows["model"] == small]):
            at = np.array([np.log2(flops)])
            per, _ = per_problem_levels(g, "flops", index, at)
            noise = _noise(g, calls, index, "flops", at, n_resamples, seed) - large_noise
            rows.append(
                {
                    **labels,
                    **_compare(
                        per[:, 0],
                        large_scores.to_numpy(float),
                        small,
                        large,
                        strategy["strategy"],
                        flops,
                        level,
                        n_resamples,
                        seed,
                        noise,
                    ),
                }
            )
    return pd.DataFrame(rows, columns=[*by, *MATCHED_COLUMNS])


def _noise(group, calls, index, x, at, n_resamples, seed) -> np.ndarray:
    """Within-problem noise (replicates x problems) of `group` read at log2 compute `at`, or
    at its only budget when `at` is zeros(1) (the large model's budget 1)."""
    per, _, used, (budgets, scores) = _read_levels(group, x, index, None if not at.any() else at)
    within = within_noise(group, calls, index, budgets, scores, n_resamples=n_resamples,
                          seed=seed + 1)  # fmt: skip
    if within is None:
        return np.zeros((n_resamples, len(index)))
    return (np.nan_to_num(within) @ used)[:, :, 0]


def _compare(
    small_scores, large_scores, small, large, strategy, flops, level, n_resamples, seed, noise
):
    """One matched row: means over problems both sides scored, and the paired interval."""
    both = ~(np.isnan(small_scores) | np.isnan(large_scores))
    row = {
        "small_model": small,
        "large_model": large,
        "strategy": strategy,
        "flops": flops,
        "problems": int(both.sum()),
        "in_range": bool(both.any()),
    }
    if not both.any():
        return {**row, **dict.fromkeys(MATCHED_COLUMNS[5:10], np.nan)}
    diff, low, high = paired_bootstrap_diff(
        small_scores[both],
        large_scores[both],
        level=level,
        n_resamples=n_resamples,
        seed=seed,
        noise=noise[:, both] if noise.any() else None,
    )
    return {
        **row,
        "small_accuracy": float(small_scores[both].mean()),
        "large_accuracy": float(large_scores[both].mean()),
        "diff": diff,
        "diff_low": low,
        "diff_high": high,
    }
