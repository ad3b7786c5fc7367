"""Sharded jobs: `task.shard=i task.shards=n` splits a job's problems by a stable hash of each
problem's id; the shards run as a multirun, and the report's loader reads them back as the one
job they split, with every number identical to the unsharded run's."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fakeserver import FakeOpenAI, solve_arithmetic

import ttcbench
from ttcbench.analysis.report import main as report_main
from ttcbench.analysis.report_data import load, series_labels
from ttcbench.analysis.summary import summarize
from ttcbench.cli import task_requests
from ttcbench.load import load as load_rows
from ttcbench.tasks.registry import (
    Task,
    TaskRequest,
    check_shard,
    load_suite,
    shard_of,
    take_shard,
)
from ttcbench.types import Problem, TaskError

STRATEGIES = ("single", "majority_vote")
SHARDS = 2


def seeded_reply(body: dict[str, Any]) -> str:
    """Right for two seeds in three, wrong otherwise (depending on the prompt too): scores
    that vary by sample and problem, so a merge that lost or mixed rows would show."""
    right = solve_arithmetic(body)
    prompt = body["messages"][-1]["content"]
    if (int(body.get("seed") or 0) + len(prompt)) % 3:
        return right
    return "Step by step: I am not sure. The answer is 9999"


def problems(n: int, task: str = "t") -> list[Problem]:
    return [Problem(task, f"p{i:03d}", f"q{i}", str(i)) for i in range(n)]


# --- the split ------------------------------------------------------------------------------


def test_a_problems_shard_is_a_stable_hash_of_task_and_id() -> None:
    # Pinned values: a change to the hash would move problems between the shards of a job
    # whose shards run with different ttcbench versions (or on hosts that disagree).
    assert [shard_of(p, 4) for p in problems(8)] == [0, 2, 1, 2, 1, 1, 0, 3]
    assert [shard_of(p, 4) for p in problems(8, task="u")] == [3, 2, 3, 3, 1, 2, 3, 2]
    assert {shard_of(p, 1) for p in problems(20)} == {0}


def test_shards_partition_the_problems_and_adding_problems_moves_none() -> None:
    def shard_ids(n: int, shard: int) -> set[str]:
        task = Task("t", "math", problems(n), lambda out, p: None, {})  # type: ignore[arg-type,return-value]
        return {p.id for p in take_shard(task, shard, 3).problems}

    small = [shard_ids(30, s) for s in range(3)]
    assert set().union(*small) == {p.id for p in problems(30)}
    assert sum(map(len, small)) == 30 and all(small)
    grown = [shard_ids(60, s) for s in range(3)]
    assert all(small[s] <= grown[s] for s in range(3))  # position does not decide


def test_a_suites_shards_split_every_task_and_cover_the_job() -> None:
    config = {"name": "mix", "seed": 0, "shard": 0, "shards": 1,
              "tasks": {"arithmetic": {"limit": 6}, "multihop": {"limit": 6}}}  # fmt: skip
    whole = load_suite("mix", task_requests(config))
    parts = [
        load_suite("mix", task_requests({**config, "shard": s, "shards": SHARDS}))
        for s in range(SHARDS)
    ]
    keys = [{(p.task, p.id) for p in part.problems} for part in parts]
    assert not keys[0] & keys[1]
    assert keys[0] | keys[1] == {(p.task, p.id) for p in whole.problems}
    assert {t for t, _ in keys[0]} == {"arithmetic", "multihop"}  # every task is split


@pytest.mark.parametrize(
    ("shard", "shards", "message"),
    [
        (2, 2, r"task\.shard=2 is out of range for task\.shards=2: .*from 0 to 1"),
        (-1, 2, r"task\.shard=-1 is out of range"),
        (0, 0, r"task\.shards must be 1 \(no split\) or more, got 0"),
        ("x", 2, r"task\.shard must be a whole number, got 'x'"),
        (0, True, r"task\.shards must be a whole number"),
    ],
)
def test_a_bad_shard_is_refused_with_the_fix(shard: Any, shards: Any, message: str) -> None:
    with pytest.raises(TaskError, match=message):
        check_shard(shard, shards)


def test_a_bad_shard_stops_the_job_before_anything_is_written(results: Path) -> None:
    with pytest.raises(TaskError, match=r"task\.shard=3 is out of range.*task\.shards=2"):
        ttcbench.run([f"results_dir={results}", "task.shard=3", "task.shards=2", "logger=none"])
    assert not results.exists()


def test_an_empty_shard_is_refused_with_the_fix() -> None:
    one = load_suite("arithmetic", [TaskRequest("arithmetic", limit=1)]).problems[0]
    empty = (shard_of(one, 64) + 1) % 64  # one problem in 64 shards: the others are empty
    with pytest.raises(TaskError, match="holds none of the job's problems.*use fewer shards"):
        load_suite("arithmetic", [TaskRequest("arithmetic", limit=1, shard=empty, shards=64)])


# --- a 2-shard multirun, merged, against the unsharded job -----------------------------------


@dataclass(frozen=True)
class Jobs:
    unsharded: Path
    sharded: Path
    proc: subprocess.CompletedProcess[str]


def job_args(api_base: str) -> list[str]:
    return [
        "task.limit=8",
        "budget=pow2_8",
        "model=llamacpp_server",
        f"model.api_base={api_base}",
        "model.name=fake",
        "logger=none",
        "retry.initial_wait_s=0.01",
    ]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jobs]:
    """The same job run unsharded (in this process) and as `-m task.shard=0,1 task.shards=2`
    (the CLI, basic launcher), each with its own cache so both pay for every sample."""
    tmp = tmp_path_factory.mktemp("shards")
    with FakeOpenAI(reply=seeded_reply) as server:
        for strategy in STRATEGIES:
            ttcbench.run(
                [*job_args(server.api_base), f"strategy={strategy}",
                 f"results_dir={tmp / 'unsharded'}", f"cache.path={tmp / 'unsharded.sqlite'}"],
                progress=False,
            )  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", "ttcbench.cli", "-m", *job_args(server.api_base),
             f"strategy={','.join(STRATEGIES)}", f"task.shard={','.join(map(str, range(SHARDS)))}",
             f"task.shards={SHARDS}", f"results_dir={tmp / 'sharded'}",
             f"cache.path={tmp / 'sharded.sqlite'}"],
            cwd=tmp, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        yield Jobs(tmp / "unsharded", tmp / "sharded", proc)


VOLATILE = ["run", "run_id", "pool_run", "latency_s", "started_at", "finished_at", "cached",
            "attempts", "retry_wait_s", "model_s"]  # fmt: skip
"""Columns that name the run folder or measure time, which no two runs share."""


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in VOLATILE if c in frame]).reset_index(drop=True)


def test_each_shard_runs_in_its_own_folder(jobs: Jobs) -> None:
    assert jobs.proc.returncode == 0, jobs.proc.stderr
    folders = {p.parent for p in jobs.sharded.rglob("store.sqlite")}
    assert len(folders) == SHARDS * len(STRATEGIES)
    sizes = {f.name: len(pd.read_parquet(f / "attempts.parquet")) for f in folders}
    single = [n for name, n in sizes.items() if name.startswith("single-")]
    assert sum(single) == 8 and all(single), sizes  # 8 problems in 2 non-empty shards


def test_merged_shards_are_the_unsharded_job(jobs: Jobs) -> None:
    assert jobs.proc.returncode == 0, jobs.proc.stderr
    whole, merged = load([jobs.unsharded]), load([jobs.sharded])
    assert len(merged.runs) == SHARDS * len(STRATEGIES) and merged.notes == whole.notes
    # One series per strategy, as unsharded: not one per shard folder.
    assert sorted(set(series_labels(merged.attempts))) == sorted(set(series_labels(whole.attempts)))
    assert merged.attempts["run"].nunique() == len(STRATEGIES)
    assert 0 < whole.attempts["score"].mean() < 1  # the scores vary: a mixed-up merge would show
    pd.testing.assert_frame_equal(comparable(merged.attempts), comparable(whole.attempts))
    pd.testing.assert_frame_equal(comparable(merged.calls), comparable(whole.calls))
    pd.testing.assert_frame_equal(
        comparable(summarize(merged.attempts)), comparable(summarize(whole.attempts))
    )


@pytest.mark.parametrize("what", ["attempts", "calls"])
def test_the_python_loader_reads_the_shards_as_the_unsharded_job(jobs: Jobs, what: str) -> None:
    assert jobs.proc.returncode == 0, jobs.proc.stderr
    whole = load_rows(jobs.unsharded, what=what)
    merged = load_rows(jobs.sharded, what=what)
    assert merged["run"].nunique() == len(STRATEGIES)
    assert merged["run"].str.endswith(f"[{SHARDS} of {SHARDS} shards]").all()
    pd.testing.assert_frame_equal(comparable(merged), comparable(whole))


def report_table(results: Path, out: Path) -> list[str]:
    """The report's accuracy-vs-compute table (report.md), as `ttcbench-report` writes it."""
    assert report_main([str(results), "-o", str(out), "--fit-resamples", "0"]) == 0
    text = (out / "report.md").read_text()
    section = text.split("## Accuracy vs compute", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def test_the_report_of_the_shards_is_the_unsharded_report(jobs: Jobs, tmp_path: Path) -> None:
    assert jobs.proc.returncode == 0, jobs.proc.stderr
    whole = report_table(jobs.unsharded, tmp_path / "whole")
    merged = report_table(jobs.sharded, tmp_path / "merged")
    assert len(whole) == 2 + 1 + 4  # header, rule, single (budget 1), majority_vote (1-8)
    assert merged == whole
