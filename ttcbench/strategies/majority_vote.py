"""`majority_vote` (self-consistency, Wang et al. 2022): sample N answers, the plurality wins.

One pool of N_max samples per problem serves every budget: budget k is the expected
accuracy of plurality voting over uniformly random k-subsets of that pool (exact, by
combinatorics), so a sweep over 1, 2, 4, ..., N_max costs exactly N_max samples.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ttcbench.analysis.estimators import best_of_k, majority_at_k
from ttcbench.sampler import Sampler
from ttcbench.strategies import Compute, Outcome, Strategy, failed
from ttcbench.types import Problem


class MajorityVote(Strategy):
    """Self-consistency with exact k-subset estimates from one shared pool."""

    name = "majority_vote"

    def planned_calls(self, budgets: Sequence[int]) -> int:
        return max(budgets)

    async def solve(
        self, problem: Problem, budgets: Sequence[int], sampler: Sampler
    ) -> list[Outcome]:
        pool = await sampler.sample(problem, self.messages(problem), n=max(budgets))
        if (errors := failed(budgets, pool)) is not None:
            return errors

        answers = [c.extracted for c in pool]
        scores = [c.score or 0.0 for c in pool]
        tokens = [float(c.total_tokens) for c in pool]
        whole = Compute.parallel(pool)
        outcomes = []
        for k in budgets:
            # Expected longest sample among k: the critical path of k parallel samples.
            sequential = best_of_k(tokens, tokens, k)
            outcomes.append(
                Outcome(
                    budget=k,
                    answer=plurality(answers[:k]),
                    score=majority_at_k(answers, scores, k),
                    compute=whole.scaled(k / len(pool), sequential),
                    estimator="exact" if k < len(pool) else "direct",
                )
            )
        return outcomes


def plurality(answers: Sequence[str | None]) -> str | None:
    """The most common non-empty answer (first seen wins a tie): a representative label."""
    votes = Counter(a for a in answers if a is not None)
    return votes.most_common(1)[0][0] if votes else None
