"""`tournament` (recursive tournament voting): candidates meet in groups, a judge picks winners.

Budget N takes the first N samples of the shared pool (so `majority_vote` and `best_of_n`
see the same candidates). Candidates are split into groups of `group_size`; the model, as
judge, compares each group `votes` times and the plurality winner advances; this repeats until
one remains. With groups of 2 a full bracket costs votes x (N - 1) judge calls.

Reuse: the bracket over the first N candidates is the first half of the bracket over 2N
(same groups, same judge prompts, same sample indices), so its judge calls come from the cache
and a sweep over N = 1, 2, 4, ... costs the bracket of N_max. What cannot be reused: a
budget that is not a power of `group_size` pairs candidates differently from the larger one.
"""

from __future__ import annotations

import asyncio
import re
import string
from collections import Counter
from collections.abc import Sequence

from ttcbench.sampler import Sampler
from ttcbench.strategies import Compute, Outcome, Strategy, failed
from ttcbench.types import Call, Problem

LABELS = string.ascii_uppercase
MAX_GROUPS = 100_000  # groups per round, for unique judge sample indices


class Tournament(Strategy):
    """Judge groups of candidates repeatedly until one winner remains."""

    name = "tournament"

    def __init__(
        self,
        judge_prompt: str,
        group_size: int = 2,
        votes: int = 3,
        summarize: bool = False,
        summary_prompt: str = "",
    ) -> None:
        if not 2 <= group_size <= len(LABELS) or votes < 1:
            raise ValueError("tournament needs 2 <= group_size <= 26 and votes >= 1")
        self.judge_prompt = judge_prompt
        self.group_size = group_size
        self.votes = votes
        self.summarize = summarize
        self.summary_prompt = summary_prompt

    def planned_calls(self, budgets: Sequence[int]) -> int:
        n = max(budgets)
        return n + self.votes * judge_matches(n, self.group_size) + (n if self.summarize else 0)

    async def solve(
        self, problem: Problem, budgets: Sequence[int], sampler: Sampler
    ) -> list[Outcome]:
        pool = await sampler.sample(problem, self.messages(problem), n=max(budgets))
        if (errors := failed(budgets, pool)) is not None:
            return errors
        shown = await self.shown_texts(problem, pool, sampler)
        outcomes = []
        for budget in budgets:
            winner, rounds = await self.bracket(problem, pool[:budget], shown, sampler)
            calls = [*pool[:budget], *[c for r in rounds for c in r]]
            if (errors := failed([budget], calls)) is not None:
                outcomes += errors
                continue
            compute = Compute.parallel(calls).scaled(1.0, critical_path(pool[:budget], rounds))
            outcomes.append(Outcome(budget, winner.extracted, winner.score, compute))
        return outcomes

    async def shown_texts(
        self, problem: Problem, pool: Sequence[Call], sampler: Sampler
    ) -> dict[str, str]:
        """What the judge reads per candidate: its output, or a short summary of it (long
        traces are judged better through summaries). Summaries are recorded calls."""
        if not self.summarize:
            return {c.key: c.output or "" for c in pool}
        shown = {}
        for candidate in pool:
            messages = [{"role": "user", "content": self.summary_prompt.format(
                question=problem.prompt, answer=candidate.output or "")}]  # fmt: skip
            (summary,) = await sampler.sample(problem, messages, role="summarise", grade=False)
            shown[candidate.key] = summary.output or ""
        return shown

    async def bracket(
        self, problem: Problem, entrants: Sequence[Call], shown: dict[str, str], sampler: Sampler
    ) -> tuple[Call, list[list[Call]]]:
        """The winner and, per round, the judge calls made in it."""
        alive: list[Call] = list(entrants)
        rounds: list[list[Call]] = []
        while len(alive) > 1:
            groups = [alive[i : i + self.group_size] for i in range(0, len(alive), self.group_size)]
            # Each match is its own draw even when two matches show the same texts: its
            # sample indices come from its (round, group) place, which a smaller bracket
            # shares with the larger one (so the smaller one is reused, never replayed).
            base = len(rounds) * MAX_GROUPS
            judged = await asyncio.gather(
                *(
                    self.match(problem, group, shown, sampler, (base + g) * self.votes)
                    for g, group in enumerate(groups)
                )
            )
            alive = [winner for winner, _ in judged]
            rounds.append([c for _, calls in judged for c in calls])
        return alive[0], rounds

    async def match(
        self,
        problem: Problem,
        group: Sequence[Call],
        shown: dict[str, str],
        sampler: Sampler,
        first_index: int,
    ) -> tuple[Call, list[Call]]:
        """The group's winner by plurality of `votes` judge calls (a lone candidate advances
        free). Tie or no readable vote: the earliest candidate among the tied wins."""
        if len(group) == 1:
            return group[0], []
        listing = "\n\n".join(
            f"Candidate {LABELS[i]}:\n{shown[c.key]}" for i, c in enumerate(group)
        )
        prompt = self.judge_prompt.format(question=problem.prompt, candidates=listing)
        messages = [{"role": "user", "content": prompt}]
        calls = await sampler.sample(
            problem, messages, n=self.votes, start=first_index, role="judge", grade=False
        )
        picks = Counter(parse_pick(c.output or "", len(group)) for c in calls)
        picks.pop(None, None)
        if not picks:
            return group[0], calls
        top = max(picks.values())
        return group[min(i for i, v in picks.items() if v == top and i is not None)], calls


def parse_pick(text: str, size: int) -> int | None:
    """The judge's choice: the last "Best: X", else the last standalone candidate letter."""
    valid = LABELS[:size]
    marked = re.findall(rf"Best\s*:\s*\**\s*(?:Candidate\s+)?([{valid}])\b", text, re.I)
    if marked:
        return valid.index(marked[-1].upper())
    bare = re.findall(rf"\b([{valid}])\b", text)
    return valid.index(bare[-1]) if bare else None


def judge_matches(n: int, group_size: int) -> int:
    """Judged matches in a bracket of n (lone candidates advance free)."""
    matches = 0
    while n > 1:
        matches += n // group_size + (1 if n % group_size > 1 else 0)
        n = -(-n // group_size)
    return matches


def critical_path(pool: Sequence[Call], rounds: Sequence[Sequence[Call]]) -> float:
    """Parallel generation, then each round's matches in parallel: the longest of each."""
    longest = [max((c.total_tokens for c in calls), default=0) for calls in (pool, *rounds)]
    return float(sum(longest))
