"""Consistent estimates from one pool: `single` read as its pool's per-sample accuracy.

`single` stores sample 0 of the pool `majority_vote` draws from (same model, messages and
sampling, hence the same call key), while `majority_vote` at budget 1 averages every sample
of that pool. Both estimate the accuracy of one sample; the pool's average is the one with
less noise, so when a report holds both, `single` is re-scored as the pool's per-sample
accuracy (mean score over the pool's samples, compute likewise averaged) and the two agree
exactly. Without such a pool `single` stays one draw per problem and is labelled
`single (1 draw)` (see `summary.strategy_labels`).

`link_pools` also records, on every attempt an estimator can re-score from a pool, which run's
calls hold that pool (`pool_run`) and how (`pool_estimator`): the frontier's two-level
bootstrap resamples those calls (`noise.within_noise`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

POOLED = "pool mean"
"""The `estimator` of a `single` attempt re-scored as its pool's per-sample accuracy."""
SAMPLE, MAJORITY, PASS = "sample_mean", "majority", "pass_at_k"
"""`pool_estimator` values: per-sample accuracy, majority@k, pass@k (best_of_n[oracle])."""
_KEYS = ["run", "task", "problem_id"]
_PER_SAMPLE = ["prompt_tokens", "completion_tokens", "latency_s", "cost_usd"]


def link_pools(attempts: pd.DataFrame, calls: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Attempts with `single` re-scored from its pool where one exists, `pool_run` and
    `pool_estimator` columns, and a note for the report saying what was done."""
    out = attempts.assign(pool_run=None, pool_estimator=None, pool_n=np.nan)
    if calls.empty or not {"role", "key", "run"} <= set(calls) or "run" not in attempts:
        return out, _notes(out)
    verifier = out["verifier"] if "verifier" in out else pd.Series(None, index=out.index)
    majority = (out["strategy"] == "majority_vote") & verifier.isna()
    oracle = (out["strategy"] == "best_of_n") & (verifier == "oracle")
    out.loc[majority | oracle, "pool_run"] = out.loc[majority | oracle, "run"]
    out.loc[majority, "pool_estimator"] = MAJORITY
    out.loc[oracle, "pool_estimator"] = PASS
    out = _pool_single(out, _generate(calls))
    return out, _notes(out)


def _generate(calls: pd.DataFrame) -> pd.DataFrame:
    ok = calls["error"].isna() if "error" in calls else True
    frame = calls[(calls["role"] == "generate") & ok].copy()
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce").fillna(0.0)
    return frame


def _pool_single(out: pd.DataFrame, gen: pd.DataFrame) -> pd.DataFrame:
    """Re-score `single` attempts whose own call is a sample of a larger pool of the same
    model, messages and sampling: its call key appears among that pool's keys."""
    is_single = (out["strategy"] == "single") & (out["error"].isna() if "error" in out else True)
    if not is_single.any() or gen.empty:
        return out
    own = gen[gen["strategy"] == "single"][[*_KEYS, "key", "messages_hash"]]
    member = gen[[*_KEYS, "key", "messages_hash"]].rename(columns={"run": "pool_run"})
    found = own.merge(member, on=["task", "problem_id", "key", "messages_hash"])
    pools = gen.groupby([*_KEYS, "messages_hash"], sort=False).agg(
        n=("score", "size"), score=("score", "mean"), **{c: (c, "mean") for c in _PER_SAMPLE}
    )
    pools.index = pools.index.set_names("pool_run", level="run")
    found = found.join(pools, on=["pool_run", "task", "problem_id", "messages_hash"])
    found = found[found["n"] >= 2].sort_values("n", ascending=False, kind="stable")
    found = found.drop_duplicates(_KEYS).set_index(_KEYS)
    rows = out.loc[is_single, _KEYS]
    hit = pd.MultiIndex.from_frame(rows).isin(found.index)
    where = rows.index[hit]
    if not len(where):
        return out
    pool = found.loc[pd.MultiIndex.from_frame(rows[hit])]
    old_tokens = out.loc[where, "prompt_tokens"].astype(float) + out.loc[
        where, "completion_tokens"
    ].astype(float)
    new_tokens = (pool["prompt_tokens"] + pool["completion_tokens"]).to_numpy()
    out.loc[where, "score"] = pool["score"].to_numpy()
    for column in _PER_SAMPLE:
        out.loc[where, column] = pool[column].to_numpy()
    out.loc[where, "sequential_tokens"] = new_tokens  # one sample: its own length
    if "flops" in out:
        ratio = np.where(old_tokens > 0, new_tokens / old_tokens.replace(0, np.nan), np.nan)
        out.loc[where, "flops"] = pd.to_numeric(out.loc[where, "flops"], errors="coerce") * ratio
    out.loc[where, "estimator"] = POOLED
    out.loc[where, "pool_run"] = pool["pool_run"].to_numpy()
    out.loc[where, "pool_estimator"] = SAMPLE
    out.loc[where, "pool_n"] = pool["n"].to_numpy()
    return out


def _notes(attempts: pd.DataFrame) -> list[str]:
    """What the report says about `single`: re-scored from a pool, or one draw."""
    single = attempts[attempts["strategy"] == "single"]
    if single.empty:
        return []
    pooled = single["estimator"] == POOLED
    notes = []
    if pooled.any():
        sizes = single.loc[pooled, "pool_n"].astype(int)
        size = (
            f"{sizes.iloc[0]}-sample"
            if sizes.nunique() == 1
            else (f"{sizes.min()}- to {sizes.max()}-sample")
        )
        notes.append(
            f"single: per-sample accuracy of the {size} pool (mean score over each problem's "
            "pool of the same model, prompt and sampling, which holds single's own sample), so "
            "single equals majority_vote at budget 1 instead of being one lucky or unlucky draw."
        )
    if (~pooled).any():
        notes.append(
            "single (1 draw): one sample per problem and no pool to average it with; its "
            "intervals and P(best) carry that draw's noise (see How the numbers are made)."
        )
    return notes
