"""The report's input: run folders (or their Parquet exports) read into two frames.

A source is a run folder (store.sqlite, or attempts.parquet as exported or written by
`ttcbench-import`), an attempts.parquet file, or any folder holding run folders (a results
tree, a multirun sweep). Every attempt and call gets `model`, `params_b` and `run` columns,
so runs of several models and strategies sit in one frame the analysis modules group by.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ttcbench.analysis.classes import DIFFICULTY, difficulty_attempts
from ttcbench.analysis.consistency import link_pools
from ttcbench.analysis.curves import compute_values
from ttcbench.analysis.shards import group_shards, merge_shards
from ttcbench.analysis.summary import strategy_labels
from ttcbench.records import read_provenance
from ttcbench.store import SampleStore, flatten_classes
from ttcbench.types import TtcbenchError

AXES = {
    "budget": "budget",
    "calls": "calls",
    "total_tokens": "tokens",
    "tokens": "tokens",
    "sequential_tokens": "sequential_tokens",
    "flops": "flops",
    "cost_usd": "cost_usd",
}
"""Compute axes a report can use (CLI name -> attempts column of `curves.compute_values`)."""
_SKIP = {"wandb", ".hydra", ".cache", "report_figures"}
MAX_VALUES = 12
"""A recorded label with more values than this (an id, a free-text field) is not a view."""


class ReportError(TtcbenchError):
    """Bad report input (no runs, unknown axis, class or reference): the message says the fix."""


@dataclass
class RunSet:
    """Attempts and calls of every run read, with the facts titles and notes need."""

    attempts: pd.DataFrame
    """One row per problem x strategy x budget and run; `class_<label>` columns."""
    calls: pd.DataFrame
    """Every call row read (may be empty: a Parquet export without calls.parquet)."""
    runs: list[Path]
    tasks: list[str]
    models: dict[str, float | None]
    """Model name -> size in billions of parameters (None when the config does not say)."""
    notes: list[str] = field(default_factory=list)
    provenance: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    """Run folder -> its provenance.json (None for a run that has none: an older ttcbench)."""

    @property
    def problems(self) -> int:
        return int(self.attempts[["task", "problem_id"]].drop_duplicates().shape[0])

    @property
    def size(self) -> str:
        """`12 problems` for one run, `3 runs, 2–12 problems` for runs of different sizes."""
        per_run = self.attempts.drop_duplicates(["run", "task", "problem_id"]).groupby("run").size()
        low, high = int(per_run.min()), int(per_run.max())
        problems = f"{low} problems" if low == high else f"{low}–{high} problems"
        return problems if len(per_run) == 1 else f"{len(per_run)} runs, {problems}"


def axis_column(axis: str) -> str:
    """The attempts column behind a compute axis name; ReportError names the valid ones."""
    if axis not in AXES:
        valid = ", ".join(a for a in AXES if a != "tokens")
        raise ReportError(f"unknown compute axis {axis!r}: use one of {valid}")
    return AXES[axis]


def find_runs(sources: Sequence[Path | str]) -> list[Path]:
    """Run folders (or attempts.parquet files) named by `sources`, searched recursively."""
    found: list[Path] = []
    for source in map(Path, sources):
        if not source.exists():
            raise ReportError(f"{source} does not exist: give a run folder or a results folder")
        if in_wandb_copy(source):
            raise ReportError(
                f"{source} is W&B's copy of a run's files: give the run folder that holds "
                "its wandb/ folder instead"
            )
        if source.is_file():
            if source.name not in ("attempts.parquet", "store.sqlite"):
                raise ReportError(
                    f"{source} is not a run: give a run folder, its attempts.parquet or "
                    "store.sqlite"
                )
            found.append(source.parent)
            continue
        markers = [*source.rglob("store.sqlite"), *source.rglob("attempts.parquet")]
        found += [m.parent for m in markers if not _SKIP & set(m.relative_to(source).parts)]
    runs = sorted(set(found))
    if not runs:
        names = ", ".join(map(str, sources)) or "(nothing)"
        raise ReportError(
            f"no runs found in {names}: give a run folder (with store.sqlite or "
            "attempts.parquet) or a folder of run folders, e.g. results/"
        )
    return runs


def in_wandb_copy(path: Path) -> bool:
    """Whether `path` lies in a W&B run's folder (`wandb/run-*`, `wandb/offline-run-*`,
    `wandb/latest-run`): files there are W&B's copies, never a run of their own. A folder
    merely named wandb higher up (a project checkout) does not count."""
    parts = Path(path).absolute().parts
    return any(
        a == "wandb" and b.startswith(("run-", "offline-run-", "latest-run"))
        for a, b in zip(parts, parts[1:], strict=False)
    )


def _read_frames(run: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Attempts and calls of one run: the store when it opens (the source of truth, also for
    a run that never finished), else the Parquet export."""
    if (run / "store.sqlite").exists():
        try:
            store = SampleStore(run / "store.sqlite")
            try:
                return flatten_classes(store.attempts_frame()), flatten_classes(store.calls_frame())
            finally:
                store.close()
        except sqlite3.Error:
            if not (run / "attempts.parquet").exists():
                raise
    calls_path = run / "calls.parquet"
    calls = pd.read_parquet(calls_path) if calls_path.exists() else pd.DataFrame()
    return pd.read_parquet(run / "attempts.parquet"), calls


