"""Honest time: a call's model time is the answering try's own, retries are counted apart.

Under 30% mixed faults (429 with Retry-After, 500, 503, connection resets, hangs past the
timeout) the run's model seconds per problem stay within 10% of a fault-free run on the same
scripted server, while `attempts` and `retry_wait_s` show what the faults cost.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest
from fakeserver import RESET, FakeOpenAI, Scripted
from test_faults import overrides

import ttcbench
from ttcbench.models.client import ModelClient, ModelSpec, RetryPolicy, Sampling
from ttcbench.store import SampleStore

GENERATION_S = 0.4  # the scripted server's time to answer a request (>> client overhead)
TIMEOUT_S = 1.0
MIXED_FAULTS = [
    Scripted(429, headers={"Retry-After": "0.1"}),
    Scripted(500),
    Scripted(503),
    Scripted(RESET),
    Scripted(200, delay_s=TIMEOUT_S + 0.5),  # hangs past the client's timeout
]
# One request at a time: answers that arrive together (and this process also runs the fake
# server) would queue for the CPU, which a run with staggered retries does less of.
RUN = (
    "task.limit=2",
    "budget=pow2_4",
    "runner.concurrency=1",
    f"model.timeout_s={TIMEOUT_S}",
    "retry.max_attempts=12",
    "retry.initial_wait_s=0.05",
    "retry.max_wait_s=0.3",
)


def run_once(results: Path, server: FakeOpenAI) -> tuple[pd.DataFrame, pd.DataFrame]:
    run_dir = ttcbench.run(overrides(results, server.api_base, *RUN))
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    return pd.read_csv(run_dir / "summary.csv"), calls


def test_model_time_under_30_percent_faults_matches_a_clean_run(tmp_path: Path) -> None:
    with FakeOpenAI() as server:
        # The first run in a process is slower (litellm builds its HTTP client, first calls
        # of many code paths): a small run first, so neither measured run pays for it.
        ttcbench.run(overrides(tmp_path / "warm", server.api_base, *RUN, "task.limit=1"))
        server.requests.clear()
        server.delay_s = GENERATION_S
        clean, clean_calls = run_once(tmp_path / "clean", server)
        clean_requests = len(server.requests)
        server.faults(0.3, MIXED_FAULTS, seed=42)  # all five kinds, one hang
        faulty, calls = run_once(tmp_path / "faulty", server)
        faulty_requests = len(server.requests) - clean_requests
    assert clean_requests == 8 and faulty_requests > 8  # 2 problems x 4 samples, + retries
    assert len({str(f) for f in server.faults_served}) == len(MIXED_FAULTS)  # every kind
    assert (clean_calls["attempts"] == 1).all() and calls["attempts"].max() > 1
    assert calls["attempts"].sum() == faulty_requests  # every try is counted somewhere
    assert calls["error"].isna().all() and faulty["errors"].eq(0).all()
    clean_s, faulty_s = clean["model_s"].iloc[-1], faulty["model_s"].iloc[-1]
    waited = (calls["latency_s"] + calls["retry_wait_s"]).sum() / 2
    print(f"model s/problem: clean {clean_s:.3f}, 30% faults {faulty_s:.3f} (with retry time "
          f"{waited:.3f}); requests {clean_requests} vs {faulty_requests}")  # fmt: skip
    assert faulty_s == pytest.approx(clean_s, rel=0.10)
    assert 4 * GENERATION_S <= clean_s < 4 * GENERATION_S * 1.5  # 4 samples per problem
    # A hang is a failed try: never model time, always retry time.
    assert calls["latency_s"].max() < TIMEOUT_S
    retried = calls[calls["attempts"] > 1]
    assert (retried["retry_wait_s"] > 0).all()
    assert (calls.loc[calls["attempts"] == 1, "retry_wait_s"] < 0.05).all()
    assert faulty["accuracy"].tolist() == clean["accuracy"].tolist()


def fake_client(api_base: str) -> ModelClient:
    spec = ModelSpec(name="fake", model="openai/local", api_base=api_base, max_n=4,
                     timeout_s=TIMEOUT_S, extra={"api_key": "none"})  # fmt: skip
    return ModelClient(spec, RetryPolicy(max_attempts=4, initial_wait_s=0.01, max_wait_s=0.05))


MESSAGES = [{"role": "user", "content": "Calculate 2 + 3."}]


def test_latency_is_the_answering_try_and_the_timed_out_try_is_retry_time() -> None:
    with FakeOpenAI() as server:
        server.delay_s = GENERATION_S
        server.enqueue(200, delay_s=TIMEOUT_S + 0.5)  # the first try times out
        (done,) = asyncio.run(fake_client(server.api_base).complete(MESSAGES, Sampling()))
    assert done.error is None and done.attempts == 2
    assert GENERATION_S <= done.latency_s < GENERATION_S + 0.2
    assert TIMEOUT_S <= done.retry_wait_s < TIMEOUT_S + 0.5


def test_retry_time_of_an_n_request_is_shared_by_its_samples() -> None:
    with FakeOpenAI() as server:
        server.delay_s = GENERATION_S
        server.enqueue(503, delay_s=0.4)
        client = fake_client(server.api_base)
        client.supports_n = True
        done = asyncio.run(client.complete(MESSAGES, Sampling(), n=4))
        assert len(server.requests) == 2
    assert [c.attempts for c in done] == [2] * 4
    assert 0.4 <= sum(c.retry_wait_s for c in done) < 0.4 + 0.3
    assert GENERATION_S <= sum(c.latency_s for c in done) < GENERATION_S + 0.2


def test_a_failed_call_has_no_model_time(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(500, times=4, delay_s=0.1)
    (done,) = asyncio.run(fake_client(fake_openai.api_base).complete(MESSAGES, Sampling()))
    assert done.error is not None and done.attempts == 4
    assert done.latency_s == 0.0 and done.retry_wait_s >= 4 * 0.1


def test_the_attempts_column_adds_up_to_the_requests_sent(
    results: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(503, times=2)
    first = ttcbench.run(overrides(results, fake_openai.api_base, "strategy=single"))
    again = ttcbench.run(overrides(results, fake_openai.api_base, "strategy=single", "name=again"))
    paid = SampleStore(first / "store.sqlite").calls_frame()
    reused = SampleStore(again / "store.sqlite").calls_frame()
    assert paid["attempts"].sum() == len(fake_openai.requests) == 2 + 2
    assert reused["cached"].all() and (reused["attempts"] == 0).all()
    assert (reused["retry_wait_s"] == 0).all()
