"""Failures are loud: a refusal stops the job at once, exhausted retries exit non-zero.

A refusal no retry fixes (401, 403, 404, 400) or a server that cannot be reached before any
success ends the job with exit 3, the provider's words and the fix on one line, no further
requests and no table; transient errors that outlast their retries end it with exit 4 and a
resumable store. Everything runs against the scripted server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pandas as pd
import pytest
from fakeserver import RESET, FakeOpenAI
from faultkit import cli, closed_port, error_lines, run_folder
from test_faults import overrides

import ttcbench
from ttcbench.models.client import ModelClient, ModelSpec, RetryPolicy, Sampling, retry_after_s
from ttcbench.store import SampleStore
from ttcbench.types import IncompleteRun, ProviderError

MESSAGES = [{"role": "user", "content": "Calculate 2 + 3."}]
PLANNED = 4 * 8  # task.limit=4, majority_vote at budget 8, one sample per request


@pytest.mark.parametrize(
    "status, words",
    [
        (401, "Incorrect API key provided"),
        (403, "does not have access"),
        (404, "does not exist"),
        (400, "Invalid value for 'temperature'"),
    ],
)
def test_a_refusal_stops_the_job_at_the_first_request(
    results: Path, fake_openai: FakeOpenAI, status: int, words: str
) -> None:
    fake_openai.enqueue(status, times=PLANNED)
    started = time.perf_counter()
    with pytest.raises(ProviderError) as caught:
        ttcbench.run(overrides(results, fake_openai.api_base, "task.limit=4"))
    assert time.perf_counter() - started < 15
    assert len(fake_openai.requests) == 1  # until a first success, one request at a time
    message = str(caught.value)
    assert words in message and f"HTTP {status}" in message and "Fix:" in message
    assert "\n" not in message and caught.value.exit_code == 3
    assert not (run_folder(results, "majority_vote") / "summary.csv").exists()


def test_a_refusal_after_successes_sends_nothing_more(
    results: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(200, times=5)
    fake_openai.enqueue(401, times=PLANNED)
    with pytest.raises(ProviderError):
        ttcbench.run(overrides(results, fake_openai.api_base, "task.limit=4"))
    # Only the requests already in flight when the 401 came back (concurrency 4) were sent.
    assert 6 <= len(fake_openai.requests) <= 5 + 4


def test_the_command_prints_the_refusal_in_one_line_and_exits_3(
    results: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(401, times=PLANNED)
    ran = cli(overrides(results, fake_openai.api_base, "task.limit=4"))
    assert ran.code == 3, ran.stderr
    (line,) = error_lines(ran.stderr)
    assert "Incorrect API key provided" in line and "Fix: check the API key" in line
    assert "|" not in ran.stdout and "nan" not in ran.stdout  # no table of nothing
    assert len(fake_openai.requests) == 1


# The default backoff (1 s doubling, 6 tries) spent about 30 s per request on a dead address.
PATIENT = ("retry.max_attempts=6", "retry.initial_wait_s=1", "retry.max_wait_s=60")


def test_a_closed_port_fails_in_one_line(results: Path) -> None:
    api_base = f"http://127.0.0.1:{closed_port()}/v1"
    ran = cli(overrides(results, api_base, *PATIENT))
    assert ran.code == 3, ran.stderr
    (line,) = error_lines(ran.stderr)
    assert "cannot connect to" in line and api_base in line and "model.api_base" in line
    assert "|" not in ran.stdout


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "ttcbench-test.invalid"])
def test_an_address_that_cannot_be_reached_fails_within_seconds(results: Path, host: str) -> None:
    api_base = f"http://{host.format(port=closed_port())}/v1"
    started = time.perf_counter()
    with pytest.raises(ProviderError, match=f"cannot connect to {api_base} "):
        ttcbench.run(overrides(results, api_base, *PATIENT))
    assert time.perf_counter() - started < 15


def test_transient_errors_before_a_first_success_are_retried_not_fatal(
    results: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(503, times=2)
    fake_openai.enqueue(RESET)
    fake_openai.enqueue(429, retry_after=0)
    extra = ("strategy=single", "retry.max_attempts=5")
    run_dir = ttcbench.run(overrides(results, fake_openai.api_base, *extra))
    assert len(fake_openai.requests) == 2 + 4
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert calls["error"].isna().all() and sorted(calls["attempts"]) == [1, 5]


def test_exhausted_retries_exit_4_with_the_count_and_last_error_then_resume(
    results: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(200)
    fake_openai.enqueue(500, times=4)  # retry.max_attempts=4: the second problem gives up
    ran = cli(overrides(results, fake_openai.api_base, "strategy=single"))
    assert ran.code == 4, ran.stderr
    (line,) = error_lines(ran.stderr)
    assert "1 model calls failed" in line and "InternalServerError (HTTP 500)" in line
    assert "re-run the same command to resume" in line and "|" not in ran.stdout
    run_dir = run_folder(results, "single")
    assert "Incomplete run" in (run_dir / "summary.md").read_text()
    assert len(fake_openai.requests) == 5

    ttcbench.run(overrides(results, fake_openai.api_base, "strategy=single"))  # no error
    assert len(fake_openai.requests) == 6  # only the failed call is requested again
    summary = pd.read_csv(run_dir / "summary.csv")
    assert summary.loc[0, "errors"] == 0 and summary.loc[0, "accuracy"] == pytest.approx(1.0)
    assert "Incomplete run" not in (run_dir / "summary.md").read_text()


def test_incomplete_run_tells_python_callers_where_the_run_is(
    results: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(200)
    fake_openai.enqueue(503, times=4)
    with pytest.raises(IncompleteRun) as caught:
        ttcbench.run(overrides(results, fake_openai.api_base, "strategy=single"))
    assert caught.value.exit_code == 4
    assert caught.value.run_dir == run_folder(results, "single")  # type: ignore[attr-defined]
    assert "ServiceUnavailableError (HTTP 503)" in str(caught.value)


def test_an_outage_is_outlasted_by_retries(results: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.outage(10.0)  # the outage: every request answered 503 for 10 s
    run_dir = ttcbench.run(
        overrides(
            results,
            fake_openai.api_base,
            "retry.max_attempts=20",
            "retry.initial_wait_s=0.5",
            "retry.max_wait_s=2",
        )
    )
    summary = pd.read_csv(run_dir / "summary.csv")
    assert summary["errors"].eq(0).all() and summary["accuracy"].eq(1.0).all()
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert calls["attempts"].max() > 1 and calls["error"].isna().all()


def fake_client(api_base: str, **retry: float) -> ModelClient:
    spec = ModelSpec(name="fake", model="openai/local", api_base=api_base, max_n=1,
                     timeout_s=5, extra={"api_key": "none"})  # fmt: skip
    policy = RetryPolicy(**{"max_attempts": 3, "initial_wait_s": 0.01, **retry})  # type: ignore[arg-type]
    return ModelClient(spec, policy)


def test_retry_after_is_honoured_and_capped_by_max_wait(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(429, retry_after=1)
    client = fake_client(fake_openai.api_base, max_wait_s=5)
    (done,) = asyncio.run(client.complete(MESSAGES, Sampling()))
    assert done.error is None and done.attempts == 2
    assert 1.0 <= done.retry_wait_s < 1.8 and done.latency_s < 0.5

    fake_openai.enqueue(429, retry_after=30)
    capped = fake_client(fake_openai.api_base, max_wait_s=0.3)
    started = time.perf_counter()
    (done,) = asyncio.run(capped.complete(MESSAGES, Sampling()))
    assert done.error is None and time.perf_counter() - started < 2


def test_retry_after_reads_seconds_milliseconds_and_dates() -> None:
    class Err(Exception):
        def __init__(self, headers: dict[str, str]) -> None:
            self.litellm_response_headers = headers

    assert retry_after_s(Err({"Retry-After": "2"})) == 2.0
    assert retry_after_s(Err({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert retry_after_s(Err({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after_s(Err({"Retry-After": "soon"})) is None
    assert retry_after_s(Exception()) is None
