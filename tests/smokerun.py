"""One small real run shared by the gold, load and schema-doc tests (made once per process).

The smoke suite (math, QA and code problems, so every kind of target and a per-task
summary) with majority_vote at budgets 1 and 2, against the scripted server on 127.0.0.1,
logged to offline W&B so its samples tables can be read back.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import wandb
from fakeserver import FakeOpenAI

import ttcbench


def overrides(results: Path, api_base: str, *extra: str) -> list[str]:
    """A fast run against the scripted server at `api_base`."""
    return [
        f"results_dir={results}",
        "model=llamacpp_server",
        f"model.api_base={api_base}",
        "model.name=fake",
        "budget.values=[1,2]",
        f"cache.path={results.parent / 'cache.sqlite'}",
        "retry.initial_wait_s=0.01",
        *extra,
    ]


@functools.cache
def smoke_run() -> Path:
    """The run folder (read it, never write it: other tests share it)."""
    root = Path(tempfile.mkdtemp(prefix="ttcbench-smoke-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    with FakeOpenAI() as server:
        args = overrides(root / "results", server.api_base, "task=smoke", "logger=wandb")
        run_dir = ttcbench.run([*args, "strategy=majority_vote"], progress=False)
    wandb.teardown()  # wait until wandb's service has flushed the offline log to disk
    return run_dir
