"""The store's writer thread: grouped commits, failures that are never silent, and kills.

Writes are committed off the event loop, several per transaction, and the sampler hands a
sample out before its row is committed. The guarantees kept: a write is all or nothing, a
bad write fails alone, a failure surfaces at the store's next use, queued writes are
committed before any read and at close, and a `kill -9` at any instant leaves whole requests
with no duplicate and nothing cached that is not stored, so the resume pays for exactly the
lost requests. The kills are real: `ttcbench` processes, the seeded fake server, SIGKILL.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from faultkit import CLI, samples
from test_exact_resume import SeededReplies
from test_faults import overrides

import ttcbench
from ttcbench.cache import CallCache
from ttcbench.store import SampleStore
from ttcbench.store_writer import Writer
from ttcbench.types import Attempt, Call


def table(path: Path) -> Writer:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (v INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    return Writer(lambda: sqlite3.connect(path, check_same_thread=False, isolation_level=None))


def rows(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    values = [v for (v,) in conn.execute("SELECT v FROM t ORDER BY v")]
    conn.close()
    return values


def test_a_bad_write_in_a_group_fails_alone_and_is_raised_later(tmp_path: Path) -> None:
    writer = table(tmp_path / "t.sqlite")
    gate, told = threading.Event(), {}
    writer.submit(lambda conn: gate.wait())  # holds the thread: what follows queues up

    def insert(value: int, fail: bool = False):
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (?)", (value,))
            if fail:
                raise ValueError(f"write {value} is bad")

        return work

    for value in (1, 2, 3):
        writer.submit(insert(value, fail=value == 2), lambda err, v=value: told.update({v: err}))
    gate.set()
    with pytest.raises(ValueError, match="write 2 is bad"):
        writer.flush()  # nobody waited for write 2: its failure surfaces here
    assert rows(tmp_path / "t.sqlite") == [1, 3]
    assert told[1] is None and told[3] is None and isinstance(told[2], ValueError)
    writer.flush()  # raised once, not forever
    writer.close()


def test_queued_writes_are_committed_before_reads_and_at_close(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "store.sqlite")
    attempt = Attempt(
        run_id="r",
        task="t",
        problem_id="p",
        classes={},
        strategy="s",
        budget=1,
        answer="4",
        score=1.0,
    )
    store.put_attempts([attempt])  # returns before the commit
    assert len(store.attempts_frame()) == 1
    store.put_attempts([Attempt(**{**attempt.to_row(), "budget": 2})])
    store.close()
    reopened = SampleStore(tmp_path / "store.sqlite")
    assert sorted(reopened.attempts_frame()["budget"]) == [1, 2]
    reopened.close()


def test_a_failed_queued_write_fails_the_next_read(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "store.sqlite")
    bad = Attempt(run_id="r", task="t", problem_id="p", classes={"x": object()}, strategy="s",
                  budget=1, answer="4", score=1.0)  # fmt: skip
    store.put_attempts([bad])
    with pytest.raises(TypeError):
        store.count_calls()
    assert store.count_calls() == 0


def test_rows_queued_for_a_problem_are_found_once_committed(tmp_path: Path) -> None:
    """`get_calls` skips problems without rows; rows this store writes make them known."""
    store = SampleStore(tmp_path / "store.sqlite")
    assert store.get_calls("t", "p", ["k0"]) == {}
    call = Call(key="k0", run_id="r", task="t", problem_id="p", classes={}, strategy="s",
                role="generate", sample_index=0, seed=0, model="m", messages_hash="h",
                messages=[], output="x")  # fmt: skip
    store.put_calls([call])
    assert store.get_calls("t", "p", ["k0"]) == {"k0": call}
    store.close()
    reopened = SampleStore(tmp_path / "store.sqlite")
    assert list(reopened.get_calls("t", "p", ["k0"])) == ["k0"]
    reopened.close()


MAX_N = 4
RUN = (  # 40 problems x 2 requests of n=4, 8 in flight, fast answers: the writer has a queue;
    # each kill lands within ~18 requests of its process's start, so three never finish the run
    "strategy=majority_vote",
    "task.limit=40",
    f"model.max_n={MAX_N}",
    "runner.concurrency=8",
    "runner.max_parallel_problems=8",
)


@pytest.fixture(scope="module")
def server() -> SeededReplies:
    with SeededReplies() as fake:
        fake.delay_s = 0.02
        yield fake


def stored_requests(run_dir: Path) -> set[tuple[str, int]]:
    """(problem, request seed) of every stored row, after checking the rows are whole
    requests without duplicates."""
    store = SampleStore(run_dir / "store.sqlite")
    calls = store.calls_frame()
    store.close()
    assert not calls.duplicated(["task", "problem_id", "key"]).any()
    sizes = calls.groupby(["problem_id", "seed"]).size()
    assert (sizes == MAX_N).all(), sizes  # a request is stored whole or not at all
    return set(sizes.index)


def requested(bodies: list[dict]) -> list[tuple[str, int]]:
    return [(body["messages"][-1]["content"], body["seed"]) for body in bodies]


def test_killed_at_random_instants_pays_for_exactly_the_lost_requests(
    server: SeededReplies, tmp_path: Path
) -> None:
    reference = ttcbench.run(overrides(tmp_path / "ref", server.api_base, *RUN,
                                       "cache.enabled=false"))  # fmt: skip
    prompts = dict(zip(samples(reference)["problem_id"], prompts_of(reference), strict=True))
    cache = tmp_path / "cache"
    args = [*overrides(tmp_path / "results", server.api_base, *RUN), f"cache.path={cache}"]
    run_dir = tmp_path / "results" / reference.relative_to(tmp_path / "ref")
    rng = random.Random()
    for _ in range(3):
        target = len(server.requests) + rng.randrange(2, 10)
        proc = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 90
        while len(server.requests) < target and proc.poll() is None:
            assert time.monotonic() < deadline, "the run never reached the server"
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.02))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        kept = stored_requests(run_dir)
        cached = CallCache(cache)
        in_cache = {key for key in samples(reference)["key"] if cached.get(key) is not None}
        cached.close()
        in_store = set(samples(run_dir)["key"])
        assert in_cache <= in_store  # stored, then cached: never only cached
    assert kept and len(kept) < 2 * 40  # the kills left part of the run, not all of it
    before = len(server.requests)
    ttcbench.run(args)
    paid_again = {(prompts[p], seed) for p, seed in kept} & set(requested(server.requests[before:]))
    assert not paid_again  # nothing stored is requested again
    pd.testing.assert_frame_equal(samples(run_dir), samples(reference))  # nothing lost


def prompts_of(run_dir: Path) -> list[str]:
    store = SampleStore(run_dir / "store.sqlite")
    calls = store.calls_frame().sort_values(["problem_id", "role", "sample_index"])
    store.close()
    return [messages[-1]["content"] for messages in calls["messages"]]
