"""`unit_tests`: run each code candidate on the problem's PUBLIC tests in the sandbox.

Public tests are what the model was shown (HumanEval's docstring examples, MBPP's first
assert: `problem.meta["public_tests"]`), so a deployed system could run them too. The hidden
tests (`meta["test"]`, `meta["tests"]`) are the grader's and are never read here: a candidate
that special-cases the examples scores 1 here and 0 on the grade, as it would in deployment.

Score: the fraction of public asserts that pass. The whole file runs first (one sandbox run,
the common all-pass case); only a failing candidate with several asserts is re-run once per
assert, each run guarded by the sandbox's sentinel, so printed text cannot fake a pass.
Sandbox runs are not model calls: they add no calls or tokens, and their wall time is not
model latency. `Compute` has no field for it, so it is logged per problem and kept in
`sandbox_s` / `sandbox_runs` on the verifier.
"""

from __future__ import annotations

import ast
import asyncio
import logging
from collections.abc import Sequence

from ttcbench.sampler import Sampler
from ttcbench.sandbox import ExecutionResult, run_many
from ttcbench.sandbox.pyparse import parse
from ttcbench.tasks.code import CODE_LIMITS, completion_program, extract_code
from ttcbench.types import Call, ConfigError, Problem
from ttcbench.verifiers import Verdict, Verifier

log = logging.getLogger(__name__)


class UnitTests(Verifier):
    """Fraction of public asserts a candidate passes in the sandbox: deployable, no model."""

    name = "unit_tests"
    deployable = True

    def __init__(self, max_workers: int = 2) -> None:
        self.max_workers = max_workers
        """Sandbox runs at once (each is its own process)."""
        self.sandbox_s = 0.0
        """Summed wall time of every sandbox run so far (not model compute)."""
        self.sandbox_runs = 0

    async def verify(
        self, problem: Problem, candidates: Sequence[Call], sampler: Sampler
    ) -> list[Verdict]:
        preamble, asserts = public_asserts(problem)
        # Off the event loop: other problems' model calls go on while the sandbox runs.
        scores, results = await asyncio.to_thread(self.scores, problem, candidates, preamble,
                                                  asserts)  # fmt: skip
        spent = sum(r.duration_s for r in results)
        self.sandbox_s += spent
        self.sandbox_runs += len(results)
        if results:
            log.info("unit_tests: %s: %d sandbox runs, %.2f s", problem.id, len(results), spent)
        return [Verdict(s) for s in scores]

    def scores(
        self, problem: Problem, candidates: Sequence[Call], preamble: str, asserts: list[str]
    ) -> tuple[list[float], list[ExecutionResult]]:
        """Each candidate's pass fraction, and every sandbox result it took."""
        entry_point = problem.meta.get("entry_point")
        codes = [extract_code(c.output or "", entry_point) for c in candidates]
        runnable = [i for i, code in enumerate(codes) if code is not None]
        programs = {i: completion_program(codes[i] or "", problem) for i in runnable}
        whole = preamble + "".join(asserts)
        first = self.run(problem, [(programs[i], whole) for i in runnable])
        scores = [0.0] * len(candidates)  # no code: the lowest score
        retry = []
        for i, result in zip(runnable, first, strict=True):
            scores[i] = 1.0 if result.passed else 0.0
            if not result.passed and len(asserts) > 1:
                retry.append(i)
        each = self.run(problem, [(programs[i], preamble + a) for i in retry for a in asserts])
        for j, i in enumerate(retry):
            runs = each[j * len(asserts) : (j + 1) * len(asserts)]
            scores[i] = sum(r.passed for r in runs) / len(asserts)
        return scores, [*first, *each]

    def run(self, problem: Problem, jobs: list[tuple[str, str]]) -> list[ExecutionResult]:
        """Each job's tests in a trusted process apart from the candidate (see the sandbox)."""
        if not jobs:
            return []
        return run_many(
            jobs,
            entry_point=problem.meta.get("entry_point"),
            setup=problem.meta.get("prompt", ""),
            limits=CODE_LIMITS,
            max_workers=self.max_workers,
        )


def public_asserts(problem: Problem) -> tuple[str, list[str]]:
    """The public test file split into its setup (imports, helpers) and its asserts."""
    tests = problem.meta.get("public_tests")
    if not tests or not tests.strip():
        raise ConfigError(
            f"the unit_tests verifier needs public tests, but problem {problem.id} of task "
            f"{problem.task!r} has none (meta['public_tests']): use it with code tasks whose "
            "prompts show examples (humaneval, mbpp), or pick another verifier (e.g. logprob)"
        )
    try:
        tree = parse(tests)
    except SyntaxError as err:
        raise ConfigError(f"public tests of {problem.id} do not parse: {err}") from err
    setup: list[str] = []
    asserts: list[str] = []
    for node in tree.body:
        source = (ast.get_source_segment(tests, node) or "") + "\n"
        (asserts if isinstance(node, ast.Assert) else setup).append(source)
    if not asserts:
        raise ConfigError(f"public tests of {problem.id} hold no assert statement: {tests!r}")
    return "".join(setup), asserts
