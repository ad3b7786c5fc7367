"""`adaptive`: self-consistency that spends samples where the vote is still undecided.

Both modes draw from the same pool as `majority_vote` (same messages and sampling, sample
indices 0, 1, 2, ...), so nothing is paid twice across the two strategies, and every budget's
samples are a prefix of the largest budget's: one run serves the whole sweep. The number of
samples a problem really used is its attempt's `calls` (every call is a pool sample), and
the summary's `calls` column is the realised mean per problem. Scores are direct (the
plurality of the realised prefix, ties split as fractional credit), not k-subset estimates.

- `mode: stop` (Adaptive-Consistency, Aggarwal et al. 2023): budget N = at most N samples,
  drawn in batches of `batch_size`; after each full batch, stop when the posterior
  probability that the leading answer beats the runner-up, P(p > 1/2) for
  p ~ Beta(v1 + 1, v2 + 1) (v1, v2: votes of the two most common answers; abstentions do not
  vote), reaches `confidence`. Cost: N(problem) = min(first decisive batch end, N).
- `mode: allocate` (difficulty-aware allocation of a fixed total, in the spirit of Snell et al.
  2024): budget B = a total of B samples per problem on average, B x P for the P problems of
  the run. Every problem first gets `probe` samples; their agreement a = v1 / probe is the
  cheap difficulty estimate. The remaining (B - probe) x P samples are shared out in
  proportion to the disagreement 1 - a (evenly if every probe is unanimous), no problem
  getting more than `max_factor` x B in all (water-filling: the excess of a capped problem goes
  to the others; rounded by largest remainders so the total is exact). Cost: exactly B x P
  samples per budget (less only when every problem hits the cap), realised per problem in
  the attempts' `calls`. It needs every probe before any extra sample, so it overrides
  `solve_all` (the whole run) rather than `solve` (one problem).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from ttcbench.analysis.estimators import majority_at_k
from ttcbench.sampler import Sampler
from ttcbench.strategies import Compute, Outcome, Strategy, failed
from ttcbench.strategies.majority_vote import plurality
from ttcbench.types import Call, Problem

MODES = ("stop", "allocate")


class Adaptive(Strategy):
    """Self-consistency with a per-problem sample count: early stopping or allocation."""

    name = "adaptive"

    def __init__(
        self,
        mode: str = "stop",
        batch_size: int = 4,
        confidence: float = 0.95,
        probe: int = 4,
        max_factor: float = 4.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"adaptive.mode must be one of {MODES}, got {mode!r}")
        if batch_size < 1 or probe < 1 or not 0.5 < confidence < 1.0:
            raise ValueError("adaptive needs batch_size >= 1, probe >= 1, 0.5 < confidence < 1")
        self.mode = mode
        self.batch_size = batch_size
        self.confidence = confidence
        self.probe = probe
        self.max_factor = max_factor

    def planned_calls(self, budgets: Sequence[int]) -> int:
        """The most samples a problem can use (fewer when votes agree)."""
        return max(budgets)  # stop: at most; allocate: the mean per problem

    async def solve(
        self, problem: Problem, budgets: Sequence[int], sampler: Sampler
    ) -> list[Outcome]:
        """One problem on its own (in `allocate` mode a run of one problem: B samples)."""
        if self.mode == "allocate":
            out: list[list[Outcome]] = []
            await self.solve_all([problem], budgets, sampler, lambda _, o: out.append(o))
            return out[0]
        pool, used = await self.until_decisive(problem, max(budgets), sampler)
        if (errors := failed(budgets, pool)) is not None:
            return errors
        return [self.outcome(b, pool[: min(b, used)]) for b in budgets]

    async def solve_all(
        self,
        problems: Sequence[Problem],
        budgets: Sequence[int],
        sampler: Sampler,
        on_outcomes: Callable[[Problem, list[Outcome]], None],
        max_parallel: int = 8,
    ) -> None:
        if self.mode != "allocate":
            return await super().solve_all(problems, budgets, sampler, on_outcomes, max_parallel)
        gate = asyncio.Semaphore(max_parallel)

        async def draw(problem: Problem, n: int, start: int) -> list[Call]:
            async with gate:
                return await sampler.sample(problem, self.messages(problem), n=n, start=start)

        probe = min(self.probe, max(budgets))
        probes = await asyncio.gather(*(draw(p, probe, 0) for p in problems))
        live = [i for i, pool in enumerate(probes) if failed(budgets, pool) is None]
        for i in set(range(len(problems))) - set(live):
            on_outcomes(problems[i], failed(budgets, probes[i]) or [])
        weights = [1.0 - agreement(answers_of(probes[i])) for i in live]
        counts = {b: self.allocation(b, weights) for b in budgets}

        async def finish(slot: int, i: int) -> None:
            need = max(counts[b][slot] for b in budgets)
            pool = probes[i] + (
                await draw(problems[i], need - probe, probe) if need > probe else []
            )
            if (errors := failed(budgets, pool)) is not None:
                return on_outcomes(problems[i], errors)
            on_outcomes(problems[i], [self.outcome(b, pool[: counts[b][slot]]) for b in budgets])

        await asyncio.gather(*(finish(slot, i) for slot, i in enumerate(live)))

    async def until_decisive(
        self, problem: Problem, n_max: int, sampler: Sampler
    ) -> tuple[list[Call], int]:
        """Batches of the shared pool until the vote is decisive or n_max samples. Returns
        the samples drawn and the first decisive batch end (n_max + 1 if none): a budget N
        uses min(N, that) samples, since its checks are the same batch ends below N."""
        pool: list[Call] = []
        while len(pool) < n_max:
            n = min(self.batch_size, n_max - len(pool))
            pool += await sampler.sample(problem, self.messages(problem), n=n, start=len(pool))
            if any(c.error for c in pool):
                break
            full_batch = len(pool) % self.batch_size == 0
            if full_batch and leader_confidence(answers_of(pool)) >= self.confidence:
                return pool, len(pool)
        return pool, n_max + 1

    def allocation(self, budget: int, disagreement: Sequence[float]) -> list[int]:
        """Samples per problem at mean budget B: the probe plus a share of the rest."""
        if budget <= self.probe:
            return [budget] * len(disagreement)
        extra = share_out(
            (budget - self.probe) * len(disagreement),
            disagreement,
            cap=max(self.max_factor * budget - self.probe, 0.0),
        )
        return [self.probe + e for e in extra]

    def outcome(self, budget: int, used: Sequence[Call]) -> Outcome:
        answers = answers_of(used)
        scores = [c.score or 0.0 for c in used]
        compute = Compute.parallel(used).scaled(1.0, self.critical_path(used))
        score = majority_at_k(answers, scores, len(used))  # the realised vote, ties split
        return Outcome(budget, plurality(answers), score, compute)

    def critical_path(self, used: Sequence[Call]) -> float:
        """Rounds run one after another, samples within a round side by side: the batches
        (stop), or the probe then the extra samples (allocate)."""
        if self.mode == "allocate":
            rounds = [used[: self.probe], used[self.probe :]]
        else:
            step = self.batch_size
            rounds = [used[i : i + step] for i in range(0, len(used), step)]
        return float(sum(max((c.total_tokens for c in r), default=0) for r in rounds))


def share_out(total: int, weights: Sequence[float], cap: float) -> list[int]:
    """`total` units in proportion to `weights` (evenly if all are 0), none above `cap`:
    water-filling hands a capped share's excess to the rest; largest remainders round it."""
    n = len(weights)
    if n == 0:
        return []
    w = np.asarray(weights, dtype=float)
    w = np.ones(n) if w.sum() <= 0 else w
    given = np.zeros(n)
    open_ = w > 0
    left = float(min(total, cap * n))
    while left > 1e-9 and open_.any():
        offer = left * np.where(open_, w, 0.0) / w[open_].sum()
        take = np.minimum(offer, cap - given)
        given += take
        left -= take.sum()
        open_ &= given < cap - 1e-9
    whole = np.floor(given + 1e-9).astype(int)
    short = int(round(given.sum())) - int(whole.sum())
    order = np.argsort(-(given - whole), kind="stable")
    whole[order[:short]] += 1
    return whole.tolist()


def answers_of(calls: Sequence[Call]) -> list[str | None]:
    return [c.extracted for c in calls]


def vote_counts(answers: Sequence[str | None]) -> tuple[int, int]:
    """Votes of the most and second most common answers (abstentions do not vote)."""
    top = [n for _, n in Counter(a for a in answers if a is not None).most_common(2)]
    return (top + [0, 0])[0], (top + [0, 0])[1]


def leader_confidence(answers: Sequence[str | None]) -> float:
    """Adaptive-Consistency's Beta criterion: P(p > 1/2), p ~ Beta(v1 + 1, v2 + 1), the
    posterior probability that the leader's share beats the runner-up's. 0 with no votes."""
    from scipy.stats import beta  # at the first decision, not at import (start-up)

    v1, v2 = vote_counts(answers)
    return float(beta.sf(0.5, v1 + 1, v2 + 1)) if v1 else 0.0


def agreement(answers: Sequence[str | None]) -> float:
    """Share of the samples that give the plurality answer (abstentions disagree)."""
    return vote_counts(answers)[0] / len(answers) if answers else 0.0
