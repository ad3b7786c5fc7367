"""A run logger started and fed on a thread of its own, so sampling never waits for it.

Starting W&B costs ~1.5 s before its first record (import, `wandb.init`, its service process),
and each chunk of samples it writes costs the event loop time. Here the tracker is built on a
worker thread while the job goes on to its first request; every call made meanwhile is queued
and replayed in order once the tracker is up, so nothing is lost, and later calls keep going
through the queue so W&B's writes stay off the sampling thread. `finish` (or `fail`) waits for
the queue to drain and the tracker to close, so the job ends only once its W&B files are whole.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ttcbench.loggers import NullLogger, RunLogger

_log = logging.getLogger("ttcbench")

_STOP = ("", ())
"""The queue item after the last call: the worker returns."""


class BackgroundLogger:
    """A `RunLogger` whose tracker is built by `start` and fed on a worker thread.

    The methods only queue (the rows and mappings passed must not be changed afterwards:
    the job builds fresh ones for each call). A `start` that raises leaves a no-op tracker,
    a warning and `failed` set, as any tracker failure does: the store is the source of truth.
    """

    def __init__(
        self, start: Callable[[], RunLogger], name: str = "tracker", max_rows: int = 20_000
    ) -> None:
        self._calls: queue.SimpleQueue[tuple[str, tuple[Any, ...]]] = queue.SimpleQueue()
        # Sample rows queued and not yet fed: a resumed job replays its whole store at once,
        # so past `max_rows` the caller waits for the tracker (memory stays bounded).
        self._rows, self._max_rows = threading.Semaphore(max_rows), max_rows
        self._tracker: RunLogger | None = None
        self._failed = False  # or a tracker method raised: fed no more
        # A daemon: a job that dies without finish() must not hang the interpreter's exit.
        self._thread = threading.Thread(
            target=self._work, args=(start,), name=f"ttcbench-{name}", daemon=True
        )
        self._thread.start()

    def _work(self, start: Callable[[], RunLogger]) -> None:
        try:
            self._tracker = start()
        except Exception as exc:  # the job runs on without its tracker
            self._disable("starting it", exc)
        while True:
            method, args = self._calls.get()
            if not method:
                return
            if method == "fail" and not hasattr(self._tracker, "fail"):
                method = "finish"
            action = getattr(self._tracker, method, None)  # `log_report`: where it is shown
            try:
                if action is not None:
                    action(*args)
            except Exception as exc:  # trackers should not raise; if one does, stop feeding it
                self._disable(method, exc)
            if method == "log_samples":
                self._rows.release(min(len(args[0]), self._max_rows))

    def _disable(self, action: str, exc: Exception) -> None:
        _log.warning(
            "tracker disabled: %s failed (%s: %s); the local results are unaffected",
            action, type(exc).__name__, exc,
        )  # fmt: skip
        self._tracker, self._failed = NullLogger(), True

    @property
    def failed(self) -> bool:
        """Whether the tracker failed (its copy is incomplete); final once `finish` returned."""
        return self._failed or bool(getattr(self._tracker, "failed", False))

    def log_samples(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not self._thread.is_alive():  # finished: as a finished tracker, ignore
            return
        for _ in range(min(len(rows), self._max_rows)):
            self._rows.acquire()
        self._calls.put(("log_samples", (rows,)))

    def log_curve(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self._calls.put(("log_curve", (rows,)))

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        self._calls.put(("log_summary", (summary,)))

    def log_files(self, paths: Sequence[Path]) -> None:
        self._calls.put(("log_files", (paths,)))

    def log_report(
        self, figures: Mapping[str, Path], tables: Mapping[str, Any], metrics: Mapping[str, Any]
    ) -> None:
        self._calls.put(("log_report", (figures, tables, metrics)))

    def finish(self) -> None:
        """Replay what is queued, close the tracker and wait until it is closed."""
        self._close("finish")

    def fail(self) -> None:
        """As `finish`, closing the tracker's run as failed where it can say so."""
        self._close("fail")

    def _close(self, method: str) -> None:
        if not self._thread.is_alive():
            return
        self._calls.put((method, ()))
        self._calls.put(_STOP)
        self._thread.join()
