"""What to call and how, as plain data: model, sampling and retry settings.

Kept apart from `client` so that the command line, config checks and `--cfg job` can build
and validate them without importing litellm (seconds of start-up; see benchmarks/startup.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ttcbench.types import ConfigError

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
    api_base: str | tuple[str, ...] | None = None
    """The server's address, or a list of replicas of one model that requests are spread over
    (`ttcbench/models/replicas.py`); a list of one is that one address."""
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

    def __post_init__(self) -> None:
        # A list from YAML or `model.api_base=[...]` becomes a tuple (the spec is frozen data).
        object.__setattr__(self, "api_base", replica_bases(self.api_base))

    @property
    def is_local(self) -> bool:
        return self.model.startswith(f"{LOCAL_PROVIDER}/")

    @property
    def api_bases(self) -> tuple[str, ...]:
        """Every server address: one, several replicas, or none (the provider's own)."""
        if self.api_base is None:
            return ()
        return self.api_base if isinstance(self.api_base, tuple) else (self.api_base,)


def replica_bases(value: Any) -> str | tuple[str, ...] | None:
    """`model.api_base` as a ModelSpec holds it: None, one address, or a tuple of two or more
    distinct `http(s)://` addresses; anything else is a ConfigError saying how to write it."""
    if value is None or isinstance(value, str):
        return value
    example = "e.g. model.api_base=[http://gpu1:8000/v1,http://gpu2:8000/v1]"
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(
            f"model.api_base={value!r}: give one address or a non-empty list of them, {example}"
        )
    for entry in value:
        if not isinstance(entry, str) or not entry.startswith(("http://", "https://")):
            raise ConfigError(
                f"model.api_base lists {entry!r}, which is not an http(s):// address: {example}"
            )
    if len(set(value)) < len(value):
        raise ConfigError(f"model.api_base lists an address twice ({list(value)}): {example}")
    return value[0] if len(value) == 1 else tuple(value)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    initial_wait_s: float = 1.0
    max_wait_s: float = 60.0
