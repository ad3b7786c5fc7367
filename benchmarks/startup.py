"""Fixed cost per command: start-up, time to the first request, finish, and a no-op rerun.

Each figure is the median of `--repeat` runs of a real `ttcbench` process (wall clock, from
the parent), against a local fake OpenAI server where a model is needed:

- `--help`, `--cfg job` and a config error (an unknown budget): what a user waits for when
  nothing is to be run;
- time to first request: process start to the fake server's first chat completion, with
  litellm's decision remembered from an earlier process (the usual case: every command after
  the first with a model, ttcbench/models/request_plans.py) and without (a fresh plan folder
  each run: litellm imported before the first request);
- a small job (2 problems x 4 samples), and the same command again (a rerun that makes no
  request: its outputs are up to date, so it only checks the store);
- the default job's task and budgets (W&B offline) against the fake server: its finish
  (last request to exit: summary, plot, exports, report, W&B) and its rerun;
- a 1,000-sample job (125 problems x 8 samples) and its rerun;
- `--import`: the modules `import ttcbench.cli` loads, the heavy ones named.

`--baseline DIR` also times the first request of the ttcbench tree at DIR (e.g. the last
commit's: `git archive HEAD | tar -x -C DIR`), each run alternating with one of this tree, so
both see the same machine load.

Usage: python benchmarks/startup.py [--repeat 3] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness_overhead import server_stats, start_server  # noqa: E402

HEAVY = ("litellm", "pandas", "matplotlib", "wandb", "datasets", "llama_cpp", "numpy", "scipy")


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    return time.perf_counter() - started, done.returncode


def median_of(repeat: int, command: list[str], env: dict[str, str]) -> str:
    runs = [timed(command, env) for _ in range(repeat)]
    codes = {code for _, code in runs}
    return f"{statistics.median(t for t, _ in runs):6.2f} s  (exit {','.join(map(str, codes))})"


def first_request_s(
    command: list[str], env: dict[str, str], base: str, tree: str | None = None
) -> float:
    """Process start to the fake server's first chat completion; `tree`: the ttcbench
    source tree to run (default: the installed one)."""
    if tree is not None:
        env = {**env, "PYTHONPATH": tree}
    server_stats(base, reset=True)
    started = time.time()
    subprocess.run(command, env=env, capture_output=True, cwd=tree)
    return server_stats(base)["first"] - started


def finish_s(command: list[str], env: dict[str, str], base: str) -> str:
    """A job's wall and its finish: from the fake server's last answer to the exit."""
    server_stats(base, reset=True)
    started = time.time()
    done = subprocess.run(command, env=env, capture_output=True)
    ended = time.time()
    return (
        f"{ended - started:6.2f} s, finish {ended - server_stats(base)['last']:5.2f} s  "
        f"(exit {done.returncode})"
    )


def heavy_modules() -> list[str]:
    code = "import sys, ttcbench.cli; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    names = set(loaded.stdout.split())
    return [name for name in HEAVY if name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", help="another ttcbench tree, for time to first request")
    args = parser.parse_args()
    env = {**os.environ, "WANDB_MODE": "offline", "OPENAI_API_KEY": "none"}
    ttc = [sys.executable, "-m", "ttcbench.cli"]
    print(f"heavy modules imported by `import ttcbench.cli`: {heavy_modules() or 'none'}")
    print(f"ttcbench --help              {median_of(args.repeat, [*ttc, '--help'], env)}")
    print(f"ttcbench --cfg job           {median_of(args.repeat, [*ttc, '--cfg', 'job'], env)}")
    bad = [*ttc, "budget.values=[0]"]
    print(f"config error (budget 0)      {median_of(args.repeat, bad, env)}")
    proc, base = start_server(0.0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env["TTCBENCH_PLANS"] = f"{tmp}/plans"
            job = [*ttc, f"results_dir={tmp}", "model=openai/bench", f"model.api_base={base}/v1",
                   "task.limit=2", "budget=pow2_4", "cache.enabled=false"]  # fmt: skip
            timed(job, env)  # leaves the plan the warm runs use
            trees = [None, "cold", *([args.baseline] if args.baseline else [])]
            firsts: dict[str | None, list[float]] = {tree: [] for tree in trees}
            for i in range(args.repeat):  # interleaved: all see the same load
                for tree in trees:
                    job_i = [*job, f"name=first{i}{tree or ''}".replace("/", "_")]
                    if tree == "cold":
                        cold = {**env, "TTCBENCH_PLANS": f"{tmp}/plans-cold{i}"}
                        firsts[tree].append(first_request_s(job_i, cold, base))
                    else:
                        firsts[tree].append(first_request_s(job_i, env, base, tree))
            for tree, times in firsts.items():
                label = "time to first request" + (f" ({tree})" if tree else "")
                print(f"{label:<29}{statistics.median(times):6.2f} s  "
                      f"(runs: {', '.join(f'{t:.2f}' for t in times)})")  # fmt: skip
            print(f"small job (8 samples)        {median_of(1, [*job, 'name=small'], env)}")
            print(
                f"rerun, no request            {median_of(args.repeat, [*job, 'name=small'], env)}"
            )
            fake = [*ttc, f"results_dir={tmp}", "model=openai/bench", f"model.api_base={base}/v1",
                    "cache.enabled=false", "logger.mode=offline"]  # fmt: skip
            default = [*fake, "name=default"]  # the default task and budgets
            print(f"default job                  {finish_s(default, env, base)}")
            print(f"  rerun, no request          {median_of(args.repeat, default, env)}")
            big = [*fake, "name=big", "task.limit=125", "budget=pow2_8"]
            print(f"1,000-sample job             {finish_s(big, env, base)}")
            print(f"  rerun, no request          {median_of(args.repeat, big, env)}")
    finally:
        proc.terminate()


if __name__ == "__main__":
    main()
