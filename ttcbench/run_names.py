"""Run folder names that say what a run holds: `<task>/<model>/<strategy>-<budgets>-<hash>`.

The readable part names the task, the model and the strategy (with its verifier) and the
budget list (`pow2_8` only for 1, 2, 4, 8; else the values, `b1-4-16`); the hash covers every
setting that changes the samples or their grading (task options, model string and params,
sampling, strategy and verifier params, budgets, the content of the task's spec file), so the
same config always maps to the same folder (a re-run resumes there) and two different configs
never share one. Settings that do not change a sample (concurrency, progress, retries, logger,
where results go, the server's address, secrets) are left out: changing them resumes the same
run.

conf/config.yaml builds `name` from the two resolvers registered here (cli.py registers them);
this module imports nothing heavy, since Hydra resolves the name at every start.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from ttcbench.redact import is_secret_key

NOT_IDENTITY = frozenset(
    {
        "name",  # the folder's own name and path: derived from the rest
        "run_dir",
        "results_dir",
        "hydra",
        "runner",  # concurrency and progress: how fast, not what
        "retry",
        "cache",
        "logger",
        "sandbox",  # refuses to run or not; a grade does not depend on it
        "reproduces",  # an experiment preset's citation
        "verifier",  # the group's choice; a strategy that uses it holds it (`${verifier}`)
    }
)
"""Top-level config keys that never change a sample or its grade."""

NOT_IDENTITY_INSIDE = frozenset({"api_base", "api_key_env", "timeout_s", "retry", "concurrency"})
"""Keys at any depth that do not change a sample: where the server is (the call cache does not
key on it either), how long and how often to wait, how many requests at once."""

HASH_CHARS = 6
"""16.7M values: a clash within one task/model/strategy folder is negligible, and the job's
check of the saved config (job.check_run_folder) still refuses one."""

MAX_BUDGET_LABEL = 32


def identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a resolved config that defines the samples and their grading, with the
    content of the task specs it names (`task_specs`)."""
    kept = {key: _strip(value) for key, value in config.items() if key not in NOT_IDENTITY}
    if isinstance(kept.get("budget"), dict):  # `budget=pow2_16` = `budget.values=[1,...,16]`
        kept["budget"] = {k: v for k, v in kept["budget"].items() if k != "name"}
    if isinstance(kept.get("task"), Mapping):
        kept["task_specs"] = task_spec_digests(kept["task"])
    return kept


def task_spec_digests(task: Mapping[str, Any]) -> dict[str, str | None]:
    """sha256 (16 hex) of each `tasks/<name>.yaml` the task config uses (a suite's members too).

    The spec holds the generators, prompt and grader: a changed spec (a new ttcbench, an
    edited file) makes other problems under the same ids, which must not resume into the
    old run's store and mix with its samples. None: no such file (a suite's own name)."""
    from ttcbench.tasks.registry import spec_path  # light: paths only

    members = task.get("tasks")
    names = [str(task.get("name"))] + (
        sorted(map(str, members)) if isinstance(members, Mapping) else []
    )
    digests: dict[str, str | None] = {}
    for name in names:
        path = spec_path(name)
        digests[name] = (
            hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else None
        )
    return digests


def _strip(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: _strip(v)
            for k, v in value.items()
            if k not in NOT_IDENTITY_INSIDE and not is_secret_key(k)
        }
    if isinstance(value, list | tuple):
        return [_strip(v) for v in value]
    return value


def config_digest(config: Mapping[str, Any]) -> str:
    """The sha256 hex digest of `identity(config)` (the run folder shows its first chars)."""
    text = json.dumps(identity(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def budget_label(values: Sequence[Any]) -> str:
    """`pow2_N` for exactly 1, 2, 4, ..., N; `one` for [1]; else `b` and the values."""
    values = list(values)
    if values == [1]:
        return "one"
    if len(values) > 1 and values == [2**i for i in range(len(values))]:
        return f"pow2_{values[-1]}"
    label = "b" + "-".join(str(v) for v in values)
    if len(label) > MAX_BUDGET_LABEL:  # the hash still tells long lists apart
        label = f"b{values[0]}-{values[-1]}_n{len(values)}" if values else "b"
    return label


def _budget_label_resolver(values: Any) -> str:
    if isinstance(values, ListConfig):
        values = OmegaConf.to_container(values, resolve=True)
    return budget_label(values if isinstance(values, list | tuple) else [values])


def _config_hash_resolver(*, _root_: DictConfig) -> str:
    """Resolve each identity key on its own: resolving the whole config would resolve `name`,
    i.e. this resolver again. Interpolations into excluded keys (`${retry}`) still resolve."""
    plain: dict[str, Any] = {}
    for key in _root_:
        if key in NOT_IDENTITY:
            continue
        value = _root_[key]
        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        plain[str(key)] = value
    return config_digest(plain)[:HASH_CHARS]


def register_resolvers() -> None:
    """`${ttc.budget_label:${budget.values}}` and `${ttc.config_hash:}` for conf/config.yaml."""
    if not OmegaConf.has_resolver("ttc.budget_label"):
        OmegaConf.register_new_resolver("ttc.budget_label", _budget_label_resolver)
    if not OmegaConf.has_resolver("ttc.config_hash"):
        OmegaConf.register_new_resolver("ttc.config_hash", _config_hash_resolver)
