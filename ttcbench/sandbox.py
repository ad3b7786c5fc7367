"""Run model-written Python -- a program, or a solution plus hidden tests -- in a sandbox.

Isolation per run (the code may harm the host or game the score, by accident or on purpose):
* As root, a fresh unused uid from ``UID_POOL`` (setgroups/setgid/setuid in the child).  Root
  ignores RLIMIT_NPROC; a per-run uid beats the shared ``nobody`` because the limit then counts
  this run only (a fork bomb cannot starve parallel runs) and clean-up can kill every process
  of the uid, even grandchildren that left the process group with setsid().  Not root: no uid
  change, RLIMIT_NPROC = the user's current processes + max_processes, only the group is killed.
* Namespaces where the kernel allows: CLONE_NEWNET leaves no usable interface (not even
  loopback); CLONE_NEWNS binds the private temp dir over /tmp, /var/tmp and /dev/shm (the
  world-writable places a foreign uid could still write to) and covers non-traversable
  ancestors of the interpreter (e.g. /root under pyenv) with a tmpfs into which only the
  interpreter is bound back.  Without a netns the harness disables the socket module (best
  effort; see ``network_isolation()``).
* rlimits (CPU, address space, file size, no core dumps, processes), a wall clock, a fresh temp
  dir deleted afterwards, an allow-listed environment (no API keys) and ``python -I``.
* Output is read as it arrives and the run is killed past the cap: no flood fills host memory.

Sentinel (``run_tests``): the parent draws ``secrets.token_hex(16)`` per call and keeps it: it is
in no file, argv or environment, and not in the child at all while solution and tests run.  The
trusted harness compiles solution and tests up front (the solution cannot rewrite the tests, and
an unterminated string cannot swallow them), binds exec/os.write/os._exit before any untrusted
code runs (patching builtins cannot skip the tests), runs both in one fresh ``__main__``, and
only then asks the parent for the sentinel over an inherited socket, prints it, and os._exit(0)s.
A pass needs exit status 0 AND the sentinel on stdout, so exit()/sys.exit()/os._exit()/
SystemExit/quit()/self-kill/excepthook/atexit tricks, printed guesses, or reading argv, environ,
sources or stdin (/dev/null) cannot fake one.  Not covered: code that deliberately targets this
harness inside the same interpreter (sending the request itself, frame surgery, always-equal
objects) -- stopping that would need the tests to run in a process of their own.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import grp
import os
import pwd
import resource
import secrets
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

UID_POOL = range(42_000, 58_000)  # per-run uids; skipped when an account/group/process has one
CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
_SHADOWED = ("/tmp", "/var/tmp", "/dev/shm")  # world-writable: replaced by the private dir
_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# python -I ignores PYTHON* variables; they still reach interpreters the program starts itself.
_ENV = {"PATH": _SYSTEM_PATH, "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
_ENV |= {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: the forked child must not load libs
_LIBC.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
_uid_lock = threading.Lock()
_uids_in_use: set[int] = set()

_HARNESS = """\
import os, sys

def main(ctl, no_net, paths, run=exec, read=os.read, write=os.write, exit_=os._exit):
    codes = [compile(open(path, encoding="utf-8").read(), path, "exec") for path in paths]
    if no_net:
        import _socket, socket
        def blocked(*args, **kwargs):
            raise PermissionError("network access is disabled in this sandbox")
        for name in ("socket", "socketpair", "fromfd", "create_connection", "getaddrinfo"):
            setattr(socket, name, blocked)
            setattr(_socket, name, blocked)
    module = type(sys)("__main__")
    sys.modules["__main__"], sys.argv = module, [paths[0]]
    for code in codes:
        run(code, module.__dict__)
    if ctl >= 0:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        write(ctl, b"?")
        write(1, b"\\n" + read(ctl, 64))  # on a line of its own, whatever was printed before
        exit_(0)

