"""litellm's decisions about a self-hosted OpenAI-compatible server, remembered between processes.

Importing litellm takes ~3 s on 2 cores, longer than everything else before a job's first
request. For a model on the fast transport (`openai_compat`) litellm decides, once per model,
what to send: the URL, the headers, the body its parameter mapping makes of each set of
sampling parameters; and whether the model takes `n`, its prices and its finish reasons. Those
answers depend only on litellm's version, the model config and the environment variables
litellm reads for keys and addresses, so this module keeps them in a plan file and a later
process with the same three sends its first request without importing litellm.

A plan is still litellm's decision, never ttcbench's guess:
- its file name is a digest of litellm's installed version, the model config and those
  environment variables: any change to one of them, and litellm decides again;
- a set of sampling parameters is planned only where litellm's body was checked to be the
  parameters themselves (seed and `n` values aside: litellm passes those integers through);
  any other set, a message that is not plain text, an error to classify or an unknown finish
  reason imports litellm at that moment and asks it;
- the API key is never written: the headers keep a placeholder, and the plan names where the
  key comes from (an environment variable or the config), read again in each process.

Plans live in `~/.cache/ttcbench/requests` (`$XDG_CACHE_HOME`), or `$TTCBENCH_PLANS`; set it
to `off` to have litellm decide in every process.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from ttcbench.models.spec import ModelSpec

FORMAT = 1
"""Bumped when what a plan holds, or how ttcbench reads it, changes."""

KEY_PLACEHOLDER = "{ttcbench:api_key}"

PLACEHOLDER_KEYS = frozenset({"fake-api-key"})
"""Keys litellm makes up itself for servers that need none (hosted_vllm, lm_studio,
llamafile): not secrets, so a plan may hold them as they are."""

ENV_PREFIXES = ("OPENAI_", "HOSTED_VLLM_", "LM_STUDIO_", "LLAMAFILE_", "LITELLM_")
ENV_NAME = re.compile(r".*_(API_KEY|API_BASE|BASE_URL|KEY)$")
"""Environment variables that can change litellm's decision (keys, addresses, its own
settings such as LITELLM_LOCAL_MODEL_COST_MAP): their values are part of a plan's name."""

FINISH_REASONS = (
    "stop", "length", "tool_calls", "content_filter", "function_call", "eos", "eos_token",
    "stop_sequence", "end_turn", "max_tokens",
)  # fmt: skip
"""Finish reasons whose mapping a plan records (others ask litellm when first seen; those it
does not know it maps to "stop" with a warning, which a plan must not print for nothing)."""


def plans_dir() -> Path | None:
    """Where plans are kept, or None when they are turned off (`TTCBENCH_PLANS=off`)."""
    chosen = os.environ.get("TTCBENCH_PLANS")
    if chosen is not None:
        return None if chosen.strip().lower() in ("off", "0", "false", "") else Path(chosen)
    try:
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    except RuntimeError:  # no home directory to be found: litellm decides in each process
        return None
    return Path(cache) / "ttcbench" / "requests"


def plan_path(spec: ModelSpec) -> Path | None:
    """The plan file of this model config under this litellm and environment; None where no
    plan applies (turned off, litellm not installed, a model not on the fast transport)."""
    folder = plans_dir()
    if folder is None or spec.transport != "auto" or spec.is_local:
        return None
    if not isinstance(spec.api_base, str) or not spec.api_base:
        return None
    address = urlsplit(spec.api_base)
    if address.username or address.password or address.query:
        return None  # the address may hold a credential: never written
    try:
        version = metadata.version("litellm")
    except metadata.PackageNotFoundError:
        return None
    env = sorted((name, value) for name, value in os.environ.items() if decides(name, spec))
    identity = {
        "format": FORMAT,
        "litellm": version,
        "ttcbench": _own_code(),
        "model": spec.model,
        "api_base": spec.api_base,
        "api_key_env": spec.api_key_env,
        "logprobs": spec.logprobs,
        "extra": spec.extra,
        "env": env,
    }
    try:
        text = json.dumps(identity, sort_keys=True, default=_unplannable)
    except ValueError:  # an `extra` value JSON cannot hold: litellm decides each time
        return None
    return folder / f"{hashlib.sha256(text.encode()).hexdigest()[:40]}.json"


