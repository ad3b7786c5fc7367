"""The per-budget summary table: accuracy with a bootstrap interval and what it cost.

Problems are the unit of sampling, so the interval comes from resampling problems.
Attempts that failed on provider errors are excluded from accuracy and counted separately,
never silently scored as wrong.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ttcbench.analysis.bootstrap import bootstrap_ci
from ttcbench.analysis.consistency import POOLED

SUMMARY_COLUMNS = [
    "strategy",
    "budget",
    "problems",
    "errors",
    "accuracy",
    "ci_low",
    "ci_high",
    "calls",
    "tokens",
    "sequential_tokens",
    "model_s",
    "cost_usd",
    "flops",
]


def summarize(
    attempts: pd.DataFrame,
    *,
    by: tuple[str, ...] = (),
    level: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (strategy, budget), or per (*by, strategy, budget); compute columns are
    means per problem. `by=("task",)` gives a suite's per-task breakdown."""
    rows = []
    keys = [*by, "strategy", "budget"]
    attempts = attempts.assign(strategy=strategy_labels(attempts))
    for values, group in attempts.groupby(keys, sort=True):
        labels = dict(zip(keys, values, strict=True))
        strategy, budget = labels["strategy"], labels["budget"]
        ok = group[group["error"].isna()]
        scores = ok["score"].to_numpy(dtype=float)
        low, high = (
            bootstrap_ci(scores, level=level, n_resamples=n_resamples, seed=seed)
            if len(scores)
            else (np.nan, np.nan)
        )
        rows.append(
            {
                **{k: labels[k] for k in by},
                "strategy": strategy,
                "budget": int(budget),
                "problems": len(ok),
                "errors": len(group) - len(ok),
                "accuracy": float(scores.mean()) if len(scores) else np.nan,
                "ci_low": float(low),
                "ci_high": float(high),
                "calls": float(ok["calls"].mean()),
                "tokens": float((ok["prompt_tokens"] + ok["completion_tokens"]).mean()),
                "sequential_tokens": float(ok["sequential_tokens"].mean()),
                "model_s": float(ok["latency_s"].mean()),
                "cost_usd": float(ok["cost_usd"].mean()),
                "flops": float(pd.to_numeric(ok["flops"], errors="coerce").mean())
                if "flops" in ok
                else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=[*by, *SUMMARY_COLUMNS])


def strategy_labels(attempts: pd.DataFrame) -> pd.Series:
    """`best_of_n[oracle]` for strategies that pick with a verifier, so an oracle (not
    deployable) result is never mistaken for a deployable one; plain names otherwise.
    `single (1 draw)` for `single` scored on its one sample, not its pool's per-sample
    accuracy (`consistency.link_pools`): one draw per problem is a noisier estimate."""
    pooled = attempts["estimator"] == POOLED if "estimator" in attempts else False
    name = attempts["strategy"].where(
        (attempts["strategy"] != "single") | pooled, "single (1 draw)"
    )
    if "verifier" not in attempts:
        return name
    with_verifier = name + "[" + attempts["verifier"].astype("string") + "]"
    return with_verifier.where(attempts["verifier"].notna(), name)


def to_markdown(summary: pd.DataFrame, level: float = 0.95) -> str:
    """A Markdown table a person can paste into a paper draft or an issue."""
    by = [c for c in summary.columns if c not in SUMMARY_COLUMNS]
    header = (
        "| " + "".join(f"{c} | " for c in by) + f"strategy | budget | accuracy [{level:.0%} CI] "
        "| tokens/problem | calls/problem | model s/problem | USD/problem | problems | errors |"
    )
    lines = [header, "|" + "---|" * (9 + len(by))]
    for r in summary.itertuples():
        lead = "".join(f"{getattr(r, c)} | " for c in by)
        interval = f"[{r.ci_low:.3f}, {r.ci_high:.3f}]"
        lines.append(
            f"| {lead}{r.strategy} | {r.budget} | {r.accuracy:.3f} {interval} "
            f"| {r.tokens:.0f} | {r.calls:.2f} | {r.model_s:.2f} | {r.cost_usd:.5f} "
            f"| {r.problems} | {r.errors} |"
        )
    return "\n".join(lines) + "\n"


RUN_COLUMNS = ["task", "model", "strategy", "temperature", "max_tokens"]
"""What summary.csv states on every row besides the numbers, so the tables of many runs
concatenate into one frame that still says what each row measured."""


def with_run_columns(
    summary: pd.DataFrame, *, task: str, model: str, temperature: float, max_tokens: int
) -> pd.DataFrame:
    """summary.csv's table: `summary` led by the run's task (unless it has a per-task column),
    model label, strategy label (e.g. `best_of_n[oracle]`), temperature and max_tokens."""
    facts = {"task": task, "model": model, "temperature": temperature, "max_tokens": max_tokens}
    table = summary.assign(**{k: v for k, v in facts.items() if k not in summary})
    return table[[*RUN_COLUMNS, *(c for c in summary.columns if c not in RUN_COLUMNS)]]
