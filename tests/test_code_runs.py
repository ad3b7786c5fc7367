"""Code grading through a real run: what a model's program can and cannot do to the numbers.

A fake OpenAI-compatible server plays a model that answers HumanEval with programs that attack
the grader (always-equal results, exiting before the tests, printing guesses); the run's store
must score them 0, mark every grade `trusted_compare`, and score the honest answers 1.  An MBPP
file whose tests build the program's own class falls back, and the summary says how many
grades did.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest
from fakeserver import FakeOpenAI
from test_faults import overrides

import ttcbench
from ttcbench import sandbox
from ttcbench.job import check_sandbox
from ttcbench.sandbox import probe
from ttcbench.store import SampleStore
from ttcbench.tasks.registry import load_task
from ttcbench.types import ConfigError

HUMANEVAL = {p.id: p for p in load_task("humaneval", limit=2).problems}
ATTACKS = [  # one per sample index; even indices are honest
    "{prompt}{answer}",
    "class Any:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n"
    "        return False\n    __hash__ = object.__hash__\n\n\n{signature}    return Any()\n",
    "{prompt}{answer}",
    "import os\n\n{signature}    return None\n\nprint('0' * 32)\nos._exit(0)\n",
]


def answer(body: dict) -> str:
    """The fake model: the problem's reference or an attack, by sample index (seed)."""
    prompt = body["messages"][-1]["content"]
    problem = next(p for p in HUMANEVAL.values() if p.meta["prompt"] in prompt)
    signature = problem.meta["prompt"].split('"""')[0].split("'''")[0].rstrip() + "\n"
    code = ATTACKS[int(body["seed"]) % len(ATTACKS)].format(
        prompt=problem.meta["prompt"], answer=problem.answer, signature=signature
    )
    return f"```python\n{code}\n```"


def test_attacking_programs_score_zero_in_a_real_run(results: Path) -> None:
    with FakeOpenAI(reply=answer) as server:
        run_dir = ttcbench.run(
            overrides(results, server.api_base, "task=humaneval", "budget=pow2_4")
        )
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert len(calls) == 8  # 2 problems x 4 samples
    honest = calls["sample_index"] % 2 == 0
    assert (calls.loc[honest, "score"] == 1.0).all()
    assert (calls.loc[~honest, "score"] == 0.0).all()
    assert (calls["trusted_compare"] == 1).all()
    assert "trusted_compare false" not in (run_dir / "summary.md").read_text()


CLASS_ROW = {  # tests that build the program's own class: cannot run apart from it
    "task_id": 9001,
    "text": "Write a function to return the value of a node.",
    "code": "class Node:\n    def __init__(self, v):\n        self.v = v\n\n"
    "def value(node):\n    return node.v\n",
    "test_list": ["assert value(Node(3)) == 3", "assert value(Node(5)) == 5"],
    "test_setup_code": "",
    "challenge_test_list": [],
}


def test_fallback_grades_are_counted_in_the_summary(results: Path, tmp_path: Path) -> None:
    data = tmp_path / "mbpp.jsonl"
    data.write_text(json.dumps(CLASS_ROW) + "\n")
    reply = f"```python\n{CLASS_ROW['code']}```"
    with FakeOpenAI(reply=lambda body: reply) as server:
        run_dir = ttcbench.run(
            overrides(
                results,
                server.api_base,
                "task=mbpp",
                f"task.data_files={data}",
                "budget=one",
                "strategy=single",
            )  # fmt: skip
        )
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert list(calls["score"]) == [1.0] and list(calls["trusted_compare"]) == [0]
    summary = (run_dir / "summary.md").read_text()
    assert "1 of 1 code grades ran their tests inside the program's own interpreter" in summary


def _degraded(monkeypatch: pytest.MonkeyPatch) -> None:
    iso = dataclasses.replace(sandbox.isolation(), bwrap=None, missing=("pid", "ipc", "rootfs"),
                              why="bwrap refused: test")  # fmt: skip
    monkeypatch.setattr(probe, "isolation", lambda: iso)


def test_missing_protections_are_said_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _degraded(monkeypatch)
    monkeypatch.setattr(probe, "_reported", set())
    with caplog.at_level(logging.WARNING):
        check_sandbox(False)
        check_sandbox(False)
        sandbox.run_program("pass")
    lines = [r.getMessage() for r in caplog.records if "missing protections" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "PID namespace" in lines[0] and "bwrap refused: test" in lines[0]


def test_require_isolation_refuses_a_degraded_sandbox(
    monkeypatch: pytest.MonkeyPatch, results: Path
) -> None:
    _degraded(monkeypatch)
    with pytest.raises(ConfigError, match="require_isolation"):
        check_sandbox(True)
    server = FakeOpenAI(reply=lambda body: "```python\nx = 1\n```")
    with server, pytest.raises(ConfigError, match="missing protections"):
        ttcbench.run(overrides(results, server.api_base, "task=humaneval",
                               "sandbox.require_isolation=true"))  # fmt: skip
    assert server.requests == []  # refused before the first request
    assert not results.exists() or not any(results.rglob("store.sqlite"))


def test_require_isolation_passes_where_bwrap_works() -> None:
    if sandbox.isolation().missing:
        pytest.skip(sandbox.isolation().summary())
    check_sandbox(True)
