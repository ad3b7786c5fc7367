"""The run folder's record of its config: `config.yaml`, Hydra's three `.hydra/` files and
`provenance.json` (how the run was made: command, code version, model, sampling, prompts,
data, date, machine; see `provenance`).

They are written by the job, under the run folder's lock and only once every input check
has passed, so a command that is refused or fails before sampling never rewrites a finished
run's record (Hydra would write `.hydra/` before any of our code runs: conf/config.yaml sets
`hydra.output_subdir: null` and cli.py hands the files' contents to the job instead). Every
file goes through one `Redactor`, so no secret given on the command line is written.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ttcbench.provenance import provenance, summary_block
from ttcbench.redact import Redactor

HYDRA_DIR = ".hydra"
HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")
PROVENANCE = "provenance.json"
PYTHON_CALL: list[str] | None = None
"""The overrides of the `ttcbench.run([...])` call in progress (set by cli.run), so the
provenance names the Python call rather than the interpreter's argv."""


def set_python_call(overrides: Sequence[str]) -> None:
    """Record that the next job comes from `ttcbench.run(overrides)` (read once, by the job)."""
    global PYTHON_CALL
    PYTHON_CALL = list(overrides)


def write_records(run_dir: Path, config: dict[str, Any], hydra_files: dict[str, Any]) -> None:
    """Write `config.yaml` (the resolved config), `.hydra/<name>` for each of `hydra_files`
    (name -> content) and `provenance.json`, all redacted with the secrets found in any of
    them (or in the command line, or the `ttcbench.run` call)."""
    global PYTHON_CALL
    call, PYTHON_CALL = PYTHON_CALL, None  # one call, one job: never reused by a later job
    redactor = Redactor(config, *hydra_files.values(), call or [], sys.argv[1:])
    write_yaml(run_dir / "config.yaml", redactor(config))
    for name, content in hydra_files.items():
        write_yaml(run_dir / HYDRA_DIR / name, redactor(content))
    overrides = hydra_files.get("overrides.yaml")
    record = provenance(config, call, overrides, _earlier(run_dir / PROVENANCE))
    write_text(run_dir / PROVENANCE, json.dumps(redactor(record), indent=2, default=str) + "\n")


def read_provenance(run_dir: Path) -> dict[str, Any] | None:
    """The run's provenance.json, or None (an older run, or an unreadable file)."""
    try:
        record = json.loads((run_dir / PROVENANCE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def provenance_markdown(run_dir: Path) -> str:
    """The short provenance block summary.md opens with."""
    return summary_block(read_provenance(run_dir))


def _earlier(path: Path) -> list[dict[str, Any]]:
    """A resumed run keeps the command, commit and date of each earlier invocation."""
    old = read_provenance(path.parent)
    if old is None:
        return []
    keep = {k: old.get(k) for k in ("date", "command", "ttcbench")}
    return [*old.get("earlier", []), keep]


def write_yaml(path: Path, content: Any) -> None:
    """Write atomically (see `write_text`)."""
    write_text(path, yaml.safe_dump(content, sort_keys=False))


def write_text(path: Path, text: str) -> None:
    """Write atomically (a temp file of its own, then rename): a crash never leaves half a
    record, and jobs writing the same file at once (multirun.yaml) never collide."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as tmp:
        tmp.write(text)
    os.chmod(tmp.name, 0o644)  # a temp file is private; a record is not (it is redacted)
    os.replace(tmp.name, path)
