"""A task suite runs several tasks in one job, each problem graded by its own task's grader."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from run_folders import run_folder

import ttcbench
from ttcbench.store import SampleStore


def test_smoke_suite_grades_each_task_with_its_own_grader(results: Path, fake_openai) -> None:
    run_dir = ttcbench.run(
        [f"results_dir={results}", "task=smoke", "strategy=single", "logger=none",
         "model=llamacpp_server", f"model.api_base={fake_openai.api_base}", "model.name=fake"]
    )  # fmt: skip
    assert run_dir == run_folder(results / "smoke/fake", "single-pow2_8")
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert calls.groupby("task").size().to_dict() == {
        "arithmetic": 4,
        "humaneval": 2,
        "multihop": 4,
    }
    by_task = pd.read_csv(run_dir / "summary_by_task.csv").set_index("task")
    # The scripted server solves arithmetic prompts only: the math grader scores them right,
    # the QA grader scores its numeric replies to multi-hop questions wrong.
    assert by_task.loc["arithmetic", "accuracy"] == 1.0
    assert by_task.loc["multihop", "accuracy"] == 0.0
    assert by_task.loc["humaneval", "accuracy"] == 0.0  # no code in the reply
    overall = pd.read_csv(run_dir / "summary.csv")
    assert overall.loc[0, "accuracy"] == 0.4 and overall.loc[0, "problems"] == 10
    assert "Per task:" in (run_dir / "summary.md").read_text()
