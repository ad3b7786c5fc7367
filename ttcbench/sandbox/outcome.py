"""How a sandboxed run ended, in one record: ``ExecutionResult`` and the mapping from an exit
status, a supervision verdict and a traceback to a status and a short error."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

from ttcbench.sandbox.jail import SandboxLimits


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


def returncode(rc: int | None, bwrap: bool) -> int | None:
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


def failed_start(error: str) -> ExecutionResult:
    return ExecutionResult(False, "error", None, "", "", 0.0, error)
