"""Exact resume: a run killed at any instant and resumed equals a run never interrupted.

Real `ttcbench` processes are killed with SIGKILL: between the rows one n=4 request stores
(a wrapper script makes the store's row encoder kill its own process mid-transaction) and
at random points while requests are in flight, answered or being stored. The fake server's
answers depend on the request seed and the choice index, as a seeded sampler's would, so a
resume that re-asked part of a request with another seed would get other outputs. Samples,
attempts and summary.csv are then compared with an uninterrupted run in another folder
(caches disabled, so the resume really requests).
"""

from __future__ import annotations

import csv
import hashlib
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fakeserver import FakeOpenAI, solve_arithmetic
from faultkit import CLI, attempts, samples
from test_faults import overrides

import ttcbench
from ttcbench.cache import CallCache
from ttcbench.store import SampleStore
from ttcbench.types import Call

MAX_N = 4
RUN = (  # 10 problems x 2 requests of n=4: the random kills below (each after at most 3
    # requests + 0.25 s, ~8 requests at 0.1 s each, 2 at a time) always land before the end
    "strategy=majority_vote",
    "task.limit=10",
    f"model.max_n={MAX_N}",
    "cache.enabled=false",
    "runner.concurrency=2",
)
KILL_AT_ROW = """\
import os, signal, sys
import ttcbench.store as store
from ttcbench.cli import main
from ttcbench.types import Call

# Test-only: die (SIGKILL) while the store writes call row number LIMIT of this process.
LIMIT, written, encode = int(sys.argv.pop(1)), 0, store._row

def encode_then_die(record, *args):
    global written
    if isinstance(record, Call):
        written += 1
        if written == LIMIT:
            os.kill(os.getpid(), signal.SIGKILL)
    return encode(record, *args)

store._row = encode_then_die
main()
"""


class SeededReplies(FakeOpenAI):
    """Each choice's text is fixed by the prompt, the request's seed and the choice's index
    (right about half the time): what a seeded provider does, so seeds show in the outputs."""

    def _choice(self, index: int, body: dict[str, Any]) -> dict[str, Any]:
        choice = super()._choice(index, body)
        token = f"{body['messages'][-1]['content']}|{body.get('seed')}|{index}"
        digest = hashlib.sha256(token.encode()).digest()
        right = solve_arithmetic(body).rsplit(" ", 1)[1]
        answer = right if digest[0] % 2 else str(digest[1])
        choice["message"]["content"] = f"Sample {body.get('seed')}.{index}: the answer is {answer}"
        return choice


@pytest.fixture(scope="module")
def server() -> Iterator[SeededReplies]:
    with SeededReplies() as fake:
        fake.delay_s = 0.1
        yield fake


@pytest.fixture(scope="module")
def reference(server: SeededReplies, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run, in a folder of its own."""
    results = tmp_path_factory.mktemp("reference")
    return ttcbench.run(overrides(results, server.api_base, *RUN))


def whole_requests(run_dir: Path) -> bool:
    """Every stored problem holds whole requests: samples 0..4k-1 of its pool, never part of
    one request's samples."""
    store = SampleStore(run_dir / "store.sqlite")
    calls = store.calls_frame()
    store.close()
    for _, group in calls.groupby("problem_id"):
        indices = sorted(group["sample_index"])
        if indices != list(range(len(indices))) or len(indices) % MAX_N:
            return False
    return True


def assert_same_run(run_dir: Path, reference: Path) -> None:
    pd.testing.assert_frame_equal(samples(run_dir), samples(reference))
    pd.testing.assert_frame_equal(attempts(run_dir), attempts(reference))
    # Bit for bit, but for model_s: measured time is never the same twice.
    assert summary_text(run_dir) == summary_text(reference)


def summary_text(run_dir: Path) -> list[list[str]]:
    with (run_dir / "summary.csv").open() as f:
        rows = list(csv.reader(f))
    timed = rows[0].index("model_s")
    return [row[:timed] + row[timed + 1 :] for row in rows]


def resume(results: Path, server: SeededReplies) -> Path:
    before = len(server.requests)
    run_dir = ttcbench.run(overrides(results, server.api_base, *RUN))
    assert len(server.requests) > before  # the resume really asked the server
    return run_dir


def test_killed_between_the_rows_of_one_request_resumes_exactly(
    server: SeededReplies, reference: Path, tmp_path: Path
) -> None:
    wrapper = tmp_path / "kill_at_row.py"
    wrapper.write_text(KILL_AT_ROW)
    results = tmp_path / "results"
    row = MAX_N + 2  # the second row of the second request stored
    done = subprocess.run(
        [sys.executable, str(wrapper), str(row), *overrides(results, server.api_base, *RUN)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    run_dir = results / reference.relative_to(reference.parents[2])
    store = SampleStore(run_dir / "store.sqlite")
    assert store.count_calls() == MAX_N  # the dying transaction left nothing behind
    store.close()
    assert_same_run(resume(results, server), reference)


def test_killed_at_random_instants_resumes_exactly(
    server: SeededReplies, reference: Path, tmp_path: Path
) -> None:
    rng = random.Random()
    results = tmp_path / "results"
    run_dir = results / reference.relative_to(reference.parents[2])
    for _ in range(2):
        kill_after = rng.randrange(1, 4)  # requests the server has seen, + a random moment
        moment = rng.uniform(0.0, 0.25)
        print(f"kill after request {kill_after} + {moment:.3f} s")
        kill_when_served(results, server, kill_after, moment)
        assert whole_requests(run_dir)
    assert_same_run(resume(results, server), reference)


def kill_when_served(results: Path, server: SeededReplies, requests: int, moment: float) -> None:
    """Start `ttcbench`, SIGKILL it `moment` s after the server got `requests` more requests
    (while a request is in flight, answered, or being stored)."""
    before = len(server.requests)
    args = [*CLI, *overrides(results, server.api_base, *RUN)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while len(server.requests) < before + requests and proc.poll() is None:
        assert time.monotonic() < deadline, "the run never reached the server"
        time.sleep(0.005)
    time.sleep(moment)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL  # killed, not finished


def stored_call(index: int, classes: dict[str, Any]) -> Call:
    return Call(key=f"k{index}", run_id="r", task="t", problem_id="p", classes=classes,
                strategy="s", role="generate", sample_index=index, seed=0, model="m",
                messages_hash="h", messages=[], output="x")  # fmt: skip


def test_a_request_whose_second_row_fails_stores_no_row(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "store.sqlite")
    unencodable = {"label": object()}  # fails in the middle of the transaction
    with pytest.raises(TypeError):
        store.put_calls([stored_call(0, {}), stored_call(1, unencodable), stored_call(2, {})])
    assert store.count_calls() == 0
    store.put_calls([stored_call(0, {}), stored_call(1, {})])
    assert store.count_calls() == 2


def test_a_request_is_cached_whole_or_not_at_all(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "cache.sqlite")
    with pytest.raises(TypeError):
        cache.put_many([("a", "m", {"text": "1"}), ("b", "m", {"text": object()})])
    assert cache.get("a") is None
    cache.put_many([("a", "m", {"text": "1"}), ("b", "m", {"text": "2"})])
    assert cache.get("b") == {"text": "2"}
