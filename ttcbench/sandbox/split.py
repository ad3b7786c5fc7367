"""The trusted-comparison run (see ``run``): a solution side in the jail and a test side
apart from it, joined by two pipes, with a third for the test side's verdict."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import time

from ttcbench.sandbox import harness, probe
from ttcbench.sandbox.jail import PYTHON_FLAGS, Jail, SandboxLimits
from ttcbench.sandbox.outcome import ExecutionResult, classify, failed_start, returncode
from ttcbench.sandbox.plain import decode
from ttcbench.sandbox.watch import VERDICT_BYTES, Watch, drain, exited, launch


class Split:
    """The trusted-comparison run: a solution side and a test side, joined by two pipes."""

    def __init__(self, limits: SandboxLimits, entry_point: str) -> None:
        self.iso, self.limits, self.entry_point = probe.report_once(), limits, entry_point
        # The test side runs trusted code and needs no namespaces of its own to stay apart:
        # the solution side cannot see it (own PID and mount namespaces, another uid).  It
        # gets the rlimits, a uid and a private /tmp, and saves a bwrap start per grade.
        trusted = dataclasses.replace(self.iso, bwrap=None, netns=False)
        self.jails = [Jail(self.iso, limits), Jail(trusted, limits)]
        self.watch = Watch(limits)

    def execute(self, solution: str, tests: str, setup: str) -> ExecutionResult | None:
        """The result, or None when the tests pass arguments that are not plain data."""
        sol_jail, test_jail = self.jails
        sol_jail.setup({"_solution_side.py": harness.SOLUTION_SIDE, "solution.py": solution})
        test_jail.setup({"_test_side.py": harness.TEST_SIDE, "prompt.py": setup,
                         "tests.py": tests})  # fmt: skip
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        ver_r, ver_w = os.pipe()
        self.watch.extra[ver_r] = bytearray()
        py, no_net = self.iso.python, str(int(not probe.has_netns()))
        start, procs = time.monotonic(), []
        try:
            sol = launch(sol_jail, [py, *PYTHON_FLAGS, "_solution_side.py", str(req_r), str(rep_w),
                                    no_net, "solution.py"], (req_r, rep_w))  # fmt: skip
            if isinstance(sol, str):
                return failed_start(sol)
            procs.append(sol)
            test = launch(test_jail, [py, *PYTHON_FLAGS, "_test_side.py", str(req_w), str(rep_r),
                                      str(ver_w), self.entry_point, "prompt.py", "tests.py"],
                          (req_w, rep_r, ver_w))  # fmt: skip
            if isinstance(test, str):
                return failed_start(test)
            procs.append(test)
            for fd in (req_r, rep_w, req_w, rep_r, ver_w):
                os.close(fd)
            req_r = rep_w = req_w = rep_r = ver_w = -1
            return self.supervise(sol, test, start)
        finally:
            for jail, proc in zip(self.jails, procs, strict=False):
                jail.kill(proc)
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    proc.__exit__(None, None, None)
            for fd in (req_r, rep_w, req_w, rep_r, ver_w, ver_r):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            for jail in self.jails:
                with contextlib.suppress(Exception):  # one failed clean-up must not skip the next
                    jail.close()

    def supervise(
        self, sol: subprocess.Popen[bytes], test: subprocess.Popen[bytes], start: float
    ) -> ExecutionResult | None:
        watch = self.watch
        sol_out, test_out = watch.add(sol), watch.add(test)
        try:
            verdict = watch.run(test)
            drain(watch.extra, VERDICT_BYTES, grace_s=0.2)  # the test side has ended
            kind, value = _message(bytes(next(iter(watch.extra.values()))).split(b"\n")[0])
            # When the solution side ended first, bwrap may still be reporting its status.
            wait_s = 0.5 if kind == "solution_gone" else 0.0
            sol_rc = returncode(exited(sol, wait_s), bool(self.iso.bwrap))
        finally:
            for jail, proc in zip(self.jails, (sol, test), strict=True):
                jail.kill(proc)
        duration = time.monotonic() - start
        test.wait()
        watch.drain()
        if verdict is None and watch.over_cap():
            verdict = "output_limit"
        if kind == "undecomposable":
            return None
        test_rc = test.returncode  # not under bwrap: a signal is a negative status
        stdout = watch.text(sol_out, "stdout")
        sol_err, test_err = watch.text(sol_out, "stderr"), watch.text(test_out, "stderr")
        status, error = self.judge(verdict, test_rc, kind, value, sol_rc, sol_err, test_err)
        calls = value if kind == "passed" and isinstance(value, int) else 0
        stderr = sol_err + (("\n" if sol_err else "") + test_err if test_err else "")
        return ExecutionResult(status == "passed", status, test_rc, stdout, stderr, duration,
                               error, trusted_compare=True, calls=calls)  # fmt: skip

    def judge(
        self, verdict: str | None, test_rc: int | None, kind: str, value: object,
        sol_rc: int | None, sol_err: str, test_err: str,
    ) -> tuple[str, str | None]:  # fmt: skip
        """(status, error) from the test side's end and message, and the solution side's."""
        if verdict is not None:
            return classify(self.limits, None, verdict, "")
        if test_rc == 0 and kind == "passed":
            if isinstance(value, int) and value >= 1:
                return "passed", None
            return "failed", f"the tests never called {self.entry_point}()"
        if test_rc == harness.SOLUTION_GONE and kind == "solution_gone":
            if sol_rc is None:
                return "failed", str(value)
            status, error = classify(self.limits, sol_rc, None, sol_err)
            if status == "passed":  # exit status 0 before answering every call
                return "exited_early", "the program exited with status 0 before the tests ran"
            return status, error
        if test_rc == harness.TAINTED and kind == "tainted":
            return "failed", str(value)
        status, error = classify(self.limits, test_rc, None, test_err)
        return ("failed", "the test process ended without a verdict") if status == "passed" else (
            status, error)  # fmt: skip


def _message(line: bytes) -> tuple[str, object]:
    """The test side's verdict message: [kind, value], or ("", None) when absent."""
    try:
        kind, value = decode(line)
        return str(kind), value
    except (ValueError, TypeError):
        return "", None
