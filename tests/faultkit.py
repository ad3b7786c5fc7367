"""Helpers shared by the fault tests: the real command in a subprocess, its rows, a closed port.

The runs go to the scripted server of `fakeserver.py` on 127.0.0.1; nothing leaves the host.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import run_folders

from ttcbench.store import SampleStore

CLI = [sys.executable, "-m", "ttcbench.cli"]


@dataclass
class Ran:
    """What a user sees of one command: exit status, output and how long it took."""

    code: int
    stdout: str
    stderr: str
    seconds: float


def cli(args: list[str], *, command: list[str] = CLI, timeout: float = 120) -> Ran:
    """Run `ttcbench ARGS` (or `command ARGS`) with this process's environment (the test's
    cache, W&B offline); provider keys are removed so no real provider could be reached."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    started = time.perf_counter()
    done = subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    return Ran(done.returncode, done.stdout, done.stderr, time.perf_counter() - started)


def error_lines(stderr: str) -> list[str]:
    """The `ttcbench: error:` lines of a command's stderr (progress bars left out)."""
    return [line for line in stderr.splitlines() if line.startswith("ttcbench:")]


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_folder(results: Path, strategy: str, budget: str = "pow2_8") -> Path:
    return run_folders.run_folder(results / "arithmetic" / "fake", f"{strategy}-{budget}")


SAMPLE_COLUMNS = ["task", "problem_id", "role", "sample_index", "key", "seed", "output",
                  "extracted", "score", "error"]  # fmt: skip
ATTEMPT_COLUMNS = ["task", "problem_id", "strategy", "budget", "answer", "score", "calls",
                   "prompt_tokens", "completion_tokens", "sequential_tokens", "error"]  # fmt: skip


def samples(run_dir: Path) -> pd.DataFrame:
    """The run's stored samples, sorted, without what depends on the clock."""
    store = SampleStore(run_dir / "store.sqlite")
    try:
        calls = store.calls_frame()[SAMPLE_COLUMNS]
    finally:
        store.close()
    return calls.sort_values(["problem_id", "role", "sample_index"]).reset_index(drop=True)


def attempts(run_dir: Path) -> pd.DataFrame:
    store = SampleStore(run_dir / "store.sqlite")
    try:
        frame = store.attempts_frame()[ATTEMPT_COLUMNS]
    finally:
        store.close()
    return frame.sort_values(["problem_id", "budget"]).reset_index(drop=True)
