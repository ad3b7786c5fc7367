"""Where a JSON / JSON Lines data file goes wrong, as `file:line` and what to fix there.

HF `datasets` reads JSON through Arrow, whose errors count rows within a block ("changed
from string to number in row 1"), not lines of the file, and often blame a row after the
bad one. When it fails, this re-reads the file with the json module to name the line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def kind_of(value: Any) -> str | None:
    """The JSON type Arrow cares about (ints and floats mix; null fits any column)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names: dict[type, str] = {str: "string", list: "list", dict: "object"}
    return names.get(type(value), type(value).__name__)


def locate_json_error(path: Path) -> str | None:
    """`file:line: problem; fix` for the first line a JSON (Lines) reader would stumble on,
    or None when the json module finds nothing wrong."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".json":
        try:
            json.loads(text)
            return None
        except json.JSONDecodeError as err:
            if err.msg != "Extra data":  # one document, broken at err.lineno
                return f"{path}:{err.lineno}: not valid JSON ({err.msg} at column {err.colno})"
        # "Extra data": the .json file holds JSON Lines; check it line by line below
    return locate_jsonl_error(path, text)


def locate_jsonl_error(path: Path, text: str) -> str | None:
    """The first line that is not a JSON object, or whose field types differ from the
    earlier rows' (Arrow needs one type per column)."""
    seen: dict[str, tuple[str, int]] = {}  # field -> (its JSON type, the line that set it)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            return (
                f"{path}:{number}: not valid JSON ({err.msg} at column {err.colno}); "
                "fix or remove that line (one JSON object per line)"
            )
        if not isinstance(row, dict):
            return f"{path}:{number}: a row must be a JSON object, got {kind_of(row)}"
        for key, value in row.items():
            kind = kind_of(value)
            if kind is None:
                continue
            first = seen.setdefault(key, (kind, number))
            if first[0] != kind:
                return (
                    f"{path}:{number}: field {key!r} is a {kind} here but a {first[0]} on "
                    f"line {first[1]}; give every row the same type (e.g. quote the value)"
                )
    return None
