"""The embedded model's logprobs are llama.cpp's own numbers, computed without its slow path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ttcbench.models.local import LlamaCppProvider

COUNT = [{"role": "user", "content": "Count from 1 to 50."}]
GREET = [{"role": "user", "content": "Say hi."}]


@pytest.fixture(scope="module")
def provider() -> Iterator[LlamaCppProvider]:
    provider = LlamaCppProvider()
    yield provider
    provider.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("messages", "params", "finish"),
    [
        (GREET, {"max_tokens": 64}, "stop"),  # ends on the end-of-generation token
        (COUNT, {"max_tokens": 12}, "length"),  # last token sampled but never evaluated
        (COUNT, {"max_tokens": 64, "stop": ["5"]}, "stop"),  # stop string mid-text
    ],
)
def test_token_logprobs_equal_llama_cpps_own(
    provider: LlamaCppProvider, messages: list[dict], params: dict, finish: str
) -> None:
    params = {**params, "temperature": 0.7}
    ours = provider._generate("smollm2", messages, {**params, "seed": 3, "logprobs": True})
    llm = provider._model("smollm2")
    llm.reset()
    reference = llm.create_chat_completion(
        messages=messages, seed=3, logprobs=True, top_logprobs=1, **params
    )["choices"][0]

    assert reference["finish_reason"] == finish
    assert ours.choices[0].message.content == reference["message"]["content"]
    got = ours.choices[0].logprobs["content"]
    want = reference["logprobs"]["content"]
    assert len(got) == len(want) == ours.usage.completion_tokens > 0
    assert [t["token"] for t in got] == [t["token"] for t in want]
    assert [t["logprob"] for t in got] == pytest.approx([t["logprob"] for t in want], abs=1e-5)


@pytest.mark.slow
def test_samples_are_the_same_with_and_without_logprobs(provider: LlamaCppProvider) -> None:
    """The cache key leaves logprobs out, so asking for them must not change the sample."""
    params = {"max_tokens": 24, "temperature": 0.7, "seed": 11}
    plain = provider._generate("smollm2", COUNT, dict(params))
    scored = provider._generate("smollm2", COUNT, {**params, "logprobs": True})
    assert plain.choices[0].message.content == scored.choices[0].message.content
    assert plain.choices[0].get("logprobs") is None
