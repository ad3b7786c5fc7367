"""The `ttcbench` command and `ttcbench.run()`: the only module that touches Hydra's config.

It turns a composed DictConfig into a plain `JobConfig`, runs the job and reports bad input
as one line naming the problem and the fix (exit status 2), never as a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import hydra
import yaml
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ttcbench.config_errors import (
    check_command_line,
    check_known_keys,
    composition_errors,
)
from ttcbench.disk_errors import storage_errors
from ttcbench.models.spec import ModelSpec, RetryPolicy, Sampling
from ttcbench.preflight import check_sampling, validate_budgets
from ttcbench.records import set_python_call, write_yaml
from ttcbench.redact import Redactor, redact_log_records
from ttcbench.run_names import register_resolvers
from ttcbench.runlock import LOCK_NAME
from ttcbench.strategies import Strategy
from ttcbench.tasks.registry import TaskRequest
from ttcbench.types import ConfigError, RunFolderBusy, TtcbenchError

if TYPE_CHECKING:  # the job (pandas, litellm, matplotlib) is imported only to run one:
    from ttcbench.job import JobConfig, JobResult  # --help and --cfg answer without it

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

# conf/config.yaml's run folder name uses them; at import, so that Hydra's compose API, the
# command line and joblib's worker processes (which import this module) all resolve it.
register_resolvers()


def register_model_strings(overrides: Sequence[str]) -> None:
    """Let `model=openai/gpt-4o-mini` name any litellm model, not only conf/model/*.yaml.

    Each value of a `model=` override (comma lists included) without a YAML file becomes a
    config node in Hydra's ConfigStore with that litellm model string and default settings.
    """
    store = ConfigStore.instance()
    for override in overrides:
        key, _, value = override.partition("=")
        if key.lstrip("+~") != "model" or not value:
            continue
        for option in value.split(","):
            option = option.strip()
            if "/" in option and not (CONF_DIR / "model" / f"{option}.yaml").exists():
                group, _, name = option.rpartition("/")
                node: dict[str, Any] = {
                    "name": option,
                    "model": option,
                    "api_base": None,
                    "api_key_env": None,
                    "params_b": None,
                    "max_n": 16,
                    "logprobs": False,
                    "timeout_s": 600,
                    "transport": "auto",
                    "extra": {},
                }
                store.store(group=f"model/{group}", name=name, node=node)


def to_job(cfg: DictConfig) -> JobConfig:
    """Plain-Python job config from the composed Hydra config (validated downstream)."""
    plain: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    check_known_keys(plain, CONF_DIR)
    sampling = dict(plain["sampling"])
    stop = sampling.get("stop")  # one string is one stop sequence, not one per character
    sampling["stop"] = (stop,) if isinstance(stop, str) else tuple(stop) if stop else None
    # Values checked before the job's imports (litellm, pandas: seconds), so a typo is
    # answered at once; prepare() checks them again for callers of run_job.
    validate_budgets(plain["budget"]["values"])
    check_sampling(Sampling(**sampling))
    from ttcbench.job import JobConfig, LoggerConfig

    strategy = build(plain["strategy"])
    if not isinstance(strategy, Strategy):
        raise ConfigError(f"strategy config {plain['strategy']['name']!r} must build a Strategy")
    logger = dict(plain["logger"])
    return JobConfig(
        run_dir=Path(plain["run_dir"]),
        task=plain["task"]["name"],
        tasks=task_requests(plain["task"]),
        strategy=strategy,
        model=ModelSpec(**plain["model"]),
        sampling=Sampling(**sampling),
        budgets=list(plain["budget"]["values"]),
        config=plain,
        concurrency=plain["runner"]["concurrency"],
        max_parallel_problems=plain["runner"]["max_parallel_problems"],
        progress=plain["runner"]["progress"],
        retry=RetryPolicy(**plain["retry"]),
        cache_path=Path(plain["cache"]["path"]) if plain["cache"]["enabled"] else None,
        logger=LoggerConfig(logger.pop("kind"), logger),
        hydra_files=hydra_records(cfg),
    )


def hydra_records(cfg: DictConfig) -> dict[str, Any]:
    """The three `.hydra/` files, for the job to write (redacted) once its checks pass:
    Hydra would write them before any check (conf/config.yaml sets `hydra.output_subdir:
    null`), so a refused command would rewrite a finished run's record. None when composed
    without Hydra's runtime (`ttcbench.run()`), which never wrote them."""
    if not HydraConfig.initialized():
        return {}
    hydra_cfg = HydraConfig.get()
    return {
        "config.yaml": OmegaConf.to_container(cfg, resolve=False),
        "hydra.yaml": {"hydra": OmegaConf.to_container(hydra_cfg, enum_to_str=True)},
        "overrides.yaml": list(hydra_cfg.overrides.task),
    }


def redact_sweep_config() -> None:
    """Redact the secrets in the `multirun.yaml` Hydra's sweeper writes to the sweep folder
    before any job starts (every job does it: the file is the same for all)."""
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    path = Path(str(hydra_cfg.sweep.dir)) / "multirun.yaml"
    if hydra_cfg.mode != RunMode.MULTIRUN or not path.is_file():
        return
    content = yaml.safe_load(path.read_text())
    redacted = Redactor(content, list(hydra_cfg.overrides.task))(content)
    if redacted != content:
        write_yaml(path, redacted)


CONFIG_ONLY_KEYS = ("name", "label")


def build(node: dict[str, Any]) -> Any:
    """Instantiate a `_target_` config (and the `_target_` configs inside it, e.g. a strategy's
    verifier) without its config-only keys, then check each object's `name` matches."""
    args = {
        key: build(value) if isinstance(value, dict) and "_target_" in value else value
        for key, value in node.items()
        if key not in CONFIG_ONLY_KEYS
    }
    try:
        built = instantiate(args)
    except InstantiationException as err:  # Hydra wraps a constructor's own clear error
        if isinstance(err.__cause__, TtcbenchError | ValueError):
            raise ConfigError(f"{node.get('name', '?')}: {err.__cause__}") from None
        raise
    if "name" in node and getattr(built, "name", node["name"]) != node["name"]:
        raise ConfigError(
            f"config {node['name']!r} builds {type(built).__name__} named "
            f"{getattr(built, 'name', None)!r}: the YAML's name must equal the class's name"
        )
    return built


def task_requests(task: dict[str, Any]) -> list[TaskRequest]:
    """A task config is one task (`name`, `limit`, `seed`, `data_files`, and any key of the
    task's spec to override, e.g. `+task.closed_book=true`) or a suite whose `tasks` maps task
    names to the same options; the suite's `seed` is every task's default, and its `shard` and
    `shards` (which slice of the problems this job runs) apply to every task."""
    shard = {"shard": task.get("shard", 0), "shards": task.get("shards", 1)}
    if "tasks" not in task:
        opts = {key: value for key, value in task.items() if key not in shard}
        return [task_request(task["name"], opts, task.get("seed", 0), shard)]
    return [
        task_request(name, opts or {}, task.get("seed", 0), shard)
        for name, opts in task["tasks"].items()
    ]


def task_request(
    name: str, opts: dict[str, Any], seed: int, shard: dict[str, Any] | None = None
) -> TaskRequest:
    known = ("name", "limit", "seed", "data_files")
    return TaskRequest(
        name,
        opts.get("limit"),
        opts.get("seed", seed),
        opts.get("data_files"),
        {key: value for key, value in opts.items() if key not in known},
        **(shard or {}),
    )


def discard_unused_run_dir(run_dir: Path, results_dir: Path) -> None:
    """Remove a run folder that holds only Hydra's own files (the job failed before it ran),
    and the parent folders that this leaves empty, up to `results_dir`."""
    if not run_dir.is_dir() or (run_dir / "store.sqlite").exists():
        return
    if not all(p.name in (".hydra", LOCK_NAME) or p.suffix == ".log" for p in run_dir.iterdir()):
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    for parent in run_dir.parents:
        if parent == results_dir or not parent.is_relative_to(results_dir) or any(parent.iterdir()):
            break
        parent.rmdir()


def quiet_libraries() -> None:
    """Hydra logs at INFO; litellm and httpx would print a line per request there."""
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "wandb"):
        logging.getLogger(name).setLevel(logging.WARNING)


def execute(cfg: DictConfig) -> JobResult:
    """Run one composed config; bad input removes the empty run folder and re-raises."""
    quiet_libraries()
    redact_sweep_config()
    try:
        job = to_job(cfg)
        from ttcbench.job import run_job  # after to_job's checks: a typo answers at once

        with storage_errors(job.run_dir, job.cache_path):  # a full disk: one line, resumable
            return run_job(job)
    except RunFolderBusy:  # the folder is another process's: never remove anything there
        raise
    except TtcbenchError:
        discard_unused_run_dir(Path(str(cfg.run_dir)), Path(str(cfg.results_dir)))
        raise


def exit_with(err: TtcbenchError) -> NoReturn:
    """The one line a user-facing error prints, and its exit status (README: exit codes)."""
    print(f"ttcbench: error: {err}", file=sys.stderr)
    sys.exit(err.exit_code)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        result = execute(cfg)
    except TtcbenchError as err:
        exit_with(err)
    except KeyboardInterrupt as err:  # with the job's own message if it was sampling
        said = str(err) or (
            "interrupted: what was stored is kept. Re-run the same command to resume: stored "
            "calls are not requested again, and the summary and report are written anew."
        )
        print(f"\nttcbench: {said}", file=sys.stderr)
        sys.exit(130)
    print(f"\n{result.summary_markdown}")
    print(
        f"run folder: {result.run_dir}  (model requests: {result.model_requests}, "
        f"errors: {result.errors}, wall: {result.wall_s:.1f}s)"
    )
    # A run with failed calls never gets here: run_job raises IncompleteRun (exit 4) or
    # ProviderError (exit 3), and the table of an incomplete run is not printed as a result.


def main() -> None:
    """Console entry point."""
    redact_log_records(Redactor(sys.argv[1:]))
    register_model_strings(sys.argv[1:])
    # A full disk fails every write to Hydra's job log: no traceback per log line.
    logging.raiseExceptions = False
    # A job stopped by an error cancels its queued requests; litellm's coroutines that never
    # started then warn in three lines beside our one (they cost nothing: never sent).
    warnings.filterwarnings(
        "ignore", r"coroutine '.*acompletion' was never awaited", RuntimeWarning
    )
    try:  # Hydra would print a composition error in many lines and exit 1
        check_command_line(sys.argv[1:], CONF_DIR)
    except TtcbenchError as err:
        exit_with(err)
    _hydra_main()
    exit_now()


def exit_now() -> None:
    """End a successful command without the interpreter's teardown (freeing every module
    and object: 1-4 s after litellm, pandas and W&B, issue 13), once it is provably idle.

    Python's exit does, in order: join non-daemon threads, run atexit handlers, then free
    objects. With no non-daemon thread alive (else: a normal exit), this runs the same atexit
    handlers: W&B's teardown (waits until its service has closed every run's files),
    logging.shutdown (flushes and closes Hydra's cli.log), concurrent.futures' joins. What is
    skipped frees memory only: the job closed its stores (SQLite commits are durable anyway)
    and released its run lock before Hydra returned; stdout and stderr are flushed here.
    """
    import atexit
    import os
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate()
           if t is not threading.main_thread()):  # fmt: skip
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    os._exit(0)


def run(overrides: Sequence[str] = (), *, progress: bool = True) -> Path:
    """Run a job from Python (e.g. a notebook) with command-line style overrides.

    Returns the run folder. Uses exactly the configs and code path of the command line.
    Shows a progress bar (a widget in Jupyter) unless `progress=False`.
    """
    from hydra import compose, initialize_config_dir

    set_python_call(overrides)  # provenance.json names this call, not the interpreter's argv
    overrides = [*overrides, f"runner.progress={str(progress).lower()}"]
    register_model_strings(overrides)
    with composition_errors(), initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no event loop in this thread: the usual case
        return execute(cfg).run_dir
    # Jupyter runs an event loop in this thread, and the job's asyncio.run() cannot nest in
    # it: run the job in a worker thread, which has no loop of its own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(execute, cfg).result().run_dir


if __name__ == "__main__":
    main()
