"""`self_refine` (Madaan et al. 2023): draft, then critique and revise, round after round.

Budget r is the answer after r - 1 refinement rounds (budget 1 is the draft alone, the same
sample as `single` and sample 0 of `majority_vote`'s pool). One run at the largest budget
yields every smaller budget: the rounds are prefixes of one another (anytime), so a sweep
over r costs one run of r_max. Nothing else can be reused: each round depends on the last.

With `stop_when_correct`, a critique that declares the answer correct ends the refinement;
larger budgets then keep that answer and cost nothing more. For code with public tests
(`problem.meta["public_tests"]`) and `execution_feedback`, the critique is the sandbox's
report of the failing public tests instead of a model call (write, run, read errors, fix).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ttcbench.sampler import Sampler
from ttcbench.strategies import Compute, Outcome, Strategy, failed
from ttcbench.types import Call, Problem

CORRECT_MARK = "VERDICT: CORRECT"


@dataclass(frozen=True)
class Round:
    """The answer after a round, and the calls made to reach it."""

    answer: Call
    calls: tuple[Call, ...]
    stopped: bool = False


class SelfRefine(Strategy):
    """Generate, critique, revise for up to max(budgets) - 1 rounds."""

    name = "self_refine"

    def __init__(
        self,
        critique_prompt: str,
        revise_prompt: str,
        stop_when_correct: bool = True,
        execution_feedback: bool = True,
    ) -> None:
        self.critique_prompt = critique_prompt
        self.revise_prompt = revise_prompt
        self.stop_when_correct = stop_when_correct
        self.execution_feedback = execution_feedback

    def planned_calls(self, budgets: Sequence[int]) -> int:
        return 1 + 2 * (max(budgets) - 1)

    async def solve(
        self, problem: Problem, budgets: Sequence[int], sampler: Sampler
    ) -> list[Outcome]:
        rounds = await self.refine(problem, max(budgets), sampler)
        spent: list[Call] = [c for r in rounds for c in r.calls]
        if (errors := failed(budgets, spent)) is not None:
            return errors
        outcomes = []
        for budget in budgets:
            done = rounds[: min(budget, len(rounds))]
            calls = [c for r in done for c in r.calls]
            answer = done[-1].answer
            compute = Compute.parallel(calls)
            # Every call waits for the one before it: the critical path is all of them.
            compute = compute.scaled(1.0, sequential_tokens=compute.total_tokens)
            outcomes.append(Outcome(budget, answer.extracted, answer.score, compute))
        return outcomes

    async def refine(self, problem: Problem, budget: int, sampler: Sampler) -> list[Round]:
        """The draft and up to budget - 1 revisions (fewer if the critic accepts early)."""
        (draft,) = await sampler.sample(problem, self.messages(problem), n=1)
        rounds = [Round(draft, (draft,))]
        while len(rounds) < budget and not rounds[-1].stopped and draft.error is None:
            # Sample index = round: a round that repeats an earlier round's messages is a
            # fresh draw (its own seed and cache key), not a replay counted twice.
            index = len(rounds)
            critique_text, critique_calls = await self.critique(problem, draft, sampler, index)
            if self.stop_when_correct and CORRECT_MARK in critique_text.upper():
                rounds.append(Round(draft, tuple(critique_calls), stopped=True))
                break
            history = self.critique_messages(problem, draft) + [
                {"role": "assistant", "content": critique_text},
                {"role": "user", "content": self.revise_prompt},
            ]
            (draft,) = await sampler.sample(problem, history, n=1, start=index, role="revise")
            rounds.append(Round(draft, (*critique_calls, draft)))
        return rounds

    def critique_messages(self, problem: Problem, draft: Call) -> list[dict[str, str]]:
        return self.messages(problem) + [
            {"role": "assistant", "content": draft.output or ""},
            {"role": "user", "content": self.critique_prompt},
        ]

    async def critique(
        self, problem: Problem, draft: Call, sampler: Sampler, index: int
    ) -> tuple[str, list[Call]]:
        """The critic's text and its calls: the sandbox's verdict on public tests for code
        (no model call), else the model itself as critic."""
        if self.execution_feedback and problem.meta.get("public_tests"):
            return execution_critique(problem, draft), []
        messages = self.critique_messages(problem, draft)
        (call,) = await sampler.sample(
            problem, messages, n=1, start=index, role="critique", grade=False
        )
        return call.output or "", [call]


def execution_critique(problem: Problem, draft: Call) -> str:
    """Run the draft against the problem's public tests (never the hidden ones)."""
    from ttcbench.sandbox import run_tests
    from ttcbench.tasks.code import completion_program, extract_code

    code = extract_code(draft.output or "", problem.meta.get("entry_point"))
    if code is None:
        return "No Python code block was found in your answer."
    result = run_tests(
        completion_program(code, problem),
        problem.meta["public_tests"],
        entry_point=problem.meta.get("entry_point"),
        setup=problem.meta.get("prompt", ""),
    )
    if result.passed:
        return f"All public tests pass. {CORRECT_MARK}"
    return f"The public tests fail ({result.status}): {result.error or 'no error message'}"
