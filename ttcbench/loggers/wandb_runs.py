"""One W&B run per run folder: its id is kept in the folder, so a re-run resumes it.

Without a stored id every re-run (a resume after Ctrl-C, a crash, a retry of errors) would
start another W&B run, and `wandb sync` would upload each as a separate, partial copy. An
offline run cannot continue its old files (wandb writes each `wandb.init` to a fresh
`offline-run-<time>-<id>` folder even when resuming the id), so the job replays what the
store holds into the new folder first, and once the job has finished, the older folders of
the same id (which hold nothing the store does not) are removed: one folder to sync, holding
the whole run. A job that fails keeps them, so a finished run's summary is never lost to a
failed re-run.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from datetime import datetime
from pathlib import Path

ID_FILE = "wandb_run_id"
"""The file, in the run folder, holding the folder's W&B run id."""
_VALID_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def folder_run_id(run_dir: Path) -> str:
    """The run folder's W&B run id, created (and stored) on its first run."""
    path = Path(run_dir) / ID_FILE
    if path.is_file():
        stored = path.read_text().strip()
        if _VALID_ID.match(stored):
            return stored
    run_id = uuid.uuid4().hex[:16]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_id + "\n")
    return run_id


def offline_folders(wandb_dir: Path, run_id: str) -> list[Path]:
    """The offline folders of `run_id`: offline-run-<date>_<time>-<id>, which wandb suffixes
    with -<n> when one of that name exists (online runs' local folders are not listed)."""
    name = re.compile(rf"^offline-run-\d{{8}}_\d{{6}}-{re.escape(run_id)}(-\d+)?$")
    folders = Path(wandb_dir).glob("offline-run-*")
    return sorted(p for p in folders if name.match(p.name) and p.is_dir())


def wait_for_a_fresh_name(wandb_dir: Path, run_id: str, limit_s: float = 2.0) -> None:
    """Wait (at most a second, only for a re-run within the same second) until the new
    offline folder's name is free: for a taken name wandb 0.31 writes the run's files to
    `<name>-1` but its transaction log to `<name>`, the old folder."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        if not (Path(wandb_dir) / f"offline-run-{stamp}-{run_id}").exists():
            return
        time.sleep(0.05)


def remove_superseded(folders: list[Path]) -> None:
    """Remove the offline folders a finished job's complete folder supersedes."""
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
