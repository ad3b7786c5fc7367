"""Hydra's composition errors as one line that names the problem and the fix.

Hydra reports an unknown group option or key in several lines (search path, stack hint) and
exits 1; ttcbench promises one line and exit status 2 for every bad input. The command line
composes each job here before Hydra's app starts (so nothing is written for a bad command),
and `ttcbench.run()` translates the same exceptions, so both say the same thing.
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stderr
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ttcbench.disk_errors import check_writable
from ttcbench.models.spec import ModelSpec
from ttcbench.types import ConfigError

# Top-level sections whose keys are fixed by conf/config.yaml (a typo is an error, `+` or not).
FIXED_SECTIONS = ("sampling", "runner", "retry", "cache", "sandbox")
# Flags after which Hydra prints something instead of running a job: left to Hydra.
HYDRA_ONLY = ("help", "hydra_help", "version", "shell_completion", "info", "experimental_rerun")


def nearest(word: str, choices: Sequence[str]) -> str | None:
    """The closest of `choices` to a mistyped `word`, if any is close."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_key(section: str, key: str, keys: Sequence[str]) -> ConfigError:
    """`section.key` is not a key: name the nearest one and all of them."""
    guess = nearest(key, keys)
    hint = f"did you mean {section}.{guess}? " if guess else ""
    where = f"{section} has" if section else "the config has"
    return ConfigError(f"{where} no key {key!r}: {hint}valid keys: {', '.join(sorted(keys))}")


def unknown_option(missing: str, options: Sequence[str]) -> ConfigError:
    """`group/name` is not a config file: list the group's options (and model strings)."""
    group, _, name = missing.rpartition("/")
    guess = nearest(name, options)
    hint = f"did you mean {group}={guess}? " if guess else ""
    extra = ", or any litellm 'provider/model' string (e.g. openai/gpt-4o-mini)"
    return ConfigError(
        f"unknown {group} {name!r}: {hint}valid: {', '.join(options)}"
        f"{extra if group == 'model' else ''}"
    )


def translate(err: Exception) -> ConfigError:
    """One ConfigError for a Hydra or OmegaConf composition error."""
    cause = err.__cause__
    if isinstance(err, MissingConfigException) and err.missing_cfg_file and err.options:
        return unknown_option(err.missing_cfg_file, err.options)
    if isinstance(err, OverrideParseException):
        return ConfigError(
            f"cannot parse the override {err.override!r}: {first_line(err.message)}; see "
            "https://hydra.cc/docs/advanced/override_grammar/basic/ (quote odd values)"
        )
    full_key = getattr(cause, "full_key", None)
    parent = getattr(cause, "parent_node", None)
    if full_key and parent is not None and str(err).startswith("Could not override"):
        section, _, key = str(full_key).rpartition(".")
        keys = [str(k) for k in parent if section or k != "hydra"]
        return unknown_key(section, key, keys)
    message = str(err)
    if message.startswith("Ambiguous value"):
        return ConfigError(
            f"{first_line(message)[len('Ambiguous value for argument ') :]} has several values: "
            "add -m to sweep over them, or write a list as key=[a,b]"
        )
    if message.startswith("Could not append to config"):
        key = message.split("'")[1]
        return ConfigError(f"{key} already exists: drop the + (write {key}=VALUE)")
    return ConfigError("; ".join(line.strip() for line in message.splitlines() if line.strip()))


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


@contextmanager
def composition_errors() -> Iterator[None]:
    """Turn Hydra's composition errors raised inside the block into one ConfigError."""
    try:
        yield
    except (HydraException, OmegaConfBaseException) as err:
        raise translate(err) from None


def check_command_line(argv: Sequence[str], config_dir: Path) -> None:
    """Compose every job of a command line as Hydra's app will, before it writes anything.

    A sweep (`-m a=x,y b=1,2`) is checked one value at a time with the other sweeps at their
    first value: every group option and key is composed once without composing the product.
    Anything this does not understand is left to Hydra.
    """
    from hydra._internal.utils import get_args_parser

    try:  # quietly: on a bad flag, Hydra's own parser prints the usage message once
        with redirect_stderr(io.StringIO()):
            args = get_args_parser().parse_args(list(argv))
    except SystemExit:
        return
    if any(getattr(args, flag, None) for flag in HYDRA_ONLY):
        return
    if args.config_path or args.config_name or args.config_dir:
        return
    for overrides in job_overrides(list(args.overrides), bool(args.multirun)):
        with composition_errors():
            cfg = compose(config_dir, overrides)
            plain = OmegaConf.to_container(cfg, resolve=False)
            run_dir, cache = str(cfg.run_dir), str(cfg.cache.path) if cfg.cache.enabled else None
        check_known_keys(plain, config_dir)  # type: ignore[arg-type]
        if not args.cfg:  # Hydra makes the run folder before the job: refuse a read-only one
            check_writable(Path(run_dir), *([Path(cache)] if cache else []))


def job_overrides(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The override lists to compose: the line itself, or one per value of each sweep."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    with composition_errors():
        parsed = OverridesParser.create().parse_overrides(overrides)
    if not multirun:
        return [overrides]
    try:
        values = [sweep_values(o) if o.is_sweep_override() else [str(o.input_line)] for o in parsed]
    except Exception:  # glob() needs the config repository: Hydra expands it itself
        return []
    first = [vals[0] for vals in values]
    jobs = [first]
    for i, vals in enumerate(values):
        jobs += [[*first[:i], v, *first[i + 1 :]] for v in vals[1:]]
    return jobs


def sweep_values(override: Any) -> list[str]:
    """`key=a,b` as the single-value overrides `key=a` and `key=b` (prefix kept)."""
    line: str = override.input_line
    prefix = line[: len(line) - len(line.lstrip("+~"))]
    return [f"{prefix}{override.key_or_group}={v}" for v in override.sweep_string_iterator()]


def compose(config_dir: Path, overrides: list[str]) -> Any:
    """The composed config for these overrides (Hydra's compose API, our config folder)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


def check_known_keys(plain: dict[str, Any], config_dir: Path) -> None:
    """Refuse keys added with `+` that nothing reads (`+sampling.temprature=0`): the fixed
    sections take only conf/config.yaml's keys, a model only `ModelSpec`'s fields."""
    base = yaml.safe_load((config_dir / "config.yaml").read_text())
    for section in FIXED_SECTIONS:
        known = list(base.get(section) or {})
        for key in plain.get(section) or {}:
            if key not in known:
                raise unknown_key(section, key, known)
    model_keys = [f.name for f in fields(ModelSpec)]
    for key in plain.get("model") or {}:
        if key not in model_keys:
            raise unknown_key("model", key, model_keys)
