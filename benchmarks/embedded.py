"""Completion tokens/s of the embedded model, printed as figures (not a timed test).

Three ways to draw N samples of each of the default run's prompts (task arithmetic,
temperature 0.7, top_p 0.95, max_tokens 160, seeds 0..N-1):

- bare: llama-cpp-python as a user would call it, `Llama.create_chat_completion` one sample
  after another (its default threads; its own prefix cache reuses the prompt);
- old:  ttcbench's provider before batching: `llm.reset()`, a prompt re-read and
  `logits_all=True` for every sample, logprobs in numpy over the kept logits;
- new:  the batching engine through the litellm provider, one request of n=N per prompt,
  `--concurrency` requests in flight (the runner's default 4), logprobs on like the default
  config (`new-nolp`: without them; `new-q4_1`: the shipped Q4_1 weights, not their F16 copy).

Methods run interleaved, round after round, so a busy machine slows them alike; ratios are
within one run. Usage: python benchmarks/embedded.py [--prompts 4] [--rounds 1]
[--n 1 4 8 16] [--methods bare old new new-nolp new-q4_1]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from typing import Any

import numpy as np

from ttcbench.models.local import LlamaCppProvider, embedded_model_path
from ttcbench.tasks.registry import load_task

PARAMS = {"temperature": 0.7, "top_p": 0.95, "max_tokens": 160}


def prompts(count: int) -> list[list[dict[str, str]]]:
    task = load_task("arithmetic", limit=max(count, 2), seed=0)
    return [[{"role": "user", "content": p.prompt}] for p in task.problems[:count]]


def bare(llm: Any, messages: list[list[dict]], n: int) -> int:
    tokens = 0
    for m in messages:
        for i in range(n):
            out = llm.create_chat_completion(messages=m, seed=i, **PARAMS)
            tokens += out["usage"]["completion_tokens"]
    return tokens


def old(llm: Any, messages: list[list[dict]], n: int) -> int:
    from scipy.special import logsumexp

    tokens = 0
    for m in messages:
        for i in range(n):
            llm.reset()
            out = llm.create_chat_completion(messages=m, seed=i, **PARAMS)
            used, count = out["usage"]["prompt_tokens"], out["usage"]["completion_tokens"]
            ids = llm._input_ids[used : used + count]  # the logprobs the old path computed
            rows = np.asarray(llm.scores[used - 1 : used - 1 + len(ids)], np.float64)
            _ = rows[np.arange(len(ids)), ids] - logsumexp(rows, axis=1)
            tokens += count
    return tokens


def new(provider: LlamaCppProvider, messages: list[list[dict]], n: int, concurrency: int,
        logprobs: bool) -> int:  # fmt: skip
    async def run() -> int:
        slots = asyncio.Semaphore(concurrency)

        async def one(m: list[dict]) -> int:
            params = {**PARAMS, "n": n, "seed": 0, "logprobs": logprobs}
            async with slots:
                futures = provider._submit("smollm2", m, params)
                parts = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
            return sum(part["completion_tokens"] for part in parts)

        return sum(await asyncio.gather(*(one(m) for m in messages)))

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--n", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="new engine; default: auto")
    parser.add_argument(
        "--methods", nargs="+", default=["bare", "old", "new", "new-nolp", "new-q4_1"]
    )
    args = parser.parse_args()

    from llama_cpp import Llama

    path = str(embedded_model_path("smollm2"))
    messages = prompts(args.prompts)
    runners: dict[str, Any] = {}
    if "bare" in args.methods:
        llm_bare = Llama(model_path=path, n_ctx=2048, verbose=False)
        runners["bare"] = lambda n: bare(llm_bare, messages, n)
    if "old" in args.methods:
        llm_old = Llama(model_path=path, n_ctx=2048, logits_all=True, verbose=False)
        runners["old"] = lambda n: old(llm_old, messages, n)
    provider = LlamaCppProvider(threads=args.threads)
    provider._engine("smollm2")
    for name, lp in (("new", True), ("new-nolp", False)):
        if name in args.methods:
            runners[name] = lambda n, lp=lp: new(provider, messages, n, args.concurrency, lp)
    if "new-q4_1" in args.methods:  # the shipped Q4_1 weights instead of their F16 copy
        q41 = LlamaCppProvider(threads=args.threads, weights="gguf")
        q41._engine("smollm2")
        runners["new-q4_1"] = lambda n: new(q41, messages, n, args.concurrency, True)

    totals: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for _ in range(args.rounds):
        for n in args.n:
            for name, run in runners.items():
                started = time.perf_counter()
                tokens = run(n)
                totals[name, n][0] += tokens
                totals[name, n][1] += time.perf_counter() - started
    engine = provider._engine("smollm2")
    print(f"{len(messages)} prompts x N samples, {args.rounds} round(s); new engine: "
          f"{engine.n_seq} sequences, threads {engine.threads.options} -> "
          f"{engine.threads.current} at the end")  # fmt: skip
    names = list(runners)
    print("| N | " + " | ".join(f"{m} tok/s" for m in names) + " | new/bare | new/old |")
    print("|---" * (len(names) + 3) + "|")
    for n in args.n:
        rate = {m: totals[m, n][0] / totals[m, n][1] for m in names}
        ratio = [f"{rate['new'] / rate[b]:.2f}x" if {"new", b} <= rate.keys() else "-"
                 for b in ("bare", "old")]  # fmt: skip
        print(f"| {n} | " + " | ".join(f"{rate[m]:.1f}" for m in names) + " | "
              + " | ".join(ratio) + " |")  # fmt: skip
    provider.close()


if __name__ == "__main__":
    main()
