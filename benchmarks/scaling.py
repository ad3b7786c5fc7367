"""The measured part of docs/scaling.md: bytes and analysis cost of large pools, projected to
10,000 problems x N=256 x 3 models x 5 strategies.

Writes two synthetic run folders the way a run does (one model, GSM8K-like prompts and ~300-token
answers): `majority_vote`, which pays for a pool of N samples per problem, and
`best_of_n[oracle]`, which re-reads the same pool from the cache (its rows are `cached`). Each
request's samples are one store transaction (n = max_n = 16), as the sampler writes them. Then
it measures bytes per call in SQLite and Parquet and per entry of a cache shard, and runs each
analysis stage in a subprocess of its own: wall seconds and that process's peak RSS.

    python benchmarks/scaling.py [--problems 500] [--samples 256] [--out DIR]

The projection at the end is linear: bytes and load/report cost per call row, summary,
bootstrap and fit cost per (problem x budget) attempt row. docs/scaling.md explains both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pandas as pd
from analysis_scale import synthetic_calls  # benchmarks/ is on sys.path when run as a script

from ttcbench.cache import CallCache
from ttcbench.sampler import messages_hash
from ttcbench.store import SampleStore
from ttcbench.types import Attempt, Call

MODEL = "hosted_vllm/Qwen/Qwen2.5-7B-Instruct"
MAX_N = 16  # conf/model/vllm.yaml: samples per request, one store transaction each
PROMPT_CHARS = 600  # ~150 tokens: a GSM8K question and its answer-format instruction
STAGES = ("load_calls", "load_attempts", "summary", "bootstrap", "frontier", "fits", "report")
PER_CALL = {"load_calls", "frontier", "report"}  # the rest read attempts only
# The study of docs/scaling.md: problems, budgets (1..256) and runs (models x strategies).
STUDY_PROBLEMS, STUDY_BUDGETS, STUDY_RUNS = 10_000, 9, 3 * 5


def corpus(chars: int, seed: int = 0) -> str:
    """English-like text (Zipf-drawn words and numbers) to cut outputs from: compresses about
    as well as model prose, unlike random bytes or one repeated sentence."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlucmfwypvbgkq"))
    words = [str(i) if i % 7 == 3 else "".join(rng.choice(letters, 2 + i % 8))
             for i in range(4000)]  # fmt: skip
    ranks = np.minimum(rng.zipf(1.3, chars // 4), len(words)) - 1
    return " ".join(words[r] for r in ranks)[:chars]


def call_rows(calls: pd.DataFrame, text: str, strategy: str, cached: bool) -> list[Call]:
    """One problem's pool as the store's Call records (outputs are slices of `text`)."""
    pid = str(calls["problem_id"].iat[0])
    rng = np.random.default_rng(zlib.crc32(pid.encode()))
    prompt = text[: PROMPT_CHARS - 60] + f" ({pid}) Finish with 'The answer is N'."
    messages = [{"role": "user", "content": prompt}]
    rows = []
    for r in calls.itertuples():
        length = int(r.completion_tokens) * 4  # ~4 characters per token
        start = int(rng.integers(0, len(text) - length))
        rows.append(Call(
            key=rng.bytes(32).hex(), run_id=strategy, task="gsm8k", problem_id=pid,
            classes={"difficulty": r.class_difficulty}, strategy=strategy, role="generate",
            sample_index=int(r.sample_index), seed=int(r.sample_index), model=MODEL,
            messages_hash=messages_hash(messages), messages=messages,
            output=text[start : start + length] + f" The answer is {r.extracted}.",
            extracted=r.extracted, target="right", score=float(r.score),
            prompt_tokens=PROMPT_CHARS // 4, completion_tokens=int(r.completion_tokens),
            latency_s=0.0 if cached else 9.5, finish_reason="stop", cached=cached,
            started_at=1.7e9, finished_at=1.7e9 + 9.5, attempts=0 if cached else 1,
        ))  # fmt: skip
    return rows


def attempt_rows(pool: pd.DataFrame, strategy: str) -> list[Attempt]:
    """pool_estimates rows of one strategy as the store's Attempt records."""
    names = {f.name for f in fields(Attempt)}
    rows = pool.assign(run_id=strategy, model="qwen7b", answer=None, classes=[
        {"difficulty": c} for c in pool["class_difficulty"]])  # fmt: skip
    rows = rows[[c for c in rows.columns if c in names]].astype(object)
    return [Attempt(**{k: (None if v is pd.NA or v != v else v) for k, v in row.items()})
            for row in rows.to_dict("records")]  # fmt: skip


def write_runs(out: Path, problems: int, samples: int, chars: int) -> dict[str, float]:
    """The two run folders and a cache shard; returns the byte and write-time figures."""
    from ttcbench.analysis.pools import pool_estimates

    calls = synthetic_calls(problems, samples)
    calls["completion_tokens"] = np.random.default_rng(1).integers(
        chars // 8, 3 * chars // 8, len(calls)
    )  # mean chars/4 tokens, i.e. ~chars characters
    text = corpus(4_000_000)
    budgets = [2**i for i in range(int(np.log2(samples)) + 1)]
    pools = pool_estimates(calls, budgets)
    runs = {"majority_vote": ("majority_vote", False), "best_of_n": ("best_of_n", True)}
    cache = CallCache(out / ".cache" / "calls")  # a folder of per-job shards
    figures: dict[str, float] = {}
    for folder, (strategy, cached) in runs.items():
        run = out / folder
        store = SampleStore(run / "store.sqlite")
        (run / "config.yaml").write_text(json.dumps({
            "model": {"name": "qwen7b", "params_b": 7.0}, "task": {"name": "gsm8k"},
            "strategy": {"name": strategy}}))  # fmt: skip
        spent = write_pool(calls, text, strategy, store, None if cached else cache)
        figures[f"{folder} store s"], figures[f"{folder} cache s"] = spent
        pool = pools[pools["strategy"] == strategy].assign(verifier="oracle" if cached else None)
        store.put_attempts(attempt_rows(pool, strategy))
        store.close()
        _checkpoint(run / "store.sqlite")
        store = SampleStore(run / "store.sqlite")  # reopened as a finished job exports it
        store.export(run)
        store.close()
    cache.close()
    figures["problems"] = problems
    figures["calls per run"] = len(calls)
    figures["attempts per run"] = len(calls) // samples * len(budgets)
    return figures


def write_pool(
    calls: pd.DataFrame, text: str, strategy: str, store: SampleStore, cache: CallCache | None
) -> tuple[float, float]:
    """Every problem's pool, one store transaction per request of MAX_N samples and, for the
    run that pays (`cache` given), one cache transaction after it, as the sampler commits
    them. Returns the seconds spent in store and in cache writes."""
    store_s = cache_s = 0.0
    for _, group in calls.groupby("problem_id", sort=False):
        rows = call_rows(group, text, strategy, cached=cache is None)
        for i in range(0, len(rows), MAX_N):
            request = rows[i : i + MAX_N]
            start = time.perf_counter()
            store.put_calls(request)
            store_s += time.perf_counter() - start
            if cache is not None:
                entries = [(c.key, MODEL, _payload(c)) for c in request]
                start = time.perf_counter()
                cache.put_many(entries)
                cache_s += time.perf_counter() - start
    return store_s, cache_s


def _payload(call: Call) -> dict[str, object]:
    """What the sampler caches for a sample: its Completion, as a dict."""
    from ttcbench.models.client import Completion  # imports litellm: only here

    names = {f.name for f in fields(Completion)} - {"text"}
    return asdict(Completion(text=call.output, **{n: getattr(call, n) for n in names}))


def _checkpoint(path: Path) -> None:
    """Fold the WAL into the database file, so its size is the data's (as after a run)."""
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def run_stage(name: str, runs: list[Path], resamples: int, fit_resamples: int) -> float:
    """One stage in this (child) process: the wall seconds of its work (loading the attempts
    it reads is not counted, except in the load stages)."""
    import ttcbench
    from ttcbench.analysis.consistency import link_pools
    from ttcbench.analysis.frontier import strategy_levels
    from ttcbench.analysis.report import main as report
    from ttcbench.analysis.scaling import fit_table, gain_table
    from ttcbench.analysis.summary import summarize

    by = ["class_difficulty"]
    needs = name in ("summary", "bootstrap", "frontier", "fits")
    attempts = ttcbench.load(*runs, what="attempts") if needs else None
    start = time.perf_counter()
    if name in ("load_calls", "load_attempts"):
        ttcbench.load(*runs, what=name.removeprefix("load_"))
    elif name == "summary":
        summarize(attempts, n_resamples=resamples)
    elif name == "bootstrap":
        gain_table(attempts, by=by, n_resamples=resamples)
    elif name == "frontier":  # two-level: problems, then each problem's pool
        calls = ttcbench.load(*runs, what="calls")
        linked, _ = link_pools(attempts, calls)
        strategy_levels(linked, by=by, calls=calls, n_resamples=resamples)
    elif name == "fits":
        fit_table(attempts, by=by, n_resamples=fit_resamples)
    elif name == "report":
        out = runs[0].parent / "report"
        options = ["-o", str(out), "--fit-resamples", str(fit_resamples)]
        assert report([*map(str, runs), *options]) == 0
    return time.perf_counter() - start


def _peak_rss_gib() -> float:
    """This process's peak RSS since its exec (VmHWM): getrusage's ru_maxrss may carry the
    parent's peak across fork and exec, which would charge the generator to every stage."""
    status = Path("/proc/self/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 2**20  # kB -> GiB


def measure(name: str, runs: list[Path], args: argparse.Namespace) -> tuple[float, float]:
    """(wall s of the stage's work, peak RSS GiB of its process: imports and loading too)."""
    command = [sys.executable, __file__, "--stage", name, "--resamples", str(args.resamples),
               "--fit-resamples", str(args.fit_resamples), *map(str, runs)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"stage {name} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return figures["wall"], figures["rss_gib"]


# Per problem and model at N = 256 (budgets 1..256): store rows, requests, prompt and
# completion tokens the servers process. Rows follow each strategy's planned_calls; requests
# carry n <= 16; a prompt is prefilled once per request. docs/scaling.md derives each line.
STUDY = {  # strategy: (rows, requests, prompt tokens, completion tokens)
    "majority_vote": (256, 16, 16 * 150, 256 * 250),
    "best_of_n[reward_model]": (512, 256, 256 * 400, 0),  # pool cached; 256 reward requests
    "weighted_vote[reward_model]": (512, 0, 0, 0),  # pool and rewards cached
    "tournament": (256 + 765, 255, 255 * 710, 765 * 100),  # 255 matches x 3 votes (n=3)
    "beam_search": (2796, 651, 651 * 335, 2796 * 50),  # widths 1..64 x 4 expansions, 6 steps
}


def project(figures: dict[str, float], stages: dict[str, tuple[float, float]]) -> None:
    """The study's totals, and the measured figures scaled linearly: per call row (bytes,
    loading calls, frontier, report) or per attempt row (the other stages)."""
    rows, attempts = figures["calls per run"], figures["attempts per run"]
    per_model = [sum(v[i] for v in STUDY.values()) * STUDY_PROBLEMS for i in range(4)]
    study_rows, study_attempts = 3 * per_model[0], STUDY_PROBLEMS * STUDY_BUDGETS * STUDY_RUNS
    prompt, completion = 3 * per_model[2] / 1e9, 3 * per_model[3] / 1e9
    print(f"\nstudy (3 models x 5 strategies, projected): {study_rows:,} call rows, "
          f"{3 * per_model[1]:,} requests, {prompt:.2f}B prompt + {completion:.2f}B "
          f"completion tokens, {study_attempts:,} attempts")  # fmt: skip
    for kind in ("store", "parquet"):
        per = figures[f"{kind} bytes"] / rows
        print(f"{kind:<8} {per:6.0f} B per generate row; x {study_rows:,} rows: "
              f"{per * study_rows / 1e9:,.0f} GB")  # fmt: skip
    print(f"cache    {figures['cache bytes'] / figures['cache entries']:6.0f} B per entry")
    base = stages["load_attempts"][1]  # interpreter, imports and a small frame
    grow = STUDY_PROBLEMS / figures["problems"]
    print(f"{'stage':<14} {'10k-problem mv run':>22} {'whole study, one process':>26}")
    for name, (wall, rss) in stages.items():
        per_call = name in PER_CALL
        unit = 2 * (rows if per_call else attempts)  # the stages read both runs
        run = (rows if per_call else attempts) * grow / unit  # one majority_vote run
        study = (study_rows if per_call else study_attempts) / unit
        cells = []
        for factor in (run, study):
            extra = rss - base
            memory = f"{base + extra * factor:7.1f} GiB" if extra > 0.05 else "  ~base"
            cells.append(f"{wall * factor / 60:8.1f} min {memory}")
        print(f"{name:<14} {cells[0]:>22} {cells[1]:>26}")


def benchmark(out: Path, args: argparse.Namespace) -> None:
    """Write the runs under `out`, print their figures, measure each stage, project."""
    print(
        f"cpus {os.cpu_count()}  load {os.getloadavg()}  "
        f"{args.problems:,} problems x N={args.samples}, ~{args.chars} chars per output"
    )
    figures = write_runs(out, args.problems, args.samples, args.chars)
    runs = [out / "majority_vote", out / "best_of_n"]
    sizes = {"store": "store.sqlite", "parquet": "calls.parquet"}
    for kind, name in sizes.items():  # per run: the two runs hold the same pool
        figures[f"{kind} bytes"] = (runs[0] / name).stat().st_size
    figures["attempts parquet bytes"] = (runs[0] / "attempts.parquet").stat().st_size
    figures["cache bytes"] = sum(p.stat().st_size for p in (out / ".cache").rglob("*.sqlite"))
    figures["cache entries"] = figures["calls per run"]
    rows = figures["calls per run"]
    print(f"calls per run {rows:,.0f}, attempts per run {figures['attempts per run']:,.0f} "
          f"(measured)")  # fmt: skip
    requests = rows / MAX_N
    for folder in ("majority_vote", "best_of_n"):
        for kind in ("store", "cache"):
            spent = figures[f"{folder} {kind} s"]
            if spent:
                print(f"{kind} writes {folder:<14} {spent:6.1f} s: {spent / requests * 1e3:5.2f} "
                      f"ms per request of {MAX_N} ({rows / spent:,.0f} samples/s)")  # fmt: skip
    for key in ("store bytes", "parquet bytes", "cache bytes"):
        print(f"{key:<16} {figures[key] / 2**20:8.1f} MiB  {figures[key] / rows:6.0f} B/row")
    print(f"attempts.parquet {figures['attempts parquet bytes'] / 2**20:8.1f} MiB")
    stages = {}
    for name in STAGES:
        stages[name] = measure(name, runs, args)
        wall, rss = stages[name]
        print(f"{name:<14} {wall:7.2f} s  peak RSS {rss:5.2f} GiB  "
              f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
    project(figures, stages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--chars", type=int, default=1200, help="mean output characters")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--fit-resamples", type=int, default=200, help="as ttcbench-report's")
    parser.add_argument("--out", type=Path, default=None, help="parent of the scratch folder")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("runs", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:  # a child of `measure`
        wall = run_stage(args.stage, args.runs, args.resamples, args.fit_resamples)
        print(json.dumps({"wall": wall, "rss_gib": _peak_rss_gib()}))
        return
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        benchmark(Path(tmp), args)


if __name__ == "__main__":
    main()
