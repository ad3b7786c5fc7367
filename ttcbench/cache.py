"""The call cache shared by every run: a folder of SQLite shards, one per writing job.

Why shards: a single SQLite file in WAL mode coordinates its writers through a shared-memory
file (`-shm`) that only works on one host, so jobs on several hosts sharing a results folder
over NFS could corrupt it. Here no file is written by two processes: each job writes its own
shard (rollback journal, which needs no shared memory) and opens everyone else's read-only
(`mode=ro` never writes, not even to roll back a crashed writer's journal). Keys are content
hashes of (model, messages, sampling, index, seed), so one key in two shards holds an
equivalent sample: duplicates are harmless, and `ttcbench-cache merge` compacts them away.

A cache folder `D` holds:
- `D/<host>-<pid>-<random>.sqlite`: a shard, tables `cache(key, model, payload)` and
  `meta(name, value)` (its writer, and `closed` once the writer is done with it);
- `D/<same name>.lock`: flock-ed by the shard's writer while it lives (a same-host merge
  tells a dead writer from a live one by it);
- `D.sqlite` (next to the folder): the single-file cache of older ttcbench, read as one more
  shard so nobody's paid samples are lost; `ttcbench-cache merge` folds it in.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import resource
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, model TEXT, payload TEXT)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)",
)
MANY_SHARDS = 64  # past this, every cache miss reads that many files: suggest a merge
REFRESH_S = 5.0  # how often a job looks for shards that appeared since it started


def cache_dir(path: Path) -> Path:
    """The shard folder `cache.path` names. An older config's file path `X.sqlite` stands for
    the folder `X` next to it (the file itself keeps serving as the legacy shard)."""
    path = Path(path)
    return path.with_suffix("") if path.suffix == ".sqlite" and not path.is_dir() else path


def legacy_file(folder: Path) -> Path:
    """Where the single-file cache of older ttcbench lives for this folder (`D.sqlite`)."""
    return folder.with_name(folder.name + ".sqlite")


def shard_paths(folder: Path) -> list[Path]:
    """Every complete shard of the folder, legacy file included (oldest name order)."""
    shards = sorted(folder.glob("*.sqlite")) if folder.is_dir() else []
    legacy = legacy_file(folder)
    return shards + ([legacy] if legacy.is_file() else [])


def host_name() -> str:
    return "".join(c if c.isalnum() or c in "._" else "_" for c in socket.gethostname())


def new_shard_name(prefix: str = "") -> str:
    """Unique across hosts and processes: host, pid, and random bits against pid reuse."""
    return f"{prefix}{host_name()}-{os.getpid()}-{secrets.token_hex(4)}"


def writer_meta() -> dict[str, str]:
    return {"host": host_name(), "pid": str(os.getpid()), "created": _now()}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def create_shard(path: Path, meta: dict[str, str]) -> None:
    """Make an empty shard at `path` (schema and writer record), in one unsynced transaction:
    it is made under a temporary name, and a crash leaves only that temporary file."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        for statement in SCHEMA:
            conn.execute(statement)
        conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())
        conn.execute("COMMIT")
    finally:
        conn.close()


def read_meta(conn: sqlite3.Connection, schema: str = "main") -> dict[str, str]:
    """A shard's meta table ({} for the legacy file, which has none)."""
    try:
        return dict(conn.execute(f"SELECT name, value FROM {schema}.meta").fetchall())
    except sqlite3.OperationalError:
        return {}


