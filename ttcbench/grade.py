"""`ttcbench-grade TASK IN.jsonl [-o OUT.jsonl]`: grade generations made elsewhere.

Each input row carries the data set's own fields (named as on the hub) plus `output`, the
model's text. Problems are built by the task's own loader from the same file and graded by
the task's own grader, exactly as in a run, so scores are comparable with ttcbench runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttcbench.tasks.registry import load_task
from ttcbench.types import Grade, TaskError, TtcbenchError


@dataclass(frozen=True)
class GradeReport:
    rows: list[dict[str, Any]]
    accuracy: float
    mean_f1: float | None
    out_path: Path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise TaskError(f"cannot read {path}: no such file")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise TaskError(f"{path}:{number}: not JSON ({err.msg})") from err
    return rows


def graded_row(row: dict[str, Any], grade: Grade, family: str) -> dict[str, Any]:
    """The input row plus what the grader says (`f1` for QA; `passed`, `error` and
    `trusted_compare` for code)."""
    out = {**row, "extracted": grade.extracted, "score": grade.score}
    if family == "qa":
        out["f1"] = grade.details.get("f1")
    if family == "code":
        out["passed"] = grade.details.get("passed")
        out["error"] = grade.details.get("error")
        out["trusted_compare"] = grade.details.get("trusted_compare")
    return out


def grade_file(task_name: str, path: Path, out_path: Path | None = None) -> GradeReport:
    """Grade every row of `path` and write them back with their grades to `out_path`."""
    rows = read_jsonl(path)
    missing = [i for i, row in enumerate(rows) if not isinstance(row.get("output"), str)]
    if missing:
        raise TaskError(f"{path}: rows {missing[:5]} lack an `output` string (the model's text)")
    task = load_task(task_name, data_files=str(path))
    if len(task.problems) != len(rows):
        raise TaskError(f"{path}: {len(rows)} rows gave {len(task.problems)} problems")
    # Code runs in sandbox processes and math-verify is thread-safe here: two workers fill
    # the machine without oversubscribing it.
    with ThreadPoolExecutor(max_workers=2) as pool:
        grades = list(pool.map(task.grader, [r["output"] for r in rows], task.problems))
    graded = [graded_row(r, g, task.family) for r, g in zip(rows, grades, strict=True)]
    out_path = out_path or path.with_suffix(".graded.jsonl")
    out_path.write_text("".join(json.dumps(row) + "\n" for row in graded))
    f1 = [g.details["f1"] for g in grades if "f1" in g.details]
    accuracy = sum(g.score for g in grades) / len(grades) if grades else 0.0
    return GradeReport(graded, accuracy, sum(f1) / len(f1) if f1 else None, out_path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ttcbench-grade", description=__doc__.splitlines()[0])
    parser.add_argument("task", help="task name, as in tasks/<name>.yaml (e.g. gsm8k, humaneval)")
    parser.add_argument("input", type=Path, help="JSONL: the data set's fields plus `output`")
    parser.add_argument("-o", "--output", type=Path, help="default: INPUT with .graded.jsonl")
    args = parser.parse_args(argv)
    try:
        report = grade_file(args.task, args.input, args.output)
    except TtcbenchError as err:
        print(f"ttcbench-grade: error: {err}", file=sys.stderr)
        sys.exit(2)
    f1 = f", mean F1 {report.mean_f1:.3f}" if report.mean_f1 is not None else ""
    print(f"{args.task}: accuracy {report.accuracy:.3f} over {len(report.rows)} rows{f1}; "
          f"graded rows written to {report.out_path}")  # fmt: skip


if __name__ == "__main__":
    main()
