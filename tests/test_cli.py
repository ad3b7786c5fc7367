"""The `ttcbench` command line: bad input, multirun sweeps, resume and run-folder safety.

Runs the real console entry point (`python -m ttcbench.cli`) in a subprocess against the
scripted OpenAI-compatible server of tests/fakeserver.py, so what is asserted here is what a
user sees: exit status, stderr, run folders and the requests a provider would receive.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from fakeserver import FakeOpenAI
from run_folders import run_folder

import ttcbench
from ttcbench.types import ConfigError, TaskError

CLI = [sys.executable, "-m", "ttcbench.cli"]
RUN_FILES = (
    "summary.csv",
    "summary.md",
    "accuracy_vs_compute.png",
    "calls.parquet",
    "attempts.parquet",
    "config.yaml",
    "store.sqlite",
)
STRATEGIES = ("single", "majority_vote")


def cli_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    env.update(TTCBENCH_CACHE=str(tmp / "cache.sqlite"), WANDB_MODE="offline")
    return env


def ttcbench_cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`ttcbench ARGS results_dir=TMP/results`, run in TMP without provider API keys."""
    return subprocess.run(
        [*CLI, *args, f"results_dir={tmp / 'results'}"],
        cwd=tmp,
        env=cli_env(tmp),
        capture_output=True,
        text=True,
        timeout=300,
    )


def sweep_args(api_base: str, *extra: str) -> list[str]:
    return [
        "-m",
        f"strategy={','.join(STRATEGIES)}",
        "budget=pow2_16",
        "model=llamacpp_server",
        f"model.api_base={api_base}",
        "model.name=fake",
        "task.limit=2",
        "logger=none",
        "retry.initial_wait_s=0.01",
        *extra,
    ]


def run_folders(results: Path) -> dict[str, Path]:
    return {s: run_folder(results / "arithmetic" / "fake", f"{s}-pow2_16") for s in STRATEGIES}


def summary_tables(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("|")]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def assert_sweep_folders(results: Path) -> None:
    for strategy, folder in run_folders(results).items():
        missing = [f for f in RUN_FILES if not (folder / f).is_file()]
        assert not missing, f"{folder} lacks {missing}"
        summary = pd.read_csv(folder / "summary.csv")
        one_draw = {"single": "single (1 draw)"}  # its own run has no pool to average over
        assert set(summary["strategy"]) == {one_draw.get(strategy, strategy)}
        budgets = [1] if strategy == "single" else [1, 2, 4, 8, 16]
        assert sorted(summary["budget"]) == budgets
        assert (summary["accuracy"] == 1.0).all()  # the scripted server always answers right


# --- bad input: one line on stderr, non-zero exit, nothing left behind -------------------


@dataclass(frozen=True)
class BadInput:
    overrides: tuple[str, ...]
    mentions: tuple[str, ...]
    hydra: bool = False
    """Hydra reports unknown config group options itself (with its option listing)."""


BAD_INPUTS = {
    "unknown-task": BadInput(("task=nope",), ("unknown task 'nope'", "arithmetic")),
    "unknown-strategy": BadInput(
        ("strategy=nope",), ("unknown strategy 'nope'", "majority_vote", "single")
    ),
    "unknown-budget": BadInput(("budget=nope",), ("unknown budget 'nope'", "pow2_16")),
    "unknown-provider": BadInput(
        ("model=nosuchprovider/foo",), ("nosuchprovider/foo", "litellm", "provider")
    ),
    "missing-api-key": BadInput(("model=openai/gpt-4o-mini",), ("OPENAI_API_KEY",)),
    "budget-not-an-int": BadInput(("budget.values=[1,x,4]",), ("budget.values", "'x'")),
    "budget-negative": BadInput(("budget.values=[1,-2]",), ("budget.values", "-2")),
    "budget-empty": BadInput(("budget.values=[]",), ("budget.values", "empty")),
    "limit-negative": BadInput(("task.limit=-3",), ("task.limit", "-3")),
    "limit-zero": BadInput(("task.limit=0",), ("task.limit", "got 0")),
    "data-file-missing": BadInput(
        ("task.data_files=/nonexistent/file.jsonl",),
        ("/nonexistent/file.jsonl", "cannot read", "no such file"),
    ),
    "data-file-malformed": BadInput(
        ("task.data_files={tmp}/bad.jsonl",), ("bad.jsonl", "cannot read")
    ),
}


