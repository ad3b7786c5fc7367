"""The embedded engine batches samples and requests without changing any sample."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from ttcbench.models.local import LlamaCppProvider
from ttcbench.models.local_threads import ThreadTuner

COUNT = [{"role": "user", "content": "Count from 1 to 50."}]
GREET = [{"role": "user", "content": "Say hi."}]
STORY = [{"role": "user", "content": "Tell me a very short story about a cat."}]
MATH = [{"role": "user", "content": "What is 17 + 25? Answer briefly."}]
HOT = {"temperature": 1.0, "top_p": 0.95, "max_tokens": 24}


@pytest.fixture(scope="module")
def provider() -> Iterator[LlamaCppProvider]:
    provider = LlamaCppProvider()
    yield provider
    provider.close()


def ask(provider: LlamaCppProvider, messages: list[dict], **params: Any) -> dict[str, Any]:
    parts = [f.result(timeout=600) for f in provider._submit("smollm2", messages, params)]
    return {"choices": [c for p in parts for c in p["choices"]],
            "tokens": [n for p in parts for n in p["completion_tokens_per_choice"]]}  # fmt: skip


def texts(answer: dict[str, Any]) -> list[str]:
    return [c["message"]["content"] for c in answer["choices"]]


@pytest.mark.slow
def test_sample_i_is_the_same_alone_in_n_and_beside_other_requests(
    provider: LlamaCppProvider,
) -> None:
    in_n = texts(ask(provider, STORY, **HOT, seed=10, n=8))
    alone = [texts(ask(provider, STORY, **HOT, seed=10 + i))[0] for i in (0, 5)]
    # The same request while other prompts' requests share its decode steps.
    others = [provider._submit("smollm2", m, {**HOT, "seed": 3, "n": 3}) for m in (COUNT, MATH)]
    crowded = texts(ask(provider, STORY, **HOT, seed=10, n=8))
    for futures in others:
        assert all(f.result(timeout=600) for f in futures)
    assert alone == [in_n[0], in_n[5]]
    assert crowded == in_n
    assert len(set(in_n)) > 1  # different i, different samples at temperature > 0


@pytest.mark.slow
def test_temperature_zero_is_greedy_for_every_sample(provider: LlamaCppProvider) -> None:
    answer = ask(provider, COUNT, temperature=0.0, max_tokens=16, seed=1, n=4)
    assert len(set(texts(answer))) == 1
    assert texts(ask(provider, COUNT, temperature=0.0, max_tokens=16, seed=99)) == texts(answer)[:1]


@pytest.mark.slow
def test_max_tokens_stop_strings_and_finish_reasons(provider: LlamaCppProvider) -> None:
    greedy = {"temperature": 0.0, "seed": 0}
    cut = ask(provider, COUNT, max_tokens=5, **greedy)
    assert cut["choices"][0]["finish_reason"] == "length" and cut["tokens"] == [5]
    full = texts(ask(provider, COUNT, max_tokens=40, **greedy))[0]
    stopped = ask(provider, COUNT, max_tokens=40, stop=["5"], **greedy)
    assert stopped["choices"][0]["finish_reason"] == "stop"
    assert texts(stopped)[0] == full[: full.index("5")]
    ended = ask(provider, GREET, max_tokens=64, **greedy)
    assert ended["choices"][0]["finish_reason"] == "stop"  # the end-of-generation token
    assert ended["tokens"][0] < 64


@pytest.mark.slow
def test_logprobs_only_when_asked(provider: LlamaCppProvider) -> None:
    plain = ask(provider, MATH, **HOT, seed=4, n=2)
    scored = ask(provider, MATH, **HOT, seed=4, n=2, logprobs=True)
    assert texts(plain) == texts(scored)  # asking for them never changes a sample
    assert all(c["logprobs"] is None for c in plain["choices"])
    for choice, tokens in zip(scored["choices"], scored["tokens"], strict=True):
        content = choice["logprobs"]["content"]
        assert len(content) == tokens and all(t["logprob"] <= 0 for t in content)


@pytest.mark.slow
def test_a_cancelled_request_leaves_the_engine_usable(provider: LlamaCppProvider) -> None:
    async def cancel_one() -> None:
        task = asyncio.create_task(
            provider.acompletion(
                "smollm2",
                STORY,
                optional_params={"temperature": 1.0, "max_tokens": 400, "seed": 1, "n": 4},
            )  # fmt: skip
        )
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_one())
    answer = ask(provider, MATH, temperature=0.0, max_tokens=8, seed=0, n=8)
    assert len(answer["choices"]) == 8
    engine = provider._engine("smollm2")
    assert len(engine._free) == engine.n_seq and not engine._running


@pytest.mark.slow
def test_many_concurrent_requests_complete(provider: LlamaCppProvider) -> None:
    prompts = [COUNT, GREET, STORY, MATH]
    futures = [
        f
        for i in range(32)
        for f in provider._submit("smollm2", prompts[i % 4], {**HOT, "max_tokens": 6, "seed": i})
    ]
    results = [f.result(timeout=600) for f in futures]
    assert len(results) == 32 and all(len(r["choices"]) == 1 for r in results)
    # Requests larger than the engine's sequences are split, and keep their sample order.
    big = ask(provider, MATH, **{**HOT, "max_tokens": 4}, seed=0, n=20)
    assert [c["index"] for c in big["choices"]] == list(range(20))


def test_thread_tuner_takes_the_faster_setting_and_keeps_a_fixed_one() -> None:
    tuner = ThreadTuner()
    tuner.options, tuner.current = [1, 2], 2
    for _ in range(40):  # two threads collapse (a busy machine): one thread wins
        threads = tuner.pick()
        tuner.record(threads, 0.8 if threads == 2 else 0.1, 8)
    assert tuner.current == 1
    fixed = ThreadTuner(3)
    assert {fixed.pick() for _ in range(300)} == {3}
