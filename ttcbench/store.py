"""The crash-safe sample store of a run (the call cache shared across runs: ttcbench/cache.py).

The store is an SQLite database in WAL mode with one transaction per write: a `kill -9` at
any moment loses at most the calls in flight, never a committed row, and never corrupts the
file (SQLite's journal guarantees it). Only this module knows the storage format; the rest
of ttcbench sees `Call` and `Attempt` records and pandas frames.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from ttcbench.store_writer import Work, Writer
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

    Writes are committed by a writer thread (`store_writer`), reads on the caller's
    connection; every read but `get_calls` first waits for the writes queued before it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = _connect(path)
        self._writer = Writer(lambda: _connect(path))
        # Queued writes are committed even if the owner forgets `close` (at exit too).
        self._finalizer = weakref.finalize(self, _close_unwatched, self._writer, path)
        self._problems: set[tuple[str, str]] | None = None
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
        """A problem's stored successful calls among `keys` (failed ones are retried).

        Queued writes are not waited for: the sampler asks for a sample only if no request
        for it is in flight, and a request stays in flight until its rows are committed."""
        if (task, problem_id) not in self._stored_problems():
            return {}  # a fresh problem (every one of a new run): no query
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

    def _stored_problems(self) -> set[tuple[str, str]]:
        """The (task, problem) pairs that have rows, read once, then kept up to date by this
        object's writes (a run folder has one writer: `RunLock`)."""
        if self._problems is None:
            sql = "SELECT DISTINCT task, problem_id FROM calls"
            self._problems = {(task, pid) for task, pid in self._conn.execute(sql)}
        return self._problems

    def _note_problems(self, calls: Sequence[Call]) -> None:
        self._stored_problems().update((call.task, call.problem_id) for call in calls)

    def put_calls(self, calls: Sequence[Call]) -> None:
        """Store several calls in one transaction: the samples of one request are all there
        or none is, so a resume re-requests the whole request with its own seed."""
        self._note_problems(calls)
        self._writer.wait(_upsert("calls", _CALL_FIELDS, list(calls)))

    def queue_calls(
        self, calls: Sequence[Call], on_stored: Callable[[BaseException | None], None]
    ) -> None:
        """`put_calls` without waiting: the writer thread commits the calls (one transaction,
        in queue order), then calls `on_stored(None)`, or with the error, in its own thread.
        A failed write, or an error `on_stored` raises, is raised by this store's next write
        or read (a run never goes on as if it had been stored)."""
        self._note_problems(calls)
        self._writer.submit(_upsert("calls", _CALL_FIELDS, list(calls)), on_stored)

    def put_attempts(self, attempts: Sequence[Attempt]) -> None:
        """Queue attempt rows (one transaction) and return at once: they are committed before
        any later read of this store or its `close`, which raise if they could not be. A kill
        before loses only attempts, which a resume recomputes from the stored calls."""
        self._writer.submit(_upsert("attempts", _ATTEMPT_FIELDS, list(attempts)))

    def flush(self) -> None:
        """Wait until every queued write is committed (raising a failed one's error)."""
        self._writer.flush()

    def _read(self) -> sqlite3.Connection:
        """The reading connection, once the writes queued so far are committed."""
        self._writer.flush()
        return self._conn

    def iter_call_rows(self, chunk: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Call rows in chunks, so exporting a 100k-call run never holds it all in memory."""
        cursor = self._read().execute("SELECT * FROM calls ORDER BY problem_id, role, sample_index")
        names = [d[0] for d in cursor.description]
        while batch := cursor.fetchmany(chunk):
            yield [_decode(dict(zip(names, values, strict=True))) for values in batch]

    def count_calls(self) -> int:
        return int(self._read().execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def count_successful_calls(self) -> int:
        """Calls a re-run reuses (failed ones are requested again)."""
        sql = "SELECT COUNT(*) FROM calls WHERE error IS NULL"
        return int(self._read().execute(sql).fetchone()[0])

    def count_failed_calls(self) -> int:
        """Calls that failed after their retries: a re-run requests them again."""
        sql = "SELECT COUNT(*) FROM calls WHERE error IS NOT NULL"
        return int(self._read().execute(sql).fetchone()[0])

    def count_truncated(self) -> tuple[int, int]:
        """(calls cut off at max_tokens, calls with an output): truncation is silent in the
        accuracy columns (a cut-off answer just scores 0), so the run reports it. Search steps
        and thinking chunks (roles `step`, `think`) end at their token cap by design and are
        not counted."""
        conn = self._read()
        cut, answered = conn.execute(
            "SELECT COALESCE(SUM(finish_reason = 'length'), 0), COUNT(*) FROM calls "
            "WHERE error IS NULL AND role NOT IN ('step', 'think')"
        ).fetchone()
        return int(cut), int(answered)

    def count_untrusted_grades(self) -> tuple[int, int]:
        """(code grades made without trusted comparison, code grades): the first are rows whose
        tests had to run inside the program's own interpreter, where a program aimed at the
        harness could forge a pass; the run reports how many there are."""
        conn = self._read()
        untrusted, graded = conn.execute(
            "SELECT COALESCE(SUM(trusted_compare = 0), 0), COUNT(trusted_compare) FROM calls"
        ).fetchone()
        return int(untrusted), int(graded)

    def calls_frame(self) -> pd.DataFrame:
        return _frame(self._read(), "calls")

    def attempts_frame(self) -> pd.DataFrame:
        return _frame(self._read(), "attempts")

    def export(self, folder: Path) -> list[Path]:
        """Write calls and attempts as Parquet (classes flattened to `class_<name>` columns)."""
        paths = []
        for name, frame in (("calls", self.calls_frame()), ("attempts", self.attempts_frame())):
            path = folder / f"{name}.parquet"
            export_frame(frame).to_parquet(path, index=False)
            paths.append(path)
        return paths

    def close(self) -> None:
        """Commit what is queued (raising if it cannot be), stop the writer, close."""
        try:
            if self._finalizer.detach() is not None:  # not closed yet
                self._writer.close()
        finally:
            self._conn.close()


def _close_unwatched(writer: Writer, path: Path) -> None:
    """Close a store nobody closed (garbage or exit): a write that fails now is reported in
    one line, not as the traceback Python prints for a finalizer that raises (the job has
    already said what failed, e.g. a full disk, in its own words)."""
    try:
        writer.close()
    except Exception as err:
        logging.getLogger("ttcbench").warning("store %s: a queued write failed: %s", path, err)


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


def _upsert(table: str, names: tuple[str, ...], records: list[Any]) -> Work:
    """The write that upserts `records` (the writer runs it inside its transaction).

    One prepared statement for all rows (`executemany`), and each JSON value encoded once
    per distinct object: a request's samples share their messages and classes, which are
    most of a row's bytes. Rows are encoded lazily, in the writer's thread.
    """

    def write(conn: sqlite3.Connection) -> None:
        encoded: dict[int, str] = {}  # id -> JSON; `records` keep every value alive meanwhile
        json_at = [i for i, name in enumerate(names) if name in _JSON_COLUMNS]
        conn.executemany(
            _upsert_sql(table, names),
            (_row(record, names, json_at, encoded) for record in records),
        )

    return write


@cache
def _upsert_sql(table: str, names: tuple[str, ...]) -> str:
    marks = ", ".join("?" * len(names))
    return f"INSERT OR REPLACE INTO {table} ({', '.join(names)}) VALUES ({marks})"
