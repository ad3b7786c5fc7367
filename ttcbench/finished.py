"""Whether a run folder's outputs are up to date, so a rerun that makes no request can skip
rewriting them (summary, plot, exports, report and the W&B run cost seconds; issue 13).

After a job writes its outputs it leaves a stamp: the full config's hash, what the store
holds (counts that change whenever a call is added, retried or fails), and the names of the
files it wrote. A rerun whose config, store counts and files all match has nothing new to
say, so its outputs stay byte-identical; anything else rewrites them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ttcbench.provenance import code_version
from ttcbench.redact import redact
from ttcbench.store import SampleStore

STAMP = "outputs.stamp.json"
"""The stamp's file name in the run folder."""


def store_state(config: dict[str, Any], store: SampleStore) -> dict[str, Any]:
    """What the outputs were computed from: the whole config (a new logger or report option
    must rewrite them too), the code that wrote them (an upgrade may change the report) and
    the store's counts."""
    text = json.dumps(redact(config), sort_keys=True, default=str)
    return {
        "config": hashlib.sha256(text.encode()).hexdigest(),
        "code": code_version(),
        "calls": store.count_calls(),
        "successful": store.count_successful_calls(),
        "failed": store.count_failed_calls(),
        "truncated": list(store.count_truncated()),
        "untrusted": list(store.count_untrusted_grades()),
    }


def write_stamp(
    run_dir: Path, state: dict[str, Any], files: list[Path], markdown: str, errors: int
) -> None:
    """Record that the outputs in `files` reflect `state` (and what the CLI prints)."""
    names = sorted({str(Path(f).relative_to(run_dir)) for f in files if Path(f).exists()})
    stamp = {"state": state, "files": names, "markdown": markdown, "errors": errors}
    (run_dir / STAMP).write_text(json.dumps(stamp, sort_keys=True))


def up_to_date(run_dir: Path, state: dict[str, Any]) -> dict[str, Any] | None:
    """The stamp when the outputs reflect `state` and all still exist, else None."""
    try:
        stamp = json.loads((run_dir / STAMP).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("state") != state:
        return None
    if not all((run_dir / name).exists() for name in stamp.get("files", [])):
        return None
    return stamp


def stamped_state(run_dir: Path) -> dict[str, Any] | None:
    """The state the stamp records, without opening the store (a quick first look)."""
    try:
        stamp = json.loads((run_dir / STAMP).read_text())
    except (OSError, ValueError):
        return None
    return stamp.get("state") if isinstance(stamp, dict) else None
