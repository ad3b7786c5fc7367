"""Many replicas of one model (`model.api_base` as a list): spread, failover, fail-fast.

Real jobs (Hydra config, sampler, store) against two scripted servers on 127.0.0.1 whose
answers depend only on the request (prompt and seed), so a run spread over replicas, or one
that loses a replica mid-run, must store exactly what a run against one server stores.
"""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fakeserver import RESET, FakeOpenAI, solve_arithmetic

import ttcbench
from ttcbench.models.client import ModelClient, ModelSpec, RetryPolicy, Sampling
from ttcbench.store import SampleStore
from ttcbench.types import ConfigError, ProviderError

TIMING = ["latency_s", "retry_wait_s", "attempts", "started_at", "finished_at"]
"""Columns that say how a sample was fetched (time, tries), not what it is."""


def seeded_reply(body: dict[str, Any]) -> str:
    """Right for some seeds, off by one for others: votes differ between budgets and seeds,
    so a sample sent with the wrong seed or `n` would change the frames."""
    right = float(re.findall(r"-?[\d.]+", solve_arithmetic(body))[-1])
    off = (int(body.get("seed") or 0) + len(body["messages"][-1]["content"])) % 3 - 1
    return f"Working. The answer is {right + off:g}"


class Stopping(FakeOpenAI):
    """A server that dies after answering `after` requests: the request that finds it dying
    has its connection reset, and it stops listening (later connections are refused)."""

    def __init__(self, after: int) -> None:
        super().__init__(reply=seeded_reply)
        self.after = after
        self.resets = 0

    def respond(self, path: str, body: dict[str, Any]) -> tuple[Any, ...]:
        with self._lock:
            dying = len(self.requests) >= self.after
            if dying:
                self.resets += 1
        if not dying:
            return super().respond(path, body)
        if self.resets == 1:  # shutdown waits for serve_forever, so not from its thread
            threading.Thread(target=self._stop, daemon=True).start()
        return RESET, None, 0.0

    def _stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def job(results: Path, api_base: str | list[str], *extra: str) -> list[str]:
    bases = api_base if isinstance(api_base, str) else "[" + ",".join(api_base) + "]"
    return [
        f"results_dir={results}",
        "model=llamacpp_server",
        f"model.api_base={bases}",
        "model.name=fake",
        "model.max_n=4",  # budget 8 = two requests of n=4 per problem
        "model.timeout_s=5",
        "task.limit=10",
        "budget=pow2_8",
        "strategy=majority_vote",
        "logger=none",
        "cache.enabled=false",
        "runner.concurrency=4",
        "retry.initial_wait_s=0.05",
        *extra,
    ]


