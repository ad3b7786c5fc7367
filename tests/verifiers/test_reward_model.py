"""reward_model against a real HTTP server on 127.0.0.1 speaking vLLM's reward API shapes:
score mapping, retries of transient failures, clear permanent errors, timeouts, caching."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fakeserver import FakeOpenAI, ScriptedServer, solve_arithmetic

import ttcbench
from ttcbench.cache import CallCache
from ttcbench.models.client import ModelClient, ModelSpec, Sampling
from ttcbench.sampler import RunInfo, Sampler
from ttcbench.store import SampleStore
from ttcbench.types import Call, ConfigError, Grade, Problem
from ttcbench.verifiers.reward_model import RewardModel, normalize_reward, reduce_reward

PROBLEM = Problem(task="arithmetic", id="p0", prompt="Calculate 2 + 3.", answer="5")
FAST_RETRY = {"max_attempts": 3, "initial_wait_s": 0.01, "max_wait_s": 0.02}
Reward = Callable[[str], Any]


def right_answer_logit(text: str) -> Any:
    """A sequence reward model: one logit per conversation, high for the right sum."""
    return [2.0] if text.endswith("is 5") else [-1.0]


class RewardServer(ScriptedServer):
    """vLLM's `/pooling` and `/classify` response shapes, and a simple `{"score": x}` at any
    other path; scripted statuses and delays first, as in tests/fakeserver.py."""

    def __init__(self, reward: Reward = right_answer_logit) -> None:
        self.reward = reward
        self.requests: list[tuple[str, dict[str, Any]]] = []
        super().__init__()

    def respond(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        with self._lock:
            self.requests.append((path, body))
            status, delay = self.next_scripted()
        if status != 200:
            return status, {"object": "error", "message": f"scripted {status}"}, delay
        value = self.reward(body["messages"][-1]["content"])
        usage = {"prompt_tokens": 12, "total_tokens": 12, "completion_tokens": 0}
        head = {"id": "x", "object": "list", "created": 0, "model": body.get("model", "rm")}
        if path == "/pooling":
            data = [{"index": 0, "object": "pooling", "data": value}]
        elif path == "/classify":
            data = [{"index": 0, "label": "good", "probs": value, "num_classes": len(value)}]
        else:
            return 200, {"score": value}, delay
        return 200, {**head, "data": data, "usage": usage}, delay


def make_sampler(folder: Path, *, store: str = "store") -> Sampler:
    """A run's sampler; its generator is never called here (candidates are given)."""
    spec = ModelSpec(name="gen", model="openai/local", api_base="http://127.0.0.1:9/v1",
                     extra={"api_key": "none"})  # fmt: skip
    return Sampler(ModelClient(spec), Sampling(), SampleStore(folder / f"{store}.sqlite"),
                   lambda text, problem: Grade(None, 0.0), RunInfo("run", "best_of_n"),
                   cache=CallCache(folder / "cache.sqlite"))  # fmt: skip


def candidate(text: str | None, index: int) -> Call:
    return Call(key=f"c{index}", run_id="run", task=PROBLEM.task, problem_id=PROBLEM.id,
                classes={}, strategy="best_of_n", role="generate", sample_index=index,
                seed=index, model="openai/local", messages_hash="h", messages=[],
                output=text)  # fmt: skip


def verify(verifier: RewardModel, sampler: Sampler, *texts: str | None) -> list[Any]:
    candidates = [candidate(t, i) for i, t in enumerate(texts)]
    return asyncio.run(verifier.verify(PROBLEM, candidates, sampler))


