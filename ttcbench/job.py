"""One job = one run folder: validate, sample, store, summarise, plot, export, log.

Data flows one way (config -> runner -> store -> analysis -> report). Everything that can
be wrong with the input is checked before the run folder, the store or the cache is touched,
so a bad command never leaves a half-written run behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ttcbench.cache import CallCache
from ttcbench.disk_errors import check_writable
from ttcbench.finished import STAMP, store_state, up_to_date, write_stamp
from ttcbench.loggers import RunLogger
from ttcbench.models.spec import ModelSpec, RetryPolicy, Sampling
from ttcbench.preflight import (
    check_logprobs,
    check_public_tests,
    check_sampling,
    validate_budgets,
)
from ttcbench.records import provenance_markdown, write_records
from ttcbench.redact import redact
from ttcbench.run_names import config_digest, identity
from ttcbench.runlock import RunLock
from ttcbench.runner import run_problems
from ttcbench.sampler import RunInfo, Sampler
from ttcbench.store import SampleStore
from ttcbench.strategies import Strategy
from ttcbench.tasks.registry import Task, TaskRequest, load_suite
from ttcbench.tracking import start_logger, start_progress
from ttcbench.types import ConfigError, IncompleteRun, ProviderError

if TYPE_CHECKING:  # importing the client imports litellm (~2.5 s): only when requests are due
    from ttcbench.models.client import ModelClient

log = logging.getLogger("ttcbench")


@dataclass(frozen=True)
class LoggerConfig:
    kind: str = "wandb"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobConfig:
    """Everything a job needs, in plain Python (cli.py converts Hydra's config to this)."""

    run_dir: Path
    task: str
    """The task or suite name (labels, run folder)."""
    tasks: list[TaskRequest]
    strategy: Strategy
    model: ModelSpec
    sampling: Sampling
    budgets: list[int]
    config: dict[str, Any]
    """The full resolved config: saved in the run folder and sent to W&B."""
    concurrency: int = 4
    max_parallel_problems: int = 8
    retry: RetryPolicy = RetryPolicy()
    cache_path: Path | None = None
    logger: LoggerConfig = LoggerConfig()
    progress: bool = True
    hydra_files: dict[str, Any] = field(default_factory=dict)
    """`.hydra/` file name -> content (cli.py), written with config.yaml once checks pass."""
    tracker: RunLogger | None = None
    """The job's started logger (set by `run_job`): samples are fed to it as they are stored."""


@dataclass
class JobResult:
    run_dir: Path
    summary_markdown: str
    model_requests: int
    errors: int
    wall_s: float


def run_id_for(config: dict[str, Any]) -> str:
    """A stable id from what defines the samples, so a re-run resumes the same run (its first
    characters are the run folder's hash)."""
    return config_digest(config)[:12]


def check_run_folder(run_dir: Path, config: dict[str, Any]) -> None:
    """Refuse to mix two different configs in one run folder (it would poison the resume)."""
    saved = run_dir / "config.yaml"
    if not saved.exists():
        return
    # config.yaml holds the redacted config (an older ttcbench's may not): compare like with like
    previous = identity(redact(yaml.safe_load(saved.read_text()) or {}))
    current = identity(redact(config))
    changed = sorted(k for k in {*previous, *current} if previous.get(k) != current.get(k))
    if changed:
        raise ConfigError(
            f"{run_dir} holds a run with a different {', '.join(changed)}; "
            "pass another name= (without name=, every config gets a folder of its own), "
            "or delete that folder"
        )


class LazyClient:
    """The ModelClient of a job expected to make no request (its outputs are up to date):
    built, with its model and key checks, only if a request is due after all."""

    def __init__(self, spec: ModelSpec, retry: RetryPolicy) -> None:
        self.spec = spec
        self._retry = retry
        self._client: ModelClient | None = None

    @property
    def requests_sent(self) -> int:
        return 0 if self._client is None else self._client.requests_sent

    def __getattr__(self, name: str) -> Any:  # only for what is not set above
        if self._client is None:
            self._client = model_client(self.spec, self._retry)
        return getattr(self._client, name)


def model_client(spec: ModelSpec, retry: RetryPolicy) -> ModelClient:
    """The client, which checks the model and its key (imports litellm)."""
    from ttcbench.models.client import ModelClient

    return ModelClient(spec, retry)


def outputs_current(job: JobConfig) -> dict[str, Any] | None:
    """The run folder's outputs stamp when they reflect what its store holds (a rerun of a
    finished job has nothing to request or rewrite), else None."""
    if not (job.run_dir / STAMP).exists():
        return None
    store = SampleStore(job.run_dir / "store.sqlite")
    try:
        return up_to_date(job.run_dir, store_state(job.config, store))
    finally:
        store.close()


def prepare(job: JobConfig) -> tuple[Task, ModelClient, list[int]]:
    """All checks that need no run folder and no request: budgets, sampling values, what the
    verifier needs of the model and the problems, model and key, task data. A finished job
    whose outputs are current gets a client that checks the model and key on first use."""
    budgets = validate_budgets(job.budgets)
    job.strategy.check_budgets(budgets)
    check_sampling(job.sampling)
    check_writable(job.run_dir, *([job.cache_path] if job.cache_path else []))
    verifier = getattr(job.strategy, "verifier", None)
    check_logprobs(verifier, job.model)
    # a stamp from another config never matches: that folder still fails check_run_folder
    finished = outputs_current(job) is not None
    client: Any = LazyClient(job.model, job.retry) if finished else None
    client = client or model_client(job.model, job.retry)
    task = load_suite(job.task, job.tasks)
    check_public_tests(verifier, task.problems)
    if "code" in task.family.split("+"):
        check_sandbox(bool((job.config.get("sandbox") or {}).get("require_isolation")))
    check_run_folder(job.run_dir, job.config)
    return task, client, budgets


def check_sandbox(require_isolation: bool) -> None:
    """Probe the code sandbox before any request: say once what this machine refuses it, or
    refuse to run when `sandbox.require_isolation=true`."""
    from ttcbench import sandbox

    try:
        if require_isolation:
            sandbox.require_full()
        sandbox.report_once()
    except RuntimeError as exc:
        raise ConfigError(str(exc)) from exc


def run_job(job: JobConfig) -> JobResult:
    """Run (or resume) one job and write its folder; returns where and what it produced."""
    task, client, budgets = prepare(job)
    with RunLock(job.run_dir):  # one writer per run folder, or RunFolderBusy (exit 5)
        check_run_folder(job.run_dir, job.config)  # again: another process may have started it
        write_records(job.run_dir, job.config, job.hydra_files)
        # Outputs already current: no tracker run unless a request turns out to be due
        # (then log_run starts one and replays the store).
        tracker = None if outputs_current(job) is not None else start_logger(job)
        try:
            return sample_and_finish(replace(job, tracker=tracker), task, client, budgets)
        except BaseException:  # log_run finishes the tracker of a job that succeeds
            if tracker is not None:
                getattr(tracker, "fail", tracker.finish)()  # what was fed stays in the tracker
            raise


def sample_and_finish(
    job: JobConfig, task: Task, client: ModelClient, budgets: list[int]
) -> JobResult:
    """Sample what the store lacks, then summarise; the caller holds the run folder."""
    started = time.perf_counter()
    run_id = run_id_for(job.config)
    store = SampleStore(job.run_dir / "store.sqlite")
    cache = CallCache(job.cache_path) if job.cache_path else None
    calls_before = store.count_calls()
    progress = start_progress(job, len(task.problems) * job.strategy.planned_calls(budgets), store)
    sampler = Sampler(
        client,
        job.sampling,
        store,
        task.grader,
        RunInfo(run_id, job.strategy.name),
        cache=cache,
        concurrency=job.concurrency,
        on_call=progress.on_call,
    )
    try:
        asyncio.run(
            run_problems(
                task.problems,
                job.strategy,
                sampler,
                budgets,
                run_id=run_id,
                on_attempts=store.put_attempts,
                max_parallel_problems=job.max_parallel_problems,
                params_b=job.model.params_b,
                model=job.model.name,
            )
        )
        sampler.drain()  # the last commits reach the tracker before it is summarised
    except KeyboardInterrupt:
        progress.close()
        saved = store.count_calls()
        close_both(store, cache)
        raise KeyboardInterrupt(
            f"interrupted: {saved} calls are safe in {job.run_dir / 'store.sqlite'} "
            f"({saved - calls_before} new). Re-run the same command to resume: stored calls "
            "are not requested again."
        ) from None
    except (ProviderError, ConfigError):  # refused (exit 3), or e.g. the embedded model's
        close_both(store, cache)  # package missing (exit 2): no summary of a run not made
        raise
    finally:
        progress.close()
    wall = time.perf_counter() - started
    stamp = None
    if job.tracker is None and client.requests_sent == 0:
        stamp = up_to_date(job.run_dir, store_state(job.config, store))
    if stamp is not None:  # nothing new since the outputs were written: leave them as they are
        result = JobResult(job.run_dir, stamp["markdown"], 0, int(stamp["errors"]), wall)
    else:
        result = finish(job, task, store, client.requests_sent, wall)
    failed = store.count_failed_calls()
    close_both(store, cache)
    if failed or result.errors:
        raise incomplete(job, failed, result.errors, progress.last_error)
    return result


def close_both(store: SampleStore, cache: CallCache | None) -> None:
    """The store first: its writer thread caches what it commits. Then the cache shard, marked
    closed on every way out (a long-lived process, a notebook, must not keep a live shard)."""
    store.close()
    if cache is not None:
        cache.close()


def incomplete(job: JobConfig, calls: int, attempts: int, last: str | None) -> IncompleteRun:
    """The one line for a run that finished with failed calls (transient errors that
    outlasted their retries, or errors about one prompt): what failed, why, and how to
    resume; the error says where the run folder is for `ttcbench.run()` callers."""
    err = IncompleteRun(
        f"{calls} model calls failed after their retries ({attempts} attempts excluded from "
        f"accuracy); last error: {last or 'unknown'}. The rest is stored in {job.run_dir}: "
        "re-run the same command to resume (stored calls are not requested again)."
    )
    err.run_dir = job.run_dir  # type: ignore[attr-defined]
    return err


def finish(job: JobConfig, task: Task, store: SampleStore, requests: int, wall: float) -> JobResult:
    """Summary table, plot, Parquet export and W&B logging from what the store holds."""
    # pandas and scipy: imported here, after sampling, not before the first request
    from ttcbench.analysis.summary import summarize, to_markdown

    attempts = store.attempts_frame()
    summary = summarize(attempts)
    run_dir = job.run_dir
    csv_table(job, task.name, summary).to_csv(run_dir / "summary.csv", index=False)
    markdown = to_markdown(summary)
    header = (
        f"# {task.name} · {job.model.name} · {job.strategy.name} · "
        f"{len(task.problems)} problems\n\n"
    ) + provenance_markdown(run_dir)
    if attempts["task"].nunique() > 1:  # a suite: the same table for each of its tasks
        per_task = summarize(attempts, by=("task",))
        csv_table(job, task.name, per_task).to_csv(run_dir / "summary_by_task.csv", index=False)
        markdown += "\nPer task:\n\n" + to_markdown(per_task)
    markdown += truncation_note(store) + untrusted_note(store) + failed_note(store)
    (run_dir / "summary.md").write_text(header + markdown)
    title = f"{task.name} · {job.model.name} · {len(task.problems)} problems"
    from ttcbench.analysis.plots import plot_accuracy_vs_compute  # matplotlib: only here

    plot = plot_accuracy_vs_compute(summary, run_dir / "accuracy_vs_compute.png", title=title)
    exports = store.export(run_dir)
    errors = int(summary["errors"].max()) if len(summary) else 0
    files = [plot, run_dir / "summary.md", *exports]
    report = None
    try:  # the report only reads what is stored: its failure must never fail a finished run
        from ttcbench.analysis.report import build_report

        started = time.perf_counter()
        # fit_resamples=0: no bootstrap refits of the logistic (the slow part); the full
        # report is one `ttcbench-report <run folder>` away.
        report = build_report([run_dir], run_dir, fit_resamples=0)
        files += [report.html, report.markdown]
        log.debug("report written in %.2fs", time.perf_counter() - started)
    except Exception as exc:
        log.warning(
            "report.html not written (%s: %s); the results are complete", type(exc).__name__, exc
        )
    tracked = log_run(job, store, summary, files, errors, wall, report)
    if tracked and not store.count_failed_calls():  # else a rerun must redo what is missing
        outputs = [*files, run_dir / "summary.csv", run_dir / "summary_by_task.csv"]
        if job.logger.kind != "none":
            outputs.append(run_dir / "wandb")
        write_stamp(run_dir, store_state(job.config, store), outputs, markdown, errors)
    return JobResult(run_dir, markdown, requests, errors, wall)


def csv_table(job: JobConfig, task: str, summary: Any) -> Any:
    """summary.csv's rows: the numbers led by what the run was (task, model, strategy label,
    temperature, max_tokens), so many runs' tables concatenate and stay readable."""
    from ttcbench.analysis.summary import with_run_columns

    sampling = job.sampling
    return with_run_columns(
        summary,
        task=task,
        model=job.model.name,
        temperature=sampling.temperature,
        max_tokens=sampling.max_tokens,
    )


def truncation_note(store: SampleStore, warn_above: float = 0.1) -> str:
    """A line for the summary saying how many outputs max_tokens cut off, with a warning
    past `warn_above`: their answers are mostly missing, so accuracy measures the cap."""
    cut, answered = store.count_truncated()
    if not cut:
        return ""
    share = cut / answered
    line = f"\n{cut} of {answered} model outputs ({share:.0%}) stopped at max_tokens."
    if share > warn_above:
        log.warning(
            "%d of %d outputs (%.0f%%) were cut off at max_tokens: raise sampling.max_tokens "
            "if the answers are missing (finish_reason=length in the store)",
            cut, answered, 100 * share,
        )  # fmt: skip
        line += " Raise `sampling.max_tokens` if their answers are missing."
    return line + "\n"


def failed_note(store: SampleStore) -> str:
    """A line saying the run is incomplete, so a summary of part of a run is never read as
    the result: failed calls are retried when the same command is run again."""
    failed = store.count_failed_calls()
    if not failed:
        return ""
    return (
        f"\n**Incomplete run**: {failed} model calls failed after their retries; their "
        "attempts are excluded above. Re-run the same command to resume.\n"
    )


def untrusted_note(store: SampleStore) -> str:
    """A line for the summary counting code grades whose tests could not run apart from the
    program (``trusted_compare`` false: tests that use the program's own classes)."""
    untrusted, graded = store.count_untrusted_grades()
    if not untrusted:
        return ""
    return (
        f"\n{untrusted} of {graded} code grades ran their tests inside the program's own "
        "interpreter (trusted_compare false: the tests use more of the program than one "
        "function), where a program aimed at the grader could forge a pass.\n"
    )


def log_run(
    job: JobConfig,
    store: SampleStore,
    summary: Any,
    files: list[Path],
    errors: int,
    wall: float,
    report: Any = None,
) -> bool:
    """Send the run to W&B (or nowhere): the curve, summary, files and the report's figures,
    tables and headline numbers. `run_job` started the tracker and fed it the samples as they
    were stored; without one (a job finished by other code) it starts one and streams them
    from the store in chunks. Returns False when the tracker failed (a rerun must retry)."""
    logger = job.tracker
    if logger is None:
        logger = start_logger(job, final=True)
    logger.log_curve(summary.to_dict("records"))
    final = summary.sort_values("budget").groupby("strategy").tail(1)
    logger.log_summary(
        {
            "errors": errors,
            "wall_s": wall,
            "outputs_at_max_tokens": store.count_truncated()[0],
            "untrusted_code_grades": store.count_untrusted_grades()[0],
            **{f"accuracy/{r.strategy}": r.accuracy for r in final.itertuples()},
        }
    )
    logger.log_files(files)
    log_report = getattr(logger, "log_report", None)  # trackers that show reports have it
    if report is not None and log_report is not None:
        log_report(report.figures, report.tables, report.metrics)
    logger.finish()
    return not getattr(logger, "failed", False)
