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

import contextlib
import dataclasses
import os
import secrets
import select
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ttcbench.sandbox import harness
from ttcbench.sandbox import jail as _jail
from ttcbench.sandbox.decompose import can_split
from ttcbench.sandbox.jail import PYTHON_FLAGS, Jail, SandboxLimits
from ttcbench.sandbox.plain import decode

DEFAULT_LIMITS = SandboxLimits()
_VERDICT_BYTES = 1 << 16


@dataclass
class ExecutionResult:
    """Outcome of one run; ``status`` says why it did not pass, ``error`` in a short phrase."""

    passed: bool
    status: str  # passed|failed|timeout|memory|output_limit|file_limit|crashed|exited_early|error
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    error: str | None = None
    trusted_compare: bool | None = None
    """True: judged by the separate test process; False: the fallback (see module doc);
    None: a plain program run (no tests)."""
    calls: int = 0
    """Calls the tests made to the function under test (trusted mode)."""
    notes: list[str] = field(default_factory=list)


def _pump(fd: int, buf: bytearray, cap: int) -> bool:
    """Read one chunk into ``buf``, keeping at most cap + 1 bytes; False at end of file."""
    chunk = os.read(fd, 65536)
    buf += chunk[: max(0, cap + 1 - len(buf))]
    return bool(chunk)


def _wait(fds: set[int], timeout_s: float) -> list[int]:
    """The fds ready to read (or at EOF).  poll() rather than select(): a long-lived host
    process may hold fd numbers beyond select's FD_SETSIZE of 1024."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return [fd for fd, _ in poller.poll(max(0.0, timeout_s) * 1000)]


def _drain(bufs: dict[int, bytearray], cap: int, grace_s: float = 1.0) -> None:
    """Read what the (now dead) processes left in the pipes."""
    pending, deadline = set(bufs), time.monotonic() + grace_s
    while pending and (remaining := deadline - time.monotonic()) > 0:
        for fd in _wait(pending, remaining):
            if not _pump(fd, bufs[fd], cap):
                pending.discard(fd)


def error_line(stderr: str) -> str | None:
    """The exception line of a traceback.  A bare 'AssertionError' gets the failing source line
    appended, since that is what tells a reader which test failed."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return None
    last = lines[-1]
    if ":" not in last and len(lines) > 1:
        source = next((line for line in reversed(lines[:-1]) if set(line) - set("^~ ")), "")
        if not source.startswith("File "):
            last = f"{last}: {source}"
    return last[:300]


class _Watch:
    """Supervise confined processes: pump their output (capped), answer a sentinel request
    once, and stop at the wall clock, at the output cap, or when the main process exits."""

    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self.outputs: list[dict[str, bytearray]] = []
        self.bufs: dict[int, bytearray] = {}
        self.extra: dict[int, bytearray] = {}  # verdict pipes: read, not capped by the limit

    def add(self, proc: subprocess.Popen[bytes]) -> dict[str, bytearray]:
        assert proc.stdout and proc.stderr
        out = {"stdout": bytearray(), "stderr": bytearray()}
        self.bufs[proc.stdout.fileno()], self.bufs[proc.stderr.fileno()] = out.values()
        self.outputs.append(out)
        return out

    def run(
        self, main: subprocess.Popen[bytes], ctl: socket.socket | None = None, sentinel: str = ""
    ) -> str | None:
        """Return "timeout", "output_limit", or None once ``main`` has exited.  The child is watched
        through a pidfd, which does not reap it: its pid (= its process group id) cannot be
        recycled before clean-up."""
        cap = self.limits.max_output_bytes
        watched = set(self.bufs) | set(self.extra) | ({ctl.fileno()} if ctl else set())
        pidfd, deadline = os.pidfd_open(main.pid), time.monotonic() + self.limits.wall_s
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                ready = _wait(watched | {pidfd}, remaining)
                if pidfd in ready:
                    return None  # the rest of the output is drained after clean-up
                for fd in ready:
                    if fd in self.extra:
                        if not _pump(fd, self.extra[fd], _VERDICT_BYTES):
                            watched.discard(fd)
                    elif fd in self.bufs and not _pump(fd, self.bufs[fd], cap):
                        watched.discard(fd)
                    elif fd in self.bufs and len(self.bufs[fd]) > cap:
                        return "output_limit"
                    elif ctl and fd == ctl.fileno():
                        watched.discard(fd)  # answer once
                        with contextlib.suppress(OSError):
                            if ctl.recv(16):
                                ctl.sendall(sentinel.encode() + b"\n")
            return "timeout"
        finally:
            os.close(pidfd)

    def drain(self) -> None:
        _drain(self.bufs, self.limits.max_output_bytes)
        _drain(self.extra, _VERDICT_BYTES, grace_s=0.2)

    def over_cap(self) -> bool:
        return any(len(buf) > self.limits.max_output_bytes for buf in self.bufs.values())

    def text(self, out: dict[str, bytearray], stream: str) -> str:
        return bytes(out[stream][: self.limits.max_output_bytes]).decode("utf-8", "replace")


