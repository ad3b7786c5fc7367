"""Secrets never reach a file: redaction of config dumps, Hydra records and tracker configs.

A key given on the command line (`+model.extra.api_key=...`) ends up in the config, so every
copy that is *written* (config.yaml, `.hydra/`, the W&B config) goes through `Redactor`; the
model client still receives the real value. Two passes, because a secret appears in two
shapes: as the value of a mapping key that names a secret (`api_key`, `hf_token`,
`Authorization`), and inside strings that quote it (Hydra's override list
`+model.extra.api_key=sk-...`, its `override_dirname`). The second pass replaces every
occurrence of the values the first pass found, wherever they are quoted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "***"

SECRET_KEY = re.compile(
    r"^(?:.*[_\-.])?(?:api[_\-]?key|apikey|token|secret|client[_\-]?secret|password|passwd|"
    r"authorization|credentials?|private[_\-]?key|access[_\-]?key|cookie)$",
    re.IGNORECASE,
)
"""Keys whose values are secrets: `api_key`, `x-api-key`, `hf_token`, `secret`, `password`,
`Authorization`... but not `max_tokens`, `token_unit` or `api_key_env` (an env var's *name*,
the way the README says to pass a key)."""

MIN_QUOTED = 8
"""Shortest secret value replaced where a string quotes it (API keys are far longer)."""

OVERRIDE = re.compile(r"^([+~]*)([\w.\-/@]+)=(.*)$", re.DOTALL)


def is_secret_key(key: object) -> bool:
    """Whether a config key names a secret (matched on its last dotted component)."""
    return isinstance(key, str) and bool(SECRET_KEY.match(key.rsplit(".", 1)[-1]))


def secret_values(config: Any) -> set[str]:
    """The non-empty string values stored under secret keys anywhere in `config`, and the
    values of secret overrides in any override-style string (`a.api_key=xyz`)."""
    found: set[str] = set()
    if isinstance(config, Mapping):
        for key, value in config.items():
            if is_secret_key(key) and value not in (None, ""):
                found.update(_leaves(value))
            else:
                found |= secret_values(value)
    elif isinstance(config, list | tuple):
        for item in config:
            found |= secret_values(item)
    elif isinstance(config, str) and (value := override_secret(config)):
        found.add(value)
    return found


def override_secret(text: str) -> str | None:
    """The value of an override that sets a secret key (`+a.api_key=xyz` -> `xyz`)."""
    match = OVERRIDE.match(text)
    if match and match.group(3) and is_secret_key(match.group(2)):
        return match.group(3)
    return None


def _leaves(value: Any) -> set[str]:
    if isinstance(value, Mapping):
        return {s for v in value.values() for s in _leaves(v)}
    if isinstance(value, list | tuple):
        return {s for v in value for s in _leaves(v)}
    return {str(value)} if value not in (None, "") else set()


class Redactor:
    """Redacts a config (and anything that quotes its secrets) for writing.

    Built from every source of secrets at hand (the resolved config, Hydra's override list),
    it then redacts any structure: secret keys' values become `***`, and any string holding a
    known secret value has it replaced.
    """

    def __init__(self, *sources: Any) -> None:
        values: set[str] = set()
        for source in sources:
            values |= secret_values(source)
        # Quoted values are replaced only from MIN_QUOTED characters on: a placeholder such as
        # llama-server's `api_key: none` must not turn every "none" into ***. Longest first,
        # so a secret that contains another is replaced whole.
        quoted = (v for v in values if len(v) >= MIN_QUOTED)
        self.values = sorted(quoted, key=len, reverse=True)

    def __call__(self, value: Any) -> Any:
        """A redacted copy of `value` (mappings, lists, strings; other values as they are)."""
        if isinstance(value, Mapping):
            return {
                k: REDACTED if is_secret_key(k) and v not in (None, "") else self(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return type(value)(self(v) for v in value)
        if isinstance(value, str):
            return self.text(value)
        return value

    def text(self, text: str) -> str:
        """`text` with every known secret value replaced, and a secret override's value."""
        for secret in self.values:
            text = text.replace(secret, REDACTED)
        value = override_secret(text)
        if value is not None and REDACTED not in value:  # a short secret the pass above kept
            text = text.split("=", 1)[0] + "=" + REDACTED
        return text


def redact_log_records(redactor: Redactor) -> None:
    """Redact the known secrets in every log message from now on (Hydra's multirun launcher
    logs each job's overrides, which would echo a key into terminals and CI logs)."""
    if not redactor.values:
        return
    make_record = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        message = record.getMessage()
        clean = redactor.text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return record

    logging.setLogRecordFactory(factory)


def redact(config: Any) -> Any:
    """A copy of `config` that is safe to write to a file or send to a tracker."""
    return Redactor(config)(config)
