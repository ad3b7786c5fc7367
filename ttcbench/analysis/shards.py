"""The shards of one job read back as that one job.

`task.shard=i task.shards=n` splits a job's problems across n runs, each in its own folder
(ttcbench/tasks/registry.py). Analysis must see the job, not n small runs: one series, one
bootstrap over all its problems. So folders whose configs are equal but for `task.shard` are
grouped, and their rows concatenated in the order the store would return them had the job
run unsharded, which makes every number computed from them identical to the unsharded run's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ttcbench.run_names import identity

ORDER = {
    "attempts": ["strategy", "budget", "problem_id"],
    "calls": ["problem_id", "role", "sample_index"],
}
"""The store's row order (store.py `_ORDER`), which a run's frames come in."""


def group_shards(
    runs: list[Path], name: Callable[[Path], str] = str
) -> tuple[list[tuple[str, list[Path]]], list[str]]:
    """`runs` as (label, folders) jobs: the shards of a job are one entry, labelled by its
    first folder's `name` and the shard count; every other folder is an entry of its own. The
    notes name jobs with shards missing (their numbers cover only part of the problems)."""
    groups: dict[str, list[Path]] = {}
    shards: dict[str, int] = {}
    for run in runs:
        config = _config(run)
        task = config.get("task")
        task = task if isinstance(task, dict) else {}
        count = task.get("shards", 1)
        count = count if isinstance(count, int) else 1
        if count <= 1:
            groups[str(run)] = [run]
            continue
        rest = {**config, "task": {k: v for k, v in task.items() if k != "shard"}}
        key = json.dumps(identity(rest), sort_keys=True, default=str)
        groups.setdefault(key, []).append(run)
        shards[key] = count
    jobs, notes = [], []
    for key, folders in groups.items():
        if key not in shards:
            jobs.append((name(folders[0]), folders))
            continue
        label = f"{name(folders[0])} [{len(folders)} of {shards[key]} shards]"
        jobs.append((label, folders))
        if len(folders) < shards[key]:
            notes.append(
                f"{label}: only {len(folders)} of the job's {shards[key]} shards were found, "
                "so its numbers cover part of its problems; run the missing task.shard values."
            )
    return jobs, notes


def merge_shards(frames: list[tuple[pd.DataFrame, pd.DataFrame]]) -> tuple[pd.DataFrame, ...]:
    """(attempts, calls) of a job's shards as one job's, in the store's row order."""
    if len(frames) == 1:
        return frames[0]
    return merge_rows([f[0] for f in frames], "attempts"), merge_rows(
        [f[1] for f in frames], "calls"
    )


def merge_rows(frames: list[pd.DataFrame], kind: str) -> pd.DataFrame:
    """The `kind` ("attempts" or "calls") rows of a job's shards, in the store's row order."""
    parts = [frame for frame in frames if not frame.empty]
    if len(parts) <= 1:
        return parts[0] if parts else frames[0]
    frame = pd.concat(parts, ignore_index=True)
    order = [c for c in ORDER[kind] if c in frame]
    return frame.sort_values(order, kind="stable", ignore_index=True) if order else frame


def _config(run: Path) -> dict[str, Any]:
    path = run / "config.yaml"
    try:
        config = yaml.safe_load(path.read_text()) if path.exists() else {}
    except yaml.YAMLError:
        return {}
    return config if isinstance(config, dict) else {}