def _model_of(run: Path, calls: pd.DataFrame) -> tuple[str, float | None]:
    """Model name and size from the run's config.yaml, else the calls' model column."""
    config_path = run / "config.yaml"
    config = yaml.safe_load(config_path.read_text()) if config_path.exists() else {}
    model = (config or {}).get("model") or {}
    if model.get("name"):
        size = model.get("params_b")
        return str(model["name"]), float(size) if size is not None else None
    if "model" in calls and calls["model"].notna().any():
        return str(calls["model"].dropna().iloc[0]), None
    return run.name, None


def load(sources: Sequence[Path | str]) -> RunSet:
    """Read every run of `sources` into one RunSet (see the module docstring). A run whose
    attempts all failed (provider errors) has nothing to plot: it is left out with a note."""
    runs = find_runs(sources)
    attempts, calls = [], []
    models: dict[str, float | None] = {}
    kept: list[Path] = []
    jobs, notes = group_shards(runs)  # a sharded job's folders are read as one run
    for run, folders in jobs:
        run_attempts, run_calls = merge_shards([_read_frames(folder) for folder in folders])
        if run_attempts.empty:
            continue
        if "error" in run_attempts and run_attempts["error"].notna().all():
            notes.append(
                f"Left out {run}: all {len(run_attempts)} of its attempts failed (provider "
                "errors), so it has no accuracy to show; re-run its command to resume it."
            )
            continue
        model, size = _model_of(folders[0], run_calls)
        models[model] = size if size is not None else models.get(model)
        extra = {"model": model, "params_b": size, "run": str(run)}
        attempts.append(run_attempts.assign(**extra))
        kept.extend(folders)
        if not run_calls.empty:
            calls.append(run_calls.assign(**extra))
    if not attempts:
        why = " ".join(notes) or "they hold no attempts yet"
        raise ReportError(f"nothing to report from {', '.join(map(str, runs))}: {why}")
    frame = pd.concat(attempts, ignore_index=True)
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce")
    call_frame = pd.concat(calls, ignore_index=True) if calls else pd.DataFrame()
    tasks = sorted(frame["task"].dropna().astype(str).unique())
    provenance = {str(run): read_provenance(run) for run in kept}
    frame, pooled = link_pools(frame, call_frame)  # single = its pool's per-sample accuracy
    return RunSet(frame, call_frame, kept, tasks, models, notes + pooled, provenance)


def check_axis(attempts: pd.DataFrame, axis: str) -> None:
    """A log2 compute axis needs positive compute on every scored attempt."""
    column = axis_column(axis)
    values = compute_values(attempts, column)
    scored = attempts["error"].isna() if "error" in attempts else np.ones(len(attempts), bool)
    bad = scored & ~(values > 0)
    if bad.any():
        which = ", ".join(sorted(attempts.loc[bad, "strategy"].astype(str).unique()))
        hint = " (set model.params_b for flops)" if column == "flops" else ""
        raise ReportError(
            f"compute axis {axis!r} is zero or unknown for {which}{hint}: "
            "choose another with --x, e.g. --x total_tokens"
        )


def series_labels(attempts: pd.DataFrame) -> pd.Series:
    """Strategy names for the report's series, as in the summary table (`best_of_n[oracle]`):
    the model is prefixed when several models are
    present, and a run folder suffix separates two runs of one model and strategy (e.g. a
    temperature sweep), so two different curves never merge into one."""
    label = strategy_labels(attempts).astype(str)
    if attempts["model"].nunique() > 1:
        label = attempts["model"].astype(str) + ": " + label
    runs_per = attempts.groupby(label)["run"].transform("nunique")
    if (runs_per > 1).any():
        root = Path(*_common_parts([Path(r) for r in attempts["run"].unique()]))
        suffix = attempts["run"].map(lambda r: str(Path(r).relative_to(root)))
        label = label.where(runs_per <= 1, label + " @ " + suffix)
    return label


