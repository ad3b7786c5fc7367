"""Records stay true: a resume says what it reuses, and a refused or failed command never
touches a finished run's record (config.yaml, `.hydra/`, store, summary).

The commands run the real entry point in a subprocess against tests/fakeserver.py.
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from fakeserver import FakeOpenAI
from run_folders import run_folder
from test_cli import error_lines, ttcbench_cli

from ttcbench.runlock import LOCK_NAME, RunLock
from ttcbench.runner import Progress
from ttcbench.types import Call

ARGS = (
    "name=fixed",
    "model=llamacpp_server",
    "model.name=fake",
    "strategy=majority_vote",
    "budget=pow2_4",
    "task.limit=2",
    "logger=none",
    "cache.enabled=false",  # every stored sample the run lacks is a request the server sees
)


def a_call(i: int) -> Call:
    return Call("k", "r", "t", f"p{i}", {}, "s", "generate", i, None, "m", "h", [])


def test_the_progress_bar_counts_from_what_is_stored() -> None:
    seen: list[Call] = []
    progress = Progress(8, enabled=True, stored=5, on_call=seen.append)
    assert progress.bar.n == 5
    for i in range(3):
        progress.on_call(a_call(i))
    assert progress.bar.n == progress.bar.total == 8
    assert [c.problem_id for c in seen] == ["p0", "p1", "p2"]
    progress.close()


def test_a_resume_says_what_is_stored_and_requests_only_the_rest(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    args = (*ARGS, f"model.api_base={fake_openai.api_base}")
    first = ttcbench_cli(tmp_path, *args)
    assert first.returncode == 0, first.stderr
    assert "resuming" not in first.stdout + first.stderr  # nothing stored: not a resume
    assert len(fake_openai.requests) == 8
    with sqlite3.connect(tmp_path / "results" / "fixed" / "store.sqlite") as store:
        store.execute("DELETE FROM calls WHERE problem_id = (SELECT MIN(problem_id) FROM calls)"
                      " AND sample_index < 3")  # fmt: skip
        # A failed call is requested again, so it is not counted as stored.
        store.execute("UPDATE calls SET error = 'HTTP 500', output = NULL WHERE rowid = "
                      "(SELECT MAX(rowid) FROM calls)")  # fmt: skip
    second = ttcbench_cli(tmp_path, *args)
    assert second.returncode == 0, second.stderr
    output = second.stdout + second.stderr
    assert "resuming: 4 of 8 samples stored, 4 to request" in output
    assert len(fake_openai.requests) == 8 + 4
    bar = [line for line in second.stderr.replace("\r", "\n").splitlines() if "call" in line]
    assert bar and "8/8" in bar[-1], bar  # the bar ends at the planned total, not at 4/8


def run_files(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run folder by relative path, but Hydra's own `cli.log` (Hydra appends
    to it before any of our code runs) and the lock file (the test's own lock names it)."""
    return {
        str(p.relative_to(run_dir)): p.read_bytes()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.name not in ("cli.log", LOCK_NAME)
    }


def test_refused_and_failed_commands_leave_a_finished_run_untouched(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    args = (*ARGS, f"model.api_base={fake_openai.api_base}")
    assert ttcbench_cli(tmp_path, *args).returncode == 0
    run_dir = tmp_path / "results" / "fixed"
    overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    assert overrides == [*args, f"results_dir={tmp_path / 'results'}"]
    hydra = yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]
    assert hydra["runtime"]["output_dir"] == str(run_dir) and hydra["output_subdir"] is None
    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert config["run_dir"] == "${results_dir}/${name}"  # Hydra's unresolved config
    before = run_files(run_dir)
    assert {"config.yaml", "store.sqlite", "summary.csv", ".hydra/overrides.yaml"} <= set(before)
    commands = {
        "refused": (*args, "sampling.temperature=0.1"),  # a different config in this folder
        "bad input": (*args, "budget.values=[1,x]"),
        "bad data": (*args, "task.data_files=/nonexistent/file.jsonl"),
        "busy": args,  # the same command, while another process holds the folder
    }
    with RunLock(run_dir), ThreadPoolExecutor(len(commands)) as pool:
        procs = dict(zip(commands, pool.map(lambda a: ttcbench_cli(tmp_path, *a),
                                            commands.values()), strict=True))  # fmt: skip
    assert {k: p.returncode for k, p in procs.items()} == {
        "refused": 2, "bad input": 2, "bad data": 2, "busy": 5
    }  # fmt: skip
    for proc in procs.values():
        assert len(error_lines(proc.stderr)) == 1, proc.stderr
    assert run_files(run_dir) == before
    assert len(fake_openai.requests) == 8


def test_each_multirun_job_records_its_own_overrides(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    proc = ttcbench_cli(
        tmp_path,
        "-m",
        "strategy=single,majority_vote",
        *[a for a in ARGS if not a.startswith(("name=", "strategy="))],
        f"model.api_base={fake_openai.api_base}",
    )
    assert proc.returncode == 0, proc.stderr
    for strategy in ("single", "majority_vote"):
        run_dir = run_folder(tmp_path / "results" / "arithmetic" / "fake", f"{strategy}-pow2_4")
        overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
        assert f"strategy={strategy}" in overrides and "budget=pow2_4" in overrides
        hydra = yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]
        assert hydra["mode"] == "MULTIRUN"
        assert yaml.safe_load((run_dir / "config.yaml").read_text())["strategy"]["name"] == (
            strategy
        )
