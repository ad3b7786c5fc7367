"""The fast transport sends what litellm would send and behaves like litellm on every fault.

Each test runs the same requests through `transport=auto` (the aiohttp path for
OpenAI-compatible `api_base` servers) and `transport=litellm` against the scripted server on
127.0.0.1 and compares what the server received and what the client made of the answer.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import litellm
import pytest
from fakeserver import RESET, FakeOpenAI
from faultkit import closed_port

import ttcbench
from ttcbench.models import openai_compat
from ttcbench.models.client import (
    ModelClient,
    ModelSpec,
    RetryPolicy,
    Sampling,
    check_model,
)
from ttcbench.models.openai_compat import fast_transport
from ttcbench.store import SampleStore
from ttcbench.types import ConfigError, ProviderError

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Calculate 2 + 3."},
]
TRANSPORTS = ("auto", "litellm")
FIELDS = ("text", "prompt_tokens", "completion_tokens", "finish_reason", "mean_logprob", "seed")


def client(api_base: str, transport: str, model: str = "openai/local", **spec: Any) -> ModelClient:
    fields: dict[str, Any] = {"timeout_s": 5, "extra": {"api_key": "none"}, **spec}
    retry = RetryPolicy(max_attempts=fields.pop("attempts", 3), initial_wait_s=0.01)
    return ModelClient(
        ModelSpec(name="fake", model=model, api_base=api_base, transport=transport, **fields),
        retry,
    )


def sample(done: Any) -> tuple[Any, ...]:
    return tuple(getattr(done, name) for name in FIELDS)


@pytest.fixture
def server() -> Any:
    finish = lambda body, text: "length" if body.get("seed") == 7 else "stop"  # noqa: E731
    with FakeOpenAI(logprob=lambda body, text: -0.25, finish=finish) as fake:
        yield fake


def test_the_fast_path_is_for_openai_compatible_servers_only() -> None:
    def spec(model: str, **fields: Any) -> ModelSpec:
        return ModelSpec(name="m", model=model, **fields)

    base = "http://127.0.0.1:9/v1"
    assert fast_transport(spec("openai/local", api_base=base)) is not None
    assert fast_transport(spec("hosted_vllm/Qwen/Qwen2.5-1.5B", api_base=base)) is not None
    assert fast_transport(spec("openai/gpt-4o-mini")) is None  # OpenAI itself: litellm
    assert fast_transport(spec("anthropic/claude-3-5-haiku-latest", api_base=base)) is None
    assert fast_transport(spec("ollama_chat/llama3.2", api_base=base)) is None
    assert fast_transport(spec("local/smollm2")) is None
    assert fast_transport(spec("openai/local", api_base=base, transport="litellm")) is None
    litellm_only = {"api_key": "x", "metadata": {"a": 1}}  # a setting only litellm reads
    assert fast_transport(spec("openai/local", api_base=base, extra=litellm_only)) is None
    with pytest.raises(ConfigError, match="model.transport='fast'"):
        check_model(spec("openai/local", api_base=base, transport="fast"))


@pytest.mark.parametrize(
    "model", ["openai/local", "hosted_vllm/Qwen/Qwen2.5-1.5B", "lm_studio/qwen", "llamafile/m"]
)
def test_both_paths_send_the_same_request_and_read_the_same_samples(
    server: FakeOpenAI, model: str
) -> None:
    extra = {"api_key": "none", "top_k": 20, "extra_body": {"min_p": 0.05}}
    sampling = Sampling(temperature=0.9, max_tokens=64, seed=7, stop=("\n\n",))
    got = {}
    for transport in TRANSPORTS:
        fast = client(server.api_base, transport, model, extra=extra, logprobs=True)
        assert (fast.fast is not None) == (transport == "auto")
        done = asyncio.run(fast.complete(MESSAGES, sampling, n=3))
        got[transport] = [sample(d) for d in done], server.requests[-1]
    assert got["auto"] == got["litellm"]
    samples, body = got["auto"]
    assert body["n"] == 3 and body["top_k"] == 20 and body["min_p"] == 0.05
    assert [s[3] for s in samples] == ["length"] * 3 and samples[0][4] == pytest.approx(-0.25)


def test_messages_litellm_would_rewrite_are_rewritten_the_same_way(server: FakeOpenAI) -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "Calculate 1 + 1."}]}]
    bodies = []
    for transport in TRANSPORTS:
        asyncio.run(client(server.api_base, transport).complete(parts, Sampling()))
        bodies.append(server.requests[-1])
    assert bodies[0] == bodies[1]


def test_a_job_stores_the_same_calls_either_way(results: Path) -> None:
    columns = ["key", "output", "prompt_tokens", "completion_tokens", "finish_reason",
               "mean_logprob", "seed", "extracted", "score", "attempts"]  # fmt: skip
    frames = []
    with FakeOpenAI(logprob=lambda body, text: -0.5) as fake:
        for transport in TRANSPORTS:
            run_dir = ttcbench.run(
                [
                    f"results_dir={results / transport}",
                    "model=vllm",
                    "model.name=fake",
                    f"model.api_base={fake.api_base}",
                    "model.max_n=4",
                    "model.logprobs=true",
                    f"model.transport={transport}",
                    "task.limit=2",
                    "budget=pow2_8",
                    "logger=none",
                    "cache.enabled=false",
                ],  # fmt: skip
                progress=False,
            )
            calls = SampleStore(run_dir / "store.sqlite").calls_frame()
            frames.append(calls[columns].sort_values("key").reset_index(drop=True))
        assert {r["n"] for r in fake.requests} == {4}  # n batching: 8 samples, 2 requests each
    assert len(frames[0]) == 16 and frames[0]["score"].eq(1.0).all()
    assert frames[0].equals(frames[1])


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 408, 401, 403, 404, 400])
def test_each_http_error_is_the_same_litellm_error(server: FakeOpenAI, status: int) -> None:
    seen = []
    for transport in TRANSPORTS:
        server.enqueue(status)
        fast = client(server.api_base, transport, attempts=1)
        try:
            (done,) = asyncio.run(fast.complete(MESSAGES, Sampling()))
            seen.append(done.error.split(":")[0])  # e.g. "RateLimitError (HTTP 429)"
        except ProviderError as refused:  # one line: who refused, why, the fix
            assert server.error_message(status) in str(refused)
            seen.append(str(refused).split(":")[0])
    assert seen[0] == seen[1]


def test_transient_errors_are_retried_and_retry_after_honoured(server: FakeOpenAI) -> None:
    server.enqueue(503)
    server.enqueue(RESET)  # a dropped connection
    server.enqueue(429, retry_after=0.6)
    fast = client(server.api_base, "auto", attempts=4)
    (done,) = asyncio.run(fast.complete(MESSAGES, Sampling()))
    assert done.error is None and done.attempts == 4
    assert 0.6 <= done.retry_wait_s < 1.5 and len(server.requests) == 4


def test_a_server_that_hangs_hits_timeout_s(server: FakeOpenAI) -> None:
    server.enqueue(200, delay_s=3)
    fast = client(server.api_base, "auto", timeout_s=0.5, attempts=1)
    started = time.perf_counter()
    (done,) = asyncio.run(fast.complete(MESSAGES, Sampling()))
    assert done.error is not None and done.error.startswith("Timeout")
    assert time.perf_counter() - started < 2.5


def test_a_closed_port_is_a_wrong_address() -> None:
    fast = client(f"http://127.0.0.1:{closed_port()}/v1", "auto")
    with pytest.raises(ProviderError, match="cannot connect to .*Connect call failed"):
        asyncio.run(fast.complete(MESSAGES, Sampling()))


def test_transport_litellm_sends_through_litellm(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = []
    real = litellm.acompletion

    async def counting(**kwargs: Any) -> Any:
        sent.append(kwargs["model"])
        return await real(**kwargs)

    monkeypatch.setattr(litellm, "acompletion", counting)
    for transport in TRANSPORTS:
        asyncio.run(client(server.api_base, transport).complete(MESSAGES, Sampling()))
    assert sent == ["openai/local"] and len(server.requests) == 2


def test_the_shared_session_closes_with_its_event_loop(server: FakeOpenAI) -> None:
    fast = client(server.api_base, "auto")

    async def twice() -> int:
        await asyncio.gather(*(fast.complete(MESSAGES, Sampling(seed=i)) for i in range(4)))
        return len(openai_compat._sessions)

    assert asyncio.run(twice()) >= 1
    assert not openai_compat._sessions  # closed by the loop's shutdown, not left to GC


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_after_the_first_success_waiting_requests_go_in_parallel(transport: str) -> None:
    arrived: list[float] = []

    def reply(body: dict[str, Any]) -> str:
        arrived.append(time.monotonic())
        return "The answer is 5"

    with FakeOpenAI(reply=reply) as fake:
        fake.delay_s = 0.5
        slow = client(fake.api_base, transport)

        async def six() -> None:
            await asyncio.gather(*(slow.complete(MESSAGES, Sampling(seed=i)) for i in range(6)))

        asyncio.run(six())
    # The first goes alone (a bad key costs one request); the five that queued behind it are
    # then sent together, not one per 0.5 s answer.
    assert arrived[1] - arrived[0] >= 0.5 and arrived[-1] - arrived[1] < 0.4


def test_call_keys_are_call_key_with_the_shared_part_encoded_once() -> None:
    from ttcbench.sampler import call_key, call_keys

    messages = [{"role": "user", "content": 'é ☃ "quoted"\n'}, *MESSAGES]
    for sampling in (Sampling(), Sampling(seed=None, stop=("\n", "x"), temperature=0.3)):
        keys = call_keys("openai/local", messages, sampling, range(3, 12))
        assert keys == {i: call_key("openai/local", messages, sampling, i) for i in range(3, 12)}
