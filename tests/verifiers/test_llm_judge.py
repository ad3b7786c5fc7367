"""llm_judge: score parsing, defaults, recorded and cached judge calls, a real judge run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fakeserver import FakeOpenAI, solve_arithmetic
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import ttcbench
from ttcbench.cache import CallCache
from ttcbench.cli import CONF_DIR, build
from ttcbench.models.client import ModelClient, ModelSpec, RetryPolicy, Sampling
from ttcbench.sampler import RunInfo, Sampler
from ttcbench.store import SampleStore
from ttcbench.types import Call, ConfigError, Grade, Problem, ProviderError
from ttcbench.verifiers.llm_judge import LLMJudge, parse_score, parse_verdict

PROBLEM = Problem(task="arithmetic", id="p0", prompt="Calculate 2 + 3.", answer="5")
FAST_RETRY = RetryPolicy(max_attempts=2, initial_wait_s=0.01, max_wait_s=0.02)


def build_judge(*overrides: str, **changes: Any) -> LLMJudge:
    """The shipped config (prompts included), composed like a run, then built."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["verifier=llm_judge", *overrides])
    node: dict[str, Any] = OmegaConf.to_container(cfg.verifier, resolve=True)  # type: ignore[assignment]
    judge = build({**node, **changes})
    assert isinstance(judge, LLMJudge)
    return judge


def make_sampler(
    folder: Path, spec: ModelSpec, *, store: str = "store", cache: bool = True, max_tokens: int = 64
) -> Sampler:
    return Sampler(
        ModelClient(spec, FAST_RETRY),
        Sampling(max_tokens=max_tokens),
        SampleStore(folder / f"{store}.sqlite"),
        lambda text, problem: Grade(None, 0.0),
        RunInfo("run", "best_of_n"),
        cache=CallCache(folder / "cache.sqlite") if cache else None,
    )


def fake_spec(api_base: str, model: str = "openai/local") -> ModelSpec:
    return ModelSpec(name="fake", model=model, api_base=api_base, max_n=1,
                     extra={"api_key": "none"})  # fmt: skip


def candidate(text: str | None, index: int) -> Call:
    return Call(key=f"c{index}", run_id="run", task=PROBLEM.task, problem_id=PROBLEM.id,
                classes={}, strategy="best_of_n", role="generate", sample_index=index,
                seed=index, model="openai/local", messages_hash="h", messages=[],
                output=text)  # fmt: skip


def shown_candidate(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content.split("Candidate answer:\n", 1)[1].split("\n\n", 1)[0]


def rubric_reply(body: dict[str, Any]) -> str:
    """Right answers get 9/10, wrong ones 2/10 (markdown-wrapped), gibberish no score."""
    shown = shown_candidate(body)
    if "banana" in shown:
        return "I cannot tell what this is."
    return "Adds up.\nScore: 9/10" if shown.endswith("is 5") else "Wrong sum.\n**Score:** 2 / 10"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Score: 7/10", 0.7),
        ("**Score:** 8 / 10", 0.8),
        ("score of 9 out of 10", 0.9),
        ("Rating: 4/5", 0.8),
        ("Score: 6", 0.6),  # a bare N is out of `scale`
        ("Score: 2/10 at first... final Score: 10/10.", 1.0),  # the last one counts
        ("Score: 7.5/10", 0.75),
        ("Score: 11/10", None),  # out of range: unreadable, not clipped
        ("The underscore 5 is odd", None),
        ("I think it is fine.", None),
        ("", None),
    ],
)
def test_parse_score(text: str, expected: float | None) -> None:
    assert parse_score(text) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Verdict: yes", True),
        ("verdict: **No**", False),
        ("Verdict: correct", True),
        ("Verdict: incorrect", False),
        ("Verdict: no. On reflection, Verdict: yes", True),
        ("The sum checks out.\nYes.", True),
        ("Hmm.\nyes or no? Unsure.", None),  # both on the last line
        ("Yes, at first.\nBut now I doubt it.", None),  # nothing on the last line
        ("", None),
    ],
)
def test_parse_verdict(text: str, expected: bool | None) -> None:
    assert parse_verdict(text) is expected


