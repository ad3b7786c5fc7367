"""MBPP (Austin et al. 2021), sanitized split: short Python tasks scored by their asserts.

Loads `google-research-datasets/mbpp` (config `sanitized`, split `test`) by hub name, or the
same schema from a local file (`task.data_files`). The prompt shows the task text and the
first assert (the function's name and call shape, as MBPP prompts do); the score runs every
assert, with the data set's `test_imports`, in the sandbox.
"""

from __future__ import annotations

import ast
import builtins
from typing import Any

from ttcbench.types import Problem, TaskError

REQUIRED = ("task_id", "prompt", "code", "test_list")


def load_mbpp(
    spec: dict[str, Any], limit: int | None, seed: int, data_files: str | None = None
) -> list[Problem]:
    """The first `limit` problems in the data set's order (seed unused: order is canonical)."""
    rows = _rows(spec, data_files)
    return [problem_from_row(spec, row) for row in rows[:limit]]


def _rows(spec: dict[str, Any], data_files: str | None) -> list[dict[str, Any]]:
    from ttcbench.tasks.registry import read_rows

    if data_files is not None:
        return read_rows(data_files)
    import datasets

    hub = spec["hub"]
    try:
        return list(datasets.load_dataset(hub["path"], hub.get("name"), split=hub["split"]))
    except Exception as err:
        raise TaskError(
            f"cannot load {hub['path']} from the hub ({type(err).__name__}); offline, pass "
            "task.data_files=<a local JSONL in the same schema>"
        ) from err


def problem_from_row(spec: dict[str, Any], row: dict[str, Any]) -> Problem:
    """One MBPP row as a problem; also used to grade generations made elsewhere."""
    missing = [f for f in REQUIRED if f not in row]
    if missing:
        raise TaskError(f"mbpp row lacks {missing} (fields present: {sorted(row)})")
    asserts = list(row["test_list"])
    entry_point = _called_function(asserts[0]) if asserts else None
    if entry_point is None:
        raise TaskError(f"mbpp task {row['task_id']}: no function call in its first assert")
    imports = "\n".join(row.get("test_imports") or [])
    code_lines = len([line for line in row["code"].splitlines() if line.strip()])
    return Problem(
        task=spec["name"],
        id=f"mbpp/{row['task_id']}",
        prompt=spec["prompt"].format(prompt=row["prompt"], example=asserts[0]),
        answer=row["code"],
        classes={"family": "code", "code_lines": _bucket(code_lines), "tests": str(len(asserts))},
        meta={
            "prompt": "",
            "entry_point": entry_point,
            "tests": f"{imports}\n" + "\n".join(asserts) + "\n",
            "public_tests": f"{imports}\n{asserts[0]}\n",  # the assert shown in the prompt
        },
    )


def _called_function(assertion: str) -> str | None:
    """The function under test: the first plain-name call that is not a builtin (asserts
    wrap it in set(...), math.isclose(...), not ...)."""
    try:
        tree = ast.parse(assertion)
    except SyntaxError:
        return None
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    names = [c.func.id for c in sorted(calls, key=lambda c: (c.lineno, c.col_offset))]  # type: ignore[attr-defined]
    return next((name for name in names if not hasattr(builtins, name)), None)


def _bucket(lines: int) -> str:
    """Reference-solution length: MBPP has no difficulty label, and length tracks it."""
    return "<=5" if lines <= 5 else "6-10" if lines <= 10 else ">10"
