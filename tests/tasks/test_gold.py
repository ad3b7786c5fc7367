"""Gold-as-prediction: the reference answer, written as a model would, scores 100%.

Covers every offline task (procedural generators and the packaged HumanEval) through the
same `load_task` and grader the runner uses; hub tasks do the same on fixtures (test_hub.py).
"""

from __future__ import annotations

import pytest

from ttcbench.tasks.registry import load_task
from ttcbench.types import Problem

OFFLINE_TASKS = [
    "arithmetic", "chain_sum", "gsm_symbolic", "family_relationships", "multihop", "humaneval",
]  # fmt: skip


def as_model_output(problem: Problem, family: str) -> str:
    if family == "code":  # a chat model writes the whole function in a fenced block
        return f"Here is the solution.\n```python\n{problem.meta['prompt']}{problem.answer}\n```"
    return f"Let me think step by step.\nThe answer is {problem.answer}."


@pytest.mark.parametrize("name", OFFLINE_TASKS)
def test_gold_as_prediction_scores_every_problem(name: str) -> None:
    task = load_task(name, limit=40, seed=0)
    assert len(task.problems) >= 30
    failures = [
        p.id for p in task.problems if task.grader(as_model_output(p, task.family), p).score != 1.0
    ]
    assert not failures, f"{name}: gold scored wrong on {failures}"


@pytest.mark.parametrize("name", OFFLINE_TASKS)
def test_every_problem_carries_family_and_classes(name: str) -> None:
    task = load_task(name, limit=10, seed=0)
    for problem in task.problems:
        assert problem.classes["family"] == task.family
        assert len(problem.classes) >= 2, problem.classes  # family plus a difficulty knob
    assert len({p.id for p in task.problems}) == len(task.problems)


@pytest.mark.parametrize("name", ["arithmetic", "chain_sum", "multihop"])
def test_generated_tasks_are_deterministic(name: str) -> None:
    first, second = load_task(name, limit=8, seed=3), load_task(name, limit=8, seed=3)
    assert [p.prompt for p in first.problems] == [p.prompt for p in second.problems]
    assert [p.prompt for p in load_task(name, limit=8, seed=4).problems] != [
        p.prompt for p in first.problems
    ]
