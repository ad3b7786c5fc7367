"""One async client for every model, through litellm: retries, `n`, tokens, latency, cost.

Self-hosted OpenAI-compatible servers (`api_base` with `openai/`, `hosted_vllm/`, ...) are
sent the request litellm would send through a lighter HTTP path (`openai_compat`), because
litellm's own costs ~5 ms of CPU per request; `model.transport: litellm` forces litellm's.

Transient provider errors (429, 5xx, timeouts, dropped connections) are retried with
exponential backoff, honouring the server's `Retry-After`; the job stops at the first refusal
no retry fixes (bad key, no permission, unknown model, bad request: `ProviderError`), and
until a first success a server that cannot be reached at all counts as such a refusal. Other
errors come back as a completion carrying `error`, so the runner records it instead of
scoring it as a wrong answer. Model time is the successful attempt's own; failed attempts and
backoff are counted apart (`retry_wait_s`).

A list of `api_base` replicas spreads the tries over them (`replicas`): a try that fails on one
replica goes to another at once, and a server counts as unreachable only once every replica
has refused connections before any success.

litellm is imported only where a request needs it (its import takes seconds): the embedded model
is called in-process, and an error can only be one of litellm's classes once litellm is loaded.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import sys
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from ttcbench.models.spec import LOCAL_PROVIDER, ModelSpec, RetryPolicy, Sampling
from ttcbench.types import ConfigError, ProviderError

if TYPE_CHECKING:
    from ttcbench.models.local import LlamaCppProvider
    from ttcbench.models.openai_compat import OpenAICompat
    from ttcbench.models.replicas import Replicas

__all__ = ["Completion", "LOCAL_PROVIDER", "ModelClient", "ModelSpec", "RetryPolicy", "Sampling"]


def import_litellm() -> Any:
    """litellm, imported now (seconds, once per process) and kept quiet."""
    import litellm

    litellm.suppress_debug_info = True  # no "Give Feedback" banners in our output
    return litellm


@dataclass(frozen=True)
class ErrorKinds:
    """litellm's exception classes, by what ttcbench does about them."""

    transient: tuple[type[BaseException], ...]
    refusals: tuple[tuple[type[BaseException], int], ...]
    per_prompt: tuple[type[BaseException], ...]


def error_kinds() -> ErrorKinds:
    """litellm's classes of transient errors, refusals and per-prompt errors; none while
    litellm is not imported, since then no error can be of its classes (the embedded engine
    raises none, and the fast transport imports litellm to raise one)."""
    global _kinds
    litellm = sys.modules.get("litellm")
    if _kinds is not None or litellm is None or not hasattr(litellm, "Timeout"):
        return _kinds or ErrorKinds((), (), ())
    _kinds = ErrorKinds(
        transient=(
            litellm.RateLimitError,
            litellm.InternalServerError,
            litellm.ServiceUnavailableError,
            litellm.BadGatewayError,  # a proxy before a restarting server: as transient as 503
            litellm.APIConnectionError,
            litellm.Timeout,
        ),
        # Refusals (by HTTP status) that no retry fixes (FATAL_FIXES); some providers'
        # refusals come as a plain `APIError` that only carries the status (an
        # OpenAI-compatible server's 403), so the status counts too.
        refusals=(
            (litellm.AuthenticationError, 401),
            (litellm.PermissionDeniedError, 403),
            (litellm.NotFoundError, 404),
            (litellm.BadRequestError, 400),
        ),
        # Bad requests about one prompt, not the setup: recorded on the call, the job goes on.
        per_prompt=(litellm.ContextWindowExceededError, litellm.ContentPolicyViolationError),
    )
    return _kinds


_kinds: ErrorKinds | None = None

FATAL_FIXES: dict[int, str] = {
    401: "check the API key for {model} (model.api_key_env, or the provider's key variable "
    "such as OPENAI_API_KEY)",
    403: "this key has no access to {model}: use a key or project with access, or another model",
    404: "check the model name {model} (model.model) and model.api_base",
    400: "the provider rejected the request's parameters: check sampling.* and model.extra "
    "for {model}",
}
"""Refusals (by HTTP status) that no retry fixes, with the fix each asks for: the job stops
at the first one."""

