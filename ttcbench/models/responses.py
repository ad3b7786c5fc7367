"""The light chat response the fast paths return: what `ModelClient` reads, nothing more.

litellm's `ModelResponse` is a pydantic object (~0.7 ms to build per request) and importing
litellm costs seconds; the OpenAI-compatible fast transport and the embedded engine answer with
these plain dataclasses instead, and build litellm's object only when litellm itself must read
the response (its cost calculation for tiered prices, or a caller of the litellm provider).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Message:
    content: str | None


@dataclass(slots=True)
class Choice:
    message: Message
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


@dataclass(slots=True)
class Details:
    cached_tokens: int = 0


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_details: Details | None = None


@dataclass(slots=True)
class ChatResponse:
    """A chat completion's choices and usage; `raw` is the provider's JSON, when it had one."""

    choices: list[Choice]
    usage: Usage
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    _hidden_params: dict[str, Any] = field(repr=False, default_factory=dict)
    """What the embedded engine adds (its compute time, tokens per choice), under the name
    litellm gives such extras, so `ModelClient` reads both kinds of response alike."""

    def as_litellm(self) -> Any:
        """The full litellm object, for litellm's own cost calculation (tiered prices) or a
        caller of litellm's provider, with the extras it reads from `_hidden_params`."""
        import litellm

        response = litellm.ModelResponse(**self.raw)
        response._hidden_params.update(self._hidden_params)
        return response
