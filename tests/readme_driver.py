"""Runs README examples for tests/test_readme.py in one process: `python readme_driver.py
PLAN.json RESULTS.json`, in the folder where the examples run.

Each step is a console script called through its own entry point (what `pip install` puts on
the PATH calls the same function), a python block, or a shell command; its exit status and
output are written to RESULTS.json, in order. One process shares the imports (litellm, W&B,
matplotlib) that a process per command would pay each time.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import time
import traceback
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any


def run_entry(argv: list[str]) -> int:
    import ttcbench.cli

    (entry,) = entry_points(group="console_scripts", name=argv[0])
    sys.argv = list(argv)
    # `ttcbench` ends a finished command with os._exit (no teardown): here the next README
    # command runs in this same process, so the command returns instead.
    ttcbench.cli.exit_now = lambda: None  # type: ignore[attr-defined]
    try:
        returned = entry.load()()
    except SystemExit as stop:
        code = stop.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        forget_hydra()
    return returned if isinstance(returned, int) else 0


def forget_hydra() -> None:
    """A new command starts without the previous command's Hydra state (a new process would)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None  # type: ignore[assignment]


def run_python(code: str, append: list[str]) -> int:
    import ttcbench
    import ttcbench.cli

    def run(overrides: Any = (), **kwargs: Any) -> Any:
        return ttcbench.cli.run([*overrides, *append], **kwargs)

    ttcbench.run = run  # type: ignore[attr-defined]
    namespace: dict[str, Any] = {"__name__": "__main__"}
    try:
        exec(compile(code, "README.md", "exec"), namespace)
    finally:
        forget_hydra()
    for name, value in namespace.items():
        if not name.startswith("_") and not isinstance(value, ModuleType):
            print(f"{name}={value}")
    return 0


def run_step(step: dict[str, Any]) -> tuple[int, str]:
    if step["kind"] == "shell":
        done = subprocess.run(step["command"], shell=True, capture_output=True, text=True,
                              executable="/bin/bash", timeout=300)  # fmt: skip
        return done.returncode, done.stdout + done.stderr
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            if step["kind"] == "entry":
                rc = run_entry(step["argv"])
            else:
                rc = run_python(step["code"], step["append"])
        except BaseException:  # reported as the step's failure
            traceback.print_exc()
            rc = 1
    return rc, out.getvalue()


def main() -> None:
    plan_path, results_path = sys.argv[1:3]
    with open(plan_path) as f:
        plan = json.load(f)
    results = []
    for step in plan:
        started = time.perf_counter()
        rc, output = run_step(step)
        ran = step.get("argv") or step.get("command") or step["code"]
        results.append({"ran": ran, "rc": rc, "output": output,
                        "seconds": round(time.perf_counter() - started, 1)})  # fmt: skip
        print(f"{results[-1]['seconds']:6.1f}s rc={rc} {ran}", file=sys.__stderr__, flush=True)
    with open(results_path, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
