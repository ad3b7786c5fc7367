"""End to end on the real embedded model: store rows, summary, plot, Parquet, resume, reuse.

These run SmolLM2-135M through llama.cpp (marked `slow`: tens of seconds each), with few
problems and short outputs so the whole file stays around two minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import wandb
from run_folders import run_folder, wait_for_run_folder
from wandbfiles import items, records_by_type

import ttcbench
from ttcbench.analysis.bootstrap import paired_bootstrap_diff
from ttcbench.store import SampleStore

pytestmark = pytest.mark.slow

SMALL = ["task.limit=2", "budget.values=[1,2,4,8]", "sampling.max_tokens=48", "logger=none"]


def cli(results: Path, *extra: str, cache: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "TTCBENCH_CACHE": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-m", "ttcbench.cli", f"results_dir={results}", *SMALL, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def requests_made(stdout: str) -> int:
    return int(re.search(r"model requests: (\d+)", stdout).group(1))


def test_default_job_end_to_end(results: Path) -> None:
    """The quick start's `ttcbench`, as is: 30 problems x a pool of 8, W&B offline."""
    run_dir = ttcbench.run([f"results_dir={results}"])
    store = SampleStore(run_dir / "store.sqlite")
    calls = store.calls_frame()
    assert len(calls) == 30 * 8 and calls["key"].is_unique
    assert calls["error"].isna().all() and (calls["completion_tokens"] > 0).all()
    assert (calls["latency_s"] > 0).all() and (calls["cost_usd"] == 0).all()
    assert set(calls["finish_reason"]) <= {"stop", "length"}  # length: cut at max_tokens
    assert set(calls["role"]) == {"generate"} and calls["score"].isin([0.0, 1.0]).all()
    assert {c["difficulty"] for c in calls["classes"]} == {"easy", "hard"}
    assert sorted(calls["sample_index"].unique()) == list(range(8))

    attempts = store.attempts_frame()
    assert len(attempts) == 30 * 4
    # Budget k costs k/8 of the pool: compute scales exactly with the budget.
    per_budget = attempts.groupby("budget")["calls"].sum()
    assert per_budget.to_dict() == {1: 30.0, 2: 60.0, 4: 120.0, 8: 240.0}
    # The README's promise: the vote of 8 beats one sample, the 95% interval of the gain
    # (paired over problems) above 0. Every sample is seeded, so this is the same pool on
    # every run on one machine, not a draw that passes most of the time.
    by_budget = attempts.pivot(index="problem_id", columns="budget", values="score")
    gain, low, high = paired_bootstrap_diff(by_budget[8].to_numpy(), by_budget[1].to_numpy())
    assert low > 0, f"gain at 8 over 1: {gain:.3f} [{low:.3f}, {high:.3f}]"

    summary = pd.read_csv(run_dir / "summary.csv")
    assert list(summary["budget"]) == [1, 2, 4, 8]
    assert (
        (summary["ci_low"] <= summary["accuracy"]) & (summary["accuracy"] <= summary["ci_high"])
    ).all()
    at_full = attempts[attempts["budget"] == 8]["score"].mean()
    assert summary.loc[3, "accuracy"] == pytest.approx(at_full)
    # FLOPs per problem: 2 x 0.135e9 parameters x tokens per problem (model.params_b).
    assert summary["flops"].to_numpy() == pytest.approx(2 * 0.135e9 * summary["tokens"])

    png = (run_dir / "accuracy_vs_compute.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
    assert "| majority_vote | 8 |" in (run_dir / "summary.md").read_text()
    exported = pd.read_parquet(run_dir / "calls.parquet")
    assert len(exported) == 240 and "class_difficulty" in exported
    assert len(pd.read_parquet(run_dir / "attempts.parquet")) == 120
    check_wandb_files(run_dir, calls, summary)


def check_wandb_files(run_dir: Path, calls: pd.DataFrame, summary: pd.DataFrame) -> None:
    """The offline W&B run holds the config, every sample row, the curve and the plot."""
    wandb.teardown()  # wait until wandb's service has flushed the offline log to disk
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    (log_file,) = offline.glob("run-*.wandb")
    by_type = records_by_type(log_file)
    (run,) = by_type["run"]
    assert run.run.run_group == "arithmetic-smollm2"
    assert items(run.run.config.update)["strategy"]["name"] == "majority_vote"
    history = [items(r.history.item) for r in by_type["history"]]
    tables = [json.loads((offline / "files" / h["samples.path"]).read_text()) for h in history
              if "samples.path" in h]  # fmt: skip
    rows = [dict(zip(t["columns"], r, strict=True)) for t in tables for r in t["data"]]
    assert sorted(r["key"] for r in rows) == sorted(calls["key"])
    curve = [h for h in history if "accuracy" in h and "budget" in h]
    assert [h["accuracy"] for h in curve] == pytest.approx(list(summary["accuracy"]))
    assert any("plots/accuracy_vs_compute.path" in h for h in history)
    final: dict = {}
    for record in by_type["summary"]:
        final.update(items(record.summary.update))
    assert final["outputs_at_max_tokens"] == (calls["finish_reason"] == "length").sum()


def test_sigkill_mid_sweep_then_resume(tmp_path: Path) -> None:
    """Kill -9 mid-sweep: no committed row lost or duplicated, no stored key requested again."""
    reference = cli(tmp_path / "ref", cache=tmp_path / "ref-cache.sqlite")
    ref_out, ref_err = reference.communicate(timeout=300)
    assert reference.returncode == 0, ref_err

    results, cache = tmp_path / "killed", tmp_path / "cache.sqlite"
    # One request at a time, so the kill lands between the two problems' requests (the
    # embedded model would otherwise decode both side by side and store them together).
    victim = cli(results, "runner.concurrency=1", cache=cache)
    store_path = wait_for_run_folder(results / "arithmetic/smollm2", "majority_vote-pow2_8")
    store_path /= "store.sqlite"
    deadline = time.time() + 240
    while time.time() < deadline and _rows(store_path) < 5:
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    committed = _rows(store_path)
    assert 5 <= committed < 16
    check = sqlite3.connect(store_path).execute("PRAGMA integrity_check").fetchone()[0]
    assert check == "ok"

    resumed = cli(results, cache=cache)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    # A request carries up to model.max_n = 8 samples of one problem, committed together:
    # the resume asks only for the missing samples, in as few requests as hold them.
    assert committed % 8 == 0
    assert requests_made(out) == (16 - committed) // 8  # zero calls for stored keys
    calls = SampleStore(store_path).calls_frame()
    assert len(calls) == 16 and calls["key"].is_unique
    # Same metrics as the uninterrupted run; only measured time (model_s) may differ.
    ref = pd.read_csv(
        run_folder(tmp_path / "ref/arithmetic/smollm2", "majority_vote-pow2_8") / "summary.csv"
    )
    got = pd.read_csv(store_path.parent / "summary.csv")
    pd.testing.assert_frame_equal(got.drop(columns="model_s"), ref.drop(columns="model_s"))

    again = cli(results, cache=cache)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0 and requests_made(out) == 0


def _rows(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        return sqlite3.connect(store, timeout=5).execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0


def test_sweep_costs_exactly_its_largest_budget(results: Path) -> None:
    """A sweep over 1, 2, 4, 8 makes the calls and tokens of 8 alone (cache off in both)."""
    common = [f"results_dir={results}", "cache.enabled=false", *SMALL]
    sweep = SampleStore(ttcbench.run([*common, "name=sweep"]) / "store.sqlite").calls_frame()
    alone = ttcbench.run([*common, "name=alone", "budget.values=[8]"])
    alone_calls = SampleStore(alone / "store.sqlite").calls_frame()
    assert len(sweep) == len(alone_calls) == 16
    tokens = ["prompt_tokens", "completion_tokens"]
    assert sweep[tokens].sum().sum() == alone_calls[tokens].sum().sum()
    assert list(sweep["output"]) == list(alone_calls["output"])  # seeded: the same samples


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path: Path) -> None:
    results = tmp_path / "results"
    env = {**os.environ, "TTCBENCH_CACHE": str(tmp_path / "cache.sqlite")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ttcbench.cli",
            f"results_dir={results}",
            *SMALL,
            "runner.concurrency=1",
        ],  # one request at a time: the signal lands mid-sweep
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # A shell's background jobs ignore SIGINT; a user's terminal does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    store_path = wait_for_run_folder(results / "arithmetic/smollm2", "majority_vote-pow2_8")
    store_path /= "store.sqlite"
    deadline = time.time() + 240
    while time.time() < deadline and _rows(store_path) < 3:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Re-run the same command to resume" in err and "Traceback" not in err
    rows = _rows(store_path)
    assert 3 <= rows < 16
    check = sqlite3.connect(store_path).execute("PRAGMA integrity_check").fetchone()[0]
    assert check == "ok"
    # The job's cache shard is marked closed (a merge may take it), not left "live".
    shards = list((tmp_path / "cache").glob("*.sqlite"))
    assert shards, "the interrupted job cached its stored samples"
    for shard in shards:
        meta = dict(sqlite3.connect(shard).execute("SELECT * FROM meta").fetchall())
        assert "closed" in meta, meta


def test_ctrl_c_outside_sampling_still_says_how_to_resume(tmp_path: Path) -> None:
    """Ctrl-C while the summary or report is being written (KeyboardInterrupt without the
    sampler's message) printed a bare "ttcbench: "; it must say what is kept and what to do."""
    code = (
        "import sys, ttcbench.cli as cli\n"
        "def interrupted(cfg):\n"
        "    raise KeyboardInterrupt()\n"
        "cli.execute = interrupted\n"
        "sys.argv = ['ttcbench', 'logger=none']\n"
        "cli.main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 130
    assert "Re-run the same command to resume" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
