"""self_refine: anytime rounds from one run, stop on the critic's verdict, exact call counts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fakeserver import FakeOpenAI, solve_arithmetic

import ttcbench
from ttcbench.store import SampleStore
from ttcbench.tasks.registry import load_task


def scripted(accept_after_revision: bool):
    """Drafts are wrong, critiques say WRONG until a revision exists, revisions are right."""

    def reply(body: dict) -> str:
        messages = body["messages"]
        last = messages[-1]["content"]
        if last.startswith("Review your answer"):
            revised = messages[1]["content"].startswith("Step by step")  # a revision's text
            return "VERDICT: CORRECT" if revised and accept_after_revision else "VERDICT: WRONG"
        if last.startswith("Using this feedback"):
            return solve_arithmetic({"messages": messages[:1]})
        return "I think the answer is 0."

    return reply


def run(results: Path, server: FakeOpenAI, *extra: str) -> Path:
    return ttcbench.run(
        [f"results_dir={results}", "strategy=self_refine", "task.limit=2", "logger=none",
         "budget.values=[1,2,3,4]", "model=llamacpp_server", "model.name=fake",
         f"model.api_base={server.api_base}", *extra]
    )  # fmt: skip


def test_rounds_are_anytime_and_stop_when_the_critic_accepts(results: Path) -> None:
    with FakeOpenAI(reply=scripted(accept_after_revision=True)) as server:
        run_dir = run(results, server)
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    # Per problem: draft, critique, revision, critique (accepted): 4 calls, none at budget 4.
    assert calls.groupby("role").size().to_dict() == {"critique": 4, "generate": 2, "revise": 2}
    assert len(server.requests) == 8
    attempts = SampleStore(run_dir / "store.sqlite").attempts_frame()
    by_budget = attempts.groupby("budget")[["score", "calls"]].mean()
    assert by_budget["score"].to_dict() == {1: 0.0, 2: 1.0, 3: 1.0, 4: 1.0}
    assert by_budget["calls"].to_dict() == {1: 1.0, 2: 3.0, 3: 4.0, 4: 4.0}
    # Sequential: every call waits for the previous one.
    row = attempts[attempts["budget"] == 4].iloc[0]
    assert row["sequential_tokens"] == row["prompt_tokens"] + row["completion_tokens"]


def test_without_early_stop_every_round_costs_a_critique_and_a_revision(results: Path) -> None:
    with FakeOpenAI(reply=scripted(accept_after_revision=False)) as server:
        run_dir = run(results, server, "strategy.stop_when_correct=false")
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert calls.groupby("role").size().to_dict() == {"critique": 6, "generate": 2, "revise": 6}
    summary = pd.read_csv(run_dir / "summary.csv")
    assert list(summary["calls"]) == [1.0, 3.0, 5.0, 7.0]  # 1 + 2 (r - 1)


def test_code_critique_is_execution_feedback_on_public_tests_only() -> None:
    from ttcbench.strategies.self_refine import execution_critique
    from ttcbench.types import Call

    problem = next(p for p in load_task("humaneval").problems if p.id == "HumanEval/0")
    assert "has_close_elements" in problem.meta["public_tests"]
    assert problem.meta["public_tests"] not in problem.meta["test"]  # not the hidden tests

    def draft(text: str) -> Call:
        return Call("k", "r", "humaneval", problem.id, {}, "self_refine", "generate", 0, 0,
                    "m", "h", [], output=text)  # fmt: skip

    wrong = "```python\ndef has_close_elements(numbers, threshold):\n    return True\n```"
    assert "public tests fail" in execution_critique(problem, draft(wrong))
    right = f"```python\n{problem.meta['prompt']}{problem.answer}\n```"
    assert "VERDICT: CORRECT" in execution_critique(problem, draft(right))
    assert "No Python code" in execution_critique(problem, draft("no idea"))


@pytest.mark.slow
def test_self_refine_on_the_embedded_model(results: Path) -> None:
    run_dir = ttcbench.run(
        [f"results_dir={results}", "strategy=self_refine", "task.limit=2", "logger=none",
         "budget.values=[1,2]", "sampling.max_tokens=48"]
    )  # fmt: skip
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    per_problem = calls.groupby("problem_id").size()
    assert per_problem.between(2, 3).all()  # draft + critique (+ revision unless accepted)
    assert set(calls["role"]) <= {"generate", "critique", "revise"}
    summary = pd.read_csv(run_dir / "summary.csv")
    assert summary["accuracy"].between(0, 1).all() and list(summary["budget"]) == [1, 2]