def same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def frames(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Calls and attempts without timing columns, in a stable order."""
    store = SampleStore(run_dir / "store.sqlite")
    calls, attempts = store.calls_frame(), store.attempts_frame()
    out = []
    for frame in (calls, attempts):
        frame = frame.drop(columns=[c for c in frame.columns if c in TIMING])
        keys = [c for c in ("key", "problem_id", "budget", "strategy") if c in frame.columns]
        out.append(frame.sort_values(keys).reset_index(drop=True))
    return out[0], out[1]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The same job against one server: its run folder and request count."""
    with FakeOpenAI(reply=seeded_reply) as one:
        run_dir = ttcbench.run(job(tmp_path_factory.mktemp("one"), one.api_base), progress=False)
        return run_dir, len(one.requests)


def test_requests_are_spread_over_replicas(tmp_path: Path, baseline: tuple[Path, int]) -> None:
    with FakeOpenAI(reply=seeded_reply) as a, FakeOpenAI(reply=seeded_reply) as b:
        run_dir = ttcbench.run(job(tmp_path, [a.api_base, b.api_base]), progress=False)
    assert len(a.requests) > 0 and len(b.requests) > 0
    assert len(a.requests) + len(b.requests) == baseline[1] == 20  # no request sent twice
    assert {r["n"] for r in a.requests + b.requests} == {4}
    assert set(frames(baseline[0])[0]["score"]) == {0.0, 1.0}  # samples that can differ
    same(frames(run_dir)[0], frames(baseline[0])[0])
    same(frames(run_dir)[1], frames(baseline[0])[1])


@pytest.mark.timeout(120)
def test_a_replica_stopped_mid_run_changes_nothing(
    tmp_path: Path, baseline: tuple[Path, int]
) -> None:
    with Stopping(after=4) as dying, FakeOpenAI(reply=seeded_reply) as other:
        run_dir = ttcbench.run(job(tmp_path, [dying.api_base, other.api_base]), progress=False)
    assert len(dying.requests) == 4 and dying.resets >= 1  # it died mid-run, not before
    assert len(dying.requests) + len(other.requests) == baseline[1]
    calls, attempts = frames(run_dir)
    assert calls["error"].isna().all() and attempts["score"].notna().all()
    retried = SampleStore(run_dir / "store.sqlite").calls_frame()["attempts"]
    assert (retried > 1).any()  # the request it dropped went to the other replica
    same(calls, frames(baseline[0])[0])
    same(attempts, frames(baseline[0])[1])
    # Where the servers are is not part of the run's identity: the same folder name.
    assert run_dir.relative_to(tmp_path) == baseline[0].relative_to(baseline[0].parents[2])


@pytest.mark.timeout(120)  # a backoff per request (initial_wait_s=600) would hang, then fail
def test_a_dead_replica_costs_one_try_not_a_backoff(
    tmp_path: Path, baseline: tuple[Path, int], closed_base: str
) -> None:
    patient = ("retry.initial_wait_s=600", "retry.max_wait_s=600")
    with FakeOpenAI(reply=seeded_reply) as live:
        run_dir = ttcbench.run(job(tmp_path, [closed_base, live.api_base], *patient),
                               progress=False)  # fmt: skip
    assert len(live.requests) == baseline[1]
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert calls["error"].isna().all()
    # Each request tried the dead replica at most once (then it cooled down), and at least
    # one did (the Router picks among replicas not known to fail).
    assert calls["attempts"].max() == 2
    same(frames(run_dir)[0], frames(baseline[0])[0])


def test_all_replicas_dead_is_refused_naming_them(tmp_path: Path, closed_base: str) -> None:
    other = closed_base.replace("/v1", "/other/v1")
    with pytest.raises(ProviderError) as caught:
        ttcbench.run(job(tmp_path, [closed_base, other]), progress=False)
    message = str(caught.value)
    assert f"cannot connect to any of {closed_base}, {other} " in message
    assert "after 3 tries" in message and "model.api_base" in message


def test_client_spreads_over_litellm_path_too() -> None:
    """transport=litellm (or a provider without the fast path): each replica's address is
    passed to litellm.acompletion; a request's `n` and seed reach one replica whole."""
    with FakeOpenAI(reply=seeded_reply) as a, FakeOpenAI(reply=seeded_reply) as b:
        spec = ModelSpec("fake", "openai/local", api_base=[a.api_base, b.api_base],
                         transport="litellm", extra={"api_key": "none"})  # fmt: skip
        client = ModelClient(spec, RetryPolicy(initial_wait_s=0.01))
        assert client.fast is None and client.replicas is not None

        async def many() -> list[list[Any]]:
            prompts = [[{"role": "user", "content": f"Calculate {i} + 2."}] for i in range(12)]
            return await asyncio.gather(*[client.complete(p, Sampling(seed=5), 3) for p in prompts])

        outs = asyncio.run(many())
    assert a.requests and b.requests and client.requests_sent == 12
    assert all(r["n"] == 3 and r["seed"] == 5 for r in a.requests + b.requests)
    assert all(o.error is None and o.seed == 5 for out in outs for o in out)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("[]", "non-empty list"),
        ("[gpu1:8000/v1,http://gpu2:8000/v1]", "'gpu1:8000/v1', which is not an http(s)://"),
        ("[http://a:1/v1,http://a:1/v1]", "an address twice"),
        ("[1,2]", "1, which is not an http(s)://"),
    ],
)
def test_bad_replica_lists_are_config_errors(tmp_path: Path, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)) as caught:
        ttcbench.run(job(tmp_path, "x", f"model.api_base={value}"), progress=False)
    assert "model.api_base=[http://gpu1:8000/v1,http://gpu2:8000/v1]" in str(caught.value)


def test_a_list_of_one_is_that_address() -> None:
    spec = ModelSpec("fake", "openai/local", api_base=["http://127.0.0.1:9/v1"])
    assert spec.api_base == "http://127.0.0.1:9/v1" and spec.api_bases == (spec.api_base,)


@pytest.fixture
def closed_base() -> str:
    """An address on 127.0.0.1 where nothing listens (connections refused at once)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
