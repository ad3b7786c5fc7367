"""The embedded model's text, finish reasons and logprobs are llama.cpp's own numbers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ttcbench.models.local import LlamaCppProvider, embedded_model_path

COUNT = [{"role": "user", "content": "Count from 1 to 50."}]
GREET = [{"role": "user", "content": "Say hi."}]


@pytest.fixture(scope="module")
def provider() -> Iterator[LlamaCppProvider]:
    # The shipped Q4_1 weights, as the reference runs them (the default F16 copy's batched
    # matrix products round differently from llama.cpp's single-row path: ~5e-3 in a logprob).
    provider = LlamaCppProvider(weights="gguf")
    yield provider
    provider.close()


@pytest.fixture(scope="module")
def reference() -> Iterator[Any]:
    from llama_cpp import Llama

    path = embedded_model_path("smollm2")
    llm = Llama(model_path=str(path), n_ctx=2048, logits_all=True, verbose=False)
    yield llm
    llm.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("messages", "params", "finish"),
    [
        (GREET, {"max_tokens": 64}, "stop"),  # ends on the end-of-generation token
        (COUNT, {"max_tokens": 12}, "length"),  # last token sampled but never evaluated
        (COUNT, {"max_tokens": 64, "stop": ["5"]}, "stop"),  # stop string mid-text
    ],
)
def test_greedy_text_and_logprobs_equal_llama_cpps_own(
    provider: LlamaCppProvider, reference: Any, messages: list[dict], params: dict, finish: str
) -> None:
    """Greedy decoding makes the same tokens in both; the batch engine's prompt, stop rules
    and logprobs must then match llama-cpp-python's single-stream path."""
    params = {**params, "temperature": 0.0}
    ours = provider.completion("smollm2", messages, optional_params={**params, "logprobs": True})
    reference.reset()
    want = reference.create_chat_completion(
        messages=messages, seed=3, logprobs=True, top_logprobs=1, **params
    )["choices"][0]

    assert want["finish_reason"] == finish == ours.choices[0].finish_reason
    assert ours.choices[0].message.content == want["message"]["content"]
    got = ours.choices[0].logprobs["content"]
    assert len(got) == len(want["logprobs"]["content"]) == ours.usage.completion_tokens > 0
    assert [t["token"] for t in got] == [t["token"] for t in want["logprobs"]["content"]]
    assert [t["logprob"] for t in got] == pytest.approx(
        [t["logprob"] for t in want["logprobs"]["content"]], abs=1e-4
    )


@pytest.mark.slow
def test_samples_are_the_same_with_and_without_logprobs(provider: LlamaCppProvider) -> None:
    """The cache key leaves logprobs out, so asking for them must not change the sample."""
    params = {"max_tokens": 24, "temperature": 0.7, "seed": 11}
    plain = provider.completion("smollm2", COUNT, optional_params=dict(params))
    scored = provider.completion("smollm2", COUNT, optional_params={**params, "logprobs": True})
    assert plain.choices[0].message.content == scored.choices[0].message.content
    assert plain.choices[0].logprobs is None
    assert len(scored.choices[0].logprobs["content"]) == scored.usage.completion_tokens