@dataclass(frozen=True)
class BadRun:
    tmp: Path
    proc: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module", autouse=True)
def bad_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[BadRun]]]:
    """Every bad command, started in the background as soon as this module starts.

    Each start-up imports litellm (seconds of CPU): they run beside the sweep tests, which
    mostly wait on one subprocess, and are checked by the tests at the end of this file.
    """
    selected = any(
        getattr(item, "originalname", item.name).startswith(("test_bad_input", "test_malformed"))
        for item in request.session.items
    )

    def run(case: str) -> BadRun:
        tmp = tmp_path_factory.mktemp(case)
        (tmp / "bad.jsonl").write_text('{"question": "1 + 1", "answer": \n not json {\n')
        args = [arg.format(tmp=tmp) for arg in BAD_INPUTS[case].overrides]
        return BadRun(tmp, ttcbench_cli(tmp, *args))

    with ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) - 1)) as pool:
        yield {case: pool.submit(run, case) for case in BAD_INPUTS} if selected else {}


def check_bad_input(case: str, bad_runs: dict[str, Future[BadRun]]) -> None:
    spec, run = BAD_INPUTS[case], bad_runs[case].result()
    stderr = run.proc.stderr
    assert run.proc.returncode != 0, run.proc.stdout
    assert "Traceback" not in stderr and "Traceback" not in run.proc.stdout
    lines = error_lines(stderr)
    assert lines, "no error message on stderr"
    if spec.hydra:
        assert lines[0].startswith("In 'config': Could not find"), stderr
    else:
        assert run.proc.returncode == 2
        assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
        assert lines[0].startswith("ttcbench: error: ")
    for word in spec.mentions:
        assert word in stderr, f"{word!r} not in {stderr!r}"
    results = run.tmp / "results"
    assert not list(results.rglob("store.sqlite"))
    assert not list(results.rglob("*")), "the run left files or folders behind"
    assert not (run.tmp / "cache.sqlite").exists() and not (run.tmp / "cache").exists()


# --- multirun sweeps against the scripted server ------------------------------------------


@dataclass
class Sweep:
    tmp: Path
    server: FakeOpenAI
    proc: subprocess.CompletedProcess[str]
    requests: int
    summaries: dict[str, bytes]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    """One `-m strategy=single,majority_vote` sweep; the server lives on for the re-run."""
    tmp = tmp_path_factory.mktemp("sweep")
    with FakeOpenAI() as server:
        proc = ttcbench_cli(tmp, *sweep_args(server.api_base))
        summaries = {
            s: (f / "summary.csv").read_bytes()
            for s, f in run_folders(tmp / "results").items()
            if (f / "summary.csv").exists()
        }
        yield Sweep(tmp, server, proc, len(server.requests), summaries)


def test_multirun_sweep_writes_one_folder_per_job(sweep: Sweep) -> None:
    assert sweep.proc.returncode == 0, sweep.proc.stderr
    assert "Traceback" not in sweep.proc.stderr
    assert_sweep_folders(sweep.tmp / "results")
    folders = {p.parent for p in (sweep.tmp / "results").rglob("store.sqlite")}
    assert folders == set(run_folders(sweep.tmp / "results").values())


def test_multirun_pays_for_no_sample_twice(sweep: Sweep) -> None:
    # llamacpp_server has max_n: 1, so one request per sample. majority_vote draws a pool of
    # 16 per problem and single uses sample 0 of the same pool (same prompt, sampling and
    # seed) through the shared cache: 2 problems x 16 samples, not 2 x (16 + 1).
    assert sweep.proc.returncode == 0, sweep.proc.stderr
    assert sweep.requests == 2 * 16
    folders = run_folders(sweep.tmp / "results")
    assert len(pd.read_parquet(folders["majority_vote"] / "calls.parquet")) == 2 * 16
    assert len(pd.read_parquet(folders["single"] / "calls.parquet")) == 2


