"""The gold a call is graded against, as one short string stored on every call row.

A reviewer checks a grade by reading `output`, `extracted`, `target` and `score` side by
side, without reloading the task. For code the gold is hidden tests: the row gets a pointer
to them (task, problem and how many asserts), never the tests themselves, so a published
sample table does not leak a benchmark's tests.
"""

from __future__ import annotations

import re

from ttcbench.types import Problem

__all__ = ["ALIAS_SEPARATOR", "target_of"]

ALIAS_SEPARATOR = " | "
"""Between a QA answer and its aliases: any of them is graded correct."""

_ASSERT = re.compile(r"^\s*assert\b", re.M)


def target_of(problem: Problem) -> str | None:
    """The gold as graded: the answer (with QA aliases when the grader accepts them), or
    for code (problems with an `entry_point`) e.g. `humaneval:HumanEval/0 (7 asserts, hidden)`."""
    meta = problem.meta
    if "entry_point" in meta:
        tests = meta.get("tests") or meta.get("test") or ""
        return f"{problem.task}:{problem.id} ({len(_ASSERT.findall(tests))} asserts, hidden)"
    golds = [problem.answer, *meta.get("aliases", [])]
    unique = list(dict.fromkeys(str(g) for g in golds if g is not None))
    return ALIAS_SEPARATOR.join(unique) if unique else None
