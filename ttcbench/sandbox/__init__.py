"""Isolated execution of model-written code, and grading it on evidence it cannot forge.

``jail``: the confinement of one interpreter (bubblewrap namespaces, per-run uid, rlimits);
``probe``: which of it this machine allows.  ``run``: running programs and tests in it, the
tests apart from the program (``split``, ``harness``), supervised by ``watch`` into an
``outcome``.
``plain``: the data that may cross between them.  The README's threat model says what is
contained and how it is tested (``tests/sandbox/``).
"""

from ttcbench.sandbox.jail import UID_POOL, SandboxLimits, sandbox_processes
from ttcbench.sandbox.probe import Isolation, isolation, report_once, require_full
from ttcbench.sandbox.run import DEFAULT_LIMITS, ExecutionResult, run_many, run_program, run_tests


def network_isolation() -> str:
    """'netns' (no host network at all) or 'socket-disabled' (best effort, Python level)."""
    iso = isolation()
    return "netns" if iso.bwrap or iso.netns else "socket-disabled"


__all__ = [
    "DEFAULT_LIMITS",
    "UID_POOL",
    "ExecutionResult",
    "Isolation",
    "SandboxLimits",
    "isolation",
    "network_isolation",
    "report_once",
    "require_full",
    "run_many",
    "run_program",
    "run_tests",
    "sandbox_processes",
]
