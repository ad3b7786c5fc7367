"""One writer per run folder: an exclusive `flock` on a lock file inside the folder.

Two processes on one run folder would both request every missing sample (paying twice) and
race on its records, so the second one stops at once and names the first. The lock is a
kernel `flock`, held for the job's life: the kernel releases it when its holder exits, even
after `kill -9`, so a stale lock is taken over without guessing from pids or timestamps. The
holder's pid, host and start time are written into the file only to name it in the refusal.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ttcbench.types import RunFolderBusy

LOCK_NAME = ".ttcbench.lock"
"""The lock file's name inside a run folder (kept after release: deleting a flock'd file
lets a third process lock a fresh inode while a second still holds the old one)."""


class RunLock:
    """An exclusive lock on one run folder; use it as a context manager.

    `acquire` raises `RunFolderBusy` (exit status 5) naming the holder when another process
    holds it; it never waits, since the other job may run for hours.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> RunLock:
        """Take the lock (creating the run folder) or raise `RunFolderBusy`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 (held open for the job's life)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read()
            handle.close()
            raise RunFolderBusy(busy_message(self.path.parent, holder)) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder_info()) + "\n")
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        """Drop the lock (closing the file releases the flock); a no-op when not held."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def holder_info() -> dict[str, Any]:
    """Who holds the lock: enough for a user to find the process (and kill it)."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime()),
    }


def busy_message(run_dir: Path, holder_text: str) -> str:
    """The refusal line: which process holds the folder, and what to do."""
    try:
        holder = json.loads(holder_text)
        who = f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (ValueError, KeyError, TypeError):  # the holder is between open and write
        who = "another process (it is starting)"
    return (
        f"{run_dir} is in use by {who}: one process per run folder. Wait for it to "
        "finish (re-running then resumes), or stop it first"
    )