main(int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3:])
"""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one run (seconds, MiB, counts, bytes per output stream)."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    max_processes: int = 64
    max_output_bytes: int = 1_000_000
    max_file_mb: int = 16


@dataclass
class ExecutionResult:
    """Outcome of one run; ``status`` says why it did not pass, ``error`` in a short phrase."""

    passed: bool
    status: str  # passed|failed|timeout|memory|output_limit|file_limit|crashed|no_sentinel|error
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    error: str | None = None


@dataclass(frozen=True)
class Isolation:
    """Which mechanisms this machine allows (probed once, see the module docstring)."""

    uid_drop: bool
    netns: bool
    mountns: bool
    python: str  # the interpreter the sandbox runs
    hide: tuple[str, ...] = ()  # non-traversable ancestors of the interpreter: covered by tmpfs
    reveal: tuple[str, ...] = ()  # interpreter prefixes bound back into them


def _check(rc: int, what: str) -> None:
    """Turn a failed libc call into an OSError (in the child it aborts before exec)."""
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


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


@functools.cache
def isolation() -> Isolation:
    """Probe once which isolation mechanisms apply and which interpreter the sandbox runs."""
    root = os.geteuid() == 0
    netns, mountns = root and _can_unshare(CLONE_NEWNET), root and _can_unshare(CLONE_NEWNS)
    # The base interpreter, not a venv's `python`: sandboxed code needs only the standard
    # library, and a venv may live under /tmp, which the sandbox replaces with its own dir.
    base_python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    prefixes = {os.path.realpath(sys.base_prefix)}
    closed = {a for p in prefixes if (a := _closed_ancestor(p))} if root else set()
    if not closed:
        return Isolation(root, netns, mountns, base_python)
    if mountns:
        return Isolation(root, netns, mountns, base_python, tuple(closed), tuple(prefixes))
    # No mount namespace to re-expose our interpreter: fall back to a world-readable one.
    python = shutil.which("python3", path=_SYSTEM_PATH)
    if python is None or _closed_ancestor(python):
        raise RuntimeError(f"no interpreter usable by an unprivileged sandbox uid ({closed})")
    return Isolation(root, netns, mountns, python)


def network_isolation() -> str:
    """'netns' (no interfaces at all) or 'socket-disabled' (best effort, Python level only)."""
    return "netns" if isolation().netns else "socket-disabled"


def _status(pid: str) -> tuple[int, bool] | None:
    """(real uid, is_zombie) of a process, or None once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return int(fields["Uid"].split()[0]), fields["State"].strip().startswith("Z")
    except (OSError, KeyError, ValueError):
        return None


