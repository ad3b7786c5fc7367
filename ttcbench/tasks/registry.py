"""Tasks are data: `tasks/<name>.yaml` names a source, a prompt, a grader and class labels.

This module reads a spec, dispatches to the loader for its source and pairs the problems
with the grader for its family, so adding a task needs a YAML file and no code.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ttcbench.tasks.json_errors import locate_json_error
from ttcbench.types import Grade, Problem, TaskError

Grader = Callable[[str, Problem], Grade]


def tasks_dir() -> Path:
    """`tasks/` at the repository root, or $TTCBENCH_TASKS_DIR."""
    return Path(os.environ.get("TTCBENCH_TASKS_DIR", Path(__file__).resolve().parents[2] / "tasks"))


def available_tasks() -> list[str]:
    return sorted(p.stem for p in tasks_dir().glob("*.yaml"))


@dataclass(frozen=True)
class Task:
    """A loaded task: its problems and the grader the runner and `ttcbench-grade` share."""

    name: str
    family: str
    problems: list[Problem]
    grader: Grader
    spec: dict[str, Any]


@dataclass(frozen=True)
class TaskRequest:
    """One task of a job: which problems to load (a suite is several of these)."""

    name: str
    limit: int | None = None
    seed: int = 0
    data_files: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """Overrides of the task spec's own keys (e.g. closed_book, prompt, hops)."""
    shard: int = 0
    """Which slice of the loaded problems this job runs (`task.shard`), 0 to shards - 1."""
    shards: int = 1
    """How many slices the job is split into (`task.shards`); 1: every problem."""


def load_suite(name: str, requests: list[TaskRequest]) -> Task:
    """Several tasks as one: problems concatenated, each graded by its own task's grader;
    with `shards` > 1, only the problems of the requested shard (see `shard_of`)."""
    if not requests:
        raise TaskError(f"task suite {name!r} lists no tasks")
    for r in requests:
        check_shard(r.shard, r.shards)
    tasks = [
        take_shard(load_task(r.name, r.limit, r.seed, r.data_files, r.options), r.shard, r.shards)
        for r in requests
    ]
    if sum(len(task.problems) for task in tasks) == 0:
        r = requests[0]
        raise TaskError(
            f"task.shard={r.shard} of task.shards={r.shards} holds none of the job's problems "
            "(a problem's shard is a hash of its id, so with few problems a shard can be "
            "empty): use fewer shards, or more problems (task.limit)"
        )
    if len(tasks) == 1 and tasks[0].name == name:
        return tasks[0]
    graders = {task.name: task.grader for task in tasks}

    def grade(output: str, problem: Problem) -> Grade:
        return graders[problem.task](output, problem)

    families = sorted({task.family for task in tasks})
    problems = [p for task in tasks for p in task.problems]
    spec = {"name": name, "tasks": [task.spec for task in tasks]}
    return Task(name, "+".join(families), problems, grade, spec)


