"""Shared pieces of the hostile sandbox suite: limits, programs, and the look at the host that
every test's clean-up check makes (``conftest.py``).

The host is inspected narrowly, so that other users of this machine (another test session,
a pip build) never make a test fail: what counts is what carries this test's token or
belongs to one of the uids this test's runs were given.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import string
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ttcbench.sandbox import ExecutionResult, SandboxLimits, jail, run_tests, sandbox_processes

ROOT = os.geteuid() == 0
REPO = Path(__file__).resolve().parents[2]
FAST = SandboxLimits(wall_s=5.0, cpu_s=5, memory_mb=512, max_processes=32, max_output_bytes=100_000)
WRONG = "def add(a, b):\n    return a - b\n"
RIGHT = "def add(a, b):\n    return a + b\n"
TESTS = "def check(candidate):\n    assert candidate(1, 2) == 3\n\ncheck(add)\n"
TWO_CALLS = (
    "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 4\n\n"
    "check(add)\n"
)
# How a run that did not pass may end when no limit stopped it (status names of run.py).
REFUSED = frozenset({"failed", "crashed", "exited_early", "no_sentinel"})
# Top-level directories where a run could leave a file behind (listed, not walked).
WATCHED_DIRS = ("/", "/tmp", "/var/tmp", "/dev/shm", "/run", "/run/lock", "/root", str(REPO))


def code(source: str, **values: object) -> str:
    """A program: ``source`` dedented, with each ``$name`` replaced by ``repr(value)``."""
    return string.Template(textwrap.dedent(source)).substitute(
        {key: repr(value) for key, value in values.items()}
    )


def split(
    solution: str,
    tests: str = TESTS,
    *,
    limits: SandboxLimits = FAST,
    setup: str = "",
) -> ExecutionResult:
    """``run_tests`` with ``add`` as the entry point, checked to have run the trusted way."""
    result = run_tests(solution, tests, entry_point="add", setup=setup, limits=limits)
    assert result.trusted_compare is True and not result.notes, result
    return result


def seen(result: ExecutionResult) -> str:
    """Everything a run hands back as text: where a stolen secret would show up."""
    return "\n".join([result.stdout, result.stderr, result.error or "", *result.notes])


def sysv_key(token: str) -> int:
    """The SysV IPC key an attack derives from its token (and the host looks for)."""
    return int(token[:7], 16) or 1


def sysv_objects() -> list[dict[str, str]]:
    """Every SysV shared memory segment, semaphore set and message queue the host lists."""
    rows = []
    for kind in ("shm", "sem", "msg"):
        with contextlib.suppress(OSError), open(f"/proc/sysvipc/{kind}") as f:
            header, *lines = f.read().splitlines()
            names = header.split()
            rows += [
                {"kind": kind, **dict(zip(names, line.split(), strict=False))} for line in lines
            ]
    return rows


def key_users() -> set[int]:
    """The uids that own kernel keys (``/proc/key-users``)."""
    with contextlib.suppress(OSError), open("/proc/key-users") as f:
        return {int(line.split(":")[0]) for line in f if line.strip()}
    return set()


def host_processes(marker: str) -> list[int]:
    """Pids (not ours) whose command line or environment contains ``marker``."""
    hits = []
    needle = marker.encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for name in ("cmdline", "environ"):
            with contextlib.suppress(OSError), open(f"/proc/{entry.name}/{name}", "rb") as f:
                if needle in f.read():
                    hits.append(int(entry.name))
                    break
    return hits


def traces(dirs: Iterable[str], token: str, uids: Iterable[int]) -> list[str]:
    """Entries of ``dirs`` whose name carries ``token`` or whose owner is one of ``uids``."""
    uids, found = set(uids), []
    for folder in dirs:
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                with contextlib.suppress(OSError):
                    if token in entry.name or entry.stat(follow_symlinks=False).st_uid in uids:
                        found.append(entry.path)
    return found


@contextlib.contextmanager
def host_process(*argv: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """A host process (a canary or a secret holder) that is killed afterwards, come what may."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def sleeper(*extra: str) -> list[str]:
    """argv of a host process that sleeps 60 s and carries ``extra`` on its command line."""
    return [sys.executable, "-c", "import time; time.sleep(60)", *extra]


def kill_uid(uid: int) -> None:
    """Last-resort clean-up after a failed test: SIGKILL what still runs as ``uid``."""
    for _ in range(100):
        if not (pids := sandbox_processes(uid)):
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def lines_with(prefix: str, text: str) -> list[str]:
    """The rest of each line of ``text`` that starts with ``prefix`` (an attack's report)."""
    return [line[len(prefix) :].strip() for line in text.splitlines() if line.startswith(prefix)]


@dataclass
class Runs:
    """What this test's jails were given; ``token`` marks whatever its attacks create."""

    token: str
    uids: list[int] = field(default_factory=list)
    workdirs: list[str] = field(default_factory=list)
    checked: bool = True  # False: the test inspects and cleans up leftovers itself

    def damage(self) -> list[str]:
        """What is left on the host of this test's runs (empty when nothing is)."""
        found = [
            f"process {pid} of uid {uid}" for uid in self.uids for pid in sandbox_processes(uid)
        ]
        found += [f"temp dir {path}" for path in self.workdirs if os.path.lexists(path)]
        found += [f"file {path}" for path in traces(WATCHED_DIRS, self.token, self.uids)]
        key, uids = str(sysv_key(self.token)), {str(uid) for uid in self.uids}
        found += [
            f"SysV {row['kind']} {row.get('key')}"
            for row in sysv_objects()
            if row.get("key") == key or {row.get("uid"), row.get("cuid")} & uids
        ]
        found += [f"host process {pid} with the token" for pid in host_processes(self.token)]
        for _ in range(50):  # keys are garbage-collected a moment after their namespace dies
            if not (keys := key_users() & set(self.uids)):
                break
            time.sleep(0.1)
        found += [f"kernel keys of uid {uid}" for uid in keys]
        return found

    def clean(self) -> None:
        """Remove whatever ``damage`` finds (after a failure, so the next tests start clean)."""
        for uid in self.uids:
            kill_uid(uid)
        for path in self.workdirs:  # `rm`, not shutil.rmtree: a tree too deep for Python
            if os.path.lexists(path):
                subprocess.run(["rm", "-rf", "--one-file-system", path], check=False)
        for path in traces(WATCHED_DIRS, self.token, self.uids):
            with contextlib.suppress(OSError):
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
        with jail._uid_lock:  # a run that raised never gave its uids back
            jail._uids_in_use.difference_update(self.uids)