def _returncode(rc: int | None, bwrap: bool) -> int | None:
    """bwrap reports a child killed by signal N as exit status 128 + N: give it back as -N."""
    return -(rc - 128) if bwrap and rc is not None and rc > 128 else rc


def classify(
    limits: SandboxLimits, rc: int | None, verdict: str | None, err: str
) -> tuple[str, str | None]:
    """Map how a process ended to (status, short human-readable reason); "passed" for a clean
    exit (the caller decides whether that is a pass)."""
    if verdict == "timeout":
        return verdict, f"wall-clock limit of {limits.wall_s:g}s exceeded"
    if verdict == "output_limit":
        return verdict, f"output exceeded {limits.max_output_bytes} bytes"
    if rc is not None and rc < 0:
        if -rc == signal.SIGXCPU:
            return "timeout", f"CPU limit of {limits.cpu_s}s exceeded"
        if -rc == signal.SIGXFSZ:
            return "file_limit", f"file size limit of {limits.max_file_mb} MiB exceeded"
        return "crashed", f"killed by signal {-rc}"
    error = error_line(err)
    if error and ("MemoryError" in error or "Cannot allocate memory" in error):
        return "memory", error
    if rc != 0:
        return "failed", error or f"exit status {rc}"
    return "passed", None


def _start(jail: Jail, argv: list[str], fds: Sequence[int]) -> subprocess.Popen[bytes] | str:
    try:
        return jail.spawn(argv, pass_fds=fds)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"did not start: {exc}"


def _failed_start(error: str) -> ExecutionResult:
    return ExecutionResult(False, "error", None, "", "", 0.0, error)


def _has_netns() -> bool:
    iso = _jail.isolation()
    return bool(iso.bwrap) or iso.netns


def _combined(files: dict[str, str], limits: SandboxLimits, sentinel: str) -> ExecutionResult:
    """One interpreter runs every file in order; with a sentinel, a pass also needs the line
    we send once the harness asks after the last file ran."""
    iso = _jail.report_once()
    jail, ctl, child_ctl = Jail(iso, limits), None, None
    try:
        jail.setup({"_harness.py": harness.COMBINED, **files})
        if sentinel:
            ctl, child_ctl = socket.socketpair()
        fd = child_ctl.fileno() if child_ctl else -1
        no_net = str(int(not _has_netns()))
        argv = [iso.python, *PYTHON_FLAGS, "_harness.py", str(fd), no_net, *files]
        start, watch = time.monotonic(), _Watch(limits)
        proc = _start(jail, argv, (fd,) if fd >= 0 else ())
        if isinstance(proc, str):
            return _failed_start(proc)
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
        rc = _returncode(proc.returncode, bool(iso.bwrap))
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


def _exited(proc: subprocess.Popen[bytes], wait_s: float = 0.0) -> int | None:
    """The exit status of a child that has ended (waiting up to ``wait_s`` for it), without
    reaping it: its pid, which is also its process group id, stays ours until clean-up."""
    with contextlib.suppress(OSError):
        pidfd = os.pidfd_open(proc.pid)
        try:
            _wait({pidfd}, wait_s)
        finally:
            os.close(pidfd)
    with contextlib.suppress(ChildProcessError, OSError):
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is not None:
            code = info.si_status
            return -code if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else code
    return None


class _Split:
    """The trusted-comparison run: a solution side and a test side, joined by two pipes."""

    def __init__(self, limits: SandboxLimits, entry_point: str) -> None:
        self.iso, self.limits, self.entry_point = _jail.report_once(), limits, entry_point
        # The test side runs trusted code and needs no namespaces of its own to stay apart:
        # the solution side cannot see it (own PID and mount namespaces, another uid).  It
        # gets the rlimits, a uid and a private /tmp, and saves a bwrap start per grade.
        trusted = dataclasses.replace(self.iso, bwrap=None, netns=False)
        self.jails = [Jail(self.iso, limits), Jail(trusted, limits)]
        self.watch = _Watch(limits)

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
        py, no_net = self.iso.python, str(int(not _has_netns()))
        start, procs = time.monotonic(), []
        try:
            sol = _start(sol_jail, [py, *PYTHON_FLAGS, "_solution_side.py", str(req_r), str(rep_w),
                                    no_net, "solution.py"], (req_r, rep_w))  # fmt: skip
            if isinstance(sol, str):
                return _failed_start(sol)
            procs.append(sol)
            test = _start(test_jail, [py, *PYTHON_FLAGS, "_test_side.py", str(req_w), str(rep_r),
                                      str(ver_w), self.entry_point, "prompt.py", "tests.py"],
                          (req_w, rep_r, ver_w))  # fmt: skip
            if isinstance(test, str):
                return _failed_start(test)
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
            _drain(watch.extra, _VERDICT_BYTES, grace_s=0.2)  # the test side has ended
            kind, value = _message(bytes(next(iter(watch.extra.values()))).split(b"\n")[0])
            # When the solution side ended first, bwrap may still be reporting its status.
            wait_s = 0.5 if kind == "solution_gone" else 0.0
            sol_rc = _returncode(_exited(sol, wait_s), bool(self.iso.bwrap))
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
        result = _Split(limits, entry_point).execute(solution, tests, setup)
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