def check_shard(shard: Any, shards: Any) -> None:
    """`task.shard` and `task.shards`: whole numbers with 0 <= shard < shards."""
    example = "e.g. ttcbench -m task.shard=0,1 task.shards=2"
    for key, value in (("task.shards", shards), ("task.shard", shard)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TaskError(f"{key} must be a whole number, got {value!r}; {example}")
    if shards < 1:
        raise TaskError(f"task.shards must be 1 (no split) or more, got {shards}; {example}")
    if not 0 <= shard < shards:
        raise TaskError(
            f"task.shard={shard} is out of range for task.shards={shards}: shards are numbered "
            f"from 0 to {shards - 1}, e.g. ttcbench -m 'task.shard=range({shards})' "
            f"task.shards={shards}"
        )


def shard_of(problem: Problem, shards: int) -> int:
    """The shard a problem belongs to: a stable hash of (task, problem id) mod `shards`, so
    every process and host agrees (Python's `hash()` is salted per process) and a problem
    keeps its shard when others are added, removed or reordered."""
    digest = hashlib.sha256(f"{problem.task}\x00{problem.id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def take_shard(task: Task, shard: int, shards: int) -> Task:
    """`task` with only the problems of `shard` (all of them when `shards` is 1); the shard
    is taken after `limit`, so the shards of a job together hold exactly its problems."""
    if shards == 1:
        return task
    problems = [p for p in task.problems if shard_of(p, shards) == shard]
    return replace(task, problems=problems)


FIXED_KEYS = {"name", "family", "source", "grader"}


def spec_path(name: str) -> Path:
    """The spec file of task `name` (it may not exist)."""
    return tasks_dir() / f"{name}.yaml"


def read_spec(name: str) -> dict[str, Any]:
    path = spec_path(name)
    if not path.exists():
        raise TaskError(f"unknown task {name!r}; valid tasks: {', '.join(available_tasks())}")
    spec = yaml.safe_load(path.read_text())
    for key in ("name", "family", "source", "grader", "prompt"):
        if key not in spec:
            raise TaskError(f"{path}: the task spec lacks the key {key!r}")
    return spec


GRADERS = {"math": "ttcbench.tasks.math:grade_math", "qa": "ttcbench.tasks.qa:grade_qa",
           "code": "ttcbench.tasks.code:grade_code"}  # fmt: skip
"""Grader name in a task spec -> its function."""


def grader_for(name: str) -> Grader:
    """The grader named in a task spec, imported at its first grade (`LazyGrader`)."""
    if name not in GRADERS:
        raise TaskError(f"unknown grader {name!r}; valid graders: {', '.join(GRADERS)}")
    return LazyGrader(GRADERS[name])


class LazyGrader:
    """A grader function imported when it first grades: math-verify and sympy take ~0.5 s
    to import, which a job pays after its first request is out, not before it."""

    def __init__(self, target: str) -> None:
        self.target = target
        """`module:function`."""
        self._function: Grader | None = None

    def __call__(self, output: str, problem: Problem) -> Grade:
        if self._function is None:
            from importlib import import_module

            module, _, name = self.target.partition(":")
            self._function = getattr(import_module(module), name)
        return self._function(output, problem)

    def __repr__(self) -> str:
        return f"LazyGrader({self.target!r})"


def load_task(
    name: str,
    limit: int | None = None,
    seed: int = 0,
    data_files: str | None = None,
    options: dict[str, Any] | None = None,
) -> Task:
    """Load a task's problems (at most `limit`, deterministic given `seed`); `options`
    override keys of the task's spec, and only keys the spec has (a typo is an error)."""
    spec = read_spec(name)
    if unknown := sorted(set(options or {}) - set(spec) - FIXED_KEYS):
        settable = ", ".join(sorted(set(spec) - FIXED_KEYS))
        raise TaskError(f"task {name!r} has no option {unknown[0]!r}; its options: {settable}")
    spec = spec | dict(options or {})
    if limit is not None and limit < 1:
        raise TaskError(f"task.limit must be a positive number of problems, got {limit}")
    problems = load_problems(spec, limit, seed, data_files)
    if not problems:
        source = f" from task.data_files={data_files!r} (is it empty?)" if data_files else ""
        raise TaskError(f"task {name!r} produced no problems{source} (limit={limit})")
    return Task(name, spec["family"], problems, grader_for(spec["grader"]), spec)


def load_problems(
    spec: dict[str, Any], limit: int | None, seed: int, data_files: str | None
) -> list[Problem]:
    """Dispatch on the spec's `source`; each loader is imported only when used."""
    source = spec["source"]
    if source == "hub":  # an HF data set by hub name, or the same schema from a local file
        from ttcbench.tasks.hub import load_hub

        return load_hub(spec, limit=limit, seed=seed, data_files=data_files)
    if source == "mbpp":
        from ttcbench.tasks.mbpp import load_mbpp

        return load_mbpp(spec, limit=limit, seed=seed, data_files=data_files)
    if source == "humaneval":  # packaged HumanEval, or the same schema from a local JSONL
        from ttcbench.tasks.humaneval import load_humaneval

        return load_humaneval(spec, limit=limit, seed=seed, data_files=data_files)
    if data_files is not None:
        return problems_from_file(spec, data_files, limit)
    if source == "reasoning_gym":
        from ttcbench.tasks.reasoning_gym import load_reasoning_gym

        return load_reasoning_gym(spec, limit=limit, seed=seed)
    if source == "multihop":
        from ttcbench.tasks.multihop import load_multihop

        return load_multihop(spec, limit=limit, seed=seed)
    valid = "hub, humaneval, mbpp, reasoning_gym, multihop"
    raise TaskError(f"task {spec['name']!r}: unknown source {source!r}; valid: {valid}")


def read_rows(data_files: str) -> list[dict[str, Any]]:
    """Rows of a local JSON Lines / JSON / CSV / Parquet file, through HF `datasets`."""
    import datasets

    path = Path(data_files)
    if not path.is_file():
        raise TaskError(f"cannot read task.data_files={data_files!r}: no such file")
    kind = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(
        path.suffix
    )
    if kind is None:
        raise TaskError(
            f"cannot read task.data_files={data_files!r}: use .jsonl, .json, .csv or .parquet"
        )
    no_rows = TaskError(
        f"task.data_files={data_files!r} has no rows: give a file with one row per problem"
    )
    if path.stat().st_size == 0:
        raise no_rows
    # Quiet: datasets logs the parse failure and draws progress bars; we report one line.
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    try:
        rows = list(datasets.load_dataset(kind, data_files=str(path), split="train"))
    except StopIteration:  # datasets' JSON reader on a file of blank lines
        raise no_rows from None
    except Exception as err:
        if "corresponds to no data" in str(err):  # blank lines, or a CSV header alone
            raise no_rows from None
        # Arrow counts rows within a block, not lines: name the file's bad line instead.
        where = locate_json_error(path) if kind == "json" else None
        cause = where or f"task.data_files={data_files!r}: {root_cause(err)}"
        raise TaskError(f"cannot read {cause}") from err
    finally:
        datasets.enable_progress_bars()
        datasets.logging.set_verbosity(datasets.logging.WARNING)
    if not rows:
        raise no_rows
    return rows


def root_cause(err: BaseException) -> str:
    """The innermost error's message: `datasets` wraps the parse error that names the row."""
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


class _Blank(dict):  # type: ignore[type-arg]
    """A format mapping where missing placeholders render as empty strings."""

    def __missing__(self, key: str) -> str:
        return ""


def problems_from_file(spec: dict[str, Any], data_files: str, limit: int | None) -> list[Problem]:
    """Problems from a local file in the task's own schema (`question`, `answer`)."""
    problems = []
    for index, row in enumerate(read_rows(data_files)[:limit]):
        if "question" not in row or "answer" not in row:
            raise TaskError(
                f"{data_files}: row {index} lacks `question` or `answer` (fields: {sorted(row)})"
            )
        labels = {k: str(v) for k, v in (row.get("classes") or {}).items()}
        problems.append(
            Problem(
                task=spec["name"],
                id=str(row.get("id", f"{index:05d}")),
                # Fields the file lacks (e.g. multihop's `context`) render empty: grading a
                # file of generations made elsewhere needs only the question and answer.
                prompt=spec["prompt"].format_map(_Blank(row)),
                answer=str(row["answer"]),
                classes={"family": spec["family"], **labels},
            )
        )
    return problems