def _common_parts(paths: list[Path]) -> tuple[str, ...]:
    parts = paths[0].parts
    for path in paths[1:]:
        n = 0
        while n < min(len(parts), len(path.parts)) and parts[n] == path.parts[n]:
            n += 1
        parts = parts[:n]
    return parts


def class_views(attempts: pd.DataFrame, requested: Sequence[str] | None) -> list[str]:
    """Class columns to break results down by: the requested ones, else every recorded label
    with 2..MAX_VALUES values, one per distinct partition (difficulty, terms and digits that
    split the problems identically are one view), plus `task` when several tasks are present."""
    available = [c for c in attempts.columns if c.startswith("class_")]
    if requested is not None:
        chosen = []
        for name in requested:
            column = name if name.startswith("class_") or name == "task" else f"class_{name}"
            if column not in available and column != "task":
                valid = ", ".join(
                    [*(c.removeprefix("class_") for c in available), "model_difficulty"]
                )
                raise ReportError(f"no class {name!r} in these runs: use --by one of {valid}")
            chosen.append(column)
        return chosen
    problems = attempts.drop_duplicates(["task", "problem_id"])
    views: list[str] = []
    seen: set[tuple[int, ...]] = set()
    for column in ["task", *available]:  # task first: a suite's `family` often repeats it
        codes = tuple(pd.factorize(problems[column].astype("string").fillna(""))[0])
        if 2 <= len(set(codes)) <= MAX_VALUES and codes not in seen:
            seen.add(codes)
            views.append(column)
    return views


def pool_calls(calls: pd.DataFrame) -> pd.DataFrame:
    """Each problem's pool of independent samples: successful `generate` calls of its most
    common prompt (a refinement or a step of a search has another prompt), one row per call
    key, so a sample that two runs share through the cache counts once."""
    if calls.empty or "role" not in calls:
        return calls.iloc[0:0]
    ok = calls["error"].isna() if "error" in calls else True
    pool = calls[(calls["role"] == "generate") & ok]
    keys = ["model", "task", "problem_id"]
    pool = pool.drop_duplicates([*keys, "key"]) if "key" in pool else pool
    if "messages_hash" not in pool or pool.empty:
        return pool
    sizes = pool.groupby([*keys, "messages_hash"], dropna=False).size().reset_index(name="n")
    top = sizes.sort_values("n", ascending=False, kind="stable").drop_duplicates(keys)
    return pool.merge(top[[*keys, "messages_hash"]], on=[*keys, "messages_hash"])


def difficulty_view(
    runs: RunSet, pools: pd.DataFrame, bins: int, notes: list[str]
) -> list[tuple[str, pd.DataFrame]]:
    """Model-derived difficulty: bins from odd-position samples, scores from even ones."""
    parts = []
    for model, pool in pools.groupby("model", sort=True):
        half = int(pool.groupby(["task", "problem_id"]).size().max()) // 2
        estimators = _pool_estimators(runs.attempts[runs.attempts["model"] == model])
        if half < 2 or not estimators:
            continue
        budgets = [2**i for i in range(half.bit_length()) if 2**i <= half]
        scored = difficulty_attempts(
            pool, budgets, n_bins=bins, estimators=estimators, params_b=runs.models.get(model)
        )
        prefix = f"{model}: " if len(runs.models) > 1 else ""
        labels = prefix + strategy_labels(scored).astype(str)
        parts.append(scored.assign(strategy=labels, verifier=None))
    if not parts:
        notes.append(
            "No model-derived difficulty: it needs pools of 4 or more samples, and a run of "
            "majority_vote or best_of_n[oracle] (the strategies a pool can score)."
        )
        return []
    notes.append(
        "Model-derived difficulty bins (`model_difficulty` d1 = hardest … "
        f"d{bins} = easiest) come from a disjoint split of each problem's pool: difficulty is "
        "estimated on the samples at odd positions (sample_index order) and accuracy is "
        "scored on the samples at even positions only, so a problem's lucky samples cannot "
        "both put it in an easy bin and score it there. Budgets go up to half the pool."
    )
    return [(DIFFICULTY, pd.concat(parts, ignore_index=True))]


_POOL_ESTIMATORS = {"majority_vote": "majority", "best_of_n[oracle]": "pass_at_k"}
"""Run strategy -> the pool estimator that scores it: the difficulty view shows only these."""


def _pool_estimators(attempts: pd.DataFrame) -> list[str]:
    """Estimators for the strategies these attempts ran, so a report never shows a series
    (e.g. best_of_n[oracle]) that no run used."""
    ran = set(strategy_labels(attempts).astype(str))
    return [estimator for name, estimator in _POOL_ESTIMATORS.items() if name in ran]
