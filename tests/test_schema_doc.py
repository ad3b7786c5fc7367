"""docs/schema.md documents exactly the columns a real run writes: calls.parquet,
attempts.parquet, summary.csv, summary_by_task.csv and the W&B samples table."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from smokerun import smoke_run
from wandbfiles import sample_rows

SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "schema.md"


def documented() -> dict[str, set[str]]:
    """Section title -> the backticked names in the first cell of its table rows."""
    sections: dict[str, set[str]] = {}
    title = ""
    for line in SCHEMA.read_text().splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            sections[title] = set()
        elif title and (cell := re.match(r"^\| `([^`]+)` \|", line)):
            sections[title].add(cell.group(1))
    return sections


def as_documented(columns: Iterable[str]) -> set[str]:
    """Column names with every class label folded into the documented `class_<label>`."""
    return {"class_<label>" if c.startswith("class_") else c for c in columns}


def test_schema_doc_lists_exactly_the_columns_written() -> None:
    run_dir = smoke_run()
    docs = documented()
    assert {"calls.parquet", "attempts.parquet", "summary.csv", "summary_by_task.csv",
            "W&B samples table"} <= set(docs)  # fmt: skip
    calls = pd.read_parquet(run_dir / "calls.parquet").columns
    assert as_documented(calls) == docs["calls.parquet"]
    attempts = pd.read_parquet(run_dir / "attempts.parquet").columns
    assert as_documented(attempts) == docs["attempts.parquet"]
    assert set(pd.read_csv(run_dir / "summary.csv").columns) == docs["summary.csv"]
    # summary_by_task.csv and the samples table are documented as "the columns of ..."
    assert set(pd.read_csv(run_dir / "summary_by_task.csv").columns) == docs["summary.csv"]
    samples = {name for row in sample_rows(run_dir) for name in row}
    assert as_documented(samples) == docs["calls.parquet"]
    assert any(c.startswith("class_") for c in calls)  # the pattern row stands for real columns
