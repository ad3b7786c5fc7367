"""Transient errors are retried with backoff; permanent ones are recorded, never scored.

Uses a scripted OpenAI-compatible server on 127.0.0.1 and the full job path (Hydra config,
litellm, sampler, store), so what is counted here is what a real provider would see.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import ttcbench
from ttcbench.store import SampleStore
from ttcbench.types import IncompleteRun


def overrides(results: Path, api_base: str, *extra: str) -> list[str]:
    return [
        f"results_dir={results}",
        "model=llamacpp_server",
        f"model.api_base={api_base}",
        "model.name=fake",
        "model.timeout_s=2",
        "task.limit=2",
        "budget=pow2_8",
        "logger=none",
        "retry.initial_wait_s=0.01",
        "retry.max_wait_s=0.05",
        "retry.max_attempts=4",
        *extra,
    ]


def test_transient_errors_are_retried_until_success(results: Path, fake_openai) -> None:
    fake_openai.enqueue(429, times=2)
    fake_openai.enqueue(503)
    run_dir = ttcbench.run(overrides(results, fake_openai.api_base, "strategy=single"))
    store = SampleStore(run_dir / "store.sqlite")
    calls = store.calls_frame()
    assert len(calls) == 2 and calls["error"].isna().all()
    assert len(fake_openai.requests) == 2 + 3  # two problems + three retried failures
    summary = pd.read_csv(run_dir / "summary.csv")
    assert summary.loc[0, "accuracy"] == pytest.approx(1.0)
    assert summary.loc[0, "errors"] == 0


def test_requests_use_provider_n(results: Path, fake_openai) -> None:
    run_dir = ttcbench.run(overrides(results, fake_openai.api_base, "model.max_n=8"))
    assert [r.get("n") for r in fake_openai.requests] == [8, 8]
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert len(calls) == 16 and calls["key"].is_unique
    # The request's usage (10 prompt + 56 completion tokens) is split exactly over 8 samples.
    per_problem = calls.groupby("problem_id")[["prompt_tokens", "completion_tokens"]].sum()
    assert (per_problem["prompt_tokens"] == 10).all()
    assert (per_problem["completion_tokens"] == 56).all()


def test_failed_call_is_recorded_not_scored(results: Path, fake_openai) -> None:
    # (A refusal such as a 401 stops the job instead: tests/test_fail_fast.py.)
    fake_openai.enqueue(200)
    fake_openai.enqueue(500, times=4)  # the other problem's request outlasts its retries
    with pytest.raises(IncompleteRun) as caught:
        ttcbench.run(overrides(results, fake_openai.api_base, "strategy=single"))
    run_dir = caught.value.run_dir  # type: ignore[attr-defined]
    assert len(fake_openai.requests) == 5
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    failed = calls[calls["error"].notna()]
    assert len(failed) == 1 and "500" in failed.iloc[0]["error"]
    attempts = SampleStore(run_dir / "store.sqlite").attempts_frame()
    assert attempts["score"].isna().sum() == 1  # not scored as wrong
    summary = pd.read_csv(run_dir / "summary.csv")
    assert summary.loc[0, "errors"] == 1 and summary.loc[0, "problems"] == 1
    assert summary.loc[0, "accuracy"] == pytest.approx(1.0)

    # Re-running retries only the failed call and replaces its row: no duplicates.
    ttcbench.run(overrides(results, fake_openai.api_base, "strategy=single"))
    assert len(fake_openai.requests) == 6
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert len(calls) == 2 and calls["error"].isna().all()


def test_retries_give_up_after_max_attempts(results: Path, fake_openai) -> None:
    fake_openai.enqueue(500, times=4)
    with pytest.raises(IncompleteRun) as caught:
        ttcbench.run(overrides(results, fake_openai.api_base, "strategy=single", "task.limit=1"))
    run_dir = caught.value.run_dir  # type: ignore[attr-defined]
    assert len(fake_openai.requests) == 4
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert calls.iloc[0]["error"].startswith("InternalServerError")


def test_timeouts_are_transient(results: Path, fake_openai) -> None:
    fake_openai.enqueue(200, delay_s=3.0)  # longer than model.timeout_s=2
    run_dir = ttcbench.run(
        overrides(results, fake_openai.api_base, "strategy=single", "task.limit=1")
    )
    assert len(fake_openai.requests) == 2
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert calls["error"].isna().all()


def test_problems_sharing_a_prompt_keep_their_own_rows(
    results: Path, fake_openai, tmp_path: Path
) -> None:
    data = tmp_path / "problems.jsonl"
    rows = [
        ("a", "Calculate 2 + 3.", "5"),
        ("b", "Calculate 2 + 3.", "5"),
        ("c", "Calculate 9 - 1.", "8"),
    ]
    data.write_text(
        "".join(json.dumps({"id": i, "question": q, "answer": a}) + "\n" for i, q, a in rows)
    )
    run_dir = ttcbench.run(
        overrides(
            results,
            fake_openai.api_base,
            "strategy=single",
            "task.limit=3",
            f"task.data_files={data}",
        )
    )
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert sorted(calls["problem_id"]) == ["a", "b", "c"]
    assert len(fake_openai.requests) == 2  # the shared prompt is sampled once (cache)
    assert calls.set_index("problem_id").loc["b", "cached"] == 1
    attempts = SampleStore(run_dir / "store.sqlite").attempts_frame()
    assert list(attempts["score"]) == [1.0, 1.0, 1.0]
