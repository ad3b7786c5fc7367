"""Gold on every row: each call carries the target it was graded against (code: a pointer to
the hidden tests, never the tests), in the store, calls.parquet and the W&B samples table;
attempts carry model and task; summary.csv says what each row measured; W&B uses the
Parquet column names and keeps no second copy of the data files under results/."""

from __future__ import annotations

import re
import sqlite3
from glob import glob
from pathlib import Path

import pandas as pd
from fakeserver import FakeOpenAI
from smokerun import overrides, smoke_run
from wandbfiles import sample_rows

import ttcbench
from ttcbench.store import SampleStore
from ttcbench.tasks.registry import load_task
from ttcbench.tasks.target import target_of
from ttcbench.types import Problem

CODE_POINTER = re.compile(r"^humaneval:HumanEval/\d+ \(\d+ asserts, hidden\)$")


def smoke_problems() -> dict[tuple[str, str], Problem]:
    tasks = [load_task("arithmetic", 4), load_task("multihop", 4), load_task("humaneval", 2)]
    return {(p.task, p.id): p for task in tasks for p in task.problems}


def test_every_call_row_carries_its_target_everywhere() -> None:
    run_dir = smoke_run()
    problems = smoke_problems()
    store = SampleStore(run_dir / "store.sqlite")
    calls = store.calls_frame()
    store.close()
    assert len(calls) == 10 * 2 and calls["target"].notna().all()
    for row in calls.itertuples():
        problem = problems[row.task, row.problem_id]
        if row.task == "humaneval":  # a pointer to the tests, not the tests or the solution
            assert CODE_POINTER.match(row.target), row.target
            assert problem.meta["test"] not in row.target and "def " not in row.target
        else:  # the reference answer as the grader reads it
            assert row.target == problem.answer
    arithmetic = calls[calls["task"] == "arithmetic"]  # the server answers these right
    assert (arithmetic["extracted"] == arithmetic["target"]).all()
    assert (arithmetic["score"] == 1.0).all()

    by_key = calls.set_index(["task", "problem_id", "key"])["target"]
    exported = pd.read_parquet(run_dir / "calls.parquet")
    assert (
        exported.set_index(["task", "problem_id", "key"])["target"]
        .sort_index()
        .equals(by_key.sort_index())
    )
    logged = sample_rows(run_dir)
    assert len(logged) == len(calls)
    assert {(r["task"], r["problem_id"], r["key"]): r["target"] for r in logged} == by_key.to_dict()


def test_wandb_samples_use_the_parquet_column_names() -> None:
    run_dir = smoke_run()
    logged = {name for row in sample_rows(run_dir) for name in row}
    assert logged == set(pd.read_parquet(run_dir / "calls.parquet").columns)
    assert "class_difficulty" in logged and not any(name.startswith("classes") for name in logged)


def test_attempts_and_summary_say_what_they_measured() -> None:
    run_dir = smoke_run()
    attempts = pd.read_parquet(run_dir / "attempts.parquet")
    assert (attempts["model"] == "fake").all()
    assert set(attempts["task"]) == {"arithmetic", "multihop", "humaneval"}
    summary = pd.read_csv(run_dir / "summary.csv")
    lead = ["task", "model", "strategy", "temperature", "max_tokens"]
    assert list(summary.columns[:5]) == lead
    assert summary[lead].drop_duplicates().values.tolist() == [
        ["smoke", "fake", "majority_vote", 0.7, 160]
    ]
    by_task = pd.read_csv(run_dir / "summary_by_task.csv")
    assert list(by_task.columns[:5]) == lead
    assert sorted(by_task["task"].unique()) == ["arithmetic", "humaneval", "multihop"]


def test_results_hold_one_data_file_per_run() -> None:
    run_dir = smoke_run()
    results = run_dir.parents[2]
    assert (run_dir / "wandb").is_dir()
    for name in ("attempts.parquet", "calls.parquet", "store.sqlite"):
        assert glob(f"{results}/**/{name}", recursive=True) == [str(run_dir / name)]


def test_target_of_each_kind_of_problem() -> None:
    qa = Problem("hotpotqa", "q1", "?", "Paris", meta={"aliases": ["City of Paris", "Paris"]})
    assert target_of(qa) == "Paris | City of Paris"  # any of them is graded correct
    tests = "assert f(1) == 2\nassert f(2) == 3\n"
    mbpp = Problem("mbpp", "mbpp/11", "?", "def f(x): return x + 1",
                   meta={"entry_point": "f", "tests": tests})  # fmt: skip
    assert target_of(mbpp) == "mbpp:mbpp/11 (2 asserts, hidden)"
    assert target_of(Problem("t", "p", "?", None)) is None


def test_a_store_without_target_or_model_resumes_and_gains_them(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    args = [*overrides(tmp_path / "results", fake_openai.api_base, "logger=none"), "name=old",
            "task.limit=2", "cache.enabled=false"]  # fmt: skip
    run_dir = ttcbench.run(args, progress=False)
    requests = len(fake_openai.requests)
    with sqlite3.connect(run_dir / "store.sqlite") as old:  # as an older ttcbench wrote it
        old.execute("ALTER TABLE calls DROP COLUMN target")
        old.execute("ALTER TABLE attempts DROP COLUMN model")
    assert ttcbench.run(args, progress=False) == run_dir
    assert len(fake_openai.requests) == requests  # every stored sample reused
    calls = pd.read_parquet(run_dir / "calls.parquet")
    assert len(calls) == 2 * 2 and (calls["target"] == calls["extracted"]).all()
    assert (pd.read_parquet(run_dir / "attempts.parquet")["model"] == "fake").all()
