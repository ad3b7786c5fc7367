"""Finding run folders in tests: a folder is `<strategy label>-<budgets>-<config hash>`
(ttcbench/run_names.py), and tests name it by everything but the hash."""

from __future__ import annotations

import re
import time
from pathlib import Path

from ttcbench.run_names import HASH_CHARS


def run_folder(parent: Path, prefix: str) -> Path:
    """The one run folder `<prefix>-<hash>` in `parent` (e.g. prefix `majority_vote-pow2_8`);
    a path that does not exist when there is none."""
    pattern = re.compile(re.escape(prefix) + f"-[0-9a-f]{{{HASH_CHARS}}}")
    found = [p for p in parent.iterdir() if pattern.fullmatch(p.name)] if parent.is_dir() else []
    assert len(found) <= 1, f"several run folders {prefix}-<hash> in {parent}: {found}"
    return found[0] if found else parent / f"{prefix}-<not run>"


def wait_for_run_folder(parent: Path, prefix: str, timeout_s: float = 240) -> Path:
    """`run_folder(parent, prefix)` once a starting job has created it."""
    deadline = time.monotonic() + timeout_s
    while not (folder := run_folder(parent, prefix)).is_dir() and time.monotonic() < deadline:
        time.sleep(0.05)
    return folder
