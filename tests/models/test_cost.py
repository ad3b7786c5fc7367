"""Per-response cost from prices read once per model equals litellm's own calculation."""

from __future__ import annotations

import litellm
import pytest

from ttcbench.models.client import ModelClient, ModelSpec, model_prices


def response(prompt: int, completion: int, model: str = "gpt-4o-mini") -> litellm.ModelResponse:
    return litellm.ModelResponse(
        model=model,
        choices=[{"index": 0, "finish_reason": "stop",
                  "message": {"role": "assistant", "content": "The answer is 4."}}],
        usage={"prompt_tokens": prompt, "completion_tokens": completion,
               "total_tokens": prompt + completion},
    )  # fmt: skip


@pytest.mark.parametrize("tokens", [(1, 1), (120, 40), (90_000, 4_000)])
def test_flat_prices_match_litellm(monkeypatch, tokens):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    client = ModelClient(ModelSpec(name="mini", model="openai/gpt-4o-mini"))
    answer = response(*tokens)
    expected = litellm.completion_cost(completion_response=answer, model="openai/gpt-4o-mini")
    assert expected > 0
    assert client._cost(answer) == pytest.approx(expected, rel=1e-9)


def test_self_hosted_and_local_models_are_unpriced_without_a_lookup_per_response(monkeypatch):
    hosted = ModelClient(ModelSpec(name="v", model="hosted_vllm/mine", api_base="http://h:1/v1"))
    assert hosted._cost(response(100, 10, "mine")) == 0.0
    calls = []
    monkeypatch.setattr(litellm, "completion_cost", lambda **kw: calls.append(kw) or 1.0)
    monkeypatch.setattr(litellm, "get_model_info", lambda *a, **k: calls.append(a) or {})
    for _ in range(3):
        assert hosted._cost(response(100, 10, "mine")) == 0.0
    assert calls == []  # resolved once, at the first response
    assert model_prices(ModelSpec(name="l", model="local/smollm2")) == "unpriced"


def test_tiered_prices_use_litellm_per_response(monkeypatch):
    info = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
            "input_cost_per_token_above_200k_tokens": 2e-6}  # fmt: skip
    monkeypatch.setattr(litellm, "get_model_info", lambda *a, **k: info)
    assert model_prices(ModelSpec(name="g", model="gemini/x")) == "tiered"