CONNECT_ATTEMPTS = 3
"""Tries before a server that refuses connections (or whose name does not resolve) is taken
for a wrong address, while no request of this client has succeeded yet."""


def unreachable_kinds() -> tuple[type[BaseException], ...]:
    """Errors that mean no connection could be made at all; httpx's only once something
    imported it (litellm's path), as no httpx error exists before."""
    httpx = sys.modules.get("httpx")
    connect = getattr(httpx, "ConnectError", None)
    return (ConnectionRefusedError, socket.gaierror, *([connect] if connect else []))


@dataclass
class Completion:
    """One sample out of a request, with its share of the request's usage."""

    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cost_usd: float = 0.0
    finish_reason: str | None = None
    error: str | None = None
    seed: int | None = None
    """The seed of the request that produced it (shared by the samples of one `n` request)."""
    mean_logprob: float | None = None
    """Mean token log-probability of the text, when the provider returned logprobs."""
    attempts: int = 1
    """Tries the request took (1 = no retry); shared by the samples of one `n` request."""
    retry_wait_s: float = 0.0
    """Time spent in failed tries and backoff before the one that answered (not model time),
    shared by the samples of one request like `latency_s`."""


@dataclass(frozen=True)
class Tries:
    """How one request went: tries made, the answering try's own time, and the rest."""

    attempts: int = 1
    latency_s: float = 0.0
    retry_wait_s: float = 0.0


TRANSPORTS = ("auto", "litellm")


def check_model(spec: ModelSpec) -> None:
    """Fail before any work if the provider is unknown or its API key is missing."""
    if spec.transport not in TRANSPORTS:
        raise ConfigError(f"model.transport={spec.transport!r}: use one of {', '.join(TRANSPORTS)}")
    if spec.is_local:
        if spec.transport == "litellm":  # else called in-process: nothing of litellm's to set
            from ttcbench.models.local_litellm import register_local_provider

            register_local_provider()
        return
    if spec.api_base and spec.api_key_env and not os.environ.get(spec.api_key_env):
        raise ConfigError(f"set the environment variable {spec.api_key_env} for {spec.name}")


def check_with_litellm(spec: ModelSpec) -> None:
    """The provider must be one litellm knows, and the keys it needs must be set."""
    litellm = import_litellm()
    try:
        litellm.get_llm_provider(spec.model, api_base=next(iter(spec.api_bases), None))
    except Exception as err:
        raise ConfigError(
            f"litellm does not know the model {spec.model!r}: use 'provider/model' "
            "(e.g. openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, hosted_vllm/NAME "
            "with api_base) or a config in conf/model/"
        ) from err
    if spec.api_base and (spec.api_key_env or spec.extra.get("api_key")):
        return
    missing = litellm.validate_environment(spec.model).get("missing_keys") or []
    if spec.api_base:  # the server's address is given: only a missing key can matter
        missing = [name for name in missing if not name.endswith("_API_BASE")]
    if missing and spec.api_base:
        # An `openai/` model on a self-hosted server still needs *a* key for the OpenAI client;
        # without one litellm answers HTTP 500, which would be retried as if transient.
        raise ConfigError(
            f"model {spec.model!r} at {', '.join(spec.api_bases)} needs an API key: "
            f"export {missing[0]}=... (any value if the server ignores keys) or set "
            "model.extra.api_key=none"
        )
    if missing:
        raise ConfigError(
            f"model {spec.model!r} needs the environment variable(s) {', '.join(missing)}: "
            f"export {missing[0]}=..."
        )


