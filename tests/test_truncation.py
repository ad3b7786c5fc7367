"""Outputs cut off at max_tokens are recorded and reported: accuracy alone would hide them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fakeserver import FakeOpenAI
from test_faults import overrides

import ttcbench
from ttcbench.store import SampleStore
from ttcbench.types import Call


def odd_seeds_hit_max_tokens(body: dict, text: str) -> str:
    return "length" if int(body["seed"]) % 2 else "stop"


def test_cut_off_outputs_are_recorded_counted_and_warned(
    results: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeOpenAI(finish=odd_seeds_hit_max_tokens)
    with server, caplog.at_level(logging.WARNING, logger="ttcbench"):
        run_dir = ttcbench.run(overrides(results, server.api_base))
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert len(calls) == 16
    assert (calls["finish_reason"] == "length").sum() == 8
    assert set(calls["finish_reason"]) == {"stop", "length"}
    summary_md = (run_dir / "summary.md").read_text()
    assert "8 of 16 model outputs (50%) stopped at max_tokens" in summary_md
    assert "sampling.max_tokens" in summary_md
    assert any("cut off at max_tokens" in r.getMessage() for r in caplog.records)


def test_no_truncation_line_when_every_output_stopped(results: Path, fake_openai) -> None:
    run_dir = ttcbench.run(overrides(results, fake_openai.api_base))
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert (calls["finish_reason"] == "stop").all()
    assert "max_tokens" not in (run_dir / "summary.md").read_text()


def stored_call(key: str, role: str, **fields: object) -> Call:
    return Call(key=key, run_id="r", task="t", problem_id="p", classes={}, strategy="s",
                role=role, sample_index=0, seed=0, model="m", messages_hash="h", messages=[],
                **fields)  # fmt: skip


def test_search_steps_and_thinking_chunks_are_capped_by_design_not_counted(
    tmp_path: Path,
) -> None:
    store = SampleStore(tmp_path / "store.sqlite")
    for role in ("generate", "answer", "step", "think", "judge"):
        store.put_call(stored_call(role, role, output="cut", finish_reason="length"))
    store.put_call(stored_call("failed", "generate", error="401"))
    assert store.count_truncated() == (3, 3)  # generate, answer, judge; errors are not outputs