def test_pooling_logits_are_sigmoid_normalised_and_recorded_as_reward_calls(
    tmp_path: Path,
) -> None:
    sampler = make_sampler(tmp_path)
    with RewardServer() as server:
        verifier = RewardModel(server.url, model="rm", normalize="sigmoid", retry=FAST_RETRY)
        verdicts = verify(verifier, sampler, "The answer is 5", "The answer is 6", "",
                          "The answer is 5")  # fmt: skip
        sent = sorted(server.requests, key=json.dumps)
    assert sent == [
        ("/pooling", {"model": "rm", "messages": [{"role": "user", "content": PROBLEM.prompt},
                                                  {"role": "assistant", "content": text}]})
        for text in ("The answer is 5", "The answer is 6")
    ]  # fmt: skip
    expected = [1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(1.0)), 0.0, 1 / (1 + math.exp(-2.0))]
    assert [v.score for v in verdicts] == pytest.approx(expected)
    # Equal texts are scored once and the call counted once; empty output costs nothing.
    assert [len(v.calls) for v in verdicts] == [1, 1, 0, 0]
    rows = sampler.store.calls_frame()
    assert set(rows["role"]) == {"reward"} and len(rows) == 2
    assert (rows["model"] == "reward/pooling/rm").all()
    assert (rows["prompt_tokens"] == 12).all() and (rows["latency_s"] > 0).all()
    assert sorted(rows["output"]) == ["[-1.0]", "[2.0]"]  # the raw reward is kept


def test_rewards_are_resumed_and_shared_through_the_cache(tmp_path: Path) -> None:
    with RewardServer() as server:
        verifier = RewardModel(server.url, normalize="sigmoid", retry=FAST_RETRY)
        first = verify(verifier, make_sampler(tmp_path), "The answer is 5", "The answer is 6")
        # Same store (resume) and another run sharing the cache; another normalisation too.
        again = verify(verifier, make_sampler(tmp_path), "The answer is 5", "The answer is 6")
        ranged = RewardModel(server.url, normalize="range", raw_range=[-2, 2], retry=FAST_RETRY)
        other = verify(ranged, make_sampler(tmp_path, store="other"), "The answer is 5")
        assert len(server.requests) == 2
    assert [v.score for v in again] == [v.score for v in first]
    assert other[0].score == pytest.approx(1.0) and other[0].calls[0].cached


@pytest.mark.parametrize(
    ("api", "reward", "label_index", "expected"),
    [
        ("classify", lambda text: [0.3, 0.7], -1, 0.7),
        ("classify", lambda text: [0.3, 0.7], 0, 0.3),
        ("simple", lambda text: 0.25, -1, 0.25),
        # A process reward model: per-step [bad, good] probabilities, the last step counts.
        ("pooling", lambda text: [[0.1, 0.9], [0.6, 0.4], [0.2, 0.8]], -1, 0.8),
    ],
)
def test_classify_simple_and_process_reward_shapes(
    tmp_path: Path, api: str, reward: Reward, label_index: int, expected: float
) -> None:
    with RewardServer(reward) as server:
        url = f"{server.url}/score" if api == "simple" else server.url
        verifier = RewardModel(url, api=api, label_index=label_index, retry=FAST_RETRY)
        (verdict,) = verify(verifier, make_sampler(tmp_path), "The answer is 5")
        path = server.requests[0][0]
    assert verdict.score == pytest.approx(expected)
    assert path == {"classify": "/classify", "simple": "/score", "pooling": "/pooling"}[api]


@pytest.mark.parametrize(
    ("aggregate", "expected"), [("last", 0.8), ("min", 0.4), ("mean", 0.7), ("prod", 0.288)]
)
def test_step_rewards_are_aggregated(aggregate: str, expected: float) -> None:
    steps = [[0.1, 0.9], [0.6, 0.4], [0.2, 0.8]]
    assert reduce_reward(steps, -1, aggregate) == pytest.approx(expected)
    assert reduce_reward([[0.9], [0.4], [0.8]], -1, aggregate) == pytest.approx(expected)


def test_normalisation() -> None:
    assert normalize_reward(0.0, "sigmoid") == 0.5
    assert normalize_reward(-800.0, "sigmoid") == 0.0  # no overflow warning for big logits
    assert normalize_reward(3.0, "range", (-1.0, 3.0)) == 1.0
    assert normalize_reward(9.0, "range", (-1.0, 3.0)) == 1.0  # clipped
    assert normalize_reward(0.4, "none") == 0.4
    with pytest.raises(ConfigError, match="normalize=sigmoid"):
        normalize_reward(2.0, "none", model="reward/pooling/rm")