@lru_cache(maxsize=1)
def _own_code() -> str:
    """A digest of the code that makes and reads plans: a plan from other code is not used
    (no FORMAT bump to forget)."""
    here = Path(__file__).parent
    code = b"".join((here / name).read_bytes() for name in ("request_plans.py", "openai_compat.py"))
    return hashlib.sha256(code).hexdigest()[:16]


def decides(name: str, spec: ModelSpec) -> bool:
    """Whether an environment variable can change litellm's decision for this model: its
    value is part of the plan's name."""
    return name.startswith(ENV_PREFIXES) or bool(ENV_NAME.match(name)) or name == spec.api_key_env


def load_plan(spec: ModelSpec) -> dict[str, Any] | None:
    """The plan for this model, or None (none yet, unreadable, or not for this model): then
    litellm decides, and the plan is written for the next process."""
    path = plan_path(spec)
    if path is None:
        return None
    try:
        plan = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing, or damaged (a disk that filled): decided again, rewritten
    if (
        not isinstance(plan, dict)
        or plan.get("format") != FORMAT
        or plan.get("model_config") != spec.model
    ):
        return None
    return plan


def save_plan(spec: ModelSpec, plan: dict[str, Any]) -> None:
    """Write the plan atomically (a reader sees the old file or the new one, never half);
    a plan that cannot be written only costs the next process litellm's import."""
    path = plan_path(spec)
    if path is None:
        return
    partial: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=path.parent, suffix=".partial")
        partial = Path(name)
        with os.fdopen(handle, "w") as out:
            out.write(json.dumps({**plan, "format": FORMAT, "model_config": spec.model}))
        os.replace(partial, path)
    except OSError:
        if partial is not None:
            partial.unlink(missing_ok=True)


def signature(params: dict[str, Any]) -> str | None:
    """What identifies a body's parameter mapping: every parameter with its value, except
    the seed's and `n`'s values (only whether they are there). None if not JSON."""
    fixed = {k: v for k, v in params.items() if k not in ("seed", "n")}
    try:
        return json.dumps([fixed, "seed" in params, "n" in params], sort_keys=True)
    except (TypeError, ValueError):
        return None


def key_source(key: str | None, spec: ModelSpec) -> str | None:
    """Where the key litellm chose comes from, as a plan can say it without holding it:
    `api_key_env`, `extra`, `env:NAME`, `literal:` (litellm's placeholder), `none`; None when
    it cannot be told (then no plan is written)."""
    if not key:
        return "none"
    if spec.api_key_env and os.environ.get(spec.api_key_env) == key:
        return "api_key_env"
    if spec.extra.get("api_key") == key:
        return "extra"
    # Only a variable that is part of the plan's name: if its value changes, so does the plan.
    names = sorted(
        name for name, value in os.environ.items() if value == key and decides(name, spec)
    )
    if names:
        return f"env:{names[0]}"
    return f"literal:{key}" if key in PLACEHOLDER_KEYS else None


def key_from(source: str, spec: ModelSpec) -> str | None:
    """The key a plan's `key_source` names, read now; raises KeyError if it is gone."""
    if source == "none":
        return None
    if source == "api_key_env":
        return os.environ[str(spec.api_key_env)]
    if source == "extra":
        return str(spec.extra["api_key"])
    if source.startswith("literal:"):
        return source.removeprefix("literal:")
    return os.environ[source.removeprefix("env:")]


def _unplannable(value: Any) -> Any:
    raise ValueError(f"not JSON: {type(value).__name__}")
