"""One W&B run per run folder: resumed by id across re-runs, started with the job, fed sample
rows as they are stored. Read back from the real offline W&B files (tests/wandbfiles.py)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import wandb
from fakeserver import FakeOpenAI
from wandbfiles import items, records_by_type

import ttcbench
import ttcbench.tracking
from ttcbench.loggers import NullLogger
from ttcbench.loggers.wandb_logger import WandbLogger
from ttcbench.loggers.wandb_runs import ID_FILE


def new_logger(run_dir: Path) -> WandbLogger:
    return WandbLogger(project="p", group=None, name="job", config={"a": 1}, run_dir=run_dir)


def offline_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))


def run_record_id(offline: Path) -> str:
    (log,) = offline.glob("run-*.wandb")
    (run,) = records_by_type(log)["run"]
    return str(run.run.run_id)


def test_a_rerun_continues_the_folders_wandb_run(tmp_path: Path) -> None:
    other = tmp_path / "wandb" / "offline-run-20200101_000000-someoneelse"
    other.mkdir(parents=True)  # another id's folder (e.g. an older ttcbench) is left alone
    for _ in range(2):
        logger = new_logger(tmp_path)
        logger.log_summary({"x": 1})
        logger.finish()
        wandb.teardown()
    run_id = (tmp_path / ID_FILE).read_text().strip()
    ours = [p for p in offline_runs(tmp_path) if p != other]
    assert len(ours) == 1 and f"-{run_id}" in ours[0].name
    assert run_record_id(ours[0]) == run_id and other.is_dir()


def job_args(results: Path, api_base: str, *extra: str) -> list[str]:
    return [
        "name=fixed",
        "model=llamacpp_server",
        f"model.api_base={api_base}",
        "model.name=fake",
        "budget=pow2_4",
        "task.limit=2",
        "cache.enabled=false",
        "logger.chunk_rows=3",
        f"results_dir={results}",
        *extra,
    ]


def table_rows(offline: Path) -> list[dict[str, Any]]:
    """Every sample row of an offline run's chunk tables, in chunk order."""
    (log,) = offline.glob("run-*.wandb")
    history = [items(r.history.item) for r in records_by_type(log).get("history", [])]
    rows = []
    chunks = sorted((h for h in history if "samples_chunk" in h), key=lambda h: h["samples_chunk"])
    for chunk in chunks:
        table = json.loads((offline / "files" / chunk["samples.path"]).read_text())
        rows += [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    return rows


def test_a_resumed_job_writes_one_complete_wandb_run(
    results: Path, fake_openai: FakeOpenAI
) -> None:
    run_dir = ttcbench.run(job_args(results, fake_openai.api_base))
    wandb.teardown()
    (first,) = offline_runs(run_dir)
    assert len(table_rows(first)) == 8
    first_id = run_record_id(first)
    with sqlite3.connect(run_dir / "store.sqlite") as store:
        store.execute("DELETE FROM calls WHERE sample_index >= 2")  # an interrupted run
    fake_openai.outage(600, 401)  # a re-run that fails: the finished run's folder stays
    with pytest.raises(Exception, match="401|API key"):
        ttcbench.run(job_args(results, fake_openai.api_base))
    wandb.teardown()
    assert first in offline_runs(run_dir) and len(offline_runs(run_dir)) == 2
    fake_openai.outage(0)
    failed_requests = len(fake_openai.requests)
    ttcbench.run(job_args(results, fake_openai.api_base))
    wandb.teardown()
    assert len(fake_openai.requests) == failed_requests + 4
    (offline,) = offline_runs(run_dir)  # one folder to `wandb sync`, not one per attempt
    assert offline != first and run_record_id(offline) == first_id
    with sqlite3.connect(run_dir / "store.sqlite") as store:
        stored = sorted(store.execute("SELECT problem_id, sample_index, output FROM calls"))
    rows = table_rows(offline)  # the 4 stored rows replayed, then the 4 new ones as stored
    assert sorted((r["problem_id"], r["sample_index"], r["output"]) for r in rows) == stored
    (log,) = offline.glob("run-*.wandb")
    summary: dict[str, Any] = {}
    for record in records_by_type(log)["summary"]:
        summary.update(items(record.summary.update))
    assert "accuracy/majority_vote" in summary


class Recorder(NullLogger):
    """A tracker that notes, for every batch of samples, how many calls the store held."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.batches: list[tuple[int, int]] = []
        self.events: list[str] = []

    def log_samples(self, rows: Sequence[Mapping[str, Any]]) -> None:
        with sqlite3.connect(self.run_dir / "store.sqlite") as store:
            (count,) = store.execute("SELECT COUNT(*) FROM calls").fetchone()
        self.batches.append((len(rows), count))
        self.events.append("samples")

    def log_curve(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.events.append("curve")

    def finish(self) -> None:
        self.events.append("finish")


def test_samples_reach_the_tracker_while_the_job_samples(
    results: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorders: list[Recorder] = []

    def make(kind: str, *, run_dir: Path, **_: Any) -> Recorder:
        recorders.append(Recorder(run_dir))
        return recorders[-1]

    monkeypatch.setattr(ttcbench.tracking, "make_logger", make)
    ttcbench.run(job_args(results, fake_openai.api_base, "runner.concurrency=1"))
    (recorder,) = recorders  # one tracker for the job, started before sampling
    assert sum(n for n, _ in recorder.batches) == 8
    # Fed while sampling, as calls are committed (never a call the store lacks: a kill could
    # take it back and the resume would feed its replacement too), not all after the run.
    fed = [sum(n for n, _ in recorder.batches[: i + 1]) for i in range(len(recorder.batches))]
    assert all(total <= count for total, (_, count) in zip(fed, recorder.batches, strict=True))
    assert len(recorder.batches) >= 4 and recorder.batches[0][1] < 8
    assert recorder.events[-2:] == ["curve", "finish"]
