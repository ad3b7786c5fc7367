"""Commands that run no job answer without importing the heavy libraries (issue: start-up).

`ttcbench --help`, `--cfg job` and a config error must not pay litellm's, pandas', W&B's or
matplotlib's import time (seconds), and a job's first request must not wait for the libraries
only its grading, estimates, report or W&B need; the figures are in benchmarks/startup.py,
these tests only guard the import graph, which is what makes them.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakeserver import FakeOpenAI

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


AT_FIRST_REQUEST = """
import json, sys
seen = []

def at_connect(event, args):  # the first connection to the model server: its first request
    if event == "socket.connect" and not seen and args[1][1:2] == ({port},):
        seen.append(True)
        print("\\nAT_FIRST_REQUEST", json.dumps(sorted(sys.modules)), file=sys.stderr, flush=True)

sys.addaudithook(at_connect)
sys.argv = ["ttcbench", *{args!r}]
import ttcbench.cli
ttcbench.cli.main()
"""

NOT_BEFORE_FIRST_REQUEST = (
    "scipy",  # estimates (strategies score a pool once it is sampled) and the analysis
    "matplotlib",  # the plot and the report, after sampling
    "sympy",  # the math grader (math-verify), at the first answer
    "math_verify",
    "cellpylib",  # reasoning-gym generators the task does not use
    "reasoning_gym.algorithmic",
    "reasoning_gym.algebra",
    "wandb.sdk.wandb_run",  # W&B starts on its own thread (its import may have begun)
)


def modules_at_first_request(server: FakeOpenAI, cwd: Path, args: list[str]) -> list[str]:
    """The modules a real job has loaded when it opens its first connection to the server."""
    port = int(server.api_base.rsplit(":", 1)[1].split("/")[0])
    done = subprocess.run(
        [sys.executable, "-c", AT_FIRST_REQUEST.format(port=port, args=args)],
        capture_output=True, text=True, cwd=cwd, timeout=300,
        env={**os.environ, "OPENAI_API_KEY": "none"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [x for x in done.stderr.splitlines() if x.startswith("AT_FIRST_REQUEST ")]
    assert lines, "no connection to the fake server was seen"
    return json.loads(lines[0].split(" ", 1)[1])


def test_a_job_sends_its_first_request_before_the_libraries_it_needs_later(
    tmp_path: Path, results: Path
) -> None:
    """A real job (default task, strategy and W&B offline) against the fake server, twice:
    the first run asks litellm what to send; the second sends the same requests from the
    plan the first left (ttcbench/models/request_plans.py) before importing litellm at all."""
    with FakeOpenAI() as server:
        args = [f"results_dir={results}", "model=openai/fake", "task.limit=2", "budget=pow2_4",
                f"model.api_base={server.api_base}", "cache.enabled=false"]  # fmt: skip
        first = modules_at_first_request(server, tmp_path, [*args, "name=first"])
        sent = len(server.requests)
        second = modules_at_first_request(server, tmp_path, [*args, "name=second"])
        bodies = [json.dumps(body, sort_keys=True) for body in server.requests]
        assert sorted(bodies[sent:]) == sorted(bodies[:sent])  # the same requests
        assert [h.get("Authorization") for h in server.headers] == ["Bearer none"] * 2 * sent
    assert "litellm" in first  # the probe does see what the job imported
    assert [name for name in NOT_BEFORE_FIRST_REQUEST if name in first] == []
    assert [name for name in [*NOT_BEFORE_FIRST_REQUEST, "litellm"] if name in second] == []
    # ...and the jobs did use them afterwards: graded, estimated, plotted, logged to W&B
    for run in (results / "first", results / "second"):
        assert (run / "accuracy_vs_compute.png").is_file()
        with open(run / "summary.csv") as table:  # the fake server answers every problem right
            assert {float(row["accuracy"]) for row in csv.DictReader(table)} == {1.0}
        assert list((run / "wandb").glob("offline-run-*/run-*.wandb"))
