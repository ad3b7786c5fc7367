"""Checks made before the first model request: a combination that cannot work is refused
while nothing has been paid for, in one line that names the fix.

Without them a bad value reaches the provider (a negative temperature is a 400 on the first
request) or a verifier finds out mid-run (the logprob verifier, after the whole pool of paid
samples came back without logprobs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ttcbench.models.spec import ModelSpec, Sampling
from ttcbench.types import ConfigError, Problem

LOGPROB_VERIFIERS = ("logprob", "step_logprob")
"""Verifiers that read the samples' token logprobs (beam_search's default is step_logprob)."""


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_budgets(budgets: Sequence[Any]) -> list[int]:
    """Budgets are positive integers; duplicates are merged and the list sorted."""
    if not budgets:
        raise ConfigError("budget.values is empty: give at least one budget, e.g. [1,2,4]")
    values = []
    for b in budgets:
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise ConfigError(
                f"budget.values must be positive integers, got {b!r} in {list(budgets)}; "
                "e.g. budget.values=[1,2,4,8]"
            )
        values.append(b)
    return sorted(set(values))


def check_sampling(sampling: Sampling) -> None:
    """Sampling values every provider accepts: temperature >= 0, 0 < top_p <= 1,
    max_tokens >= 1, an integer or null seed, stop sequences as strings."""
    s = sampling
    if not is_number(s.temperature) or s.temperature < 0:
        bad("temperature", s.temperature, "a number >= 0", "0.7")
    if not is_number(s.top_p) or not 0 < s.top_p <= 1:
        bad("top_p", s.top_p, "a number in (0, 1]", "0.95")
    if not isinstance(s.max_tokens, int) or isinstance(s.max_tokens, bool) or s.max_tokens < 1:
        bad("max_tokens", s.max_tokens, "an integer >= 1", "256")
    if s.seed is not None and (not isinstance(s.seed, int) or isinstance(s.seed, bool)):
        bad("seed", s.seed, "an integer or null", "0")
    if s.stop is not None and not all(isinstance(x, str) and x for x in s.stop):
        bad("stop", list(s.stop), "a list of non-empty strings or null", "['\\n\\n']")


def bad(key: str, value: Any, wanted: str, example: str) -> None:
    raise ConfigError(
        f"sampling.{key} must be {wanted}, got {value!r}: e.g. sampling.{key}={example}"
    )


def check_logprobs(verifier: Any, model: ModelSpec) -> None:
    """A verifier that ranks by token logprobs needs a model declared to return them
    (`model.logprobs=true`; the embedded smollm2 config sets it), and refuses a hosted model
    that litellm says has none. A server behind `api_base` is taken at its declaration."""
    name = getattr(verifier, "name", None)
    if name not in LOGPROB_VERIFIERS:
        return
    if not model.logprobs:
        other = (  # beam_search's own default scores steps; its verifier is strategy.verifier
            "give the strategy a step verifier (strategy.verifier=...)"
            if name == "step_logprob"
            else "pick a verifier that needs none (e.g. verifier=llm_judge)"
        )
        raise ConfigError(
            f"verifier {name!r} needs token logprobs, but model {model.name!r} is not set to "
            "return them: add model.logprobs=true if its server returns logprobs "
            f"(llama.cpp, vLLM, OpenAI), or {other}"
        )
    if model.is_local or model.api_base:
        return
    import litellm  # only here: the checks above run before litellm is imported (start-up)

    try:
        supported = litellm.get_supported_openai_params(model=model.model)
    except Exception:  # litellm cannot tell: the declaration stands
        return
    if supported is not None and "logprobs" not in supported:
        raise ConfigError(
            f"verifier {name!r} needs token logprobs, but litellm says {model.model!r} does "
            "not return them: pick another verifier (e.g. llm_judge) or a model that does"
        )


def check_public_tests(verifier: Any, problems: Sequence[Problem]) -> None:
    """The unit_tests verifier runs each problem's public tests: every problem must have
    them, or the run would stop after paying for the first problem's pool."""
    if getattr(verifier, "name", None) != "unit_tests":
        return
    from ttcbench.verifiers.unit_tests import public_asserts

    for problem in problems:
        public_asserts(problem)  # raises ConfigError naming the problem and the fix
