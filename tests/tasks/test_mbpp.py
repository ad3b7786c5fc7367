"""MBPP on invented fixture rows in the hub's exact schema (sanitized config)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttcbench.tasks.registry import load_task
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