class ModelClient:
    """Async completions for one model with retries and honest per-sample accounting."""

    fast: OpenAICompat | None = None
    """The lighter path for OpenAI-compatible `api_base` servers, or None (litellm)."""

    def __init__(self, spec: ModelSpec, retry: RetryPolicy | None = None) -> None:
        check_model(spec)
        self.spec = spec
        self.retry = retry or RetryPolicy()
        self.requests_sent = 0
        """Every HTTP/provider request made, retries included: what tests count."""
        self.succeeded = False
        """Whether any request has been answered: until then requests go one at a time, so a
        bad key or address costs one request, not one per concurrency slot."""
        self.fatal: ProviderError | None = None
        """The refusal that stopped this client: every later request raises it unsent."""
        self._opening: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._prices: Prices | None = None
        self.replicas: Replicas | None = None
        """The replicas of a list `api_base`, each try's server picked by litellm's Router."""
        self._refused_by: set[str] = set()
        """Replicas that refused connections before any success (see `_unreachable_wait`)."""
        self.local: LlamaCppProvider | None = None
        """The in-process engines of the embedded model (`transport: auto`)."""
        # The embedded engine decodes a request's n samples as one batch (models/local.py).
        self.supports_n = True
        if spec.is_local:
            if spec.transport == "auto":
                from ttcbench.models.local import local_engines

                self.local = local_engines()
        elif not self._from_plan():
            self._from_litellm()

    def _from_plan(self) -> bool:
        """Set up from litellm's decision in an earlier process (`request_plans`), without
        importing litellm; False where there is no such plan."""
        from ttcbench.models.openai_compat import OpenAICompat
        from ttcbench.models.request_plans import load_plan

        plan = load_plan(self.spec)
        if plan is None or "supports_n" not in plan or "prices" not in plan:
            return False
        self.fast = OpenAICompat.planned(self.spec, plan)
        if self.fast is None:
            return False
        self.supports_n = bool(plan["supports_n"])
        prices = plan["prices"]
        self._prices = tuple(prices) if isinstance(prices, list) else prices
        return True

    def _from_litellm(self) -> None:
        """Set up as litellm decides now (and keep its decision for the next process)."""
        spec = self.spec
        check_with_litellm(spec)
        self.supports_n = "n" in (
            import_litellm().get_supported_openai_params(model=spec.model) or []
        )
        if len(spec.api_bases) > 1:
            from ttcbench.models.replicas import Replicas

            self.replicas = Replicas(spec)
            return
        from ttcbench.models.openai_compat import fast_transport

        self.fast = fast_transport(spec)
        if self.fast is not None:
            self._prices = model_prices(spec)
            self.fast.remember(self.supports_n, self._prices)

    async def complete(
        self, messages: list[dict[str, str]], sampling: Sampling, n: int = 1
    ) -> list[Completion]:
        """`n` samples of one prompt; one request with `n` when the provider supports it.
        Raises `ProviderError` on a refusal no retry fixes."""
        if n > 1 and not self.supports_n:
            out: list[Completion] = []
            for i in range(n):
                seed = None if sampling.seed is None else sampling.seed + i
                out += await self.complete(messages, _with_seed(sampling, seed), 1)
            return out
        started = time.perf_counter()
        try:
            response, tries = await self._first_alone(messages, sampling, n)
        except (ProviderError, ConfigError):  # e.g. the embedded model's package is missing
            raise
        except Exception as err:  # transient after the last retry, or about this prompt
            waited = (time.perf_counter() - started) / n
            error = _describe(err)
            attempts = getattr(err, "ttcbench_attempts", 1)
            failed = Completion(
                None, error=error, seed=sampling.seed, attempts=attempts, retry_wait_s=waited
            )
            return [failed] * n
        return self._split(response, n, tries, sampling.seed)

    async def _first_alone(
        self, messages: list[dict[str, str]], sampling: Sampling, n: int
    ) -> tuple[Any, Tries]:
        """Until a first success requests go one at a time; those that waited for the lock
        while the first one succeeded then go in parallel (they were sent one by one after
        it, which held the concurrency slots ~1 at the start of every job)."""
        if not self.succeeded and not self.spec.is_local:  # in-process: no key or address
            async with self._opening_lock():
                if not self.succeeded:
                    return await self._request(messages, sampling, n)
        return await self._request(messages, sampling, n)

    def _opening_lock(self) -> asyncio.Lock:
        """The lock that keeps requests one at a time until the first success (one per event
        loop: a client may serve several `asyncio.run` calls)."""
        loop = asyncio.get_running_loop()
        if self._opening is None or self._opening[0] is not loop:
            self._opening = (loop, asyncio.Lock())
        return self._opening[1]

    async def _request(
        self, messages: list[dict[str, str]], sampling: Sampling, n: int
    ) -> tuple[Any, Tries]:
        """The response and how many tries it took; each try is timed on its own, so model
        time is the answering try's, and failed tries and backoff are counted apart."""
        if self.fast is not None and self.fast.needs_litellm(messages, sampling, n):
            await asyncio.to_thread(import_litellm)  # a plan's gap: not on the loop, not timed
        started = time.perf_counter()
        for attempt in range(1, self.retry.max_attempts + 1):
            if self.fatal is not None:  # another request was refused: send nothing more
                raise ProviderError(str(self.fatal))
            base = None if self.replicas is None else await self.replicas.pick()
            self.requests_sent += 1
            sent = time.perf_counter()
            try:
                response = await self._send(messages, sampling, n, base)
            except Exception as err:
                wait = self._retry_wait(err, attempt, base)  # or raise: refused, out of tries
            else:
                self.succeeded = True
                latency = time.perf_counter() - sent
                return response, Tries(attempt, latency, sent - started)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _send(
        self, messages: list[dict[str, str]], sampling: Sampling, n: int, base: str | None = None
    ) -> Any:
        """One try (to replica `base` of a list), through the fast path where it applies, else
        through litellm."""
        fast = self.fast if self.replicas is None or base is None else self.replicas.fast[base]
        if fast is not None:
            return await fast.complete(messages, sampling, n)
        if self.local is not None:
            name = self.spec.model.split("/", 1)[1]
            return await self.local.acompletion(name, messages, self._kwargs(sampling, n))
        # max_retries=0: retries are ours, so the SDK must not retry silently.
        return await import_litellm().acompletion(
            model=self.spec.model,
            messages=messages,
            timeout=self.spec.timeout_s,
            max_retries=0,
            num_retries=0,
            **self._kwargs(sampling, n, base),
        )

    def _kwargs(self, sampling: Sampling, n: int, base: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {**sampling.as_kwargs(), **self.spec.extra}
        if n > 1:
            kwargs["n"] = n
        if self.spec.logprobs:  # not part of the cache key: it does not change the sample
            kwargs["logprobs"] = True
        if base or self.spec.api_base:
            kwargs["api_base"] = base or self.spec.api_base
        if self.spec.api_key_env:
            kwargs["api_key"] = os.environ.get(self.spec.api_key_env)
        return kwargs

    def _retry_wait(self, err: Exception, attempt: int, base: str | None = None) -> float:
        """Seconds to wait before the next try, or raise: a refusal as `ProviderError` (and
        this client sends nothing more), anything else as itself once retrying is over. A
        transient failure on one replica of several cools it down, and the next try goes to
        another replica without waiting (the backoff is for a server that is struggling)."""
        refused = _refusal_status(err)
        if refused is not None:
            fix = FATAL_FIXES[refused].format(model=self.spec.model)
            self.fatal = ProviderError(self._refusal(err, fix))
            raise self.fatal from err
        unreachable = _unreachable_cause(err) is not None
        free = (
            self.replicas is not None
            and base is not None
            and (unreachable or isinstance(err, error_kinds().transient))
            and self.replicas.failed(base, err)
        )
        if not self.succeeded and unreachable:
            return self._unreachable_wait(err, attempt, base, free)
        if not isinstance(err, error_kinds().transient) or attempt >= self.retry.max_attempts:
            err.ttcbench_attempts = attempt  # type: ignore[attr-defined]
            raise err
        if free:
            return 0.0
        initial = self.retry.initial_wait_s
        backoff = initial * 2 ** (attempt - 1) + random.uniform(0, initial)
        return min(max(backoff, retry_after_s(err) or 0.0), self.retry.max_wait_s)

    def _unreachable_wait(
        self, err: Exception, attempt: int, base: str | None, free: bool
    ) -> float:
        """Before any success, no connection at all: taken for a wrong address after
        CONNECT_ATTEMPTS tries, and with replicas only once every one of them has refused;
        until then the next try goes to a replica not yet known to refuse, without waiting."""
        if base is not None:
            self._refused_by.add(base)
        everywhere = self.replicas is None or len(self._refused_by) == len(self.replicas.bases)
        if everywhere and attempt >= min(CONNECT_ATTEMPTS, self.retry.max_attempts):
            self.fatal = ProviderError(self._unreachable(err, attempt))
            raise self.fatal from err
        if attempt >= self.retry.max_attempts:  # more dead replicas than tries
            err.ttcbench_attempts = attempt  # type: ignore[attr-defined]
            raise err
        return 0.0 if free else min(self.retry.initial_wait_s * 2 ** (attempt - 1), 1.0)

    def _refusal(self, err: Exception, fix: str) -> str:
        status = getattr(err, "status_code", None)
        kind = type(err).__name__ + (f", HTTP {status}" if status else "")
        return (
            f"{self.spec.name} refused the request ({kind}): {_provider_message(err)} "
            f"Fix: {fix}. No further requests were sent."
        )

    def _unreachable(self, err: Exception, attempt: int) -> str:
        bases = self.spec.api_bases
        where = bases[0] if len(bases) == 1 else f"any of {', '.join(bases)}"
        where = where if bases else f"the provider of {self.spec.model}"
        return (
            f"cannot connect to {where} ({_unreachable_cause(err)}) after {attempt} tries, and no "
            "request has succeeded yet. Fix: start the server or correct model.api_base, or "
            "check the network."
        )

    def _split(self, response: Any, n: int, tries: Tries, seed: int | None) -> list[Completion]:
        usage = getattr(response, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_total = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = self._cost(response)
        # The embedded model reports its own compute time: the wall time here also counts
        # waiting for the one model that concurrent requests share.
        latency = float(getattr(response, "_hidden_params", {}).get("compute_s", tries.latency_s))
        choices = list(response.choices)[:n]
        # Providers report one usage per request: the prompt tokens and the cost are shared
        # evenly by its samples, completion tokens in proportion to each sample's length.
        exact = getattr(response, "_hidden_params", {}).get("completion_tokens_per_choice")
        lengths = [_completion_len(c) for c in choices]
        completion_shares = exact or _split_total(completion_total, lengths)
        prompt_shares = _split_total(prompt, [1] * len(choices))
        out = []
        for i, choice in enumerate(choices):
            out.append(
                Completion(
                    text=choice.message.content or "",
                    prompt_tokens=prompt_shares[i],
                    completion_tokens=completion_shares[i],
                    latency_s=latency / len(choices),  # one request's time, shared like its cost
                    cost_usd=cost / len(choices),
                    finish_reason=choice.finish_reason,
                    seed=seed,
                    mean_logprob=_mean_logprob(choice),
                    attempts=tries.attempts,
                    retry_wait_s=tries.retry_wait_s / len(choices),
                )
            )
        missing = n - len(out)
        out += [
            Completion(None, error="provider returned fewer choices than n", seed=seed)
        ] * missing
        return out

    def _cost(self, response: Any) -> float:
        """USD of one response. The price list is read once per model (`model_prices`):
        `litellm.completion_cost` per response cost ~1 ms of CPU per request and, for a
        self-hosted model, always answered 0."""
        if self._prices is None:
            self._prices = model_prices(self.spec)
        prices = self._prices
        if prices == "unpriced":
            return 0.0
        usage = getattr(response, "usage", None)
        details = getattr(usage, "prompt_tokens_details", None)
        if isinstance(prices, str) or getattr(details, "cached_tokens", None):  # "tiered"
            try:  # pricing a flat rate cannot express: litellm's full calculation
                if hasattr(response, "as_litellm"):  # the fast path's light response
                    response = response.as_litellm()
                cost = import_litellm().completion_cost
                return float(cost(completion_response=response, model=self.spec.model))
            except Exception:
                return 0.0
        per_input, per_output = prices
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        return prompt * per_input + completion * per_output


Prices = tuple[float, float] | str
"""USD per prompt and per completion token, or "unpriced" (local, or not in litellm's cost
map: self-hosted) or "tiered" (prices that depend on the request: litellm per response)."""


def model_prices(spec: ModelSpec) -> Prices:
    """The model's flat per-token prices from litellm's cost map, looked up once."""
    if spec.is_local:
        return "unpriced"
    try:
        info = import_litellm().get_model_info(spec.model)
    except Exception:  # not in the cost map (a self-hosted model): unknown, recorded as 0
        return "unpriced"
    if any("_above_" in key and value for key, value in info.items()):
        return "tiered"  # e.g. a higher rate past 200k prompt tokens
    return float(info.get("input_cost_per_token") or 0.0), float(
        info.get("output_cost_per_token") or 0.0
    )


def _with_seed(sampling: Sampling, seed: int | None) -> Sampling:
    from dataclasses import replace

    return replace(sampling, seed=seed)


def _mean_logprob(choice: Any) -> float | None:
    """Mean of the per-token logprobs of an OpenAI-style choice, None when absent."""
    logprobs = getattr(choice, "logprobs", None)
    content = (
        logprobs.get("content")
        if isinstance(logprobs, dict)
        else getattr(logprobs, "content", None)
    )
    if not content:
        return None
    values = [t["logprob"] if isinstance(t, dict) else t.logprob for t in content]
    return float(sum(values) / len(values))


def _split_total(total: int, weights: list[int]) -> list[int]:
    """Integer shares of `total` proportional to `weights` that add up to it exactly."""
    if not weights:
        return []
    weight_sum = sum(weights) or len(weights)
    exact = [total * (w or 1) / weight_sum for w in weights]
    shares = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: shares[i] - exact[i])
    for i in by_remainder[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _completion_len(choice: Any) -> int:
    return len(choice.message.content or "") + 1


def _describe(err: BaseException) -> str:
    status = getattr(err, "status_code", None)
    head = f"{type(err).__name__}" + (f" (HTTP {status})" if status else "")
    return f"{head}: {str(err).strip().splitlines()[0][:300] if str(err).strip() else ''}"


def _refusal_status(err: BaseException) -> int | None:
    """The HTTP status of a refusal no retry fixes (a key in FATAL_FIXES), else None; bad
    requests about one prompt (context too long, content policy) are not refusals of the
    setup."""
    kinds = error_kinds()
    if isinstance(err, kinds.per_prompt):
        return None
    for kind, status in kinds.refusals:
        if isinstance(err, kind):
            return status
    code = getattr(err, "status_code", None)
    return int(code) if code in FATAL_FIXES else None


def _unreachable_cause(err: BaseException) -> str | None:
    """Why no connection could be made at all (refused, name not resolved), or None when the
    error is something else (a reset, a timeout, an HTTP answer)."""
    seen: BaseException | None = err
    found: BaseException | None = None
    unreachable = unreachable_kinds()
    for _ in range(12):  # the cause chain: litellm -> openai -> httpx -> aiohttp -> OSError
        if seen is None:
            break
        if isinstance(seen, unreachable):
            found = seen
        seen = seen.__cause__ or seen.__context__
    if found is None:
        return None
    return " ".join(str(found).split())[:200] or type(found).__name__


def _provider_message(err: BaseException) -> str:
    """The provider's own words, on one line, without litellm's class-name prefixes."""
    text = " ".join(str(err).split())
    text = re.sub(r"^(litellm\.\w+:\s*)?(\w+Error:\s*)?(\w+Exception - )?", "", text)
    return text[:300].rstrip(".") + "."


def retry_after_s(err: BaseException) -> float | None:
    """The server's `Retry-After` (or `retry-after-ms`) in seconds, from the error's response
    headers; None when absent or unreadable."""
    headers = getattr(err, "litellm_response_headers", None)
    if headers is None:
        headers = getattr(getattr(err, "response", None), "headers", None)
    found = {str(k).lower(): str(v) for k, v in dict(headers or {}).items()}
    if "retry-after-ms" in found:
        try:
            return max(0.0, float(found["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = found.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # an HTTP date
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
