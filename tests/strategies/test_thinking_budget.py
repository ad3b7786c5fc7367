"""thinking_budget: budget forcing ("Wait", the T cap, shared thinking), native controls, and
a real run on the embedded model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fakeserver import FakeOpenAI, solve_arithmetic

import ttcbench
from ttcbench.store import SampleStore
from ttcbench.strategies.thinking_budget import ThinkingBudget
from ttcbench.types import IncompleteRun

FAKE_TOKENS = 7  # the fake server reports 7 completion tokens per sample, whatever max_tokens


def is_answer_call(body: dict) -> bool:
    return (
        body["messages"][-1]["role"] == "user"
        and "Final answer:" in body["messages"][-1]["content"]
    )


def think_then_answer(body: dict) -> str:
    """Think calls return a thought; answer calls the right answer."""
    if is_answer_call(body):
        return solve_arithmetic({"messages": body["messages"][:1]})
    return "hmm."


def run(results: Path, server: FakeOpenAI, *extra: str) -> Path:
    return ttcbench.run(
        [f"results_dir={results}", "strategy=thinking_budget", "task.limit=1", "logger=none",
         "model=llamacpp_server", "model.name=fake", f"model.api_base={server.api_base}",
         *extra]
    )  # fmt: skip


def think_requests(server: FakeOpenAI) -> list[dict]:
    return [b for b in server.requests if not is_answer_call(b)]


def test_forcing_appends_wait_after_early_stops_and_never_thinks_past_t(results: Path) -> None:
    with FakeOpenAI(reply=think_then_answer) as server:
        run_dir = run(results, server, "strategy.token_unit=16", "budget.values=[1,2]")
    thinks = think_requests(server)
    # Each call is capped at the next multiple of 16 thinking tokens; 7 < cap means the model
    # stopped early, so "Wait" is appended; a call capped at 2 reaches the boundary.
    assert [b["max_tokens"] for b in thinks] == [16, 9, 2, 16, 9, 2]
    assert all(b["stop"] == ["</think>"] for b in thinks)
    assert [b["seed"] for b in thinks] == list(range(6))  # sample index = step of the chain
    ends = [b["messages"][-1]["content"] for b in thinks]
    assert ends[0] == "<think>\n"
    assert [e.endswith("\nWait") for e in ends] == [False, True, True, False, True, True]
    # Counted the way the strategy counts: completion tokens capped at the call's max_tokens.
    spent = [min(FAKE_TOKENS, b["max_tokens"]) for b in thinks]
    assert sum(spent[:3]) == 16 and sum(spent) == 32
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert calls.groupby("role").size().to_dict() == {"answer": 2, "think": 6}
    answers = [b for b in server.requests if is_answer_call(b)]
    # Budget T=16 answers from the first three think calls' text, closed with </think>.
    assert sorted(b["messages"][1]["content"].count("Wait") for b in answers) == [2, 4]
    assert all(b["messages"][1]["content"].endswith("\n</think>") for b in answers)
    attempts = SampleStore(run_dir / "store.sqlite").attempts_frame().sort_values("budget")
    assert attempts["calls"].tolist() == [3 + 1, 6 + 1]  # think calls to T, plus one answer
    assert attempts["score"].tolist() == [1.0, 1.0]
    assert (attempts["sequential_tokens"] == attempts["prompt_tokens"]
            + attempts["completion_tokens"]).all()  # fmt: skip
    assert (run_dir / "summary.csv").exists()


def test_budgets_share_the_thinking_so_a_standalone_small_budget_costs_nothing(
    results: Path,
) -> None:
    with FakeOpenAI(reply=think_then_answer) as server:
        run(results, server, "strategy.token_unit=16", "budget.values=[1,2]")
        paid = len(server.requests)
        alone = run(results.with_name("alone"), server, "strategy.token_unit=16",
                    "budget.values=[1]")  # fmt: skip
        assert len(server.requests) == paid  # the same 3 think calls and answer: all cached
    calls = SampleStore(alone / "store.sqlite").calls_frame()
    assert calls["cached"].all() and len(calls) == 3 + 1


def test_out_of_waits_the_thinking_ends_and_budgets_share_one_answer(results: Path) -> None:
    with FakeOpenAI(reply=think_then_answer) as server:
        run_dir = run(results, server, "strategy.token_unit=16", "strategy.max_waits=0",
                      "budget.values=[1,2,4]")  # fmt: skip
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert calls.groupby("role").size().to_dict() == {"answer": 1, "think": 1}
    summary = pd.read_csv(run_dir / "summary.csv")
    assert list(summary["calls"]) == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("reply", ["I have no idea.", "The answer is 999999"])
def test_empty_or_wrong_answers_score_zero(results: Path, reply: str) -> None:
    with FakeOpenAI(reply=lambda body: reply) as server:
        run_dir = run(results, server, "strategy.token_unit=8", "budget.values=[1]")
    attempts = SampleStore(run_dir / "store.sqlite").attempts_frame()
    assert attempts["score"].tolist() == [0.0] and attempts["error"].isna().all()


def test_native_thinking_sends_anthropic_budget_tokens(results: Path) -> None:
    # litellm speaks Anthropic's Messages API to the fake server: the request is what a real
    # Anthropic endpoint would get; the fake's OpenAI-shaped reply cannot be parsed, so the
    # calls are recorded as errors (one attempt each), never as wrong answers, and the run
    # ends incomplete (exit 4).
    with (
        FakeOpenAI(reply=lambda body: "The answer is 3") as server,
        pytest.raises(IncompleteRun) as caught,
    ):
        run(results, server, "strategy.mode=native", "strategy.token_unit=1024",
            "budget.values=[1,2]", "sampling.max_tokens=100", "sampling.seed=null",
            "model.model=anthropic/claude-3-7-sonnet-20250219",
            "retry.max_attempts=1")  # fmt: skip
    run_dir = caught.value.run_dir  # type: ignore[attr-defined]
    bodies = sorted(server.requests, key=lambda b: b["max_tokens"])
    assert [b["thinking"] for b in bodies] == [
        {"type": "enabled", "budget_tokens": 1024},
        {"type": "enabled", "budget_tokens": 2048},
    ]
    assert [b["max_tokens"] for b in bodies] == [1124, 2148]  # thinking + the answer's tokens
    attempts = SampleStore(run_dir / "store.sqlite").attempts_frame()
    assert attempts["error"].notna().all() and attempts["score"].isna().all()


def test_native_reasoning_effort_maps_t_to_the_smallest_covering_level(results: Path) -> None:
    with FakeOpenAI() as server:
        run_dir = run(results, server, "strategy.mode=native", "strategy.control=reasoning_effort",
            "strategy.token_unit=1024", "budget.values=[1,2,8,32]")  # fmt: skip
    efforts = {b["max_tokens"]: b["reasoning_effort"] for b in server.requests}
    assert [efforts[t * 1024 + 160] for t in (1, 2, 8, 32)] == ["low", "medium", "medium", "high"]
    assert all("thinking" not in b for b in server.requests)
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert calls.groupby("role").size().to_dict() == {"generate": 4}  # one call per budget
    assert pd.read_csv(run_dir / "summary.csv")["calls"].tolist() == [1.0] * 4


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        ThinkingBudget(mode="telepathy")
    with pytest.raises(ValueError):
        ThinkingBudget(token_unit=0)


@pytest.mark.slow
def test_forcing_on_the_embedded_model(results: Path) -> None:
    run_dir = ttcbench.run(
        [f"results_dir={results}", "strategy=thinking_budget", "strategy.token_unit=24",
         "task.limit=2", "logger=none", "budget.values=[1,2]", "sampling.max_tokens=32"]
    )  # fmt: skip
    store = SampleStore(run_dir / "store.sqlite")
    calls, attempts = store.calls_frame(), store.attempts_frame()
    assert set(calls["role"]) == {"think", "answer"} and calls["error"].isna().all()
    for problem_id, group in calls.groupby("problem_id"):
        thinks = group[group["role"] == "think"].sort_values("sample_index")
        spent = thinks["completion_tokens"].cumsum().tolist()
        assert spent[-1] <= 48  # never past T_max = 2 x 24 (llama.cpp obeys max_tokens)
        # Budget T=24 answers after the think calls that first reach 24 tokens (all of them
        # if the model stopped for good before that); T=48 after every think call.
        to_24 = spent.index(24) + 1 if 24 in spent else len(spent)
        mine = attempts[attempts["problem_id"] == problem_id].set_index("budget")
        assert mine.loc[1, "calls"] == to_24 + 1 and mine.loc[2, "calls"] == len(thinks) + 1
        answers = group[group["role"] == "answer"]
        assert len(answers) == (1 if to_24 == len(thinks) else 2)
    chain = attempts["prompt_tokens"] + attempts["completion_tokens"]
    assert (attempts["sequential_tokens"] == chain).all()
    summary = pd.read_csv(run_dir / "summary.csv")
    assert list(summary["budget"]) == [1, 2] and (summary["problems"] == 2).all()
