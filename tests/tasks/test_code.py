"""Tests for the code family: extraction, program assembly, sandboxed grading, HumanEval loader.

The gold-as-prediction check runs every HumanEval canonical solution through the real grader
and sandbox: a grader that fails gold answers would silently cap every accuracy we report.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ttcbench.tasks.code import code_key, completion_program, extract_code, grade_code
from ttcbench.tasks.humaneval import load_humaneval
from ttcbench.tasks.registry import read_spec
from ttcbench.types import Grade, Problem, TaskError

ADD = "def add(a, b):\n    return a + b\n"
INDENTED = "   def add(a, b):\n       return a + b\n"


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return load_humaneval(read_spec("humaneval"), limit=None, seed=0)


def _grade_all(problems: list[Problem], answer: Callable[[Problem], str]) -> list[Grade]:
    """Grade one answer per problem, two sandboxes at a time (as the runner's threads would)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda p: grade_code(answer(p), p), problems))


def _failures(problems: list[Problem], grades: list[Grade]) -> str:
    return "; ".join(
        f"{p.id}: {g.details['status']} {g.details['error']}"
        for p, g in zip(problems, grades, strict=True)
        if g.score != 1.0
    )


# --- extraction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (f"Here you go:\n```python\n{ADD}```\nDone.", ADD),
        (f"```py\n{ADD}```", ADD),
        (f"```\n{ADD}```", ADD),
        (f"```Python3\n{ADD}```", ADD),
        (f"1. The code:\n   ```python\n{INDENTED}   ```", ADD),  # inside a markdown list
        (f"```python\n{ADD}", ADD),  # unterminated final fence (hit the token limit)
        (f"```python\n{ADD}\n\n", ADD),
        (f"Sure.\n\n{ADD}\nThis adds the two numbers.", ADD),  # bare code, trailing prose cut
        (f"import math\n{ADD}", f"import math\n{ADD}"),
        (f"```python\n{ADD}\nif __name__ == '__main__':\n    print(input())\n```", ADD),
    ],
)
def test_extract_code_shapes(output: str, expected: str) -> None:
    assert extract_code(output, "add") == expected


def test_extract_code_prefers_the_block_defining_the_entry_point() -> None:
    helper = "def helper(x):\n    # a long helper block, longer than the solution\n" * 3
    output = f"```python\n{helper}```\n```python\n{ADD}```\n```python\nprint(add(1, 2))\n```"
    assert extract_code(output, "add") == ADD
    revised = ADD.replace("a + b", "b + a")
    assert extract_code(f"```python\n{ADD}```\nBetter:\n```python\n{revised}```", "add") == revised
    assert extract_code(output, None) == helper  # no entry point known: the longest block


def test_extract_code_ignores_other_languages_and_prose() -> None:
    assert extract_code(f"```bash\npip install x\n```\n```python\n{ADD}```", "add") == ADD
    assert extract_code("The answer is to add the numbers, from left to right.", "add") is None
    assert extract_code("", "add") is None
    assert extract_code("```python\n\n```", "add") is None


def test_code_key_ignores_formatting_and_comments() -> None:
    assert code_key(ADD) == code_key("def add(a,b):  # sum\n\n    return a+b\n")
    assert code_key(ADD) != code_key(ADD.replace("+", "-"))
    assert len(code_key("def broken(:\n")) == 12


# --- program assembly ----------------------------------------------------------------------


def test_completion_program_body_and_full_forms() -> None:
    prompt = 'from typing import List\n\n\ndef add(a: int, b: int) -> int:\n    """Sum."""\n'
    problem = Problem("t", "0", "", None, meta={"prompt": prompt, "entry_point": "add"})
    assert completion_program("return a + b\n", problem) == prompt + "    return a + b\n"
    assert completion_program("    return a + b\n", problem) == prompt + "    return a + b\n"
    assert completion_program(ADD, problem) == f"from typing import List\n\n\n{ADD}"


# --- grading through the sandbox -----------------------------------------------------------


def test_gold_as_prediction_passes_every_humaneval_problem(problems: list[Problem]) -> None:
    grades = _grade_all(problems, lambda p: f"```python\n{p.meta['prompt']}{p.answer}\n```")
    passed = sum(g.score for g in grades)
    assert passed == len(problems) == 164, (
        f"gold pass rate {passed / len(problems):.1%}; {_failures(problems, grades)}"
    )
    expected = {"passed": True, "status": "passed", "error": None, "trusted_compare": True}
    assert all(g.details == expected for g in grades)  # no test needed the fallback


def test_body_only_completions_pass(problems: list[Problem]) -> None:
    sample = [p for p in problems if p.id in {"HumanEval/0", "HumanEval/10", "HumanEval/81"}]
    grades = _grade_all(sample, lambda p: f"```python\n{p.answer}```")
    assert [g.score for g in grades] == [1.0] * 3, _failures(sample, grades)


def test_signature_without_prompt_helpers_passes(problems: list[Problem]) -> None:
    """HumanEval/10's prompt defines `is_palindrome`; an answer may define only its function."""
    problem = next(p for p in problems if p.id == "HumanEval/10")
    signature = "def make_palindrome(string: str) -> str:\n"
    assert grade_code(f"```python\n{signature}{problem.answer}```", problem).score == 1.0


