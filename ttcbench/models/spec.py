"""What to call and how, as plain data: model, sampling and retry settings.

Kept apart from `client` so that the command line, config checks and `--cfg job` can build
and validate them without importing litellm (seconds of start-up; see benchmarks/startup.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LOCAL_PROVIDER = "local"
"""litellm provider prefix of the embedded model (`local/smollm2`, ttcbench/models/local.py)."""


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters; every field is part of a call's cache key."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = 0
    stop: tuple[str, ...] | None = None

    def as_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
        }
        if self.seed is not None:
            kwargs["seed"] = self.seed
        if self.stop:
            kwargs["stop"] = list(self.stop)
        return kwargs


@dataclass(frozen=True)
class ModelSpec:
    """Which model to call and how; `name` is the label used in records and reports."""

    name: str
    model: str
    """litellm model string: `local/smollm2`, `openai/gpt-4o-mini`, `hosted_vllm/...`."""
    api_base: str | None = None
    api_key_env: str | None = None
    """Environment variable holding the key for an `api_base` server (None: litellm's own)."""
    params_b: float | None = None
    """Parameter count in billions, for FLOPs estimates (2 x params x tokens)."""
    max_n: int = 8
    """Largest `n` per request; smaller means less work lost if a request is interrupted."""
    logprobs: bool = False
    """Ask for token logprobs (self-certainty verifiers); only where the provider has them."""
    timeout_s: float = 600.0
    extra: dict[str, Any] = field(default_factory=dict)
    transport: str = "auto"
    """`auto`: requests to an OpenAI-compatible `api_base` server (vLLM, SGLang, llama.cpp)
    skip litellm's per-request machinery (same request, ~25x less CPU); `litellm`: every
    request through `litellm.acompletion`."""

    @property
    def is_local(self) -> bool:
        return self.model.startswith(f"{LOCAL_PROVIDER}/")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    initial_wait_s: float = 1.0
    max_wait_s: float = 60.0
