"""Supervising sandboxed processes: their output read as it arrives (capped), a sentinel
answered once, the wall clock, and exit statuses read without reaping."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import time
from collections.abc import Sequence

from ttcbench.sandbox.jail import Jail, SandboxLimits

VERDICT_BYTES = 1 << 16


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


def drain(bufs: dict[int, bytearray], cap: int, grace_s: float = 1.0) -> None:
    """Read what the (now dead) processes left in the pipes."""
    pending, deadline = set(bufs), time.monotonic() + grace_s
    while pending and (remaining := deadline - time.monotonic()) > 0:
        for fd in _wait(pending, remaining):
            if not _pump(fd, bufs[fd], cap):
                pending.discard(fd)


class Watch:
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
                        if not _pump(fd, self.extra[fd], VERDICT_BYTES):
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
        drain(self.bufs, self.limits.max_output_bytes)
        drain(self.extra, VERDICT_BYTES, grace_s=0.2)

    def over_cap(self) -> bool:
        return any(len(buf) > self.limits.max_output_bytes for buf in self.bufs.values())

    def text(self, out: dict[str, bytearray], stream: str) -> str:
        return bytes(out[stream][: self.limits.max_output_bytes]).decode("utf-8", "replace")


def launch(jail: Jail, argv: list[str], fds: Sequence[int]) -> subprocess.Popen[bytes] | str:
    try:
        return jail.spawn(argv, pass_fds=fds)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"did not start: {exc}"


def exited(proc: subprocess.Popen[bytes], wait_s: float = 0.0) -> int | None:
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
