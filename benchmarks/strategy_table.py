"""Every strategy on the offline suite with the embedded model, at two budgets: calls and
tokens per problem and accuracy (the table the strategies issue asks for).

    python benchmarks/strategy_table.py [--per-task 2] [--results results/strategy_table]

`--per-task 0` runs the whole offline suite (49 problems, conf/task/offline.yaml).

Runs share one cache, so pool-based strategies reuse majority_vote's samples (the printed
`new requests` column shows what each run really paid for). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd

import ttcbench

OFFLINE = ("arithmetic", "chain_sum", "gsm_symbolic", "family_relationships", "multihop",
           "humaneval")  # fmt: skip

# (label, budget parameter, budgets, extra overrides)
STRATEGIES: list[tuple[str, str, list[int], list[str]]] = [
    ("single", "-", [1], ["strategy=single"]),
    ("majority_vote", "N samples", [1, 4], ["strategy=majority_vote"]),
    ("best_of_n[logprob]", "N candidates", [1, 4], ["strategy=best_of_n", "verifier=logprob"]),
    ("best_of_n[llm_judge]", "N candidates", [1, 4],
     ["strategy=best_of_n", "verifier=llm_judge"]),
    ("weighted_vote[logprob]", "N voters", [1, 4],
     ["strategy=weighted_vote", "verifier=logprob"]),
    ("adaptive[stop]", "max N (batches of 2)", [2, 4],
     ["strategy=adaptive", "strategy.batch_size=2", "strategy.confidence=0.8"]),
    ("adaptive[allocate]", "mean N (probe 2)", [2, 4],
     ["strategy=adaptive", "strategy.mode=allocate", "strategy.probe=2"]),
    ("tournament", "N (G=2, V=1)", [2, 4], ["strategy=tournament", "strategy.votes=1"]),
    ("self_refine", "rounds R", [1, 2], ["strategy=self_refine"]),
    ("pdr", "rounds (widths 4,2)", [1, 2], ["strategy=pdr", "strategy.widths=[4,2]"]),
    ("beam_search", "beam width (M=2, D=3)", [1, 2],
     ["strategy=beam_search", "strategy.expansions=2", "strategy.max_steps=3",
      "strategy.step_tokens=64"]),
    ("tree_search", "states expanded (k=2, v=1)", [1, 2],
     ["strategy=tree_search", "strategy.expansions=2", "strategy.evaluations=1",
      "strategy.max_steps=3", "strategy.step_tokens=64"]),
    ("thinking_budget[forcing]", "thinking tokens / 64", [1, 2],
     ["strategy=thinking_budget", "strategy.token_unit=64"]),
]  # fmt: skip


def run_one(results: Path, per_task: int, budgets: list[int], extra: list[str]) -> pd.DataFrame:
    tasks = [f"task.tasks.{name}.limit={per_task}" for name in OFFLINE] if per_task else []
    values = ",".join(map(str, budgets))
    run_dir = ttcbench.run(
        [f"results_dir={results}", "task=offline", *tasks, f"budget.values=[{values}]",
         "logger=none", "runner.progress=false", *extra]
    )  # fmt: skip
    return pd.read_csv(run_dir / "summary.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--per-task", type=int, default=2, help="problems per task; 0: the suite's own sizes"
    )
    parser.add_argument("--results", type=Path, default=Path("results/strategy_table"))
    parser.add_argument("--only", nargs="*", help="labels to run (default: all)")
    args = parser.parse_args()
    os.environ.setdefault("TTCBENCH_CACHE", str(args.results / "cache.sqlite"))
    rows = []
    for label, parameter, budgets, extra in STRATEGIES:
        if args.only and label not in args.only:
            continue
        started = time.perf_counter()
        summary = run_one(args.results, args.per_task, budgets, extra)
        wall = time.perf_counter() - started
        for _, row in summary.iterrows():
            rows.append({
                "strategy": label, "budget parameter": parameter, "budget": row["budget"],
                "calls/problem": round(row["calls"], 2), "tokens/problem": round(row["tokens"]),
                "accuracy": f"{row['accuracy']:.3f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}]",
                "wall s (run)": round(wall),
            })  # fmt: skip
        print(markdown(rows[-len(summary) :]), flush=True)
    print("\n" + markdown(rows))


def markdown(rows: list[dict[str, object]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(r[h]) for h in header) + " |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
