"""`best_of_n`: sample N answers, a verifier scores each, the top-scored candidate wins.

One pool of N_max samples per problem serves every budget, as for `majority_vote`: budget k
is the exact expected score of the verifier's top candidate over uniformly random k-subsets
of the pool (`estimators.best_of_k`; candidates with equal top verifier scores split the win,
i.e. a uniformly random tie-break in expectation). With the `oracle` verifier this is pass@k.

Reuse rules:

- The pool IS `majority_vote`'s pool: same messages, same sampling, same sample indices, so
  the same call keys. A `majority_vote` run and a `best_of_n` run (any verifier) that share
  the cache pay for N_max generations together, not twice; `single` is sample 0 of both.
- Each candidate is verified once, whatever the budgets: a k-subset's verifier compute is,
  in expectation, k/N of the pool's. Model-calling verifiers go through the sampler (role
  `verify`), so their calls are cached too and a second verifier run over the same pool costs
  nothing new; sandbox runs (`unit_tests`) and logprobs (`logprob`) are not model calls.
- What cannot be reused: verifier scores across verifiers (each verifier scores the pool
  anew), and samples drawn with other messages or sampling parameters (another prompt,
  temperature or `max_tokens` is another pool). Samples cached by a run without logprobs
  carry none, so `logprob` cannot rank them (it says so instead of guessing).

Candidates without an extracted answer (no output, unparseable) never win over one with an
answer: their rank is -inf whatever the verifier says, and the verifier is not asked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ttcbench.analysis.estimators import best_of_k
from ttcbench.sampler import Sampler
from ttcbench.strategies import Compute, Outcome, Strategy, failed
from ttcbench.types import Call, Problem
from ttcbench.verifiers import Verifier


@dataclass(frozen=True)
class ScoredPool:
    """A generated pool with one verifier score per candidate, and what both cost."""

    candidates: list[Call]
    verifier_scores: list[float]
    """The verifier's score; -inf for a candidate without an answer (never verified)."""
    verifier_calls: list[Call]
    paths: list[float]
    """Per candidate: its generation tokens plus its verification tokens (critical path)."""

    @property
    def answers(self) -> list[str | None]:
        return [c.extracted for c in self.candidates]

    @property
    def scores(self) -> list[float]:
        return [c.score or 0.0 for c in self.candidates]

    def compute_at(self, k: int) -> Compute:
        """Expected compute of a k-subset: k/N of generation and verification, and the
        expected longest generate-then-verify path among k candidates."""
        whole = Compute.parallel([*self.candidates, *self.verifier_calls])
        return whole.scaled(k / len(self.candidates), best_of_k(self.paths, self.paths, k))


class BestOfN(Strategy):
    """Pick the verifier's favourite from k samples; exact k-subset estimates from one pool."""

    name = "best_of_n"

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    def planned_calls(self, budgets: Sequence[int]) -> int:
        # Generations only: how many calls a verifier makes is its own business (0 for
        # oracle, logprob and unit_tests), so the progress bar may run past its total.
        return max(budgets)

    async def solve(
        self, problem: Problem, budgets: Sequence[int], sampler: Sampler
    ) -> list[Outcome]:
        pool = await score_pool(self, self.verifier, problem, budgets, sampler)
        if isinstance(pool, list):
            return pool

        outcomes = []
        for k in budgets:
            first = pool.verifier_scores[:k]
            top = first.index(max(first))  # a representative: the best of the first k
            outcomes.append(
                Outcome(
                    budget=k,
                    answer=pool.answers[top],
                    score=best_of_k(pool.verifier_scores, pool.scores, k),
                    compute=pool.compute_at(k),
                    estimator="exact" if k < len(pool.candidates) else "direct",
                )
            )
        return outcomes


async def score_pool(
    strategy: Strategy,
    verifier: Verifier,
    problem: Problem,
    budgets: Sequence[int],
    sampler: Sampler,
) -> ScoredPool | list[Outcome]:
    """Draw the shared pool of max(budgets) samples and verify each answered candidate once.

    Returns failed outcomes for every budget when a generation or verifier call failed."""
    # An empty verification first: a verifier that cannot judge this problem at all (no
    # public tests) says so before any sample is paid for.
    await verifier.verify(problem, [], sampler)
    pool = await sampler.sample(problem, strategy.messages(problem), n=max(budgets))
    if (errors := failed(budgets, pool)) is not None:
        return errors
    answered = [i for i, c in enumerate(pool) if c.extracted is not None]
    verdicts = await verifier.verify(problem, [pool[i] for i in answered], sampler)
    if len(verdicts) != len(answered):
        raise RuntimeError(f"verifier {verifier.name!r} returned {len(verdicts)} verdicts "
                           f"for {len(answered)} candidates")  # fmt: skip
    ranks = [-math.inf] * len(pool)
    paths = [float(c.total_tokens) for c in pool]
    verifier_calls: list[Call] = []
    for i, verdict in zip(answered, verdicts, strict=True):
        ranks[i] = float(verdict.score)
        paths[i] += sum(c.total_tokens for c in verdict.calls)
        verifier_calls += verdict.calls
    if (errors := failed(budgets, [*pool, *verifier_calls])) is not None:
        return errors
    return ScoredPool(pool, ranks, verifier_calls, paths)
