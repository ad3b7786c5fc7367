"""A rerun of a finished job: nothing new leaves every output byte-identical and makes no
request (the model client is never built); a store that changed rewrites the outputs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fakeserver import FakeOpenAI

import ttcbench
import ttcbench.job as job_module
from ttcbench.finished import STAMP

OUTPUTS = ("summary.csv", "summary.md", "report.html", "report.md", "accuracy_vs_compute.png",
           "calls.parquet", "attempts.parquet")  # fmt: skip


def run_args(results: Path, api_base: str) -> list[str]:
    return [
        f"results_dir={results}",
        "name=rerun",
        "model=openai/fake",
        f"model.api_base={api_base}",
        "task.limit=2",
        "budget=pow2_4",
        "cache.enabled=false",
        "logger.mode=offline",
    ]


def snapshot(run_dir: Path) -> dict[str, bytes]:
    """Every output file's bytes, W&B's folder included."""
    files = [run_dir / name for name in OUTPUTS]
    files += [p for p in (run_dir / "wandb").rglob("*") if p.is_file()]
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in files}


@pytest.fixture
def finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, FakeOpenAI]:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("OPENAI_API_KEY", "none")
    server = FakeOpenAI()
    server.__enter__()
    run_dir = ttcbench.run(run_args(tmp_path, server.api_base), progress=False)
    yield run_dir, server
    server.__exit__(None, None, None)


def test_rerun_with_nothing_new_leaves_outputs_identical(
    finished: tuple[Path, FakeOpenAI], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, server = finished
    assert server.requests and (run_dir / STAMP).exists()
    before, sent = snapshot(run_dir), len(server.requests)

    def no_client(*args: object) -> None:
        raise AssertionError("a rerun served from the store built the model client")

    monkeypatch.setattr(job_module, "model_client", no_client)
    ttcbench.run(run_args(run_dir.parent, server.api_base), progress=False)
    assert len(server.requests) == sent
    assert snapshot(run_dir) == before


def test_rerun_after_the_store_changed_rewrites_outputs(
    finished: tuple[Path, FakeOpenAI],
) -> None:
    run_dir, server = finished
    sent = len(server.requests)
    with sqlite3.connect(run_dir / "store.sqlite") as db:  # lose one stored call
        db.execute("DELETE FROM calls WHERE rowid = (SELECT max(rowid) FROM calls)")
    (run_dir / "summary.csv").write_text("stale\n")
    ttcbench.run(run_args(run_dir.parent, server.api_base), progress=False)
    assert len(server.requests) > sent  # the lost call is requested again
    assert (run_dir / "summary.csv").read_text() != "stale\n"


def test_rerun_with_a_missing_output_rewrites_it(finished: tuple[Path, FakeOpenAI]) -> None:
    run_dir, server = finished
    sent = len(server.requests)
    (run_dir / "report.html").unlink()
    ttcbench.run(run_args(run_dir.parent, server.api_base), progress=False)
    assert len(server.requests) == sent
    assert (run_dir / "report.html").exists()


def test_the_command_ends_without_teardown_and_leaves_complete_files(tmp_path: Path) -> None:
    """`exit_now` skips only the interpreter's freeing: W&B's offline run is complete (its
    exit record written), Hydra's cli.log flushed and the printed table whole."""
    import os
    import subprocess
    import sys

    from wandbfiles import records_by_type

    env = {**os.environ, "WANDB_MODE": "offline", "OPENAI_API_KEY": "none"}
    run_dir = tmp_path / "rerun"
    with FakeOpenAI() as server:
        for _ in range(2):  # a run, then a rerun (which logs its "resuming" line)
            done = subprocess.run(
                [sys.executable, "-m", "ttcbench.cli", *run_args(tmp_path, server.api_base)],
                capture_output=True, text=True, env=env, timeout=300,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert done.stdout.rstrip().splitlines()[-1].startswith("run folder:")
            [wandb_file] = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
            assert len(records_by_type(wandb_file)["exit"]) == 1
    assert "resuming:" in (run_dir / "cli.log").read_text()  # flushed before the exit
