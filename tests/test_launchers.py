"""Cluster launchers run for real: `hydra/launcher=submitit_local` (submitit's local executor,
the code path a SLURM user takes, with local processes) and `hydra/launcher=ray` (against a
Ray cluster this module starts on 127.0.0.1) each run the 2-job sweep of tests/test_cli.py
against the scripted server, and must write exactly what the basic launcher writes.

A missing launcher plugin skips its test and says why, except on CI (`CI` set), where it
fails: CI installs them (the `dev` extra), so a skip there would hide a broken launcher.
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fakeserver import FakeOpenAI, solve_arithmetic

STRATEGIES = ("single", "majority_vote")
VOLATILE = ["latency_s", "started_at", "finished_at", "retry_wait_s", "model_s", "cached",
            "attempts"]  # fmt: skip
"""Timings, and which of two jobs running at once paid for a shared sample (the cache race)."""
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
"""Ray's single-machine mode: every node address is 127.0.0.1, nothing else is contacted."""


def require(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as err:
        why = f"{module} is not installed ({err}): `pip install -e .[dev]` installs it"
        if os.environ.get("CI"):
            pytest.fail(f"{why}; CI must run the launcher tests, not skip them")
        pytest.skip(why)


def seeded_reply(body: dict[str, Any]) -> str:
    """Right or wrong by seed and prompt: outputs and scores that differ between samples."""
    prompt = body["messages"][-1]["content"]
    if (int(body.get("seed") or 0) + len(prompt)) % 3:
        return solve_arithmetic(body)
    return "Step by step: I am not sure. The answer is 9999"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    """One server for every launcher: the same api_base, so the same run ids and folders."""
    with FakeOpenAI(reply=seeded_reply) as fake:
        yield fake


def sweep(tmp: Path, api_base: str, *launcher: str) -> subprocess.CompletedProcess[str]:
    """`ttcbench -m strategy=single,majority_vote ...` with its own results and cache."""
    args = [
        "-m", f"strategy={','.join(STRATEGIES)}", "budget=pow2_8", "task.limit=3",
        "model=llamacpp_server", f"model.api_base={api_base}", "model.name=fake",
        "logger=none", "runner.progress=false", "retry.initial_wait_s=0.01",
        f"results_dir={tmp / 'results'}", f"cache.path={tmp / 'cache.sqlite'}", *launcher,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY",)}
    env.update(WANDB_MODE="offline", **LOOPBACK)
    return subprocess.run(
        [sys.executable, "-m", "ttcbench.cli", *args],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def written(results: Path) -> dict[str, pd.DataFrame]:
    """Every run folder's calls, attempts and summary, less timings, by folder and file."""
    out: dict[str, pd.DataFrame] = {}
    for store in sorted(results.rglob("store.sqlite")):
        folder = store.parent
        for name, read in (("calls.parquet", pd.read_parquet), ("attempts.parquet",
                           pd.read_parquet), ("summary.csv", pd.read_csv)):  # fmt: skip
            frame = read(folder / name)
            key = f"{folder.relative_to(results)}/{name}"
            out[key] = frame.drop(columns=[c for c in VOLATILE if c in frame])
    return out


@pytest.fixture(scope="module")
def basic(server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The basic launcher's sweep: what every other launcher must reproduce."""
    tmp = tmp_path_factory.mktemp("basic")
    proc = sweep(tmp, server.api_base)
    assert proc.returncode == 0, proc.stderr
    frames = written(tmp / "results")
    assert len(frames) == 3 * len(STRATEGIES)
    attempts = pd.concat(f for k, f in frames.items() if k.endswith("attempts.parquet"))
    assert 0 < attempts["score"].mean() < 1  # scores vary, so a mix-up would show
    return frames


def assert_same_as_basic(tmp: Path, proc: subprocess.CompletedProcess[str], basic: Any) -> None:
    assert proc.returncode == 0, proc.stderr[-4000:]
    frames = written(tmp / "results")
    assert sorted(frames) == sorted(basic)  # the same run folders: same config, same hash
    for key, frame in frames.items():
        pd.testing.assert_frame_equal(frame, basic[key], obj=key)


def test_submitit_local_launcher_writes_what_the_basic_one_does(
    server: FakeOpenAI, basic: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    require("hydra_plugins.hydra_submitit_launcher")
    start = time.monotonic()
    proc = sweep(tmp_path, server.api_base, "hydra/launcher=submitit_local")
    print(f"submitit_local sweep: {time.monotonic() - start:.1f}s")
    assert_same_as_basic(tmp_path, proc, basic)
    assert "Submitit 'local' sweep" in proc.stderr + proc.stdout  # it did use submitit
    jobs = list((tmp_path / "results" / ".submitit").glob("*/*_result.pkl"))
    assert len(jobs) == len(STRATEGIES)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A 2-CPU Ray head on 127.0.0.1 for this module (`ray start --head --block`); its
    address. Stopped, with every process it started, when the module ends."""
    require("hydra_plugins.hydra_ray_launcher")
    # A short folder: Ray's socket paths under it must fit in 107 bytes.
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    port = free_port()
    log = (temp / "start.log").open("w")
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
               f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
               "--disable-usage-stats", f"--temp-dir={temp}"]  # fmt: skip
    head = subprocess.Popen(
        command, env={**os.environ, **LOOPBACK}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in (temp / "start.log").read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start failed:\n{(temp / 'start.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()  # --block: ray start stops the processes it started, then exits
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def test_ray_launcher_writes_what_the_basic_one_does(
    server: FakeOpenAI, basic: dict[str, pd.DataFrame], ray_cluster: str, tmp_path: Path
) -> None:
    start = time.monotonic()
    proc = sweep(
        tmp_path,
        server.api_base,
        "hydra/launcher=ray",
        f"hydra.launcher.ray.init.address={ray_cluster}",
        "hydra.launcher.ray.remote.num_cpus=1",  # two jobs at once on the 2-CPU cluster
    )
    print(f"ray sweep: {time.monotonic() - start:.1f}s")
    assert_same_as_basic(tmp_path, proc, basic)
    assert f"Connecting to existing Ray cluster at address: {ray_cluster}" in proc.stderr
