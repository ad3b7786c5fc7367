"""Schedules problems x strategy x budgets with bounded concurrency and a live progress bar.

Problems run concurrently (model requests are bounded separately by the sampler's
semaphore); each problem's attempts are stored as soon as it finishes, so an interrupted
sweep keeps everything it completed.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence

from tqdm import tqdm

from ttcbench.sampler import Sampler
from ttcbench.strategies import Outcome, Strategy
from ttcbench.types import Attempt, Call, Problem

POSTFIX_EVERY_S = 0.1
"""The bar's token/cost totals are refreshed at most this often (tqdm redraws ~10/s)."""


class Progress:
    """A tqdm bar over planned calls with running token and cost totals (ETA from tqdm).

    A resumed run's bar starts at `stored`, the calls its store already holds (the sampler
    reuses them without reporting them), so it ends at the planned total, not short of it.
    `on_call`, if given, sees every reported call too (the tracker's live sample feed).
    """

    def __init__(
        self,
        total: int,
        enabled: bool = True,
        stored: int = 0,
        on_call: Callable[[Call], None] | None = None,
        bar: type[tqdm] = tqdm,  # tracking.bar_class(): a widget in Jupyter, else text
    ) -> None:
        self.bar = bar(
            total=total, initial=stored, unit="call", disable=not enabled, dynamic_ncols=True
        )
        self._also = on_call
        self.tokens = 0
        self.cost = 0.0
        self.cached = 0
        self.errors = 0
        self.last_error: str | None = None
        """The last failed call's error, for the line that ends an incomplete run."""
        self._shown = 0.0

    def on_call(self, call: Call) -> None:
        self.tokens += call.total_tokens
        self.cost += call.cost_usd if not call.cached else 0.0
        self.cached += call.cached
        self.errors += call.error is not None
        self.last_error = call.error or self.last_error
        if self._also is not None:
            self._also(call)
        self.bar.update(1)
        now = time.monotonic()  # formatting the totals per call cost more than the bar
        if not self.bar.disable and now - self._shown >= POSTFIX_EVERY_S:
            self._shown = now
            self._show_totals()

    def _show_totals(self) -> None:
        self.bar.set_postfix(
            tokens=self.tokens,
            usd=f"{self.cost:.4f}",
            cached=self.cached,
            errors=self.errors,
            refresh=False,
        )

    def close(self) -> None:
        if not self.bar.disable:
            self._show_totals()  # the last totals, whenever they were last shown
        self.bar.close()


def to_attempts(
    run_id: str,
    problem: Problem,
    strategy: Strategy,
    outcomes: Sequence[Outcome],
    params_b: float | None = None,
    model: str | None = None,
) -> list[Attempt]:
    """Attempt rows; FLOPs are the usual 2 x parameters x tokens estimate (forward passes)."""
    return [
        Attempt(
            run_id=run_id,
            task=problem.task,
            problem_id=problem.id,
            classes=problem.classes,
            strategy=strategy.name,
            verifier=strategy.verifier_name,
            budget=o.budget,
            answer=o.answer,
            score=o.score,
            model=model,
            estimator=o.estimator,
            error=o.error,
            flops=None if params_b is None else 2e9 * params_b * o.compute.total_tokens,
            **o.compute.as_dict(),
        )
        for o in outcomes
    ]


async def run_problems(
    problems: Sequence[Problem],
    strategy: Strategy,
    sampler: Sampler,
    budgets: Sequence[int],
    *,
    run_id: str,
    on_attempts: Callable[[list[Attempt]], None],
    max_parallel_problems: int = 8,
    params_b: float | None = None,
    model: str | None = None,
) -> list[Attempt]:
    """Solve every problem at every budget; attempts are handed to `on_attempts` per problem
    as it finishes, and returned in problem order. `model` labels the attempt rows."""
    done: dict[tuple[str, str], list[Attempt]] = {}

    def record(problem: Problem, outcomes: list[Outcome]) -> None:
        attempts = to_attempts(run_id, problem, strategy, outcomes, params_b, model)
        on_attempts(attempts)
        done[problem.task, problem.id] = attempts

    # The ~600k objects of the imports (litellm, sympy, ...) are never garbage, but each full
    # collection during sampling scanned them all (~0.2 s, 20% of a fast server's job).
    gc.freeze()
    try:
        await strategy.solve_all(problems, budgets, sampler, record, max_parallel_problems)
    finally:
        gc.unfreeze()
    return [a for p in problems for a in done.get((p.task, p.id), [])]
