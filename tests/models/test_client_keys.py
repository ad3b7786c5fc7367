"""A self-hosted `openai/` model without any API key must be refused before a request.

litellm turns the OpenAI client's missing-key error into an HTTP 500, which the retry loop
would take for a transient failure and retry for a minute before giving up.
"""

from __future__ import annotations

import pytest

from ttcbench.models.client import ModelClient, ModelSpec
from ttcbench.types import ConfigError


def test_openai_model_on_own_server_without_key_is_a_config_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    spec = ModelSpec(name="mine", model="openai/local", api_base="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY=.*model.extra.api_key=none"):
        ModelClient(spec)


@pytest.mark.parametrize(
    "model, extra, env",
    [
        ("openai/local", {"api_key": "none"}, {}),  # the key in the config
        ("openai/local", {}, {"OPENAI_API_KEY": "anything"}),  # the key in the environment
        ("hosted_vllm/local", {}, {}),  # vLLM's client needs no key
        ("ollama_chat/llama3", {}, {}),  # Ollama's address is api_base, not OLLAMA_API_BASE
    ],
)
def test_servers_that_have_what_they_need_are_accepted(monkeypatch, model, extra, env):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ModelClient(ModelSpec(name="mine", model=model, api_base="http://127.0.0.1:9", extra=extra))
