"""A fast transport for self-hosted OpenAI-compatible chat servers (vLLM, SGLang, llama.cpp).

`litellm.acompletion` costs ~5 ms of CPU per request (a few hundred samples/s at most), which
a vLLM server with short answers outruns many times over. For providers litellm sends in the
OpenAI chat format (`openai`, `hosted_vllm`, ...) to a server at `model.api_base`, this module
asks litellm once per (model, sampling, n) what to send (URL, headers, body: its own parameter
mapping and request transform), then makes each request with one shared aiohttp session per
event loop and parses the JSON into light objects with the attributes `ModelClient` reads.
Errors go through litellm's own exception mapping, so retries, refusals and `Retry-After`
behave exactly as on litellm's path. `model.transport=litellm` turns it off.

What litellm decided is kept for the next process (`request_plans`): a transport made from a
plan (`OpenAICompat.planned`) sends the same requests without importing litellm, and imports
it only for what the plan does not cover.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import aiohttp

from ttcbench.models.client import import_litellm
from ttcbench.models.request_plans import (
    FINISH_REASONS,
    KEY_PLACEHOLDER,
    key_from,
    key_source,
    save_plan,
    signature,
)
from ttcbench.models.responses import ChatResponse, Choice, Details, Message, Usage

if TYPE_CHECKING:
    from litellm.llms.openai.chat.gpt_transformation import OpenAIGPTConfig

    from ttcbench.models.client import ModelSpec, Sampling

PROVIDERS = frozenset({"openai", "hosted_vllm", "lm_studio", "llamafile"})
"""litellm providers whose chat requests are plain OpenAI chat completions at `api_base`
(checked against litellm's own path in tests/models/test_openai_compat.py)."""

OWN_EXTRA = frozenset({"api_key", "extra_headers", "extra_body"})
"""`model.extra` keys this transport handles itself; any other key litellm reads for itself
(metadata, headers, api_version, ...) keeps the model on litellm's path. Keys that are not
litellm's own (top_k, min_p, ...) go through litellm's parameter mapping like sampling's."""

PROBE = [{"role": role, "content": f"probe {role}"} for role in ("system", "user", "assistant")]
"""Plain messages litellm's request transform is checked to pass through unchanged."""

MAX_TEMPLATES = 4096
"""Cached request bodies per client: one per (sampling incl. seed, n); seeds are base + sample
index, so a job needs about budget / max_n of them."""


def fast_transport(spec: ModelSpec) -> OpenAICompat | None:
    """The fast transport for this model, or None where litellm's path must be taken: forced
    by `transport: litellm`, no `api_base`, another provider or litellm-only settings."""
    if spec.transport != "auto" or spec.is_local or not isinstance(spec.api_base, str):
        return None  # a list of replicas gets one transport per server (`replicas`)
    if not spec.api_base:
        return None
    from litellm.llms.openai.chat.gpt_transformation import OpenAIGPTConfig
    from litellm.types.utils import all_litellm_params
    from litellm.utils import ProviderConfigManager

    litellm = import_litellm()
    if (set(spec.extra) & set(all_litellm_params)) - OWN_EXTRA:
        return None
    model, provider, key, api_base = litellm.get_llm_provider(spec.model, api_base=spec.api_base)
    if provider not in PROVIDERS:
        return None
    config = ProviderConfigManager.get_provider_chat_config(
        model=model, provider=litellm.LlmProviders(provider)
    )
    if not isinstance(config, OpenAIGPTConfig):
        return None
    return OpenAICompat.decided(spec, model, provider, config, key, api_base or spec.api_base)


class OpenAICompat:
    """Chat completions over aiohttp with the request litellm would send."""

    def __init__(
        self,
        spec: ModelSpec,
        model: str,
        provider: str,
        api_base: str,
        url: str,
        headers: dict[str, str],
        plan: dict[str, Any] | None = None,
    ) -> None:
        self.spec, self.model, self.provider = spec, model, provider
        self.url, self.headers = url, headers
        self.litellm_params = {"custom_llm_provider": provider, "api_base": api_base}
        self.body_extra = {
            k: v for k, v in spec.extra.items() if k not in ("api_key", "extra_headers")
        }
        self.timeout = aiohttp.ClientTimeout(total=spec.timeout_s)
        self.proxy = env_proxy(self.url)
        self._config: OpenAIGPTConfig | None = None
        self._templates: dict[tuple[Sampling, int], tuple[dict[str, Any], bool]] = {}
        self.plan = plan or {}
        """What litellm decided for this model in an earlier process (`request_plans`), and
        what it decides in this one, for the next."""
        self._planned: dict[str, list[str]] = dict(self.plan.get("bodies") or {})
        """Parameter sets litellm passes through as they are, with its body's key order."""
        self._finish: dict[str | None, str | None] = dict(self.plan.get("finish") or {})

    @classmethod
    def decided(
        cls, spec: ModelSpec, model: str, provider: str, config: OpenAIGPTConfig,
        key: str | None, api_base: str,
    ) -> OpenAICompat:  # fmt: skip
        """The transport as litellm decides it now (litellm imported)."""
        # As on litellm's path: model.api_key_env, else extra.api_key, else litellm's default
        # (the provider's variable, or the key litellm resolved for it).
        given = os.environ.get(spec.api_key_env) if spec.api_key_env else spec.extra.get("api_key")
        key = given or key or config.get_api_key()
        url, headers = _url_and_headers(spec, model, provider, config, key, api_base)
        compat = cls(spec, model, provider, api_base, url, headers)
        compat._config = config
        compat.plan = _base_plan(spec, model, provider, config, key, api_base, url, headers)
        return compat

    @classmethod
    def planned(cls, spec: ModelSpec, plan: dict[str, Any]) -> OpenAICompat | None:
        """The transport from a plan litellm made in an earlier process (litellm not
        imported), or None if the plan's key source is gone or the plan is malformed."""
        try:
            key = key_from(plan["key_source"], spec)
            headers = {
                name: value.replace(KEY_PLACEHOLDER, key or "")
                for name, value in plan["headers"].items()
            }
            return cls(spec, plan["model"], plan["provider"], plan["api_base"], plan["url"],
                       headers, plan)  # fmt: skip
        except (KeyError, TypeError, AttributeError, ValueError):  # a plan edited by hand
            return None

    @property
    def config(self) -> OpenAIGPTConfig:
        """litellm's request transform for this provider (imported when first needed)."""
        if self._config is None:
            from litellm.utils import ProviderConfigManager

            litellm = import_litellm()
            self._config = cast(
                "OpenAIGPTConfig",
                ProviderConfigManager.get_provider_chat_config(
                    model=self.model, provider=litellm.LlmProviders(self.provider)
                ),
            )
        return self._config

    def remember(self, supports_n: bool, prices: Any) -> None:
        """Keep litellm's answers for the next process (a plan: `request_plans`)."""
        self.plan.update(supports_n=supports_n, prices=prices)
        self._save_plan()

    def _save_plan(self) -> None:
        """Write the plan, once it is whole (`remember`: a replica's transport never is) and
        says where its key comes from (else litellm decides in each process)."""
        if self.plan.get("key_source") is not None and "supports_n" in self.plan:
            save_plan(self.spec, {**self.plan, "bodies": self._planned})

    async def complete(
        self, messages: list[dict[str, str]], sampling: Sampling, n: int
    ) -> ChatResponse:
        """One chat completion; litellm's exception classes on failure."""
        body = self._body(messages, sampling, n)
        session = await shared_session()
        try:
            async with session.post(
                self.url, data=json.dumps(body), headers=self.headers, timeout=self.timeout,
                proxy=self.proxy,
            ) as response:  # fmt: skip
                data = await response.read()
                if response.status >= 400:
                    self._raise_status(response.status, data, response.headers)
        except (TimeoutError, aiohttp.ServerTimeoutError) as err:
            raise import_litellm().Timeout(
                f"no answer from {self.url} within {self.spec.timeout_s:g} s", self.model,
                self.provider,
            ) from err  # fmt: skip
        except aiohttp.ClientError as err:  # refused, reset, dropped mid-answer
            raise import_litellm().APIConnectionError(
                f"{type(err).__name__}: {err}", self.provider, self.model
            ) from err
        return self._parse(data)

    def _body(self, messages: list[dict[str, str]], sampling: Sampling, n: int) -> dict[str, Any]:
        template = self._templates.get((sampling, n))
        if template is None:
            if len(self._templates) >= MAX_TEMPLATES:
                self._templates.clear()
            template = self._templates[sampling, n] = self._resolve(sampling, n)
        body, passes_plain = template
        if passes_plain and all(_plain(m) for m in messages):
            return {**body, "messages": messages}
        return self._transform(messages, body)  # anything else: litellm's transform each time

    def _resolve(self, sampling: Sampling, n: int) -> tuple[dict[str, Any], bool]:
        """The request body litellm would send (less the messages), and whether its transform
        leaves plain messages as they are: from the plan where litellm found these parameters
        to pass through as they are, else from litellm now."""
        params = self._params(sampling, n)
        planned = signature(params)
        values = {"model": self.model, "messages": list(PROBE), **params}
        if planned is not None and planned in self._planned:
            return {key: values[key] for key in self._planned[planned]}, True
        from litellm.utils import get_optional_params

        import_litellm()
        optional = get_optional_params(
            model=self.model, custom_llm_provider=self.provider, stream=None, **params
        )
        body = self._transform(list(PROBE), optional)
        passes_plain = body["messages"] == PROBE
        as_is = json.dumps(body, sort_keys=True) == json.dumps(values, sort_keys=True)
        if planned is not None and passes_plain and as_is and planned not in self._planned:
            self._planned[planned] = list(body)  # litellm's key order: the same bytes sent
            self._save_plan()
        return body, passes_plain

    def _params(self, sampling: Sampling, n: int) -> dict[str, Any]:
        params: dict[str, Any] = {**sampling.as_kwargs(), **self.body_extra}
        if n > 1:
            params["n"] = n
        if self.spec.logprobs:
            params["logprobs"] = True
        return params

    def needs_litellm(self, messages: list[dict[str, str]], sampling: Sampling, n: int) -> bool:
        """Whether making this request's body would import litellm (not loaded yet, and
        neither planned nor made before): `ModelClient` then imports it off the event loop
        and before the request's clock starts, so the import is nobody's latency."""
        if "litellm" in sys.modules:
            return False
        if not all(_plain(m) for m in messages):
            return True
        if (sampling, n) in self._templates:
            return False
        return signature(self._params(sampling, n)) not in self._planned

    def _transform(
        self, messages: list[dict[str, Any]], optional: dict[str, Any]
    ) -> dict[str, Any]:
        optional = {k: v for k, v in optional.items() if k not in ("model", "messages")}
        extra = optional.pop("extra_body", None)
        optional.pop("stream", None)
        body = self.config.transform_request(
            self.model,
            cast(Any, [dict(m) for m in messages]),
            optional,
            self.litellm_params,
            self.headers,
        )
        if extra:
            body.update(
                self.config.transform_extra_body(
                    extra_body=extra, request=body, model=self.model,
                    litellm_params=self.litellm_params,
                )
            )  # fmt: skip
        return body

    def _raise_status(self, status: int, data: bytes, headers: Any) -> None:
        """litellm's exception for an HTTP error answer, with the provider's own message."""
        import httpx
        from litellm.litellm_core_utils.exception_mapping_utils import exception_type
        from litellm.llms.openai.common_utils import OpenAIError

        import_litellm()
        text = data.decode("utf-8", "replace")
        try:
            detail = json.loads(text)["error"]
            text = str(detail["message"] if isinstance(detail, dict) else detail)
        except (ValueError, KeyError, TypeError):
            text = text.strip()[:1000] or f"HTTP {status}"
        error = OpenAIError(status_code=status, message=text, headers=httpx.Headers(dict(headers)))
        exception_type(
            model=self.model, original_exception=error, custom_llm_provider=self.provider
        )
        raise error  # exception_type always raises; this keeps type checkers informed

    def _parse(self, data: bytes) -> ChatResponse:
        try:
            raw = json.loads(data)
            choices = [self._choice(c) for c in raw["choices"]]
        except (ValueError, KeyError, TypeError) as err:
            raise import_litellm().InternalServerError(
                f"unreadable answer from {self.url}: {data[:200]!r}", self.provider, self.model
            ) from err
        usage = raw.get("usage") or {}
        details = usage.get("prompt_tokens_details")
        return ChatResponse(
            choices,
            Usage(
                int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0),
                Details(int(details.get("cached_tokens") or 0)) if details else None,
            ),
            raw,
        )

    def _choice(self, choice: dict[str, Any]) -> Choice:
        reason = choice.get("finish_reason")
        if reason and reason not in self._finish:
            from litellm.litellm_core_utils.core_helpers import map_finish_reason

            import_litellm()
            self._finish[reason] = map_finish_reason(reason)
        message = choice.get("message") or {}
        mapped = self._finish[reason] if reason else reason
        return Choice(Message(message.get("content")), mapped, choice.get("logprobs"))


