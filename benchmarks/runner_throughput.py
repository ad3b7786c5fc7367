"""Runner throughput and the cost of a budget sweep, printed as figures (not a timed test).

1. Samples per second through the whole runner (Hydra config, the model client on its
   OpenAI-compatible fast path, sampler, SQLite store, grading) against an instant scripted
   server on 127.0.0.1, end to end (start-up included): the harness's own overhead. The
   sampling phase alone, against a bare client: benchmarks/harness_overhead.py.
2. The embedded model: samples per second, and the calls and tokens of a sweep over
   N = 1, 2, 4, 8, 16 next to those of N = 16 alone (cache off, so both really sample).

Usage: python benchmarks/runner_throughput.py [--problems 100] [--model-problems 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import ttcbench  # noqa: E402
from ttcbench.store import SampleStore  # noqa: E402


def timed_run(overrides: list[str]) -> tuple[Path, float]:
    started = time.perf_counter()
    run_dir = ttcbench.run(overrides)
    return run_dir, time.perf_counter() - started


def store_totals(run_dir: Path) -> tuple[int, int]:
    calls = SampleStore(run_dir / "store.sqlite").calls_frame()
    return len(calls), int((calls["prompt_tokens"] + calls["completion_tokens"]).sum())


def scripted_server(root: Path, problems: int) -> None:
    from fakeserver import FakeOpenAI

    with FakeOpenAI() as server:
        run_dir, wall = timed_run(
            [f"results_dir={root}", "model=llamacpp_server", f"model.api_base={server.api_base}",
             "model.name=scripted", f"task.limit={problems}", "budget=pow2_16", "logger=none",
             "cache.enabled=false", "runner.concurrency=8", "runner.max_parallel_problems=32"]
        )  # fmt: skip
    calls, _ = store_totals(run_dir)
    print(f"runner overhead (scripted instant server): {calls} samples in {wall:.1f}s "
          f"= {calls / wall:.1f} samples/s (one HTTP request per sample, end to end)")  # fmt: skip


def embedded_sweep(root: Path, problems: int) -> None:
    common = [f"results_dir={root}", f"task.limit={problems}", "logger=none",
              "cache.enabled=false"]  # fmt: skip
    sweep_dir, sweep_wall = timed_run([*common, "name=sweep", "budget=pow2_16"])
    alone_dir, alone_wall = timed_run([*common, "name=alone", "budget.values=[16]"])
    sweep_calls, sweep_tokens = store_totals(sweep_dir)
    alone_calls, alone_tokens = store_totals(alone_dir)
    print(
        f"embedded model, {problems} problems, sweep N=1,2,4,8,16: {sweep_calls} calls, "
        f"{sweep_tokens} tokens, {sweep_wall:.1f}s ({sweep_calls / sweep_wall:.2f} samples/s)"
    )
    print(
        f"embedded model, {problems} problems, N=16 alone:        {alone_calls} calls, "
        f"{alone_tokens} tokens, {alone_wall:.1f}s ({alone_calls / alone_wall:.2f} samples/s)"
    )
    ratio = sweep_tokens / alone_tokens
    calls_ratio = sweep_calls / alone_calls
    print(f"sweep / largest budget alone: calls {calls_ratio:.3f}, tokens {ratio:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--model-problems", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scripted_server(Path(tmp) / "scripted", args.problems)
        embedded_sweep(Path(tmp) / "embedded", args.model_problems)


if __name__ == "__main__":
    main()
