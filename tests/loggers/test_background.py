"""W&B starts on a thread of its own (ttcbench/loggers/background.py): what the job logs before
the tracker is up is queued and reaches the real offline W&B files in order, a tracker that
fails to start or raises later costs the job nothing, and `finish` returns only once the
tracker is closed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import wandb
from wandbfiles import items, offline_run, records_by_type, sample_rows

from ttcbench.loggers import RunLogger, make_logger
from ttcbench.loggers.background import BackgroundLogger


def rows(start: int, count: int) -> list[dict[str, Any]]:
    return [{"problem_id": f"p{i}", "sample_index": i} for i in range(start, start + count)]


def test_samples_logged_before_wandb_is_up_all_reach_its_files_in_order(tmp_path: Path) -> None:
    logger = make_logger(
        "wandb", project="p", group=None, name="job", config={"a": 1}, run_dir=tmp_path,
        chunk_rows=4,
    )  # fmt: skip
    assert isinstance(logger, BackgroundLogger)
    for i in range(10):  # at once: W&B is still starting (its service takes a second or more)
        logger.log_samples(rows(i, 1))
    logger.log_summary({"accuracy": 0.5})
    logger.finish()  # returns once the run is closed: its files are complete
    assert not logger.failed
    wandb.teardown()
    assert [r["sample_index"] for r in sample_rows(tmp_path)] == list(range(10))
    (log,) = offline_run(tmp_path).glob("run-*.wandb")
    summary: dict[str, Any] = {}
    for record in records_by_type(log)["summary"]:
        summary.update(items(record.summary.update))
    assert summary["accuracy"] == 0.5


class Recorder:
    """A tracker that records the calls it gets and the thread they came on."""

    def __init__(self, fail_on: str = "") -> None:
        self.calls: list[tuple[str, Any]] = []
        self.threads: set[str] = set()
        self.fail_on = fail_on

    def _record(self, method: str, value: Any) -> None:
        self.threads.add(threading.current_thread().name)
        if method == self.fail_on:
            raise RuntimeError(f"{method} broke")
        self.calls.append((method, value))

    def log_samples(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self._record("samples", [r["sample_index"] for r in rows])

    def log_curve(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self._record("curve", len(rows))

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        self._record("summary", dict(summary))

    def log_files(self, paths: Sequence[Path]) -> None:
        self._record("files", list(paths))

    def finish(self) -> None:
        self._record("finish", None)


def test_calls_made_while_the_tracker_starts_are_replayed_in_order_off_the_caller_thread() -> None:
    release = threading.Event()
    recorder = Recorder()

    def start() -> RunLogger:
        release.wait(10)  # still starting while every call below is made
        return recorder

    logger = BackgroundLogger(start, max_rows=1_000)
    for i in range(300):
        logger.log_samples(rows(i, 1))
    logger.log_curve([{"budget": 1}])
    logger.log_summary({"x": 1})
    assert recorder.calls == []  # nothing fed yet: all queued
    release.set()
    logger.finish()
    assert recorder.calls[:300] == [("samples", [i]) for i in range(300)]
    assert recorder.calls[300:] == [("curve", 1), ("summary", {"x": 1}), ("finish", None)]
    assert recorder.threads == {"ttcbench-tracker"}
    logger.log_samples(rows(0, 1))  # after finish: ignored, as by a finished tracker
    logger.finish()
    assert len(recorder.calls) == 303


def test_the_queue_is_bounded_in_rows_while_the_tracker_starts() -> None:
    release = threading.Event()
    recorder = Recorder()

    def start() -> RunLogger:
        release.wait(10)
        return recorder

    logger = BackgroundLogger(start, max_rows=5)
    done = threading.Event()

    def feed() -> None:
        logger.log_samples(rows(0, 3))
        logger.log_samples(rows(3, 3))  # 6 rows > 5: waits for the tracker
        done.set()

    threading.Thread(target=feed, daemon=True).start()
    assert not done.wait(0.5)
    release.set()
    assert done.wait(10)
    logger.log_samples(rows(6, 20))  # one call above the bound still goes through
    logger.finish()
    assert [c[1] for c in recorder.calls[:3]] == [[0, 1, 2], [3, 4, 5], list(range(6, 26))]


def test_a_tracker_that_fails_to_start_warns_once_and_the_job_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def start() -> RunLogger:
        raise ValueError("chunk_rows must be in 1..10000, got 0")

    logger = BackgroundLogger(start)
    with caplog.at_level(logging.WARNING, logger="ttcbench"):
        logger.log_samples(rows(0, 2))
        logger.log_curve([{"budget": 1}])
        logger.fail()
    assert logger.failed
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "tracker disabled: starting it failed (ValueError: chunk_rows must be" in warning


def test_a_tracker_method_that_raises_disables_it_and_the_rest_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder(fail_on="curve")
    logger = BackgroundLogger(lambda: recorder)
    with caplog.at_level(logging.WARNING, logger="ttcbench"):
        logger.log_samples(rows(0, 1))
        logger.log_curve([{"budget": 1}])
        logger.log_summary({"x": 1})
        logger.finish()
    assert recorder.calls == [("samples", [0])] and logger.failed
    assert "log_curve failed (RuntimeError: curve broke)" in caplog.text


def test_fail_closes_a_tracker_without_fail_by_finishing_it() -> None:
    recorder = Recorder()
    logger = BackgroundLogger(lambda: recorder)
    logger.fail()
    assert recorder.calls == [("finish", None)] and not logger.failed
