"""The store's batched writes store exactly the rows a plain row-by-row upsert stores.

`SampleStore._put` writes a request's rows with one prepared statement and encodes each
shared JSON value once; the reference below is the straightforward way (one INSERT per row,
every JSON column encoded per row), and the two databases must hold identical values.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ttcbench.store import SampleStore
from ttcbench.types import Attempt, Call


def reference_put(path: Path, table: str, records: list[Call] | list[Attempt]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    with conn:
        conn.execute("BEGIN")
        for record in records:
            row = record.to_row()
            for column in ("classes", "messages"):
                if column in row:
                    row[column] = json.dumps(row[column], sort_keys=True)
            marks = ", ".join("?" * len(row))
            sql = f"INSERT OR REPLACE INTO {table} ({', '.join(row)}) VALUES ({marks})"
            conn.execute(sql, list(row.values()))
    conn.close()


def calls(problem: str, first: int) -> list[Call]:
    messages = [{"role": "user", "content": "What is 2 + 2? é 🙂"}, {"role": "system", "b": "a"}]
    classes = {"level": "3", "family": "algebra"}
    return [
        Call(key=f"{problem}-{i}", run_id="r", task="t", problem_id=problem, classes=classes,
             strategy="majority_vote", role="generate", sample_index=i, seed=None if i % 2 else i,
             model="m", messages_hash="h", messages=messages, output=None if i == 3 else f"{i}",
             extracted=str(i % 2), score=0.5 * (i % 3), cached=bool(i % 2),
             mean_logprob=None if i % 2 else -0.25, error="boom" if i == 3 else None,
             trusted_compare=None, started_at=1.5 + i, finished_at=2.25 + i)
        for i in range(first, first + 4)
    ]  # fmt: skip


def attempts(problem: str) -> list[Attempt]:
    return [
        Attempt(run_id="r", task="t", problem_id=problem, classes={} if k == 1 else {"a": "b"},
                strategy="majority_vote", budget=k, answer=None if k == 2 else "4",
                score=None if k == 2 else 1 / 3, flops=None, sequential_tokens=k / 3)
        for k in (1, 2, 4)
    ]  # fmt: skip


def table_rows(path: Path, table: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    rows = conn.execute(f"SELECT * FROM {table} ORDER BY problem_id, rowid").fetchall()
    conn.close()
    return rows


def test_batched_rows_equal_row_by_row_rows(tmp_path: Path) -> None:
    fast, plain = SampleStore(tmp_path / "fast.sqlite"), SampleStore(tmp_path / "plain.sqlite")
    plain.close()
    batches = [calls("p1", 0), calls("p2", 0), calls("p1", 2)]  # p1's 2, 3 are replaced
    for batch in batches:
        fast.put_calls(batch)
        reference_put(tmp_path / "plain.sqlite", "calls", batch)
    for problem in ("p1", "p2"):
        fast.put_attempts(attempts(problem))
        reference_put(tmp_path / "plain.sqlite", "attempts", attempts(problem))
    fast.put_calls([])  # nothing to write is no error
    fast.close()
    for table in ("calls", "attempts"):
        got = table_rows(tmp_path / "fast.sqlite", table)
        want = table_rows(tmp_path / "plain.sqlite", table)
        assert got == want and len(got) > 0
        assert [[type(v) for v in row] for row in got] == [[type(v) for v in row] for row in want]


def test_stored_calls_read_back_equal(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "store.sqlite")
    batch = calls("p", 0)
    store.put_calls(batch)
    found = store.get_calls("t", "p", [c.key for c in batch])
    assert [found[c.key] for c in batch if c.error is None] == [c for c in batch if not c.error]
    store.close()
