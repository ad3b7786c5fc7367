"""`oracle`: the task's own grader as the verifier (coverage / pass@k).

It reads the reference answer, so it is not deployable: best-of-N with the oracle is an upper
bound (the pool's coverage), and every report must label it as oracle.
"""

from __future__ import annotations

from collections.abc import Sequence

from ttcbench.sampler import Sampler
from ttcbench.types import Call, Problem
from ttcbench.verifiers import Verdict, Verifier


class Oracle(Verifier):
    """Scores a candidate by its grade against the reference: free, exact, not deployable."""

    name = "oracle"
    deployable = False

    async def verify(
        self, problem: Problem, candidates: Sequence[Call], sampler: Sampler
    ) -> list[Verdict]:
        return [Verdict(c.score or 0.0) for c in candidates]
