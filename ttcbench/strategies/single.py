"""`single`: one chain-of-thought answer, the baseline every other strategy is compared to."""

from __future__ import annotations

from collections.abc import Sequence

from ttcbench.sampler import Sampler
from ttcbench.strategies import Compute, Outcome, Strategy, failed
from ttcbench.types import Problem


class Single(Strategy):
    """One sample per problem. Its one compute level is budget 1 whatever the sweep says.

    The sample is sample 0 of the same pool `majority_vote` draws from (same messages and
    sampling), so running both strategies pays for it once.
    """

    name = "single"

    def planned_calls(self, budgets: Sequence[int]) -> int:
        return 1

    async def solve(
        self, problem: Problem, budgets: Sequence[int], sampler: Sampler
    ) -> list[Outcome]:
        calls = await sampler.sample(problem, self.messages(problem), n=1)
        if (errors := failed([1], calls)) is not None:
            return errors
        call = calls[0]
        return [Outcome(1, call.extracted, call.score, Compute.parallel(calls))]