def test_a_transient_503_is_retried(tmp_path: Path) -> None:
    with RewardServer() as server:
        server.enqueue(503)
        verifier = RewardModel(server.url, normalize="sigmoid", retry=FAST_RETRY)
        (verdict,) = verify(verifier, make_sampler(tmp_path), "The answer is 5")
        assert len(server.requests) == 2
    assert verdict.calls[0].error is None
    assert verdict.score == pytest.approx(1 / (1 + math.exp(-2.0)))


def test_a_400_is_a_clear_error_on_the_call_and_not_retried(tmp_path: Path) -> None:
    with RewardServer() as server:
        server.enqueue(400)
        verifier = RewardModel(server.url, normalize="sigmoid", retry=FAST_RETRY)
        (verdict,) = verify(verifier, make_sampler(tmp_path), "The answer is 5")
        assert len(server.requests) == 1
    error = verdict.calls[0].error
    assert error is not None
    assert f"POST {server.url}/pooling answered HTTP 400" in error and "scripted 400" in error
    assert verdict.score == 0.0  # never used: best_of_n fails the attempt on the error


def test_timeouts_are_retried_then_reported(tmp_path: Path) -> None:
    with RewardServer() as server:
        verifier = RewardModel(server.url, normalize="sigmoid", timeout_s=0.3,
                               retry={**FAST_RETRY, "max_attempts": 2})  # fmt: skip
        server.enqueue(200, delay_s=1.0)  # the first try times out, the retry answers
        (slow,) = verify(verifier, make_sampler(tmp_path), "The answer is 5")
        assert len(server.requests) == 2 and slow.calls[0].error is None
        server.enqueue(200, times=2, delay_s=1.0)  # both tries time out
        (lost,) = verify(verifier, make_sampler(tmp_path), "The answer is 6")
        assert len(server.requests) == 4
    assert lost.calls[0].error is not None and "timed out after 0.3 s" in lost.calls[0].error


def test_an_unexpected_response_is_an_error_not_a_score(tmp_path: Path) -> None:
    with RewardServer(lambda text: "AAAA") as server:  # e.g. base64 output by mistake
        verifier = RewardModel(server.url, retry=FAST_RETRY)
        (verdict,) = verify(verifier, make_sampler(tmp_path), "The answer is 5")
    assert "unexpected pooling response" in (verdict.calls[0].error or "")


def test_bad_options_fail_before_any_request() -> None:
    with pytest.raises(ConfigError, match="api"):
        RewardModel("http://127.0.0.1:9", api="grpc")
    with pytest.raises(ConfigError, match="raw_range"):
        RewardModel("http://127.0.0.1:9", normalize="range", raw_range=[1.0, 1.0])


def test_best_of_n_with_a_reward_model_end_to_end(results: Path) -> None:
    def generate(body: dict[str, Any]) -> str:
        return solve_arithmetic(body) if body.get("seed") == 2 else "The answer is 999999"

    def logit(text: str) -> list[float]:
        return [-3.0] if text.endswith("999999") else [3.0]

    with FakeOpenAI(reply=generate) as llm, RewardServer(logit) as rm:
        run_dir = ttcbench.run(
            [f"results_dir={results}", "strategy=best_of_n", "verifier=reward_model",
             f"verifier.url={rm.url}", "verifier.normalize=sigmoid", "task.limit=2",
             "logger=none", "budget=pow2_4", "model=llamacpp_server", "model.name=fake",
             f"model.api_base={llm.api_base}"]
        )  # fmt: skip
        assert len(rm.requests) == 2 * 2  # per problem: two distinct texts among 4 samples
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert calls.groupby("role").size().to_dict() == {"generate": 8, "reward": 4}
    summary = pd.read_csv(run_dir / "summary.csv")
    assert list(summary["accuracy"]) == pytest.approx([0.25, 0.5, 1.0])
