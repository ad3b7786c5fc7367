"""The crash-safe sample store of a run, and the shared call cache across runs.

Both are SQLite databases in WAL mode with one transaction per write: a `kill -9` at any
moment loses at most the calls in flight, never a committed row, and never corrupts the
file (SQLite's journal guarantees it). Only this module knows the storage format; the rest
of ttcbench sees `Call` and `Attempt` records and pandas frames.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from ttcbench.types import Attempt, Call

_JSON_COLUMNS = {"classes", "messages"}


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=60, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable across process crashes in WAL mode (only power loss can drop the
    # last commits), at a fraction of FULL's fsync cost.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _columns(record_type: type) -> list[str]:
    return [f.name for f in fields(record_type)]


_CALL_FIELDS = tuple(_columns(Call))
_ATTEMPT_FIELDS = tuple(_columns(Attempt))


def _row(
    record: Any, names: tuple[str, ...], json_at: list[int], encoded: dict[int, str]
) -> list[Any]:
    """A record's column values in `names` order, JSON columns encoded (memoised in
    `encoded` by object id: the caller keeps the objects alive while it is used)."""
    row = [getattr(record, name) for name in names]
    for i in json_at:
        value = row[i]
        text = encoded.get(id(value))
        if text is None:
            text = encoded[id(value)] = json.dumps(value, sort_keys=True)
        row[i] = text
    return row


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    return {k: json.loads(v) if k in _JSON_COLUMNS and v is not None else v for k, v in row.items()}


class SampleStore:
    """Every model call of one run (one row per task, problem and call key) and its attempts.

    A (task, problem, call key) triple appears at most once: re-running after a crash replaces a
    failed call's row instead of adding a second one, so rows are never duplicated. The
    problem is part of the row's identity because two problems may share a prompt (and so
    a call key): each keeps its own row, while the shared cache pays for the sample once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = _connect(path)
        self._lock = threading.Lock()
        call_cols = ", ".join(_columns(Call))
        attempt_cols = ", ".join(_columns(Attempt))
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS calls ({call_cols}, PRIMARY KEY (task, problem_id, key))"
        )
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS attempts ({attempt_cols}, "
            "PRIMARY KEY (task, problem_id, strategy, budget))"
        )
        self._add_new_columns("calls", _columns(Call))
        self._add_new_columns("attempts", _columns(Attempt))

    def _add_new_columns(self, table: str, wanted: list[str]) -> None:
        """Stores written by an older ttcbench gain the fields added since (as NULL), so
        resuming an old run folder keeps working."""
        present = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
        for column in wanted:
            if column not in present:
                self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")

    def get_calls(self, task: str, problem_id: str, keys: Iterable[str]) -> dict[str, Call]:
        """A problem's stored successful calls among `keys` (failed ones are retried)."""
        keys = list(keys)
        found: dict[str, Call] = {}
        for start in range(0, len(keys), 500):  # SQLite caps bound parameters per query
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            cursor = self._conn.execute(
                "SELECT * FROM calls WHERE error IS NULL AND task = ? AND problem_id = ? "
                f"AND key IN ({marks})",
                [task, problem_id, *chunk],
            )
            names = [d[0] for d in cursor.description]
            for values in cursor.fetchall():
                row = _decode(dict(zip(names, values, strict=True)))
                row["cached"] = bool(row["cached"])
                found[row["key"]] = Call(**row)
        return found

    def put_call(self, call: Call) -> None:
        self.put_calls([call])

    def put_calls(self, calls: Sequence[Call]) -> None:
        """Store several calls in one transaction: the samples of one request are all there
        or none is, so a resume re-requests the whole request with its own seed."""
        self._put("calls", _CALL_FIELDS, calls)

    def put_attempts(self, attempts: Sequence[Attempt]) -> None:
        self._put("attempts", _ATTEMPT_FIELDS, attempts)

    def _put(self, table: str, names: tuple[str, ...], records: Sequence[Any]) -> None:
        """Upsert records in one transaction (all or none survive a kill).

        One prepared statement for all rows (`executemany`), and each JSON value encoded
        once per distinct object: a request's samples share their messages and classes,
        which are most of a row's bytes. Rows are encoded lazily, inside the transaction.
        """
        encoded: dict[int, str] = {}  # id -> JSON; `records` keep every value alive meanwhile
        json_at = [i for i, name in enumerate(names) if name in _JSON_COLUMNS]
        with self._lock, self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany(
                _upsert_sql(table, names),
                (_row(record, names, json_at, encoded) for record in records),
            )

    def iter_call_rows(self, chunk: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Call rows in chunks, so exporting a 100k-call run never holds it all in memory."""
        cursor = self._conn.execute("SELECT * FROM calls ORDER BY problem_id, role, sample_index")
        names = [d[0] for d in cursor.description]
        while batch := cursor.fetchmany(chunk):
            yield [_decode(dict(zip(names, values, strict=True))) for values in batch]

    def count_calls(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def count_successful_calls(self) -> int:
        """Calls a re-run reuses (failed ones are requested again)."""
        sql = "SELECT COUNT(*) FROM calls WHERE error IS NULL"
        return int(self._conn.execute(sql).fetchone()[0])

    def count_failed_calls(self) -> int:
        """Calls that failed after their retries: a re-run requests them again."""
        sql = "SELECT COUNT(*) FROM calls WHERE error IS NOT NULL"
        return int(self._conn.execute(sql).fetchone()[0])

    def count_truncated(self) -> tuple[int, int]:
        """(calls cut off at max_tokens, calls with an output): truncation is silent in the
        accuracy columns (a cut-off answer just scores 0), so the run reports it. Search steps
        and thinking chunks (roles `step`, `think`) end at their token cap by design and are
        not counted."""
        cut, answered = self._conn.execute(
            "SELECT COALESCE(SUM(finish_reason = 'length'), 0), COUNT(*) FROM calls "
            "WHERE error IS NULL AND role NOT IN ('step', 'think')"
        ).fetchone()
        return int(cut), int(answered)

    def count_untrusted_grades(self) -> tuple[int, int]:
        """(code grades made without trusted comparison, code grades): the first are rows whose
        tests had to run inside the program's own interpreter, where a program aimed at the
        harness could forge a pass; the run reports how many there are."""
        untrusted, graded = self._conn.execute(
            "SELECT COALESCE(SUM(trusted_compare = 0), 0), COUNT(trusted_compare) FROM calls"
        ).fetchone()
        return int(untrusted), int(graded)

    def calls_frame(self) -> pd.DataFrame:
        return _frame(self._conn, "calls")

    def attempts_frame(self) -> pd.DataFrame:
        return _frame(self._conn, "attempts")

    def export(self, folder: Path) -> list[Path]:
        """Write calls and attempts as Parquet (classes flattened to `class_<name>` columns)."""
        paths = []
        for name, frame in (("calls", self.calls_frame()), ("attempts", self.attempts_frame())):
            path = folder / f"{name}.parquet"
            export_frame(frame).to_parquet(path, index=False)
            paths.append(path)
        return paths

    def close(self) -> None:
        self._conn.close()


_ORDER = {"calls": "problem_id, role, sample_index", "attempts": "strategy, budget, problem_id"}
_RECORDS: dict[str, type] = {"calls": Call, "attempts": Attempt}


def _frame(conn: sqlite3.Connection, table: str) -> pd.DataFrame:
    """A table as a frame with every field of its record type (a column an older ttcbench did
    not write is all None), JSON columns decoded."""
    frame = pd.read_sql_query(f"SELECT * FROM {table} ORDER BY {_ORDER[table]}", conn)
    for column in _JSON_COLUMNS & set(frame.columns):
        frame[column] = frame[column].map(lambda v: json.loads(v) if v else None)
    missing = [c for c in _columns(_RECORDS[table]) if c not in frame]
    return frame.assign(**dict.fromkeys(missing)) if missing else frame


def export_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A calls or attempts frame as its Parquet export holds it: classes as `class_<label>`
    columns, messages as a JSON string."""
    frame = flatten_classes(frame)
    if "messages" in frame:
        frame["messages"] = frame["messages"].map(json.dumps)
    return frame


def read_exported(path: Path, table: str) -> pd.DataFrame:
    """`calls` or `attempts` of the store at `path`, read-only and shaped as the Parquet
    export (`export_frame`): loading a run never writes to its store, which may be in use."""
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=60)
    try:
        return export_frame(_frame(conn, table))
    finally:
        conn.close()


