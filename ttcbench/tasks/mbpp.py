"""MBPP (Austin et al. 2021): short Python tasks scored by their asserts.

Loads `google-research-datasets/mbpp` (config `sanitized`, split `test`) by hub name, or a
local file in either published schema, `full` or `sanitized` (`task.data_files`). The prompt
shows the task text and the first assert (the function's name and call shape, as MBPP prompts
do); the score runs every assert, with the data set's `test_imports` / `test_setup_code`, in
the sandbox.
"""

from __future__ import annotations

import ast
import builtins
from typing import Any

from ttcbench.sandbox.pyparse import parse
from ttcbench.types import Problem, TaskError

REQUIRED = ("task_id", "code", "test_list")
"""Both published schemas: `full` (text, test_setup_code, challenge_test_list) and `sanitized`
(prompt, test_imports, source_file)."""


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
    """One MBPP row (either schema) as a problem; also used to grade generations made
    elsewhere."""
    missing = [f for f in REQUIRED if f not in row]
    text = row.get("prompt", row.get("text"))
    if missing or text is None:
        missing += [] if text is not None else ["prompt (sanitized) or text (full)"]
        raise TaskError(f"mbpp row lacks {missing} (fields present: {sorted(row)})")
    asserts = list(row["test_list"])
    entry_point = entry_point_of(row["code"], asserts)
    if entry_point is None:
        raise TaskError(
            f"mbpp task {row['task_id']}: no function of its reference code is called by its "
            f"asserts ({asserts[:1]})"
        )
    setup = "\n".join([*(row.get("test_imports") or []), row.get("test_setup_code") or ""])
    setup = setup.strip() + "\n" if setup.strip() else ""
    code_lines = len([line for line in row["code"].splitlines() if line.strip()])
    return Problem(
        task=spec["name"],
        id=f"mbpp/{row['task_id']}",
        prompt=spec["prompt"].format(prompt=text, example=asserts[0]),
        answer=row["code"],
        classes={"family": "code", "code_lines": _bucket(code_lines), "tests": str(len(asserts))},
        meta={
            "prompt": "",
            "entry_point": entry_point,
            "tests": setup + "\n".join(asserts) + "\n",
            "public_tests": f"{setup}{asserts[0]}\n",  # the assert shown in the prompt
        },
    )


def entry_point_of(code: str, asserts: list[str]) -> str | None:
    """The function under test: the first function the asserts call that the reference code
    defines.  Taken from the code's definitions, not by skipping builtins: real MBPP
    functions shadow builtins (task 126 defines `sum(a, b)`)."""
    defined = _defined_functions(code)
    called = [name for a in asserts for name in _called_names(a)]
    if defined:
        return next((name for name in called if name in defined), None)
    # The reference does not parse (never seen in the published sets): the first non-builtin.
    return next((name for name in called if not hasattr(builtins, name)), None)


def _defined_functions(code: str) -> set[str]:
    try:
        tree = parse(code.replace("\r\n", "\n"))
    except SyntaxError:
        return set()
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def _called_names(assertion: str) -> list[str]:
    """Plain-name calls in source order (asserts wrap the call in set(...), math.isclose(...),
    not ...)."""
    try:
        tree = parse(assertion.strip())
    except SyntaxError:
        return []
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    calls.sort(key=lambda c: (c.lineno, c.col_offset))
    return [c.func.id for c in calls]  # type: ignore[attr-defined]


def _bucket(lines: int) -> str:
    """Reference-solution length: MBPP has no difficulty label, and length tracks it."""
    return "<=5" if lines <= 5 else "6-10" if lines <= 10 else ">10"
