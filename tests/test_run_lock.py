"""One writer per run folder (ttcbench/runlock.py), and a shared cache two runs can share.

The lock is tested against real processes: a holder in another process, a holder killed
with SIGKILL, and two real `ttcbench` commands on one run folder against the scripted server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeOpenAI, solve_arithmetic
from run_folders import run_folder, wait_for_run_folder
from test_cli import CLI, cli_env, error_lines

from ttcbench.cache import shard_paths
from ttcbench.runlock import LOCK_NAME, RunLock
from ttcbench.types import RunFolderBusy

HOLDER = """
import sys, time
from pathlib import Path
from ttcbench.runlock import RunLock
lock = RunLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def start_holder(run_dir: Path) -> subprocess.Popen[str]:
    """Another process holding the run folder's lock (it says `locked` once it does)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_is_refused_and_told_who_holds_the_folder(tmp_path: Path) -> None:
    holder = start_holder(tmp_path / "run")
    try:
        with pytest.raises(RunFolderBusy) as info:
            RunLock(tmp_path / "run").acquire()
    finally:
        holder.kill()
        holder.wait()
    message = str(info.value)
    assert info.value.exit_code == 5
    assert f"pid {holder.pid} on {socket.gethostname()}, started " in message
    assert str(tmp_path / "run") in message and "\n" not in message


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    holder = start_holder(tmp_path / "run")
    os.kill(holder.pid, signal.SIGKILL)  # no cleanup runs: the file still names the holder
    holder.wait()
    assert json.loads((tmp_path / "run" / LOCK_NAME).read_text())["pid"] == holder.pid
    with RunLock(tmp_path / "run"):
        assert json.loads((tmp_path / "run" / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_the_lock_is_released_when_the_job_ends_even_on_error(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), RunLock(tmp_path):
        1 / 0  # noqa: B018
    # The same process may run the folder again (ttcbench.run), but never twice at once.
    with RunLock(tmp_path), pytest.raises(RunFolderBusy):
        RunLock(tmp_path).acquire()


def job_args(tmp: Path, api_base: str, strategy: str = "majority_vote") -> list[str]:
    return [
        *CLI,
        f"strategy={strategy}",
        "budget=pow2_4",
        "model=llamacpp_server",
        f"model.api_base={api_base}",
        "model.name=fake",
        "task.limit=3",
        "logger=none",
        "runner.concurrency=2",
        f"results_dir={tmp / 'results'}",
    ]


def wait_for_lock_holder(path: Path, timeout_s: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return dict(json.loads(path.read_text()))
        time.sleep(0.05)
    raise AssertionError(f"{path} was never written")


def test_a_second_command_on_a_busy_run_folder_stops_at_once(tmp_path: Path) -> None:
    gate = threading.Event()  # the provider answers once the second command has been refused

    def held_reply(body: dict[str, Any]) -> str:
        gate.wait(timeout=240)
        return solve_arithmetic(body)

    with FakeOpenAI(reply=held_reply) as server:
        check_busy_folder(tmp_path, server, gate)


def check_busy_folder(tmp_path: Path, fake_openai: FakeOpenAI, gate: threading.Event) -> None:
    args = job_args(tmp_path, fake_openai.api_base)
    first = subprocess.Popen(args, cwd=tmp_path, env=cli_env(tmp_path), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    run_dir = wait_for_run_folder(tmp_path / "results/arithmetic/fake", "majority_vote-pow2_4")
    holder = wait_for_lock_holder(run_dir / LOCK_NAME)
    assert holder["pid"] == first.pid
    started = time.monotonic()
    second = subprocess.run(
        args, cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    refused_after = time.monotonic() - started
    assert first.poll() is None, "the first job ended before the second was refused"
    gate.set()
    requests_while_busy = len(fake_openai.requests)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 5, second.stderr
    (line,) = error_lines(second.stderr)
    assert f"pid {first.pid} on {socket.gethostname()}, started " in line
    assert str(run_dir) in line and "Traceback" not in second.stderr
    assert refused_after < 60  # at start-up (the first job's calls are all still held)
    # The second command paid for nothing: the provider saw the first job's 12 calls once.
    assert len(fake_openai.requests) == 12 >= requests_while_busy
    # The refusal left the running job's folder alone (it finished with every file).
    assert (run_dir / "summary.csv").is_file() and (run_dir / ".hydra/overrides.yaml").is_file()


def test_two_runs_of_different_configs_share_one_cache_intact(tmp_path: Path) -> None:
    def overlapping_reply(body: dict[str, Any]) -> str:
        # Nothing is answered until both jobs are sampling (each sends one request first,
        # and the rest once it succeeds), so their cache writes interleave.
        deadline = time.monotonic() + 120
        while len(server.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        return solve_arithmetic(body)

    with FakeOpenAI(reply=overlapping_reply) as server:
        server.delay_s = 0.02
        check_shared_cache(tmp_path, server)
    assert len(server.requests) >= 12


def check_shared_cache(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    env = cli_env(tmp_path)  # TTCBENCH_CACHE: one cache file for both
    procs = [
        subprocess.Popen(job_args(tmp_path, fake_openai.api_base, s), cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for s in ("majority_vote", "best_of_n")
    ]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    keys = []
    for shard in shard_paths(tmp_path / "cache"):  # each job writes its own shard
        with sqlite3.connect(shard) as cache:
            assert cache.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            keys += [key for (key,) in cache.execute("SELECT key FROM cache")]
    # Both runs ask for the same 4-sample pool of 3 problems: 12 distinct keys.
    assert len(set(keys)) == 12
    stores = tmp_path / "results" / "arithmetic" / "fake"
    for folder in ("majority_vote-pow2_4", "best_of_n[oracle]-pow2_4"):
        with sqlite3.connect(run_folder(stores, folder) / "store.sqlite") as store:
            assert store.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert store.execute("SELECT COUNT(*) FROM calls").fetchone() == (12,)
