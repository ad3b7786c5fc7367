"""MBPP on invented rows in the hub's exact schema (sanitized config), and on real rows.

The real rows (tests/tasks/fixtures/) are copied verbatim from the published data set,
google-research/google-research `mbpp/`: `mbpp_full_rows.jsonl` holds lines of `mbpp.jsonl`
(the `full` schema; each line checked identical to the repository's copy at commit
2251e8c67a7fe7d6348714967ee101080b28e956), `mbpp_sanitized_rows.json` rows of
`sanitized-mbpp.json` (the `sanitized` schema; commit 30adf0ec5f35f9609c2f1d896005e184195d9146).
They cover what invented rows might miss: task 126 defines `sum`, shadowing the builtin;
task 927's `test_setup_code` builds trees from the solution's own `Node` class (so it runs the
fallback way); task 11 has `challenge_test_list` (not graded); sanitized task 2 compares with
`set(...)` and task 82 needs its `test_imports` (`math.isclose`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ttcbench.tasks.registry import Task, load_task
from ttcbench.types import TaskError

ROWS = [
    {
        "source_file": "fixture.ipynb",
        "task_id": 901,
        "prompt": "Write a function to return the sum of the squares of a list of numbers.",
        "code": "def sum_squares(xs):\n    return sum(x * x for x in xs)\n",
        "test_imports": [],
        "test_list": [
            "assert sum_squares([1, 2, 3]) == 14",
            "assert sum_squares([]) == 0",
            "assert sum_squares([-2]) == 4",
        ],
    },
    {
        "source_file": "fixture.ipynb",
        "task_id": 902,
        "prompt": "Write a python function to compute the hypotenuse of a right triangle.",
        "code": "import math\ndef hypotenuse(a, b):\n    return math.sqrt(a * a + b * b)\n",
        "test_imports": ["import math"],
        "test_list": [
            "assert math.isclose(hypotenuse(3, 4), 5.0)",
            "assert math.isclose(hypotenuse(5, 12), 13.0)",
        ],
    },
    {
        "source_file": "fixture.ipynb",
        "task_id": 903,
        "prompt": "Write a function to check whether a string reads the same backwards.",
        "code": "def is_mirror(s):\n    return s == s[::-1]\n",
        "test_imports": [],
        "test_list": ["assert is_mirror('level')", "assert not is_mirror('ab')"],
    },
]


@pytest.fixture
def fixture_file(tmp_path: Path) -> Path:
    path = tmp_path / "mbpp.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return path


def test_loads_rows_with_ids_classes_and_the_first_assert_in_the_prompt(fixture_file: Path):
    task = load_task("mbpp", data_files=str(fixture_file))
    assert [p.id for p in task.problems] == ["mbpp/901", "mbpp/902", "mbpp/903"]
    first = task.problems[0]
    assert "sum of the squares" in first.prompt and ROWS[0]["test_list"][0] in first.prompt
    assert ROWS[0]["test_list"][1] not in first.prompt  # the other asserts stay hidden
    assert first.classes == {"family": "code", "code_lines": "<=5", "tests": "3"}
    assert task.problems[1].meta["entry_point"] == "hypotenuse"
    assert task.problems[2].meta["entry_point"] == "is_mirror"  # `assert not f(...)`


def test_gold_as_prediction_and_wrong_code(fixture_file: Path) -> None:
    task = load_task("mbpp", data_files=str(fixture_file))
    for problem in task.problems:
        gold = task.grader(f"Sure:\n```python\n{problem.answer}```", problem)
        assert gold.score == 1.0, (problem.id, gold.details)
    wrong = task.grader("```python\ndef sum_squares(xs):\n    return 14\n```", task.problems[0])
    assert wrong.score == 0.0 and wrong.details["status"] == "failed"


def test_missing_field_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({k: v for k, v in ROWS[0].items() if k != "test_list"}) + "\n")
    with pytest.raises(TaskError, match="test_list"):
        load_task("mbpp", data_files=str(path))


FIXTURES = Path(__file__).with_name("fixtures")
FULL_FILE = FIXTURES / "mbpp_full_rows.jsonl"
SANITIZED_FILE = FIXTURES / "mbpp_sanitized_rows.json"
ENTRY_POINTS = {  # task id -> the function its asserts test
    "full": {"mbpp/11": "remove_Occ", "mbpp/126": "sum", "mbpp/927": "max_height"},
    "sanitized": {
        "mbpp/2": "similar_elements",
        "mbpp/82": "volume_sphere",
        "mbpp/88": "freq_count",
        "mbpp/126": "sum",
        "mbpp/737": "check_str",
    },
}
WRONG = {  # a plausible wrong answer per task: it must fail
    "mbpp/11": "def remove_Occ(s, ch):\n    return s.replace(ch, '', 1)\n",  # first only
    "mbpp/126": "def sum(a, b):\n    return a + b\n",
    "mbpp/927": "def max_height(node):\n    return 3\n",
    "mbpp/2": "def similar_elements(a, b):\n    return tuple(set(a) | set(b))\n",
    "mbpp/82": "def volume_sphere(r):\n    return 4 * 3.14 * r ** 3\n",
    "mbpp/88": "def freq_count(xs):\n    return {x: 1 for x in xs}\n",
    "mbpp/737": "def check_str(s):\n    return s[0] in 'aeiou'\n",
}


def real_task(schema: str) -> Task:
    return load_task("mbpp", data_files=str(FULL_FILE if schema == "full" else SANITIZED_FILE))


def real_cases() -> list[Any]:
    cases = []
    for schema in ("full", "sanitized"):
        for problem_id in ENTRY_POINTS[schema]:
            # 88 returns a Counter, 737 a re.Match (`assert check_str(...)`): both must pass
            cases.append(pytest.param(schema, problem_id, id=f"{schema}-{problem_id}"))
    return cases


@pytest.mark.parametrize("schema", ["full", "sanitized"])
def test_real_rows_load_with_their_entry_points(schema: str) -> None:
    problems = real_task(schema).problems
    assert {p.id: p.meta["entry_point"] for p in problems} == ENTRY_POINTS[schema]
    by_id = {p.id: p for p in problems}
    assert "sum of common divisors" in by_id["mbpp/126"].prompt
    assert "assert sum(10,15) == 6" in by_id["mbpp/126"].prompt
    if schema == "full":
        assert by_id["mbpp/927"].meta["tests"].startswith("root = Node(1)")  # test_setup_code
        assert "hellolloll" not in by_id["mbpp/11"].meta["tests"]  # challenge tests: not graded
    else:
        assert by_id["mbpp/82"].meta["tests"].startswith("import math\n")  # test_imports
        assert "set(similar_elements(" in by_id["mbpp/2"].meta["tests"]


@pytest.mark.parametrize(("schema", "problem_id"), real_cases())
def test_real_reference_passes_and_a_wrong_answer_fails(schema: str, problem_id: str) -> None:
    task = real_task(schema)
    problem = next(p for p in task.problems if p.id == problem_id)
    wrong = task.grader(f"```python\n{WRONG[problem_id]}```", problem)
    assert wrong.score == 0.0, wrong.details
    gold = task.grader(f"Here is the function:\n```python\n{problem.answer}\n```", problem)
    assert gold.score == 1.0, gold.details
    # Tests that build the solution's own objects (927's Node) cannot be split off.
    assert gold.details["trusted_compare"] is (problem_id != "mbpp/927")


@pytest.mark.parametrize("schema", ["full", "sanitized"])
def test_row_without_prompt_or_text_names_the_missing_field(schema: str, tmp_path: Path) -> None:
    if schema == "full":
        row = json.loads(FULL_FILE.read_text().splitlines()[1])  # task 126
        del row["text"]
    else:
        row = json.loads(SANITIZED_FILE.read_text())[3]  # task 126
        del row["prompt"]
    assert row["task_id"] == 126 and "prompt" not in row and "text" not in row
    path = tmp_path / "no_text.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(TaskError, match=r"prompt \(sanitized\) or text \(full\)"):
        load_task("mbpp", data_files=str(path))