def test_rerun_makes_no_requests_and_prints_the_same_summary(sweep: Sweep) -> None:
    assert sweep.proc.returncode == 0, sweep.proc.stderr
    before = len(sweep.server.requests)
    again = ttcbench_cli(sweep.tmp, *sweep_args(sweep.server.api_base))
    assert again.returncode == 0, again.stderr
    assert len(sweep.server.requests) == before
    assert again.stdout.count("(model requests: 0,") == len(STRATEGIES)
    assert summary_tables(again.stdout) == summary_tables(sweep.proc.stdout)
    assert len(summary_tables(again.stdout)) == 2 + 1 + 2 + 5  # headers + rows of both jobs
    for strategy, folder in run_folders(sweep.tmp / "results").items():
        assert (folder / "summary.csv").read_bytes() == sweep.summaries[strategy]


def test_multirun_with_joblib_launcher(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    proc = ttcbench_cli(
        tmp_path,
        *sweep_args(fake_openai.api_base, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert_sweep_folders(tmp_path / "results")
    # The two jobs run at the same time in separate processes: both may miss the shared
    # cache for a problem's sample 0 before either has stored it, so up to one extra
    # request per problem (2) is paid; never more, and never fewer than the 2 x 16 pool.
    assert 32 <= len(fake_openai.requests) <= 34


# --- run folders hold one config ----------------------------------------------------------


def test_different_config_in_an_existing_run_folder_is_refused(
    results: Path, fake_openai: FakeOpenAI
) -> None:
    args = [
        "name=fixed",
        "model=llamacpp_server",
        f"model.api_base={fake_openai.api_base}",
        "model.name=fake",
        "strategy=single",
        "budget=one",
        "task.limit=1",
        "logger=none",
    ]
    run_dir = ttcbench.run([*args, f"results_dir={results}"])
    assert run_dir == results / "fixed"
    config = (run_dir / "config.yaml").read_bytes()
    requests = len(fake_openai.requests)
    assert requests == 1

    proc = ttcbench_cli(results.parent, *args, "sampling.temperature=0.1")
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert str(run_dir) in lines[0] and "different sampling" in lines[0]
    assert len(fake_openai.requests) == requests
    assert (run_dir / "config.yaml").read_bytes() == config


# --- bad input (started in the background by the bad_runs fixture) -------------------------


@pytest.mark.parametrize("case", [c for c in BAD_INPUTS if c != "data-file-malformed"])
def test_bad_input_is_one_line_and_leaves_nothing(
    case: str, bad_runs: dict[str, Future[BadRun]]
) -> None:
    check_bad_input(case, bad_runs)


def test_malformed_data_file_is_one_line(bad_runs: dict[str, Future[BadRun]]) -> None:
    check_bad_input("data-file-malformed", bad_runs)


def test_task_spec_options_are_overridable_from_the_command_line(results: Path) -> None:
    from ttcbench.store import SampleStore

    with FakeOpenAI() as server:
        run_dir = ttcbench.run(
            [f"results_dir={results}", "task=multihop", "task.limit=2", "+task.closed_book=true",
             "logger=none", "budget=one", "model=llamacpp_server", "model.name=fake",
             f"model.api_base={server.api_base}"]
        )  # fmt: skip
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    prompts = [m[-1]["content"] for m in calls["messages"]]
    assert len(prompts) == 2 and not any("documents" in p for p in prompts)
    assert [c["book"] for c in calls["classes"]] == ["closed", "closed"]


def test_an_unknown_task_option_names_the_valid_ones(results: Path) -> None:
    with pytest.raises(TaskError, match="no option 'closedbook'.*closed_book"):
        ttcbench.run(
            [f"results_dir={results}", "task=multihop", "+task.closedbook=true", "logger=none"]
        )
    assert not results.exists()


def test_a_constructor_error_is_one_config_error(results: Path) -> None:
    with pytest.raises(ConfigError, match="pdr: pdr.widths must be positive"):
        ttcbench.run(
            [f"results_dir={results}", "strategy=pdr", "strategy.widths=[2,0]", "logger=none"]
        )
    assert not results.exists()