def _url_and_headers(
    spec: ModelSpec, model: str, provider: str, config: OpenAIGPTConfig, key: str | None,
    api_base: str,
) -> tuple[str, dict[str, str]]:  # fmt: skip
    """litellm's URL and headers for this server and key."""
    litellm_params = {"custom_llm_provider": provider, "api_base": api_base}
    headers = config.validate_environment(
        dict(spec.extra.get("extra_headers") or {}),
        model,
        cast(Any, list(PROBE)),
        {},
        litellm_params,
        api_key=key,
        api_base=api_base,
    )
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"
    url = config.get_complete_url(api_base, key, model, {}, litellm_params, False)
    return url, headers


def _base_plan(
    spec: ModelSpec, model: str, provider: str, config: OpenAIGPTConfig, key: str | None,
    api_base: str, url: str, headers: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    """What a plan holds of litellm's decision, without the key: the headers made with a
    stand-in key, checked to give the real headers with the real one. A plan whose key
    source is None is never written."""
    from litellm.litellm_core_utils.core_helpers import map_finish_reason

    source = key_source(key, spec)
    stand_in = "ttcbench-plan-key-0123456789" if key else None
    url_2, planned = _url_and_headers(spec, model, provider, config, stand_in, api_base)
    planned = {
        k: v.replace(stand_in, KEY_PLACEHOLDER) if stand_in else v for k, v in planned.items()
    }
    again = {k: v.replace(KEY_PLACEHOLDER, key or "") for k, v in planned.items()}
    if url_2 != url or again != headers or spec.extra.get("extra_headers"):
        source = None  # the key changes more than a header value, or headers may hold secrets
    return {
        "model": model,
        "provider": provider,
        "api_base": api_base,
        "url": url,
        "headers": planned,
        "key_source": source,
        "finish": {reason: map_finish_reason(reason) for reason in FINISH_REASONS},
    }


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for this URL (HTTP_PROXY, NO_PROXY ...), as httpx
    would use it; looked up once, not per request as aiohttp's `trust_env` does (two thread
    hops per request, the largest cost of this path when it was on)."""
    from aiohttp.helpers import get_env_proxy_for_url
    from yarl import URL

    try:
        proxy, _ = get_env_proxy_for_url(URL(url))
    except LookupError:
        return None
    return str(proxy)


def _plain(message: dict[str, Any]) -> bool:
    """A message litellm's transform passes through: a text message of a probed role."""
    return (
        len(message) == 2
        and isinstance(message.get("content"), str)
        and message.get("role") in ("system", "user", "assistant")
    )


_sessions: dict[asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, AsyncIterator[Any]]] = {}


async def shared_session() -> aiohttp.ClientSession:
    """The event loop's one session (every model and request shares its connection pool;
    concurrency is bounded by the sampler's slots). It is closed when `asyncio.run` ends:
    the loop then finalises the async generator that holds it."""
    loop = asyncio.get_running_loop()
    held = _sessions.get(loop)
    if held is not None and not held[0].closed:
        return held[0]
    holder = _hold_session(loop)
    session = await holder.__anext__()  # no suspension point before the yield
    _sessions[loop] = (session, holder)
    return session


async def _hold_session(loop: asyncio.AbstractEventLoop) -> AsyncIterator[aiohttp.ClientSession]:
    # limit=0: the sampler's slots bound concurrency; proxies: `env_proxy`, once per model
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        yield session
    finally:
        _sessions.pop(loop, None)
        await session.close()
