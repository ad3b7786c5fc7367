"""The embedded model as litellm's custom provider `local/<name>`.

`model.transport: litellm` sends the embedded model's requests through `litellm.acompletion`
like any provider's, and `litellm.completion(model="local/smollm2")` works in a notebook once
this is registered; both reach the same in-process engines as ttcbench's direct path
(`local.local_engines`), so the samples are the same.
"""

from __future__ import annotations

from typing import Any, cast

import litellm
from litellm import CustomLLM, ModelResponse

from ttcbench.models.local import PROVIDER, local_engines


class LlamaCppHandler(CustomLLM):
    """litellm's handler for `local/<name>`: the engines' answer as litellm's response."""

    def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
        answer = local_engines().completion(model, messages, dict(kwargs["optional_params"]))
        return cast(ModelResponse, answer.as_litellm())

    async def acompletion(  # type: ignore[override]
        self, model: str, messages: list, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        answer = await local_engines().acompletion(model, messages, dict(kwargs["optional_params"]))
        return cast(ModelResponse, answer.as_litellm())


_registered: LlamaCppHandler | None = None


def register_local_provider() -> LlamaCppHandler:
    """Register the handler with litellm once per process (idempotent)."""
    global _registered
    if _registered is None:
        _registered = LlamaCppHandler()
        litellm.custom_provider_map = [
            entry for entry in litellm.custom_provider_map if entry["provider"] != PROVIDER
        ] + [{"provider": PROVIDER, "custom_handler": _registered}]
        litellm.suppress_debug_info = True
    return _registered
