"""Isolated execution of model-written code, and grading it on evidence it cannot forge.

``jail``: the confinement of one interpreter (bubblewrap namespaces, per-run uid, rlimits).
``run``: running programs and tests in it (the solution and the tests in separate processes).
``plain``: the data that may cross between them.  The README's threat model says what is
contained and how it is tested (``tests/sandbox/``).
"""

from ttcbench.sandbox.jail import (
    UID_POOL,
    Isolation,
    SandboxLimits,
    isolation,
    report_once,
    require_full,
    sandbox_processes,
)
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
