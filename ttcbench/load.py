"""Loading results is one line: `load("results")` returns every run's calls as one frame.

`ttcbench.load(...)` is the public name (the package exposes this function lazily);
`from ttcbench.load import load` is the same function. docs/schema.md documents the columns.

Sources may be a run folder, a results root, a multirun sweep folder, or several of them:
run folders are found recursively (a folder with store.sqlite or attempts.parquet), each is
read once however many sources name it, and W&B's copies under `wandb/` are never read.
A run's Parquet export is read when present (written when the run finishes), else its store,
read-only (a run still sampling or stopped early), shaped exactly like the export. Each row
gets a `run` column first: the run folder, relative to the working directory when under it.
The calls and attempts of a sharded job (`task.shards`) are one run's, as had it run unsharded.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from ttcbench.analysis.report_data import ReportError, find_runs
from ttcbench.analysis.shards import group_shards, merge_rows
from ttcbench.store import read_exported
from ttcbench.types import TtcbenchError

__all__ = ["LoadError", "load"]

log = logging.getLogger("ttcbench")

What = Literal["calls", "attempts", "summary"]
WHAT: tuple[str, ...] = ("calls", "attempts", "summary")
_RUN_FILES = ("calls.parquet", "attempts.parquet", "store.sqlite", "summary.csv")
"""A source naming one of these files stands for its run folder."""
_KEYS = {"calls": ("task", "problem_id", "key"), "attempts": ("task", "problem_id", "budget")}
"""Columns a file must have to be a ttcbench export (a stray Parquet file has not)."""


class LoadError(TtcbenchError):
    """Nothing loadable where the caller pointed: the message names the path and the fix."""


def load(*paths: str | Path, what: What = "calls") -> pd.DataFrame:
    """Rows of `what` ("calls", "attempts" or "summary", i.e. summary.csv) of every run in
    `paths`, as one frame with a leading `run` column (see the module docstring)."""
    if what not in WHAT:
        raise LoadError(f"what={what!r}: use one of {', '.join(WHAT)}")
    if not paths:
        raise LoadError(
            "no paths given: name a run folder or a results folder, e.g. load('results')"
        )
    jobs, _ = group_shards(_runs(paths), _label)  # a sharded job's folders are one run
    frames = [_read_job(label, folders, what) for label, folders in jobs]
    frame = pd.concat([f for f in frames if len(f)] or frames, ignore_index=True)
    return frame[["run", *(c for c in frame.columns if c != "run")]]


def _runs(paths: Sequence[str | Path]) -> list[Path]:
    """Each run folder once (sorted by path), however many of `paths` reach it."""
    folders = [p.parent if p.is_file() and p.name in _RUN_FILES else p for p in map(Path, paths)]
    try:
        found = find_runs(folders)
    except ReportError as err:
        raise LoadError(str(err)) from None
    unique = {run.resolve(): run for run in reversed(found)}  # first spelling wins
    return sorted(unique.values(), key=lambda run: str(run.resolve()))


def _read_job(label: str, folders: list[Path], what: str) -> pd.DataFrame:
    """One run's rows; the calls or attempts of a sharded job's folders as one run's, in
    store order (ttcbench/analysis/shards.py). A shard's summary.csv keeps its own folder."""
    if what == "summary":
        return pd.concat([_summary(f).assign(run=_label(f)) for f in folders], ignore_index=True)
    return merge_rows([_read(folder, what) for folder in folders], what).assign(run=label)


def _label(run: Path) -> str:
    absolute = run.absolute()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def _read(run: Path, what: str) -> pd.DataFrame:
    if what == "summary":
        return _summary(run)
    parquet, store = run / f"{what}.parquet", run / "store.sqlite"
    if parquet.exists():
        try:
            return _parquet(parquet, what)
        except LoadError as err:
            if not store.exists():
                raise
            log.warning("%s; reading %s instead", err, store)
    if store.exists():
        try:
            return read_exported(store, what)
        except sqlite3.Error as err:
            raise LoadError(
                f"cannot read {store} ({err}): it is not a ttcbench store; move it out of the "
                "results folder, or load the run's Parquet export"
            ) from None
    return pd.DataFrame()  # e.g. an imported run (attempts.parquet) asked for its calls


def _parquet(path: Path, what: str) -> pd.DataFrame:
    """A run's Parquet export, or LoadError for a stray file that is no export."""
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several kinds for a file that is not Parquet
        raise LoadError(
            f"cannot read {path} ({type(err).__name__}): it is not a ttcbench export; move it "
            "out of the results folder, or delete it and re-run the run's command"
        ) from None
    missing = [c for c in _KEYS[what] if c not in frame]
    if missing:
        raise LoadError(
            f"{path} is not a ttcbench {what} export (it lacks {', '.join(missing)}): move "
            "it out of the results folder, or delete it and re-run the run's command"
        )
    return frame


def _summary(run: Path) -> pd.DataFrame:
    path = run / "summary.csv"
    if not path.exists():
        raise LoadError(
            f"{run} has no summary.csv (the run has not finished): re-run its command to "
            "finish it, or load what='attempts'"
        )
    return pd.read_csv(path)
