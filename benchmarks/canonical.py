"""Canonical pass rates: each reference solution graded as if a model had written it.

For HumanEval (the packaged 164 problems) and for each MBPP file given with ``--mbpp`` (the
published `full` JSON Lines or `sanitized` JSON schema), every problem's reference code goes,
in a ```python fenced block, through the task's own grader (``ttcbench.tasks.code.grade_code``,
hence ``ttcbench.sandbox.run_tests``), as the runner grades a model's answer.  Prints, per
data set: passed/total, how many runs the trusted test process judged (``trusted_compare``
True) and how many fell back to one interpreter (False, with the sandbox's reason), each
failure with its status and error, and programs per second.

A reference that fails is either a known defect of the data (a wrong expected value, a test
relying on dict or set order) or a sandbox defect; ``--diagnose`` reruns each failure in the
fallback mode and in a plain, unsandboxed interpreter so the two can be told apart.

Usage: python benchmarks/canonical.py [--mbpp mbpp.jsonl --mbpp sanitized-mbpp.json]
       [--workers 2] [--no-humaneval] [--diagnose]
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ttcbench.tasks.code as code_grader
from ttcbench.sandbox import ExecutionResult, run_tests
from ttcbench.tasks.registry import load_task
from ttcbench.types import Problem

_LAST = threading.local()
_original_run_tests = code_grader.run_tests


def _recording_run_tests(*args: Any, **kwargs: Any) -> ExecutionResult:
    """The grader's own ``run_tests``, keeping its result (the grade drops ``notes``)."""
    result = _original_run_tests(*args, **kwargs)
    _LAST.result, _LAST.call = result, (args, kwargs)
    return result


code_grader.run_tests = _recording_run_tests  # type: ignore[assignment]


def gold_output(problem: Problem) -> str:
    """The reference solution as a chat model writes it (as tests/tasks/test_gold.py does)."""
    return f"Here is the solution.\n```python\n{problem.meta['prompt']}{problem.answer}\n```"


@dataclass
class Outcome:
    problem: Problem
    details: dict[str, Any]
    result: ExecutionResult | None
    call: tuple[tuple[Any, ...], dict[str, Any]] | None


@dataclass
class Report:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0


def grade_all(name: str, task: Any, workers: int) -> Report:
    def one(problem: Problem) -> Outcome:
        _LAST.result = _LAST.call = None
        grade = task.grader(gold_output(problem), problem)
        return Outcome(problem, dict(grade.details), _LAST.result, _LAST.call)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        outcomes = list(pool.map(one, task.problems))
    return Report(name, outcomes, time.perf_counter() - started)


def unsandboxed(solution: str, tests: str, timeout_s: float = 20.0) -> str:
    """Solution then tests in one plain interpreter: 'passed' or the last error line."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(solution + "\n\n" + tests)
    try:
        proc = subprocess.run(
            [sys.executable, handle.name], capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return "timeout"
    finally:
        Path(handle.name).unlink()
    if proc.returncode == 0:
        return "passed"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return (lines[-1] if lines else f"exit {proc.returncode}")[:160]


def diagnose(outcome: Outcome) -> str:
    """How the same program and tests fare in the fallback mode and without any sandbox."""
    if outcome.call is None:
        return "not run"
    (solution, tests), kwargs = outcome.call
    fallback = run_tests(solution, tests, limits=kwargs.get("limits", code_grader.CODE_LIMITS))
    plain = unsandboxed(solution, tests)
    return f"fallback mode: {fallback.status}; unsandboxed python: {plain}"


def print_report(report: Report, diagnose_failures: bool) -> None:
    outcomes = report.outcomes
    passed = sum(o.details.get("passed") is True for o in outcomes)
    trusted = collections.Counter(o.details.get("trusted_compare") for o in outcomes)
    rate = len(outcomes) / report.wall_s if report.wall_s else float("nan")
    print(f"\n== {report.name}")
    print(f"passed {passed}/{len(outcomes)} ({100 * passed / max(1, len(outcomes)):.1f}%)")
    print(
        f"trusted_compare: True {trusted[True]}, False {trusted[False]}"
        + (f", None {trusted[None]}" if trusted[None] else "")
    )
    print(f"{len(outcomes)} programs in {report.wall_s:.1f} s: {rate:.1f} programs/s")
    reasons = collections.Counter(
        note for o in outcomes if o.result is not None for note in o.result.notes
    )
    if reasons:
        print("fallback reasons:")
        for note, count in reasons.most_common():
            ids = [o.problem.id for o in outcomes if o.result and note in o.result.notes]
            print(f"  {count:4d}  {note}  [{', '.join(ids[:12])}{' ...' if len(ids) > 12 else ''}]")
    failures = [o for o in outcomes if o.details.get("passed") is not True]
    if failures:
        print("failures:")
    for o in failures:
        trust = o.details.get("trusted_compare")
        print(f"  {o.problem.id}: {o.details.get('status')} (trusted_compare {trust}): "
              f"{o.details.get('error')}")  # fmt: skip
        if diagnose_failures:
            print(f"      {diagnose(o)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbpp", action="append", default=[], help="an MBPP file (repeatable)")
    parser.add_argument("--workers", type=int, default=2, help="programs graded at once")
    parser.add_argument("--no-humaneval", action="store_true")
    parser.add_argument("--diagnose", action="store_true", help="rerun failures two other ways")
    args = parser.parse_args(argv)
    tasks: list[tuple[str, Any]] = []
    if not args.no_humaneval:
        tasks.append(("HumanEval (packaged)", load_task("humaneval")))
    for path in args.mbpp:
        tasks.append((f"MBPP {path}", load_task("mbpp", data_files=path)))
    for name, task in tasks:
        print_report(grade_all(name, task, args.workers), args.diagnose)


if __name__ == "__main__":
    main()
