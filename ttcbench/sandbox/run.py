"""Run model-written code and decide, on evidence it cannot forge, whether it passed its tests.

``run_tests`` splits a graded run in two processes: the solution side, in the full jail
(``jail``), runs the untrusted program and answers calls; the test side, which the jail cannot
see (its own uid, limits and /tmp, outside the jail's namespaces), runs the task's
tests with the function under test bound to a proxy (``harness``).  Arguments and results
cross as plain data (``plain``), so every comparison is made by the test side between builtin
values, and the tests, the expected values and the verdict never enter a process that runs
untrusted code.  A pass is: the test side exited 0 after its last statement, said so on a pipe
only we read, and called the function at least once.

Tests that need more of the solution than one function (``decompose``), or pass it arguments
that are not plain data, run the fallback way: both in one interpreter, with a sentinel that
we send only after the last test ran.  That guards against accidents (``exit(0)`` before the
tests) but not against code aimed at this harness, so such results say ``trusted_compare``
False and runs count them.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from ttcbench.sandbox import harness, probe
from ttcbench.sandbox.decompose import can_split
from ttcbench.sandbox.jail import PYTHON_FLAGS, Jail, SandboxLimits
from ttcbench.sandbox.outcome import ExecutionResult, classify, failed_start, returncode
from ttcbench.sandbox.split import Split
from ttcbench.sandbox.watch import Watch, launch

__all__ = ["DEFAULT_LIMITS", "ExecutionResult", "run_many", "run_program", "run_tests"]

DEFAULT_LIMITS = SandboxLimits()


def _combined(files: dict[str, str], limits: SandboxLimits, sentinel: str) -> ExecutionResult:
    """One interpreter runs every file in order; with a sentinel, a pass also needs the line
    we send once the harness asks after the last file ran."""
    iso = probe.report_once()
    jail, ctl, child_ctl = Jail(iso, limits), None, None
    try:
        jail.setup({"_harness.py": harness.COMBINED, **files})
        if sentinel:
            ctl, child_ctl = socket.socketpair()
        fd = child_ctl.fileno() if child_ctl else -1
        no_net = str(int(not probe.has_netns()))
        argv = [iso.python, *PYTHON_FLAGS, "_harness.py", str(fd), no_net, *files]
        start, watch = time.monotonic(), Watch(limits)
        proc = launch(jail, argv, (fd,) if fd >= 0 else ())
        if isinstance(proc, str):
            return failed_start(proc)
        if child_ctl:
            child_ctl.close()  # the child has its copy
        with proc:  # closes the pipes and reaps the child on the way out
            out = watch.add(proc)
            try:
                verdict = watch.run(proc, ctl, sentinel)
            finally:
                jail.kill(proc)  # nothing may outlive a run, come what may
            duration = time.monotonic() - start
            watch.drain()
        if verdict is None and watch.over_cap():
            verdict = "output_limit"
        rc = returncode(proc.returncode, bool(iso.bwrap))
        stdout, stderr = watch.text(out, "stdout"), watch.text(out, "stderr")
        status, error = classify(limits, rc, verdict, stderr)
        if status == "passed" and sentinel and sentinel not in stdout.split():
            status, error = "exited_early", "the program exited with status 0 before the tests ran"
        trusted = False if sentinel else None
        return ExecutionResult(status == "passed", status, rc, stdout, stderr, duration, error,
                               trusted_compare=trusted)  # fmt: skip
    finally:
        for sock in (ctl, child_ctl):
            if sock:
                sock.close()
        jail.close()


def run_program(program: str, *, limits: SandboxLimits = DEFAULT_LIMITS) -> ExecutionResult:
    """Run one untrusted Python program; it passes when it exits with status 0."""
    return _combined({"program.py": program}, limits, "")


def run_tests(
    solution: str,
    tests: str,
    *,
    entry_point: str | None = None,
    setup: str = "",
    limits: SandboxLimits = DEFAULT_LIMITS,
) -> ExecutionResult:
    """Run ``tests`` against ``solution``.  With ``entry_point`` (the function under test) the
    tests run in a trusted process of their own (module doc); ``setup`` is trusted code the
    tests may use (HumanEval's prompt, with helpers such as ``poly``).  Without it, or when
    the tests cannot be split, both run in one interpreter (``trusted_compare`` False)."""
    ok, why = can_split(tests, setup, entry_point)
    if ok and entry_point:
        result = Split(limits, entry_point).execute(solution, tests, setup)
        if result is not None:
            return result
        why = "the tests pass arguments that are not plain data"
    result = _combined({"solution.py": solution, "tests.py": tests}, limits,
                       secrets.token_hex(16))  # fmt: skip
    result.notes.append(f"fallback: {why}")
    return result


def run_many(
    jobs: Sequence[tuple[str, str]],
    *,
    entry_point: str | None = None,
    setup: str = "",
    limits: SandboxLimits = DEFAULT_LIMITS,
    max_workers: int = 2,
) -> list[ExecutionResult]:
    """``run_tests`` for each (solution, tests) job, in order.  Threads suffice: every job is
    its own processes and the threads only wait in poll()."""

    def one(job: tuple[str, str]) -> ExecutionResult:
        return run_tests(job[0], job[1], entry_point=entry_point, setup=setup, limits=limits)

    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        return list(pool.map(one, jobs))
