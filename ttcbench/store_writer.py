"""The sample store's writer thread: commits off the event loop, several writes per transaction.

A fast server answers thousands of samples a second; committing each request's rows on the
event loop cost ~0.2 ms of the loop's time per request (a quarter of the sampling phase at
32 requests in flight). Here one thread owns the store's only writing connection: callers
queue a write and get a future, and the thread commits everything queued since its last
commit in one transaction (sqlite3 releases the GIL while SQLite works, so the loop runs on).

Crash safety is unchanged: a write is durable when its future is done, and callers act on a
sample (cache it, report it, hand it to the strategy) only then. A `kill -9` loses the queued
writes whole (never part of one: each is inside one transaction), i.e. samples nobody was
told about, which a resume requests again exactly as before (same first index, same seed).
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable

Work = Callable[[sqlite3.Connection], None]
"""One write: statements run inside the writer's open transaction."""

Done = Callable[[BaseException | None], object]
"""Told, in the writer's thread, that a write is committed (None) or why it failed."""

MAX_GROUP = 256
"""Writes committed together at most (a bound on one transaction's size and latency)."""


class Writer:
    """A thread committing queued writes in groups, each group one transaction.

    A group whose transaction fails is retried write by write, each in its own transaction,
    so one bad write fails alone, as it would have without grouping.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._queue: queue.SimpleQueue[tuple[Work, Done] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._unseen: BaseException | None = None
        """The first failure of a write nobody waited for (`submit`), raised by the next
        `flush`, `wait` or `submit`: a run never goes on as if it had been stored."""

    def submit(self, work: Work, done: Done | None = None) -> None:
        """Queue `work` and return; `done` is told when it is committed or failed (a
        callback, not a future: an event loop hands it on with one `call_soon_threadsafe`).
        A failure is also raised by the next `flush`, `wait` or `submit`."""

        def report(err: BaseException | None) -> None:
            try:
                if done is not None:
                    done(err)
            except BaseException as failure:  # e.g. the cache write that follows a commit
                err = err or failure
            if err is not None and self._unseen is None:
                self._unseen = err

        self._put(work, report)

    def wait(self, work: Work) -> None:
        """Queue `work` and wait until it is committed; raise its error if it failed."""
        committed = threading.Event()
        failures: list[BaseException | None] = []

        def done(err: BaseException | None) -> None:
            failures.append(err)
            committed.set()

        self._put(work, done)
        committed.wait()
        if failures[0] is not None:
            raise failures[0]

    def _put(self, work: Work, done: Done) -> None:
        self._raise_unseen()
        self._ensure_thread()
        self._queue.put((work, done))

    def flush(self) -> None:
        """Wait until everything queued so far is committed; raise an unwatched failure."""
        if self._thread is not None:
            self.wait(lambda conn: None)
        self._raise_unseen()

    def close(self) -> None:
        """Commit what is queued, then stop the thread (idempotent)."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        thread.join()
        self._thread = None
        self._raise_unseen()

    def _ensure_thread(self) -> None:
        # Started on the first write: most stores are opened only to be read (reports).
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="ttcbench-store-writer", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        conn = self._connect()
        try:
            while (first := self._queue.get()) is not None:
                group = [first]
                while len(group) < MAX_GROUP:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:  # close(): commit this group, then stop
                        self._commit(conn, group)
                        return
                    group.append(item)
                self._commit(conn, group)
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, group: list[tuple[Work, Done]]) -> None:
        try:
            _transaction(conn, [work for work, _ in group])
        except BaseException as err:
            if len(group) == 1:
                group[0][1](err)
                return
            for item in group:  # find the culprit: each write alone, as without grouping
                self._commit(conn, [item])
            return
        for _, done in group:
            done(None)

    def _raise_unseen(self) -> None:
        err, self._unseen = self._unseen, None
        if err is not None:
            raise err


def _transaction(conn: sqlite3.Connection, works: list[Work]) -> None:
    with conn:  # COMMIT, or ROLLBACK if any write raises: all of them or none
        conn.execute("BEGIN")
        for work in works:
            work(conn)