def flatten_classes(frame: pd.DataFrame) -> pd.DataFrame:
    """Spread the `classes` dict column into `class_<label>` string columns for grouping."""
    if "classes" not in frame or frame.empty:
        return frame.drop(columns=["classes"], errors="ignore")
    labels = pd.json_normalize(list(frame["classes"].map(lambda c: c or {})))
    labels.columns = [f"class_{c}" for c in labels.columns]
    labels.index = frame.index
    return pd.concat([frame.drop(columns=["classes"]), labels.astype("string")], axis=1)


@cache
def _upsert_sql(table: str, names: tuple[str, ...]) -> str:
    marks = ", ".join("?" * len(names))
    return f"INSERT OR REPLACE INTO {table} ({', '.join(names)}) VALUES ({marks})"


class CallCache:
    """Successful model outputs shared by every run, keyed by the call key.

    Two runs (or two strategies) that ask for the same (model, messages, sampling, sample
    index, seed) pay for it once. Only successes are cached: an error is never replayed.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = _connect(path)
        self._lock = threading.Lock()
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, model TEXT, payload TEXT)"
        )

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT payload FROM cache WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, model: str, payload: dict[str, Any]) -> None:
        self.put_many([(key, model, payload)])

    def put_many(self, entries: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """Cache several (key, model, payload) entries in one transaction: one request's
        samples are cached together or not at all (a half-cached request would be completed
        by a request with another seed)."""
        with self._lock, self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany(
                "INSERT OR REPLACE INTO cache VALUES (?, ?, ?)",
                [(key, model, json.dumps(payload)) for key, model, payload in entries],
            )

    def close(self) -> None:
        self._conn.close()
