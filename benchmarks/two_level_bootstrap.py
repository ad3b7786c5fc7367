"""The frontier's two-level bootstrap (problems, then each problem's pool) at report size.

100 problems x 8 samples, majority_vote and best_of_n[oracle] at budgets 1, 2, 4, 8 and a
pooled `single`, 1000 replicates: prints the wall time of `strategy_levels` with and without
the sample level, and how much wider the sample level makes the intervals.

    python benchmarks/two_level_bootstrap.py [--problems 100] [--samples 8] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from ttcbench.analysis.consistency import link_pools
from ttcbench.analysis.frontier import strategy_levels
from ttcbench.analysis.pools import pool_estimates


def synthetic(problems: int, samples: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Calls of one pool per problem (solve rates from Beta(1, 2), three distractors) and the
    attempts of a majority_vote / best_of_n[oracle] run and a single run on sample 0."""
    rng = np.random.default_rng(seed)
    p = np.repeat(rng.beta(1.0, 2.0, problems), samples)
    right = rng.random(problems * samples) < p
    calls = pd.DataFrame({
        "task": "t", "problem_id": np.repeat([f"p{i}" for i in range(problems)], samples),
        "sample_index": np.tile(np.arange(samples), problems), "role": "generate",
        "key": [f"k{i}" for i in range(problems * samples)], "messages_hash": "h",
        "strategy": "majority_vote", "score": right.astype(float),
        "extracted": np.where(right, "42", rng.integers(1, 4, problems * samples).astype(str)),
        "prompt_tokens": 40, "completion_tokens": rng.integers(60, 140, problems * samples),
        "latency_s": 0.0, "cost_usd": 0.0, "error": None, "run": "pool",
    })  # fmt: skip
    budgets = [2**i for i in range(int(np.log2(samples)) + 1)]
    pooled = pool_estimates(calls, budgets).assign(run="pool")
    first = calls[calls["sample_index"] == 0].assign(strategy="single", run="single")
    single = pooled[(pooled["strategy"] == "majority_vote") & (pooled["budget"] == 1)].assign(
        strategy="single", run="single", estimator="direct"
    )
    return pd.concat([pooled, single], ignore_index=True), pd.concat([calls, first])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    attempts, calls = synthetic(args.problems, args.samples)
    linked, _ = link_pools(attempts, calls)
    strategy_levels(linked, calls=calls, n_resamples=10)  # warm the vote-curve caches
    timings = {}
    for name, given in (("problems only", None), ("problems and samples", calls)):
        start = time.perf_counter()
        levels = strategy_levels(linked, calls=given, n_resamples=args.resamples)
        timings[name] = (time.perf_counter() - start, levels)
        print(f"{name:<22} {timings[name][0]:6.2f} s  load {os.getloadavg()[0]:.2f}")
    width = {k: (v[1]["ci_high"] - v[1]["ci_low"]).mean() for k, v in timings.items()}
    ratio = width["problems and samples"] / width["problems only"]
    print(f"mean interval width: {width['problems only']:.4f} -> "
          f"{width['problems and samples']:.4f} (x{ratio:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