def test_rubric_scores_unreadable_replies_default_and_empty_candidates_are_free(
    tmp_path: Path,
) -> None:
    candidates = [candidate("The answer is 5", 0), candidate("The answer is 6", 1),
                  candidate("banana", 2), candidate("", 3), candidate(None, 4)]  # fmt: skip
    with FakeOpenAI(reply=rubric_reply) as server:
        sampler = make_sampler(tmp_path, fake_spec(server.api_base))
        judge = build_judge()
        verdicts = asyncio.run(judge.verify(PROBLEM, candidates, sampler))
        assert len(server.requests) == 3  # empty candidates are not judged
        lenient = build_judge("verifier.default_score=0.5")
        again = asyncio.run(lenient.verify(PROBLEM, candidates, sampler))
        assert len(server.requests) == 3  # same judge prompts: the stored calls are reused
    assert [v.score for v in verdicts] == pytest.approx([0.9, 0.2, 0.0, 0.0, 0.0])
    assert [v.score for v in again] == pytest.approx([0.9, 0.2, 0.5, 0.0, 0.0])
    assert [len(v.calls) for v in verdicts] == [1, 1, 1, 0, 0]
    assert (judge.judged, judge.unparsed) == (3, 1)
    rows = sampler.store.calls_frame()
    assert rows["role"].tolist() == ["judge"] * 3
    assert rows["score"].isna().all()  # judge replies are never graded as answers
    # Counted as compute: the fake server reports 10 prompt + 7 completion tokens per call.
    assert sum(c.total_tokens for v in verdicts for c in v.calls) == 3 * 17


def test_p_yes_is_the_fraction_of_readable_yes_votes(tmp_path: Path) -> None:
    # Vote j of candidate i is sample i*votes + j, so its seed is (run seed 0) + that index.
    replies = ["Verdict: yes", "verdict: **Yes**", "It is off by one.\nVerdict: no", "Hmm."]
    with FakeOpenAI(reply=lambda body: replies[body["seed"] % 4]) as server:
        sampler = make_sampler(tmp_path, fake_spec(server.api_base))
        judge = build_judge("verifier.mode=p_yes", "verifier.votes=4", "verifier.temperature=1.0")
        verdicts = asyncio.run(judge.verify(PROBLEM, [candidate("5", 0), candidate("6", 1)],
                                            sampler))  # fmt: skip
        seeds = sorted(body["seed"] for body in server.requests)
    assert seeds == list(range(8)) and all(b["temperature"] == 1.0 for b in server.requests)
    assert [v.score for v in verdicts] == pytest.approx([2 / 3, 2 / 3])  # "Hmm." abstains
    assert "Verdict: yes" in server.requests[0]["messages"][0]["content"]  # the p_yes prompt
    assert (judge.judged, judge.unparsed) == (8, 2)


def test_a_failed_judge_call_is_recorded_as_an_error_not_a_score(tmp_path: Path) -> None:
    with FakeOpenAI(reply=rubric_reply) as server:
        server.enqueue(500, times=2)  # outlasts FAST_RETRY (a 400 would stop the job instead)
        sampler = make_sampler(tmp_path, fake_spec(server.api_base))
        judge = build_judge()
        (verdict,) = asyncio.run(judge.verify(PROBLEM, [candidate("The answer is 5", 0)], sampler))
        assert len(server.requests) == 2
        assert verdict.calls[0].error is not None and "500" in verdict.calls[0].error
        assert verdict.score == 0.0 and judge.unparsed == 0
        # A re-run retries the failed call (failed rows are never reused).
        (retried,) = asyncio.run(judge.verify(PROBLEM, [candidate("The answer is 5", 0)], sampler))
    assert retried.score == pytest.approx(0.9) and retried.calls[0].error is None


def test_a_refused_judge_request_stops_the_job(tmp_path: Path) -> None:
    with FakeOpenAI(reply=rubric_reply) as server:
        server.enqueue(400, times=3)
        sampler = make_sampler(tmp_path, fake_spec(server.api_base))
        with pytest.raises(ProviderError, match="Invalid value for 'temperature'"):
            asyncio.run(build_judge().verify(PROBLEM, [candidate("5", 0)], sampler))
        assert len(server.requests) == 1  # no retry, and nothing more is sent


def test_a_rerun_or_another_run_sharing_the_cache_makes_no_judge_request(tmp_path: Path) -> None:
    candidates = [candidate("The answer is 5", 0), candidate("The answer is 6", 1)]
    judge = build_judge("verifier.votes=3")
    with FakeOpenAI(reply=rubric_reply) as server:
        first = asyncio.run(judge.verify(PROBLEM, candidates, make_sampler(tmp_path, fake_spec(
            server.api_base))))  # fmt: skip
        assert len(server.requests) == 6  # 2 candidates x 3 votes
        resumed = make_sampler(tmp_path, fake_spec(server.api_base))  # the same run store
        other_run = make_sampler(tmp_path, fake_spec(server.api_base), store="other")
        for sampler in (resumed, other_run):
            again = asyncio.run(judge.verify(PROBLEM, candidates, sampler))
            assert [v.score for v in again] == [v.score for v in first]
        assert len(server.requests) == 6
        uncached = make_sampler(tmp_path, fake_spec(server.api_base), store="new", cache=False)
        asyncio.run(judge.verify(PROBLEM, candidates, uncached))
        assert len(server.requests) == 12  # the control: without store or cache, it pays
    assert other_run.store.calls_frame()["cached"].all()


