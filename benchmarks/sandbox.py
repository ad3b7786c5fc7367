"""Sandbox throughput: programs per second grading HumanEval's 164 canonical solutions.

Each canonical solution, written as a model would (a ```python block with the prompt and the
body), goes through the code grader (``ttcbench.tasks.code.grade_code``): extraction, the
program, and ``ttcbench.sandbox.run_tests`` with the split trusted-comparison run, i.e. two
jailed interpreters per program.  Graded by 2 threads at once (``run_many``'s default) and by
1; prints the wall time, programs/second and the mean time per program.  The figures are wall
clock: run it on an otherwise idle machine (the load average is printed, for that reason).
Every solution must pass; a failure is printed and the script exits 1.

Usage: python benchmarks/sandbox.py [--workers 2 1] [--repeat 1] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from ttcbench.sandbox import isolation, network_isolation
from ttcbench.tasks.code import grade_code
from ttcbench.tasks.registry import load_task
from ttcbench.types import Grade, Problem


def gold_output(problem: Problem) -> str:
    return f"Here is the solution.\n```python\n{problem.meta['prompt']}{problem.answer}\n```"


def timed(problem: Problem) -> tuple[Grade, float]:
    started = time.perf_counter()
    grade = grade_code(gold_output(problem), problem)
    return grade, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--repeat", type=int, default=1, help="passes over the 164 per setting")
    parser.add_argument("--limit", type=int, default=None, help="first N problems (tests)")
    args = parser.parse_args(argv)
    iso = isolation()
    mode = "bubblewrap" if getattr(iso, "bwrap", None) else "no bubblewrap"  # old: no field
    print(f"isolation: {mode}, network {network_isolation()}, uid drop {iso.uid_drop}")
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores; load average before: {os.getloadavg()[0]:.1f}")
    problems = load_task("humaneval", limit=args.limit).problems
    timed(problems[0])  # warm-up: the isolation probe and imports are not what we measure
    failed = False
    for workers in args.workers:
        for _ in range(args.repeat):
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(timed, problems))
            wall = time.perf_counter() - started
            load = os.getloadavg()[0]
            bad = [(p.id, g.details) for p, (g, _) in zip(problems, results, strict=True)
                   if g.score != 1.0]  # fmt: skip
            trusted = sum(g.details.get("trusted_compare") is True for g, _ in results)
            per = statistics.mean(t for _, t in results)
            print(
                f"workers={workers}: {len(problems)} programs in {wall:.1f} s = "
                f"{len(problems) / wall:.1f} programs/s; mean {1000 * per:.0f} ms per program; "
                f"passed {len(problems) - len(bad)}, trusted_compare True {trusted}; "
                f"load {load:.1f}"
            )
            for problem_id, details in bad:
                print(f"  FAILED {problem_id}: {details}")
            failed = failed or bool(bad)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
