"""Harness overhead: samples/s through ttcbench vs a bare aiohttp client, same requests.

A local OpenAI-compatible server (its own process, aiohttp) answers every chat completion
after a fixed delay. The bare client sends the same requests (same `n`, same concurrency)
with aiohttp and nothing else; ttcbench runs a real job (majority_vote on generated
arithmetic problems, cache and W&B off) whose sampling phase the server times: first request
received to last answer sent. The ratio of the two samples/s is the harness's overhead; it is
measured in one run, interleaved, because these machines are noisy.

Each row prints both samples/s (server-timed), their ratio and the 1-minute load average,
since a loaded machine slows the CPU-bound ttcbench side more than the bare client.

Usage:
  python benchmarks/harness_overhead.py                      # the issue's grid, 10,000 samples
  python benchmarks/harness_overhead.py --samples 2000 --latency-ms 50 --concurrency 32 --n 8
  python benchmarks/harness_overhead.py --profile            # py-spy top of ttcbench's part
  python benchmarks/harness_overhead.py --transport auto litellm   # before/after the fast path
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = os.environ.get("BENCH_MODEL", "hosted_vllm/bench")
ANSWER = "Adding them up step by step gives the total ({seed}.{i}). The answer is 42."
"""Every sample's text differs (seed and choice index), as real samples do: grading work that
identical texts would let a memo skip is measured, not skipped."""


def serve(port: int, latency_s: float) -> None:
    """The fake provider: every completion waits `latency_s`, then answers `n` choices."""
    from aiohttp import web

    stats = {"first": None, "last": None, "requests": 0, "samples": 0}

    async def complete(request: web.Request) -> web.Response:
        body = await request.json()
        now = time.time()
        stats["first"] = stats["first"] or now
        if latency_s:
            await asyncio.sleep(latency_s)
        n = int(body.get("n") or 1)
        seed = body.get("seed")
        choices = [
            {"index": i, "finish_reason": "stop", "logprobs": None,
             "message": {"role": "assistant", "content": ANSWER.format(seed=seed, i=i)}}
            for i in range(n)
        ]  # fmt: skip
        stats["requests"] += 1
        stats["samples"] += n
        stats["last"] = time.time()
        return web.json_response(
            {"id": "x", "object": "chat.completion", "created": int(now), "model": body["model"],
             "choices": choices,
             "usage": {"prompt_tokens": 40, "completion_tokens": 14 * n,
                       "total_tokens": 40 + 14 * n}}
        )  # fmt: skip

    async def read_stats(_: web.Request) -> web.Response:
        return web.json_response(stats)

    async def reset(_: web.Request) -> web.Response:
        stats.update(first=None, last=None, requests=0, samples=0)
        return web.json_response(stats)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    app.router.add_get("/stats", read_stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(latency_s: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--latency-ms", str(latency_s * 1000)]
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the fake server did not start")


def server_stats(base: str, reset: bool = False) -> dict:
    import urllib.request

    req = urllib.request.Request(f"{base}/{'reset' if reset else 'stats'}",
                                 method="POST" if reset else "GET")  # fmt: skip
    with urllib.request.urlopen(req) as response:
        return json.loads(response.read())


def samples_per_s(stats: dict) -> float:
    return stats["samples"] / max(stats["last"] - stats["first"], 1e-9)


async def bare_client(base: str, samples: int, concurrency: int, n: int) -> None:
    """What a minimal client does: the same JSON body, `concurrency` requests in flight."""
    import aiohttp

    gate = asyncio.Semaphore(concurrency)
    prompt = "What is 17 + 25? Think step by step."
    body = {"model": "bench", "temperature": 0.7, "top_p": 0.95, "max_tokens": 160, "n": n,
            "messages": [{"role": "user", "content": prompt}]}  # fmt: skip
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(seed: int) -> None:
            async with (
                gate,
                session.post(
                    f"{base}/v1/chat/completions", json={**body, "seed": seed}
                ) as response,
            ):
                data = await response.json()
                assert len(data["choices"]) == n

        await asyncio.gather(*(one(i) for i in range(samples // n)))


def ttcbench_job(
    base: str, root: Path, samples: int, concurrency: int, n: int, transport: str = "auto"
) -> list[str]:
    """The command of a real job with `samples` samples (problems x budget = samples)."""
    budget = 8
    problems = samples // budget
    return [
        sys.executable, "-m", "ttcbench.cli", f"results_dir={root}", "name=bench",
        "model=vllm", f"model.model={MODEL}", f"model.api_base={base}/v1",
        f"model.transport={transport}",
        f"model.max_n={n}", "task=arithmetic", f"task.limit={problems}",
        "strategy=majority_vote", f"budget.values=[{budget}]", "logger=none",
        "cache.enabled=false", f"runner.concurrency={concurrency}",
        f"runner.max_parallel_problems={max(concurrency, 8)}", "runner.progress=false",
    ]  # fmt: skip


def measure(
    base: str, samples: int, concurrency: int, n: int, profile: bool, transports: list[str]
) -> tuple[float, list[float]]:
    """Samples/s of the bare client, then of a ttcbench job per transport, interleaved."""
    server_stats(base, reset=True)
    asyncio.run(bare_client(base, samples, concurrency, n))
    bare = samples_per_s(server_stats(base))
    return bare, [job_rate(base, samples, concurrency, n, profile, t) for t in transports]


def job_rate(
    base: str, samples: int, concurrency: int, n: int, profile: bool, transport: str
) -> float:
    server_stats(base, reset=True)
    with tempfile.TemporaryDirectory() as tmp:
        command = ttcbench_job(base, Path(tmp), samples, concurrency, n, transport)
        if profile:
            command = ["py-spy", "record", "-o", f"profile_{transport}_c{concurrency}_n{n}.svg",
                       "--format", "flamegraph", "--", *command]  # fmt: skip
        env = {**os.environ, "WANDB_MODE": "offline"}
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    stats = server_stats(base)
    if stats["samples"] < samples:
        raise RuntimeError(f"ttcbench sent {stats['samples']} of {samples} samples")
    return samples_per_s(stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--latency-ms", type=float, nargs="*", default=[50.0, 0.0])
    parser.add_argument("--concurrency", type=int, nargs="*", default=[4, 32])
    parser.add_argument("--n", type=int, nargs="*", default=[1, 8])
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--profile", action="store_true", help="py-spy flame graphs (SVG)")
    parser.add_argument("--transport", nargs="*", default=["auto"], choices=["auto", "litellm"],
                        help="model.transport of the jobs (litellm: the old path)")  # fmt: skip
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.latency_ms[0] / 1000)
        return
    heads = "".join(f" {t + '/s':>10} {'ratio':>6}" for t in args.transport)
    print(f"{'latency':>8} {'conc':>5} {'n':>3} {'bare/s':>9}{heads} {'load':>5}")
    for latency in args.latency_ms:
        proc, base = start_server(latency / 1000)
        try:
            for concurrency in args.concurrency:
                for n in args.n:
                    bare, ours = measure(
                        base, args.samples, concurrency, n, args.profile, args.transport
                    )
                    cells = "".join(f" {rate:>10.0f} {rate / bare:>6.2f}" for rate in ours)
                    load = os.getloadavg()[0]
                    print(f"{latency:>6.0f}ms {concurrency:>5} {n:>3} {bare:>9.0f}{cells} "
                          f"{load:>5.1f}", flush=True)  # fmt: skip
        finally:
            proc.terminate()


if __name__ == "__main__":
    main()
