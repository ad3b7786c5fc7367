"""Commands that run no job answer without importing the heavy libraries (issue: start-up).

`ttcbench --help`, `--cfg job` and a config error must not pay litellm's, pandas', W&B's or
matplotlib's import time (seconds); the figures are in benchmarks/startup.py, this test only
guards the import graph, which is what makes them.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("litellm", "pandas", "matplotlib", "wandb", "llama_cpp", "datasets", "scipy")

PROBE = """
import atexit, sys
atexit.register(lambda: print("MODULES", " ".join(sorted(sys.modules)), file=sys.stderr))
sys.argv = ["ttcbench", *{args!r}]
import ttcbench.cli
ttcbench.cli.main()
"""


@pytest.mark.parametrize(
    "args, status",
    [
        (["--help"], 0),
        (["--cfg", "job"], 0),
        (["budget.values=[0]"], 2),
        (["sampling.temperature=-1"], 2),
        (["strategy=no_such_strategy"], 2),
    ],
)
def test_commands_without_a_job_import_no_heavy_library(tmp_path, args, status):
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == status, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("MODULES "))
    loaded = set(line.split()[1:])
    assert [name for name in HEAVY if name in loaded] == []
    if status == 2:
        assert "ttcbench: error:" in done.stderr
