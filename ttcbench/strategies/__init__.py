"""Strategies: ways of spending inference compute on a problem, one module each.

A strategy gets a problem, the budgets of the sweep and a `Sampler`; it returns one
`Outcome` per budget. Every model call goes through the sampler, so every call (generation,
critique, judging...) is a recorded row counted as compute. Strategies never write files.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from ttcbench.types import Call, Problem

if TYPE_CHECKING:  # annotations only: the strategy base stays importable without litellm
    from ttcbench.sampler import Sampler


@dataclass(frozen=True)
class Compute:
    """What an attempt cost; fractional when it is an expectation over k-subsets of a pool."""

    calls: float = 0.0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    sequential_tokens: float = 0.0
    """Tokens on the critical path: parallel samples overlap, sequential rounds add up."""
    latency_s: float = 0.0
    """Summed model-call latency (compute time, not wall time of a concurrent run)."""
    cost_usd: float = 0.0

    @classmethod
    def parallel(cls, calls: Sequence[Call]) -> Compute:
        """Calls made side by side: the critical path is the longest of them."""
        return cls(
            calls=len(calls),
            prompt_tokens=sum(c.prompt_tokens for c in calls),
            completion_tokens=sum(c.completion_tokens for c in calls),
            sequential_tokens=max((c.total_tokens for c in calls), default=0),
            latency_s=sum(c.latency_s for c in calls),
            cost_usd=sum(c.cost_usd for c in calls),
        )

    def scaled(self, factor: float, sequential_tokens: float) -> Compute:
        """The expected compute of a k-subset (factor k/n) of a parallel pool."""
        return Compute(
            calls=self.calls * factor,
            prompt_tokens=self.prompt_tokens * factor,
            completion_tokens=self.completion_tokens * factor,
            sequential_tokens=sequential_tokens,
            latency_s=self.latency_s * factor,
            cost_usd=self.cost_usd * factor,
        )

    @property
    def total_tokens(self) -> float:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Outcome:
    """A strategy's result at one budget."""

    budget: int
    answer: str | None
    score: float | None
    """Expected score; None when provider errors left the attempt incomplete."""
    compute: Compute
    estimator: str = "direct"
    error: str | None = None


class Strategy(ABC):
    """Base class: subclasses set `name` (= config file name) and implement `solve`."""

    name: str = ""

    @property
    def verifier_name(self) -> str | None:
        """The verifier's name for strategies that have one (recorded on every attempt)."""
        verifier = getattr(self, "verifier", None)
        return getattr(verifier, "name", None)

    def messages(self, problem: Problem) -> list[dict[str, str]]:
        return [{"role": "user", "content": problem.prompt}]

    def check_budgets(self, budgets: Sequence[int]) -> None:  # noqa: B027 (optional hook)
        """Raise ConfigError for budgets this strategy cannot serve; called before the run
        folder exists, so a bad sweep leaves nothing behind."""

    @abstractmethod
    def planned_calls(self, budgets: Sequence[int]) -> int:
        """Calls per problem for this sweep (for the progress bar and cost previews)."""

    @abstractmethod
    async def solve(
        self, problem: Problem, budgets: Sequence[int], sampler: Sampler
    ) -> list[Outcome]:
        """One outcome per budget the strategy supports."""

    async def solve_all(
        self,
        problems: Sequence[Problem],
        budgets: Sequence[int],
        sampler: Sampler,
        on_outcomes: Callable[[Problem, list[Outcome]], None],
        max_parallel: int = 8,
    ) -> None:
        """Every problem, each handed to `on_outcomes` as soon as it is done (so an interrupted
        sweep keeps what finished). Strategies that allocate compute across problems override
        this; the rest solve problems independently, `max_parallel` at a time."""
        gate = asyncio.Semaphore(max_parallel)

        async def one(problem: Problem) -> None:
            async with gate:
                outcomes = await self.solve(problem, budgets, sampler)
            on_outcomes(problem, outcomes)

        await asyncio.gather(*(one(p) for p in problems))


def failed(budgets: Sequence[int], calls: Sequence[Call]) -> list[Outcome] | None:
    """Outcomes marking every budget as failed when any call has a permanent error."""
    errors = [c.error for c in calls if c.error]
    if not errors:
        return None
    message = f"{len(errors)} of {len(calls)} calls failed; first: {errors[0]}"
    return [Outcome(b, None, None, Compute.parallel(calls), error=message) for b in budgets]