def test_a_separate_judge_model_is_called_and_recorded_in_the_run_store(tmp_path: Path) -> None:
    with FakeOpenAI() as generator, FakeOpenAI(reply=rubric_reply) as judge_server:
        sampler = make_sampler(tmp_path, fake_spec(generator.api_base))
        model = {"name": "judge", "model": "openai/judge", "api_base": judge_server.api_base,
                 "max_n": 1, "extra": {"api_key": "none"}}  # fmt: skip
        judge = build_judge(model=model)
        verdicts = asyncio.run(judge.verify(PROBLEM, [candidate("The answer is 5", 0)], sampler))
        assert (len(generator.requests), len(judge_server.requests)) == (0, 1)
        assert judge_server.requests[0]["model"] == "judge"
    assert verdicts[0].score == pytest.approx(0.9)
    rows = sampler.store.calls_frame()
    assert rows[["role", "model"]].values.tolist() == [["judge", "openai/judge"]]


def test_bad_options_fail_before_any_call() -> None:
    prompts = {"rubric_prompt": "{question} {candidate}", "p_yes_prompt": "{question} {candidate}"}
    with pytest.raises(ConfigError, match="mode"):
        LLMJudge(**prompts, mode="maybe")
    with pytest.raises(ConfigError, match="literal braces"):
        LLMJudge(**{**prompts, "rubric_prompt": "{question} {candidate} {answer}"})
    with pytest.raises(ConfigError, match="votes"):
        LLMJudge(**prompts, votes=0)


def bon_reply(body: dict[str, Any]) -> str:
    """Generator: only sample 2 is right. Judge: right candidates 9/10, others 1/10."""
    content = body["messages"][-1]["content"]
    if "Score: N/10" in content:
        return "Score: 9/10" if shown_candidate(body) == solve_arithmetic(body) else "Score: 1/10"
    return solve_arithmetic(body) if body.get("seed") == 2 else "The answer is 999999"


def test_best_of_n_with_the_judge_makes_n_max_times_votes_judge_calls(results: Path) -> None:
    args = [f"results_dir={results}", "strategy=best_of_n", "verifier=llm_judge",
            "verifier.votes=2", "task.limit=2", "logger=none", "budget=pow2_4",
            "model=llamacpp_server", "model.name=fake"]  # fmt: skip
    with FakeOpenAI(reply=bon_reply) as server:
        run_dir = ttcbench.run([*args, f"model.api_base={server.api_base}"])
        assert len(server.requests) == 2 * (4 + 4 * 2)  # per problem: N_max + N_max x votes
        ttcbench.run([*args, f"model.api_base={server.api_base}"])
        assert len(server.requests) == 2 * (4 + 4 * 2)  # the re-run pays nothing
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    assert calls.groupby("role").size().to_dict() == {"generate": 8, "judge": 16}
    summary = pd.read_csv(run_dir / "summary.csv")
    assert list(summary["accuracy"]) == pytest.approx([0.25, 0.5, 1.0])  # k-subsets hold #2
    assert list(summary["calls"]) == pytest.approx([1 + 2, 2 + 4, 4 + 8])  # k/N of the pool's
    assert "best_of_n[llm_judge]" in str(run_dir)


@pytest.mark.slow
def test_a_real_judge_on_the_embedded_model(tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        model = compose(config_name="config", overrides=["model=smollm2"]).model
    spec = ModelSpec(**OmegaConf.to_container(model, resolve=True))  # type: ignore[arg-type]
    sampler = make_sampler(tmp_path, spec, cache=False, max_tokens=96)
    # A short judge (its own max_tokens): the shared 2-core machine runs ~5 tokens/s.
    judge = build_judge("verifier.mode=p_yes", "verifier.max_tokens=24")
    candidates = [candidate("2 + 3 = 5. The answer is 5", 0),
                  candidate("2 + 3 = 6. The answer is 6", 1)]  # fmt: skip
    verdicts = asyncio.run(judge.verify(PROBLEM, candidates, sampler))
    assert all(0.0 <= v.score <= 1.0 for v in verdicts)
    rows = sampler.store.calls_frame()
    assert rows["role"].tolist() == ["judge"] * 2 and (rows["model"] == "local/smollm2").all()
    assert rows["error"].isna().all() and rows["completion_tokens"].between(1, 24).all()
    assert judge.judged == 2 and (rows["prompt_tokens"] > 50).all()  # the whole judge prompt
