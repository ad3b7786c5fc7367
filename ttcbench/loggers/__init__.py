"""Run loggers: mirror a job's samples, curve, summary and files to an experiment tracker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["LOGGER_KINDS", "NullLogger", "RunLogger", "make_logger"]

LOGGER_KINDS: tuple[str, ...] = ("none", "wandb")
"""Values accepted by `make_logger` (the `logger=` config choice)."""


@runtime_checkable
class RunLogger(Protocol):
    """What the runner calls to mirror one job to a tracker.

    Implementations must never raise from these methods: the local sample store is the
    source of truth, so a tracker failure is reported and then ignored.
    """

    def log_samples(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Record a small batch of per-call sample rows (called many times per job)."""
        ...

    def log_curve(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Record the accuracy-vs-compute curve, one mapping per budget."""
        ...

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        """Record the job's final summary numbers."""
        ...

    def log_files(self, paths: Sequence[Path]) -> None:
        """Attach files: `.png` plots as images, anything else as a saved file."""
        ...

    def finish(self) -> None:
        """Flush whatever is buffered and close the tracker run."""
        ...


class NullLogger:
    """The `logger=none` choice: every method is a no-op, so the runner needs no branches."""

    def log_samples(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Ignore the rows."""

    def log_curve(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Ignore the curve."""

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        """Ignore the summary."""

    def log_files(self, paths: Sequence[Path]) -> None:
        """Ignore the files."""

    def finish(self) -> None:
        """Nothing to close."""


def make_logger(kind: str, **kwargs: Any) -> RunLogger:
    """Build the logger named by `kind`, passing `kwargs` to its constructor.

    The runner passes the same keyword arguments whatever the kind, so `none` accepts and
    drops them. W&B starts on a thread of its own (`BackgroundLogger`): importing wandb and
    `wandb.init` cost ~1.5 s, which the job's first request should not wait for (and which a
    `logger=none` job never pays).
    """
    if kind == "none":
        return NullLogger()
    if kind == "wandb":
        from ttcbench.loggers.background import BackgroundLogger

        def start() -> RunLogger:
            from ttcbench.loggers.wandb_logger import WandbLogger

            return WandbLogger(**kwargs)

        return BackgroundLogger(start, name="wandb")
    valid = ", ".join(repr(k) for k in LOGGER_KINDS)
    raise ValueError(f"unknown logger kind {kind!r}; valid kinds are {valid}")