def open_read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes `path` (fails if the file is gone or not a shard)."""
    conn = sqlite3.connect(
        f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=60, check_same_thread=False
    )
    try:
        conn.execute("SELECT 1 FROM cache LIMIT 1").fetchall()
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def writer_host(path: Path) -> str:
    """The host of a shard's writer, from its name `[merged-]<host>-<pid>-<random>` (readable
    even when the file is not)."""
    return path.stem.rsplit("-", 2)[0].removeprefix("merged-")


def claim_writer(path: Path) -> int | None:
    """Take a same-host shard's writer lock: an fd holding it (the writer is gone), or None
    (it lives). A shard without a lock file was closed (the lock goes after the mark)."""
    try:
        fd = os.open(path.with_suffix(".lock"), os.O_RDWR)
    except FileNotFoundError:
        return os.open(os.devnull, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def roll_back(path: Path) -> None:
    """Open a dead writer's shard for writing once, so SQLite rolls back the hot journal a
    kill mid-commit left (read-only connections cannot, and refuse to read). The caller holds
    the writer's lock: still one writer at a time, on the writer's own host."""
    if path.with_name(path.name + "-journal").exists():
        uri = f"{path.absolute().as_uri()}?mode=rw"  # never create: it may be merged away
        try:
            with closing(sqlite3.connect(uri, uri=True, timeout=60)) as conn:
                conn.execute("SELECT COUNT(*) FROM cache").fetchall()
        except sqlite3.Error as error:
            log.warning("cannot recover cache shard %s: %s", path, error)


def open_shard(path: Path) -> sqlite3.Connection | None:
    """A read-only connection to another job's shard, or None for now: it vanished under a
    merge, or its writer died mid-commit on another host (a merge there recovers it). A
    writer that died on this host is recovered here, holding its lock."""
    try:
        return open_read_only(path)
    except sqlite3.Error as error:
        log.debug("cache shard %s skipped: %s", path, error)
    if writer_host(path) != host_name() or (fd := claim_writer(path)) is None:
        return None
    try:
        roll_back(path)
        return open_read_only(path)
    except sqlite3.Error:
        return None
    finally:
        os.close(fd)


class _OwnShard:
    """The one shard this job writes: created on the first `put` (a job that caches nothing
    leaves no file) under a temporary name and renamed in complete, so readers and merges
    never see a shard without its tables or writer record."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        name = new_shard_name()
        self.lock_path = folder / f"{name}.lock"
        # The lock is taken before the shard exists: a visible shard's lock is always held
        # while its writer lives. A sidecar, because SQLite's own fcntl locks on the shard
        # would be dropped by any close of the file in this process.
        self._lock_fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path = folder / f"{name}.sqlite"
        temp = folder / f".{name}.sqlite.tmp"
        create_shard(temp, writer_meta())
        os.rename(temp, self.path)
        self.conn = sqlite3.connect(
            self.path, timeout=60, check_same_thread=False, isolation_level=None
        )
        # Rollback journal: no shared memory, so readers on other hosts see consistent
        # pages. TRUNCATE, not DELETE: a commit then leaves the folder's entries (and its
        # mtime, which readers watch for new shards) alone. synchronous=OFF: a killed
        # process never loses a commit or harms the file (SQLite's guarantee), and a commit
        # costs ~0.1 ms instead of two fsyncs (~8 ms here), while lookups wait on commits.
        # Only an OS crash mid-write could damage this shard: readers and merges then skip
        # it (a cache miss), and the run's own store still holds the samples. Closing
        # syncs everything (FULL), so a closed shard is durable.
        self.conn.execute("PRAGMA journal_mode=TRUNCATE")
        self.conn.execute("PRAGMA synchronous=OFF")

    def close(self) -> None:
        """Mark the shard closed (merges may then take it) or remove it if it is empty."""
        empty = self.conn.execute("SELECT NOT EXISTS (SELECT 1 FROM cache)").fetchone()[0]
        if not empty:
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('closed', ?)", (_now(),))
        self.conn.execute("PRAGMA journal_mode=DELETE")  # removes the empty journal file
        self.conn.close()
        if empty:
            self.path.unlink(missing_ok=True)
        self.lock_path.unlink(missing_ok=True)
        os.close(self._lock_fd)  # releases the flock