def _proc_table() -> Iterator[tuple[int, int, bool]]:
    """Yield (pid, real uid, is_zombie) for every process."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (status := _status(entry.name)) is not None:
            yield int(entry.name), *status


def sandbox_processes(uid: int | None = None) -> list[int]:
    """Live (non-zombie) pids running as ``uid``, or as any uid of ``UID_POOL`` when None."""
    wanted = range(uid, uid + 1) if uid is not None else UID_POOL
    return [pid for pid, u, zombie in _proc_table() if u in wanted and not zombie]


def _allocate_uid() -> int:
    """Draw an unused uid at random, so that other host processes rarely collide either.  A uid
    that names an account or group is skipped: the sandbox would inherit its rights."""
    with _uid_lock:
        busy = _uids_in_use | {u for _, u, _ in _proc_table()}  # zombies count: they hold NPROC
        for _ in range(1000):
            uid = secrets.choice(UID_POOL)
            if uid in busy:
                continue
            with contextlib.suppress(KeyError):
                pwd.getpwuid(uid)
                continue
            with contextlib.suppress(KeyError):
                grp.getgrgid(uid)
                continue
            _uids_in_use.add(uid)
            return uid
    raise RuntimeError("no free sandbox uid")


def _kill_leftovers(pgid: int, uid: int | None) -> None:
    """SIGKILL the process group and, with a private uid, every process of that uid."""
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)
    for _ in range(500 if uid is not None else 0):
        if not (live := sandbox_processes(uid)):
            return
        for pid in live:  # via a pidfd, so that a recycled pid never hits an unrelated process
            with contextlib.suppress(OSError):
                fd = os.pidfd_open(pid)
                try:
                    if _status(str(pid)) == (uid, False):
                        signal.pidfd_send_signal(fd, signal.SIGKILL)
                finally:
                    os.close(fd)
        time.sleep(0.005)


def _private_mounts(iso: Isolation, workdir: str) -> None:
    """In the child's own mount namespace: hide closed dirs, bind the interpreter back, and make
    the temp dir the only /tmp, /var/tmp and /dev/shm.  MS_PRIVATE comes first so that none of
    this propagates to the host; O_PATH handles are taken before anything gets covered."""
    _check(_LIBC.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    reveal = [os.open(path, os.O_PATH) for path in iso.reveal]
    work = os.open(workdir, os.O_PATH)
    for path in iso.hide:
        options = MS_NOSUID | MS_NODEV, b"mode=0755,size=1m"
        _check(_LIBC.mount(b"tmpfs", path.encode(), b"tmpfs", *options), f"tmpfs on {path}")
    shadowed = [(work, path) for path in _SHADOWED if os.path.isdir(path)]
    for fd, path in [*zip(reveal, iso.reveal, strict=True), *shadowed]:
        os.makedirs(path, exist_ok=True)
        source = f"/proc/self/fd/{fd}".encode()
        _check(_LIBC.mount(source, path.encode(), None, MS_BIND | MS_REC, None), f"bind {path}")
    os.chdir("/tmp")


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


def _error_line(stderr: str) -> str | None:
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


class _Run:
    """One sandboxed interpreter: set-up, supervision, verdict and tear-down."""

    def __init__(self, files: dict[str, str], limits: SandboxLimits, sentinel: str | None):
        self.files, self.limits, self.sentinel, self.iso = files, limits, sentinel, isolation()
        self.uid: int | None = None
        self.workdir: str | None = None
        self.ctl: socket.socket | None = None
        self.child_ctl: socket.socket | None = None

    def setup(self) -> None:
        """A uid, the control socket, and a fresh dir owned by the sandbox uid.  The files in it
        stay root-owned and read-only to the sandbox (which may still rename them: that is why
        the harness compiles them first)."""
        self.uid = _allocate_uid() if self.iso.uid_drop else None
        if self.sentinel:
            self.ctl, self.child_ctl = socket.socketpair()
        self.workdir = tempfile.mkdtemp(prefix="ttcsbx-")
        for name, text in {"_harness.py": _HARNESS, **self.files}.items():
            path = os.path.join(self.workdir, name)
            with open(path, "w", encoding="utf-8", errors="replace") as f:  # lone surrogates
                f.write(text)
            os.chmod(path, 0o644)  # whatever the host umask
        if self.uid is not None:
            os.chown(self.workdir, self.uid, self.uid)

    def rlimits(self) -> list[tuple[int, int, int]]:
        """(resource, soft, hard) for the child, clamped to our own hard limits."""
        lim, nproc = self.limits, self.limits.max_processes
        if self.uid is None:  # RLIMIT_NPROC counts every process of the user, not just ours
            nproc += sum(1 for _, u, _ in _proc_table() if u == os.getuid())
        wanted = [
            (resource.RLIMIT_CPU, lim.cpu_s, lim.cpu_s + 1),  # SIGXCPU, then SIGKILL
            (resource.RLIMIT_AS, lim.memory_mb << 20, lim.memory_mb << 20),
            (resource.RLIMIT_FSIZE, lim.max_file_mb << 20, lim.max_file_mb << 20),
            (resource.RLIMIT_CORE, 0, 0),
            (resource.RLIMIT_NPROC, nproc, nproc),
        ]
        caps = [resource.getrlimit(res)[1] for res, _, _ in wanted]
        return [
            (res, soft, hard)
            if cap == resource.RLIM_INFINITY
            else (res, min(soft, cap), min(hard, cap))
            for (res, soft, hard), cap in zip(wanted, caps, strict=True)
        ]

    def preexec(self) -> Callable[[], None]:
        """The child's set-up between fork and exec.  Namespaces and mounts need root, so they
        come before the uid drop.  Only syscalls run in the child: run_many forks from threads,
        and a child that took an import or logging lock could deadlock."""
        iso, uid, rlimits, workdir = self.iso, self.uid, self.rlimits(), str(self.workdir)
        flags = (CLONE_NEWNET if iso.netns else 0) | (CLONE_NEWNS if iso.mountns else 0)

        def preexec() -> None:
            if flags:
                _check(_LIBC.unshare(flags), "unshare")
            if iso.mountns:
                _private_mounts(iso, workdir)
            for res, soft, hard in rlimits:
                resource.setrlimit(res, (soft, hard))
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)

        return preexec

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the harness in the sandbox, with an allow-listed environment."""
        home = "/tmp" if self.iso.mountns else str(self.workdir)  # in a mount ns /tmp is it
        env = {**_ENV, "HOME": home, "TMPDIR": home}
        fd = self.child_ctl.fileno() if self.child_ctl else -1
        argv = [self.iso.python, "-I", "_harness.py", str(fd), str(int(not self.iso.netns))]
        return subprocess.Popen(
            [*argv, *self.files],
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(fd,) if fd >= 0 else (),
            start_new_session=True,
            preexec_fn=self.preexec(),
        )

    def supervise(self, proc: subprocess.Popen[bytes], bufs: dict[int, bytearray]) -> str | None:
        """Pump output, answer the sentinel request once, enforce wall clock and output cap.

        A poll() loop rather than communicate(): output is read as it arrives, so a flood is
        cut at the cap instead of filling host memory.  The child is watched through a pidfd,
        which does not reap it: its pid (= the process group id) cannot be recycled before
        clean-up.  Returns "timeout", "output_limit", or None once the child has exited."""
        cap, ctl = self.limits.max_output_bytes, self.ctl
        watched = set(bufs) | ({ctl.fileno()} if ctl else set())
        pidfd, deadline = os.pidfd_open(proc.pid), time.monotonic() + self.limits.wall_s
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                ready = _wait(watched | {pidfd}, remaining)
                if pidfd in ready:
                    return None  # the rest of its output is drained after clean-up
                for fd in ready:
                    if fd in bufs and not _pump(fd, bufs[fd], cap):
                        watched.discard(fd)
                    elif fd in bufs and len(bufs[fd]) > cap:
                        return "output_limit"
                    elif ctl and self.sentinel and fd == ctl.fileno():
                        watched.discard(fd)  # answer once
                        with contextlib.suppress(OSError):
                            if ctl.recv(16):
                                ctl.sendall(self.sentinel.encode() + b"\n")
            return "timeout"
        finally:
            os.close(pidfd)

    def execute(self) -> ExecutionResult:
        """Spawn, supervise, kill whatever is left, and judge."""
        start, cap = time.monotonic(), self.limits.max_output_bytes
        try:
            proc = self.spawn()
        except (OSError, subprocess.SubprocessError) as exc:
            return ExecutionResult(False, "error", None, "", "", 0.0, f"did not start: {exc}")
        if self.child_ctl:
            self.child_ctl.close()  # the child has its copy
        with proc:  # closes the pipes and reaps the child on the way out
            assert proc.stdout and proc.stderr
            bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
            try:
                verdict = self.supervise(proc, bufs)
            finally:
                _kill_leftovers(proc.pid, self.uid)  # nothing may outlive a run, come what may
            duration = time.monotonic() - start
            _drain(bufs, cap)
        if verdict is None and any(len(buf) > cap for buf in bufs.values()):
            verdict = "output_limit"
        out, err = (bytes(buf[:cap]).decode("utf-8", "replace") for buf in bufs.values())
        status, error = self.classify(proc.returncode, verdict, out, err)
        return ExecutionResult(
            status == "passed", status, proc.returncode, out, err, duration, error
        )

    def classify(
        self, rc: int | None, verdict: str | None, out: str, err: str
    ) -> tuple[str, str | None]:
        """Map how the run ended to (status, short human-readable reason)."""
        lim = self.limits
        if verdict == "timeout":
            return verdict, f"wall-clock limit of {lim.wall_s:g}s exceeded"
        if verdict == "output_limit":
            return verdict, f"output exceeded {lim.max_output_bytes} bytes"
        if rc is not None and rc < 0:
            if -rc == signal.SIGXCPU:
                return "timeout", f"CPU limit of {lim.cpu_s}s exceeded"
            if -rc == signal.SIGXFSZ:
                return "file_limit", f"file size limit of {lim.max_file_mb} MiB exceeded"
            return "crashed", f"killed by signal {-rc}"
        error = _error_line(err)
        if error and ("MemoryError" in error or "Cannot allocate memory" in error):
            return "memory", error
        if rc != 0:
            return "failed", error or f"exit status {rc}"
        if self.sentinel and self.sentinel not in (line.strip() for line in out.splitlines()):
            return "no_sentinel", "exited with status 0 before all tests had run"
        return "passed", None

    def close(self) -> None:
        """Remove every trace of the run (its processes are dead by now)."""
        for sock in (self.ctl, self.child_ctl):
            if sock:
                sock.close()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        with _uid_lock:
            _uids_in_use.discard(self.uid if self.uid is not None else -1)


