"""The run folder's record of its config: `config.yaml` and Hydra's three `.hydra/` files.

They are written by the job, under the run folder's lock and only once every input check
has passed, so a command that is refused or fails before sampling never rewrites a finished
run's record (Hydra would write `.hydra/` before any of our code runs: conf/config.yaml sets
`hydra.output_subdir: null` and cli.py hands the files' contents to the job instead). Every
file goes through one `Redactor`, so no secret given on the command line is written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ttcbench.redact import Redactor

HYDRA_DIR = ".hydra"
HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")


def write_records(run_dir: Path, config: dict[str, Any], hydra_files: dict[str, Any]) -> None:
    """Write `config.yaml` (the resolved config) and `.hydra/<name>` for each of
    `hydra_files` (name -> content), all redacted with the secrets found in any of them."""
    redactor = Redactor(config, *hydra_files.values())
    write_yaml(run_dir / "config.yaml", redactor(config))
    for name, content in hydra_files.items():
        write_yaml(run_dir / HYDRA_DIR / name, redactor(content))


def write_yaml(path: Path, content: Any) -> None:
    """Write atomically (a temp file of its own, then rename): a crash never leaves half a
    record, and jobs writing the same file at once (multirun.yaml) never collide."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as tmp:
        tmp.write(yaml.safe_dump(content, sort_keys=False))
    os.chmod(tmp.name, 0o644)  # a temp file is private; a record is not (it is redacted)
    os.replace(tmp.name, path)
