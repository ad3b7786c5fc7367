"""`pdr`: Parallel-Distill-Refine (Madaan et al. 2025).

Round r samples `widths[r]` drafts in parallel, conditioned on a workspace; the drafts are
distilled into a new workspace that replaces the old one, so the context never grows across
rounds, and the next round refines from it. Two distill operators, as in the paper:
`summary` (a model call writes at most `workspace_tokens` tokens) and `top_k` (the `top_k`
drafts the verifier scores highest, each cut to `workspace_tokens` characters / 4; no model
call, but the verifier's own calls count). Budget r
is the answer after round r (the plurality answer of that round's drafts), so every round
r <= R comes from one run of R rounds (anytime).

PDR is compared at matched *sequential* budget: per round the critical path is the longest
draft plus the distill call, and both total and sequential tokens are recorded.

Reuse: round 1 is the first widths[0] samples of the shared pool (the same as
`majority_vote`'s); later rounds depend on the workspace, so nothing else can be reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ttcbench.analysis.estimators import majority_at_k
from ttcbench.sampler import Sampler
from ttcbench.strategies import Compute, Outcome, Strategy, failed
from ttcbench.strategies.majority_vote import plurality
from ttcbench.types import Call, ConfigError, Problem
from ttcbench.verifiers import Verifier

CHARS_PER_TOKEN = 4  # a rough bound for cutting drafts when the workspace holds them verbatim


@dataclass(frozen=True)
class PdrRound:
    drafts: list[Call]
    distill: tuple[Call, ...] = ()
    """The calls that built the next workspace (a summary call, or the verifier's calls)."""

    @property
    def calls(self) -> list[Call]:
        return [*self.drafts, *self.distill]


class ParallelDistillRefine(Strategy):
    """Rounds of parallel drafts distilled into a bounded workspace."""

    name = "pdr"

    def __init__(
        self,
        widths: Sequence[int],
        distill_prompt: str,
        refine_prompt: str,
        workspace_tokens: int = 256,
        workspace: str = "summary",
        top_k: int = 2,
        verifier: Verifier | None = None,
    ) -> None:
        if not widths or any(w < 1 for w in widths):
            raise ValueError("pdr.widths must be positive integers, e.g. [8, 4, 1]")
        if workspace not in ("summary", "top_k"):
            raise ValueError(f"pdr.workspace must be summary or top_k, got {workspace!r}")
        if workspace == "top_k" and verifier is None:
            raise ValueError("pdr.workspace=top_k ranks drafts with a verifier: set verifier=...")
        self.widths = list(widths)
        self.distill_prompt = distill_prompt
        self.refine_prompt = refine_prompt
        self.workspace_tokens = workspace_tokens
        self.workspace = workspace
        self.top_k = top_k
        self.verifier = verifier if workspace == "top_k" else None

    def planned_calls(self, budgets: Sequence[int]) -> int:
        rounds = min(max(budgets), len(self.widths))
        return sum(self.widths[:rounds]) + rounds - 1

    def check_budgets(self, budgets: Sequence[int]) -> None:
        if max(budgets) > len(self.widths):
            raise ConfigError(
                f"pdr budget {max(budgets)} needs that many rounds but strategy.widths has "
                f"{len(self.widths)}: give one width per round, e.g. strategy.widths=[8,4,2,1]"
            )

    async def solve(
        self, problem: Problem, budgets: Sequence[int], sampler: Sampler
    ) -> list[Outcome]:
        self.check_budgets(budgets)
        rounds = await self.run_rounds(problem, max(budgets), sampler)
        if (errors := failed(budgets, [c for r in rounds for c in r.calls])) is not None:
            return errors
        return [self.outcome(budget, rounds[:budget]) for budget in budgets]

    async def run_rounds(self, problem: Problem, count: int, sampler: Sampler) -> list[PdrRound]:
        rounds: list[PdrRound] = []
        messages = self.messages(problem)
        for r in range(count):
            drafts = await sampler.sample(problem, messages, n=self.widths[r])
            if r + 1 == count or any(d.error is not None for d in drafts):
                rounds.append(PdrRound(drafts))
                break
            workspace, spent = await self.distill(problem, drafts, sampler, r)
            rounds.append(PdrRound(drafts, spent))
            if any(c.error is not None for c in spent):
                break
            refine = self.refine_prompt.format(workspace=workspace)
            messages = [*self.messages(problem), {"role": "user", "content": refine}]
        return rounds

    async def distill(
        self, problem: Problem, drafts: Sequence[Call], sampler: Sampler, round_index: int
    ) -> tuple[str, tuple[Call, ...]]:
        """The next workspace and the calls spent building it."""
        if self.verifier is not None:  # top_k: the best drafts verbatim, each cut to the bound
            verdicts = await self.verifier.verify(problem, drafts, sampler)
            ranked = sorted(range(len(drafts)), key=lambda i: -verdicts[i].score)
            limit = self.workspace_tokens * CHARS_PER_TOKEN
            kept = [(drafts[i].output or "")[:limit] for i in ranked[: self.top_k]]
            text = "\n\n".join(f"Attempt {n + 1}:\n{out}" for n, out in enumerate(kept))
            return text, tuple(c for v in verdicts for c in v.calls)
        listing = "\n\n".join(f"Attempt {i + 1}:\n{d.output}" for i, d in enumerate(drafts))
        prompt = self.distill_prompt.format(question=problem.prompt, attempts=listing)
        bounded = replace(sampler.sampling, max_tokens=self.workspace_tokens)
        (call,) = await sampler.sample(
            problem, [{"role": "user", "content": prompt}], start=round_index,
            role="distill", sampling=bounded, grade=False,
        )  # fmt: skip
        return call.output or "", (call,)

    def outcome(self, budget: int, rounds: Sequence[PdrRound]) -> Outcome:
        """The last round's plurality (ties split as in majority_vote) and all compute so far.

        The last included round's distill only feeds later rounds: not this budget's cost."""
        calls = [c for r in rounds[:-1] for c in r.calls] + rounds[-1].drafts
        final = rounds[-1].drafts
        answers = [d.extracted for d in final]
        score = majority_at_k(answers, [d.score or 0.0 for d in final], len(final))
        sequential = (
            sum(
                max(d.total_tokens for d in r.drafts)
                + max(
                    (c.total_tokens for c in r.distill), default=0
                )  # verifier calls run side by side
                for r in rounds[:-1]
            )
            + max(d.total_tokens for d in final)
        )
        compute = Compute.parallel(calls).scaled(1.0, float(sequential))
        return Outcome(budget, plurality(answers), score, compute)
