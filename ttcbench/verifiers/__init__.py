"""Verifiers: score candidate answers so a strategy can pick among them.

A verifier sees a problem and candidate calls and returns one `Verdict` per candidate. Any
model call it makes (an LLM judge, a reward model) goes through the sampler with its own role,
so verification is recorded and counted as compute like generation. `deployable` is False for
verifiers that peek at the reference answer (the oracle): reports must say so.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from ttcbench.sampler import Sampler
from ttcbench.types import Call, Problem


@dataclass(frozen=True)
class Verdict:
    """A verifier's score for one candidate and the calls it spent on it."""

    score: float
    calls: tuple[Call, ...] = ()


class Verifier(ABC):
    """Base class: subclasses set `name` (= config file name) and implement `verify`."""

    name: str = ""
    deployable: bool = True

    @abstractmethod
    async def verify(
        self, problem: Problem, candidates: Sequence[Call], sampler: Sampler
    ) -> list[Verdict]:
        """One verdict per candidate, in order; candidates without output score lowest."""