class CallCache:
    """Successful model outputs shared by every run, keyed by the call key.

    Two runs (or two strategies, or two hosts) that ask for the same (model, messages,
    sampling, sample index, seed) pay for it once. Only successes are cached: an error is
    never replayed. `path` is the shard folder (an old `X.sqlite` path means folder `X`).
    A lookup reads this job's shard, then every other shard: those present when the job
    started, and those that appeared since (a miss lists the folder again when its mtime
    moved, at least every `refresh_s` seconds, and at once when a shard vanished under a
    merge). Thread-safe: the sampler looks up on its event loop and caches from the
    store's writer thread.
    """

    def __init__(self, path: Path, refresh_s: float = REFRESH_S) -> None:
        self.path = cache_dir(path)
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._own: _OwnShard | None = None
        self._readers: dict[Path, sqlite3.Connection] = {}
        self._listed_at, self._listed_mtime = 0.0, 0
        self._warned = False
        self._refresh()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            hit, failed = self._lookup(key)
            if hit is None and (failed or self._stale()):  # failed: merged away, entries moved
                self._refresh()
                hit, _ = self._lookup(key)
            return _decode(hit)

    def put(self, key: str, model: str, payload: dict[str, Any]) -> None:
        self.put_many([(key, model, payload)])

    def put_many(self, entries: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """Cache several (key, model, payload) entries in one transaction: one request's
        samples are cached together or not at all (a half-cached request would be completed
        by a request with another seed)."""
        rows = [(key, model, json.dumps(payload)) for key, model, payload in entries]
        if not rows:
            return
        with self._lock:
            if self._own is None:
                self._own = _OwnShard(self.path)
            with self._own.conn:
                self._own.conn.execute("BEGIN")
                self._own.conn.executemany("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)", rows)

    def shards(self) -> list[Path]:
        """The shards lookups read now, this job's own first."""
        own = [self._own.path] if self._own is not None else []
        return own + list(self._readers)

    def close(self) -> None:
        with self._lock:
            if self._own is not None:
                self._own.close()
                self._own = None
            for conn in self._readers.values():
                conn.close()
            self._readers.clear()

    def _lookup(self, key: str) -> tuple[str | None, bool]:
        """(payload or None, whether some shard failed to answer)."""
        if self._own is not None:
            row = self._own.conn.execute("SELECT payload FROM cache WHERE key = ?", (key,))
            found = row.fetchall()
            if found:
                return found[0][0], False
        failed = False
        for path, conn in list(self._readers.items()):
            try:
                found = conn.execute("SELECT payload FROM cache WHERE key = ?", (key,)).fetchall()
            except sqlite3.Error:  # gone under a merge (NFS: stale handle), or a hot journal
                conn.close()
                del self._readers[path]
                failed = True
                continue
            if found:
                return found[0][0], False
        return None, failed

    def _stale(self) -> bool:
        """Whether a miss should list the folder again: it changed since (a shard appeared or
        went: one stat, so a shard another job made a moment ago answers at once), the
        change was too recent for the clock's granularity, or `refresh_s` passed (NFS may
        cache a folder's times)."""
        if time.monotonic() - self._listed_at > self.refresh_s:
            return True
        mtime = _mtime_ns(self.path)
        return mtime != self._listed_mtime or time.time_ns() - mtime < 2_000_000_000

    def _refresh(self) -> None:
        """Open shards that appeared, close those that vanished (merged into a new one)."""
        self._listed_at, self._listed_mtime = time.monotonic(), _mtime_ns(self.path)
        present = set(shard_paths(self.path))
        if self._own is not None:
            present.discard(self._own.path)
        for path in [p for p in self._readers if p not in present]:
            self._readers.pop(path).close()
        new = sorted(present - set(self._readers))
        _allow_open_files(len(present) + 64)
        for path in new:
            conn = open_shard(path)
            if conn is not None:
                self._readers[path] = conn
        if len(self._readers) > MANY_SHARDS and not self._warned:
            self._warned = True
            log.warning(
                "the call cache %s has %d shards and every miss reads each one: "
                "run `ttcbench-cache merge %s` to compact them",
                self.path, len(self._readers), self.path,
            )  # fmt: skip


def _decode(payload: str | None) -> dict[str, Any] | None:
    try:
        return json.loads(payload) if payload is not None else None
    except ValueError:  # a damaged shard (see _OwnShard): a miss, never a failed job
        return None


def _mtime_ns(folder: Path) -> int:
    try:
        return os.stat(folder).st_mtime_ns
    except FileNotFoundError:
        return 0


def _allow_open_files(needed: int) -> None:
    """Raise the soft open-file limit toward the hard one: each shard keeps a connection open
    (reopening per lookup would cost more than the lookup), and 1024 is a common default."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed + 256:
        wanted = needed + 256 if hard == resource.RLIM_INFINITY else min(hard, needed + 256)
        if wanted > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