def _execute(files: dict[str, str], limits: SandboxLimits, sentinel: str | None) -> ExecutionResult:
    """Run one sandboxed interpreter and always clean up after it."""
    run = _Run(files, limits, sentinel)
    try:
        run.setup()
        return run.execute()
    finally:
        run.close()


DEFAULT_LIMITS = SandboxLimits()


def run_program(program: str, *, limits: SandboxLimits = DEFAULT_LIMITS) -> ExecutionResult:
    """Run one untrusted Python program; it passes when it exits with status 0."""
    return _execute({"program.py": program}, limits, None)


def run_tests(
    solution: str, tests: str, *, limits: SandboxLimits = DEFAULT_LIMITS
) -> ExecutionResult:
    """Run ``solution`` then ``tests``; pass only if every test ran (sentinel) and status is 0."""
    return _execute({"solution.py": solution, "tests.py": tests}, limits, secrets.token_hex(16))


def run_many(
    jobs: Sequence[tuple[str, str]], *, limits: SandboxLimits = DEFAULT_LIMITS, max_workers: int = 2
) -> list[ExecutionResult]:
    """``run_tests`` for each (solution, tests) job, in order.  Threads suffice: every job is its
    own process and the threads only wait in poll()."""
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        return list(pool.map(lambda job: run_tests(job[0], job[1], limits=limits), jobs))