def _wrong_answers(problem: Problem) -> dict[str, str]:
    """Solutions that must fail: wrong results, or attempts to end the run before the tests."""
    prompt, guess = problem.meta["prompt"], secrets.token_hex(16)
    return {
        "none": f"```python\n{prompt}    return None\n```",
        "exit": f"```python\n{prompt}    return None\n\nexit(0)\n```",
        "os_exit": f"```python\nimport os\n{prompt}    return None\n\nos._exit(0)\n```",
        "sentinel": f"```python\n{prompt}    return None\n\nprint({guess!r})\nexit(0)\n```",
    }


@pytest.mark.parametrize("kind", ["none", "exit", "os_exit", "sentinel"])
def test_wrong_solutions_fail(problems: list[Problem], kind: str) -> None:
    sample = problems[:: len(problems) // 8][:8]
    grades = _grade_all(sample, lambda p: _wrong_answers(p)[kind])
    assert [g.score for g in grades] == [0.0] * len(sample)
    expected = "failed" if kind == "none" else "exited_early"
    assert {g.details["status"] for g in grades} == {expected}
    assert all(g.extracted is not None and len(g.extracted) == 12 for g in grades)


def test_prose_only_output_is_not_run(problems: list[Problem]) -> None:
    grade = grade_code("I am not sure how to solve this.", problems[0])
    assert (grade.extracted, grade.score, grade.details["status"]) == (None, 0.0, "no_code")


# --- loader --------------------------------------------------------------------------------


def test_loader_reads_all_problems_in_task_id_order(problems: list[Problem]) -> None:
    assert [p.id for p in problems] == [f"HumanEval/{i}" for i in range(164)]
    assert all(p.task == "humaneval" and p.answer for p in problems)
    assert all(set(p.classes) == {"family", "tests", "prompt_lines"} for p in problems)
    assert {p.classes["tests"] for p in problems} == {"<=5", "6-10", ">10"}
    assert {p.classes["prompt_lines"] for p in problems} == {"<=10", "11-20", ">20"}
    first = problems[0]
    assert first.meta["entry_point"] == "has_close_elements"
    assert first.meta["prompt"] in first.prompt and "```python" in first.prompt


def test_loader_limit_is_a_prefix_and_seed_is_unused() -> None:
    spec = read_spec("humaneval")
    ids = [p.id for p in load_humaneval(spec, limit=12, seed=0)]
    assert ids == [f"HumanEval/{i}" for i in range(12)]
    assert [p.id for p in load_humaneval(spec, limit=12, seed=7)] == ids


def test_loader_reads_a_local_file(problems: list[Problem], tmp_path: Path) -> None:
    rows = [
        {"task_id": f"Toy/{i}", "prompt": p.meta["prompt"], "canonical_solution": p.answer}
        | {"test": p.meta["test"], "entry_point": p.meta["entry_point"]}
        for i, p in reversed(list(enumerate(problems[:11])))
    ]
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    loaded = load_humaneval(read_spec("humaneval"), limit=None, seed=0, data_files=str(path))
    assert [p.id for p in loaded] == [f"Toy/{i}" for i in reversed(range(11))]  # file order
    assert loaded[-4].meta == problems[3].meta
    path.write_text(json.dumps({"task_id": "Toy/0", "prompt": "x"}) + "\n")
    with pytest.raises(TaskError, match="lacks"):
        load_humaneval(read_spec("humaneval"), limit=None, seed=0, data_files=str(path))
    with pytest.raises(TaskError, match="no such file"):
        load_humaneval(read_spec("humaneval"), None, 0, data_files=str(tmp_path / "nope.jsonl"))


def test_public_examples_are_read_from_arrow_lines_when_a_prompt_has_no_doctests() -> None:
    from ttcbench.tasks.code import doctest_asserts

    prompt = '''def f(xs, flag):
    """Examples:
    f([1, 2], true) ➞ 3
    f([], false) => false
    f(a, b) == 4
    for f([5], true) the output should be 5
    """
'''
    asserts = doctest_asserts(prompt, "f")
    assert asserts.count("assert") == 2
    assert "f([1, 2], True)\n) == (\n3" in asserts and "== (\nFalse\n)" in asserts


@pytest.mark.slow
def test_humaneval_public_examples_cover_most_problems_and_the_reference_passes_them() -> None:
    """Public tests feed self_refine's execution feedback and the unit_tests verifier: the
    reference solution must pass them (HumanEval/47's own docstring example is wrong)."""
    from ttcbench.sandbox import run_tests
    from ttcbench.tasks.code import CODE_LIMITS, completion_program
    from ttcbench.tasks.registry import load_task

    problems = [p for p in load_task("humaneval").problems if p.meta["public_tests"]]
    assert len(problems) >= 105
    failing = [
        p.id
        for p in problems
        if not run_tests(
            completion_program(p.answer, p), p.meta["public_tests"], limits=CODE_LIMITS
        ).passed
    ]
    assert failing == ["HumanEval/47"]
