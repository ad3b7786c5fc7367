"""`weighted_vote`: sample N answers, equal answers pool their verifier scores, the largest
sum wins (verifier-weighted self-consistency; Li et al. 2023, "Making Large Language Models
Better Reasoners with Step-Aware Verifier", and the weighted best-of-N of search-and-learn).

Answers are grouped by the grader's extracted answer, which is already canonical (`1/2`,
`0.5` and `\\frac{1}{2}` are one answer for math; identical programs share a key for code).
Samples without an answer abstain. Budget k is the expected score of the weighted vote over
uniformly random k-subsets of the pool (`estimators.weighted_vote_at_k`): exact enumeration
while C(N, k) <= 20000 (every budget of a pool of up to 16), else the mean of 2000 k-subsets
drawn with a fixed seed (estimator `montecarlo`, reproducible). Tied sums split the credit.

Verifier scores are weights, so they must not be negative: `logprob` gives exp(mean token
logprob) for this reason (a negative log-probability sum would reward the smaller group).

Reuse rules are those of `best_of_n` (see its docstring): the pool is `majority_vote`'s
(same call keys, nothing paid twice across the three strategies), each candidate is verified
once and a k-subset costs k/N of the pool's generation and verification in expectation;
with constant verifier scores the result equals `majority_vote`'s.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from ttcbench.analysis.estimators import weighted_vote_at_k
from ttcbench.sampler import Sampler
from ttcbench.strategies import Outcome, Strategy
from ttcbench.strategies.best_of_n import score_pool
from ttcbench.types import ConfigError, Problem
from ttcbench.verifiers import Verifier

EXACT_LIMIT = 20_000  # enumerate every k-subset up to this many (all budgets of N <= 16)


class WeightedVote(Strategy):
    """Vote with verifier scores as weights; exact (or seeded) k-subset estimates."""

    name = "weighted_vote"

    def __init__(self, verifier: Verifier, seed: int = 0) -> None:
        self.verifier = verifier
        self.seed = seed
        """Seed of the k-subsets drawn when C(N, k) is too large to enumerate."""

    def planned_calls(self, budgets: Sequence[int]) -> int:
        return max(budgets)  # generations; see BestOfN.planned_calls

    async def solve(
        self, problem: Problem, budgets: Sequence[int], sampler: Sampler
    ) -> list[Outcome]:
        pool = await score_pool(self, self.verifier, problem, budgets, sampler)
        if isinstance(pool, list):
            return pool

        answers = pool.answers
        # Abstainers (no answer, rank -inf) carry no weight; the estimator ignores them.
        weights = [
            w if a is not None else 0.0 for a, w in zip(answers, pool.verifier_scores, strict=True)
        ]
        if any(w < 0 for w in weights):
            raise ConfigError(
                f"weighted_vote needs non-negative verifier scores, but {self.verifier.name!r} "
                f"gave {min(weights)} on {problem.id}; use a verifier whose scores are weights"
            )
        outcomes = []
        for k in budgets:
            score, _ = weighted_vote_at_k(
                answers, weights, pool.scores, k, exact_limit=EXACT_LIMIT, seed=self.seed
            )
            enumerated = math.comb(len(answers), k) <= EXACT_LIMIT
            outcomes.append(
                Outcome(
                    budget=k,
                    answer=weighted_plurality(answers[:k], weights[:k]),
                    score=score,
                    compute=pool.compute_at(k),
                    estimator=estimator(len(answers), k, enumerated),
                )
            )
        return outcomes


def weighted_plurality(answers: Sequence[str | None], weights: Sequence[float]) -> str | None:
    """The answer with the largest summed weight (first seen wins a tie): a representative."""
    totals: dict[str, float] = defaultdict(float)
    for answer, weight in zip(answers, weights, strict=True):
        if answer is not None:
            totals[answer] += weight
    return max(totals, key=totals.__getitem__) if totals else None


def estimator(n: int, k: int, enumerated: bool) -> str:
    """`direct` for the whole pool, `exact` for enumerated subsets, else `montecarlo`."""
    if k == n:
        return "direct"
    return "exact" if enumerated else "montecarlo"
