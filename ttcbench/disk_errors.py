"""A results folder that cannot be written, as one line naming the path and the fix.

Two moments: before anything is written (`check_writable`: a read-only or forbidden
`results_dir` is refused before the first request, and before Hydra makes the run folder),
and mid-run (`storage_errors`: a full disk). The store commits one transaction per call, so
a write that fails for lack of space loses only that call: what is stored stays readable
and the same command resumes once there is space.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ttcbench.types import TtcbenchError

REASONS = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied"}
FULL = (errno.ENOSPC, errno.EDQUOT)


class StorageError(TtcbenchError):
    """The run folder or the cache cannot be written (read-only, forbidden, disk full)."""


def nearest_existing(path: Path) -> Path:
    """`path` or its closest existing ancestor: where a new folder would be made."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(*paths: Path) -> None:
    """Refuse, before any request, a run folder or cache whose file system is read-only or
    forbids us (checked on the nearest existing folder, so nothing is created)."""
    for path in paths:
        existing = nearest_existing(path)
        if not os.access(existing, os.W_OK):
            reason = "read-only file system" if read_only(existing) else "permission denied"
            raise StorageError(
                f"cannot write {path}: {existing} is not writable ({reason}); "
                "pass results_dir=<a writable folder> (and TTCBENCH_CACHE for the cache)"
            )


def read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def fullest(paths: list[Path]) -> Path:
    """Of the folders a job writes, the one with least free space (the full one)."""

    def free(path: Path) -> int:
        try:
            return shutil.disk_usage(nearest_existing(path)).free
        except OSError:
            return 1 << 62

    return min(paths, key=free)


def stored_calls(store: Path) -> int | None:
    """Calls already safe in a run store (read-only, so it works on a full disk)."""
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
    except sqlite3.Error:
        return None


def describe(err: Exception, run_dir: Path, cache: Path | None) -> str | None:
    """The one-line message for a storage failure, or None when `err` is something else."""
    message = str(err).lower()
    if isinstance(err, OSError) and err.errno in FULL or "disk is full" in message:
        where = Path(err.filename) if isinstance(err, OSError) and err.filename else None
        where = where or fullest([run_dir, *([cache.parent] if cache else [])])
        count = stored_calls(run_dir / "store.sqlite")
        kept = f"the {count} calls stored so far are kept" if count is not None else ""
        return (
            f"no space left on the device holding {where}; {kept or 'what is stored is kept'}: "
            "free space (or pass results_dir=<a folder with space>) and re-run the same "
            "command to resume"
        )
    ours = [run_dir, *([cache.parent] if cache else [])]
    if isinstance(err, OSError) and err.errno in REASONS and within(err.filename, ours):
        return (
            f"cannot write {err.filename or run_dir}: {REASONS[err.errno]}; "
            "pass results_dir=<a writable folder>"
        )
    if isinstance(err, sqlite3.OperationalError) and (
        "readonly" in message or "unable to open" in message
    ):
        return (
            f"cannot write the run store in {run_dir} or the cache {cache}: {err}; "
            "pass results_dir=<a writable folder>"
        )
    return None


def within(filename: object, folders: list[Path]) -> bool:
    """Whether a failed path is one of ours (a forbidden data file is not a results error)."""
    if not filename:
        return False
    path = Path(str(filename)).absolute()
    return any(path.is_relative_to(folder.absolute()) for folder in folders)


@contextmanager
def storage_errors(run_dir: Path, cache: Path | None) -> Iterator[None]:
    """Turn a read-only, forbidden or full disk met while running into one StorageError."""
    try:
        yield
    except (OSError, sqlite3.Error) as err:
        message = describe(err, run_dir, cache)
        if message is None:
            raise
        raise StorageError(message) from err
