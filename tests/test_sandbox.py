"""The sandbox contains each attack, scores it as not passed, and leaves the host unharmed.

Every test names the damage it would see if the sandbox failed (a file created or deleted, a
secret printed, a connection accepted, a process left behind, a fake pass), so none of them
holds by construction.  Limits are small to keep the whole file well under a minute.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ttcbench import sandbox
from ttcbench.sandbox import SandboxLimits, jail, probe, run_many, run_program, run_tests

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="only root can drop to a sandbox uid")
REPO = Path(__file__).resolve().parents[1]
FAST = SandboxLimits(wall_s=5.0, cpu_s=5, memory_mb=512, max_processes=32, max_output_bytes=100_000)
WRONG = "def add(a, b):\n    return a - b\n"
RIGHT = "def add(a, b):\n    return a + b\n"
TESTS = "def check(candidate):\n    assert candidate(1, 2) == 3\n\ncheck(add)\n"


@pytest.fixture(autouse=True)
def used_uids(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Record the uids this test's runs got, and fail if any process of them is still alive.

    Only our own uids are checked, so sandboxes run by other sessions on the machine don't
    interfere."""
    uids: list[int] = []
    allocate = jail._allocate_uid

    def spy() -> int:
        uids.append(allocate())
        return uids[-1]

    monkeypatch.setattr(jail, "_allocate_uid", spy)
    yield uids
    leaked = {uid: sandbox.sandbox_processes(uid) for uid in uids}
    assert not any(leaked.values()), f"processes outlived their run: {leaked}"


@pytest.fixture(params=["full", "fallback"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the isolation this machine allows, and again without bubblewrap, so
    that the fallbacks (uid drop, root's own namespaces, socket module disabled) are
    exercised too."""
    iso = sandbox.isolation()
    if request.param == "fallback":
        fallback = dataclasses.replace(iso, bwrap=None, prefixes=(), missing=("pid",))
        monkeypatch.setattr(probe, "isolation", lambda: fallback)
    elif iso.missing:
        pytest.skip(f"bubblewrap is not available here: {iso.why}")
    return request.param


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A root-owned, world-traversable 0755 directory holding a 0644 file: reachable by the
    sandbox uid when /tmp is shared, yet not writable by it."""
    path = Path(tempfile.mkdtemp(prefix="ttcsbx-host-"))
    path.chmod(0o755)
    (path / "victim.txt").write_text("precious")
    (path / "victim.txt").chmod(0o644)
    yield path
    shutil.rmtree(path)


def test_isolation_applies() -> None:
    iso = sandbox.isolation()
    assert sandbox.network_isolation() in {"netns", "socket-disabled"}
    result = run_program("import os\nprint(os.getuid(), os.getgid(), os.getgroups())", limits=FAST)
    assert result.passed, result
    uid, gid, groups = result.stdout.split(maxsplit=2)
    if ROOT:
        assert iso.uid_drop and int(uid) in sandbox.UID_POOL and int(gid) == int(uid)
        assert groups.strip() == "[]"


def test_correct_solution_passes() -> None:
    result = run_tests(RIGHT, TESTS, entry_point="add", limits=FAST)
    assert result.passed and result.status == "passed", result
    assert result.returncode == 0 and result.error is None
    assert result.trusted_compare is True and result.calls == 1


@pytest.mark.parametrize("entry_point", ["add", None], ids=["split", "combined"])
def test_assertion_failure_is_reported_with_its_line(entry_point: str | None) -> None:
    result = run_tests(WRONG, TESTS, entry_point=entry_point, limits=FAST)
    assert (result.passed, result.status) == (False, "failed")
    assert result.error == "AssertionError: assert candidate(1, 2) == 3"


def test_unterminated_string_cannot_swallow_the_tests() -> None:
    # Were solution and tests concatenated, the string would eat the assert up to the '"""'.
    result = run_tests(WRONG + 'x = """\n', 'assert add(1, 2) == 3  # """\n', limits=FAST)
    assert result.status == "failed" and "SyntaxError" in (result.error or ""), result


def test_infinite_loop_hits_the_wall_clock() -> None:
    limits = dataclasses.replace(FAST, wall_s=1.5)
    result = run_tests("while True:\n    pass\n", TESTS, limits=limits)
    assert (result.passed, result.status) == (False, "timeout")
    assert 1.4 < result.duration_s < 3.5


def test_cpu_limit_stops_a_busy_loop() -> None:
    limits = dataclasses.replace(FAST, wall_s=20.0, cpu_s=1)
    result = run_program("while True:\n    pass\n", limits=limits)
    assert result.status == "timeout" and "CPU" in (result.error or ""), result
    assert result.duration_s < 5


@needs_root
def test_fork_bomb_is_contained(used_uids: list[int]) -> None:
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    limits = dataclasses.replace(FAST, wall_s=2.0, max_processes=16)
    results: list[sandbox.ExecutionResult] = []
    worker = threading.Thread(target=lambda: results.append(run_program(bomb, limits=limits)))
    worker.start()
    peak = 0  # processes of the sandbox uid seen at once
    while worker.is_alive():
        peak = max([peak, *(len(sandbox.sandbox_processes(uid)) for uid in used_uids)])
        time.sleep(0.05)
    worker.join()
    assert results[0].status == "timeout", results[0]
    wrappers = jail.BWRAP_PROCESSES if sandbox.isolation().bwrap else 0  # bwrap and its init
    assert 1 < peak <= 16 + wrappers  # it did fork, but no further than the process limit
    assert not sandbox.sandbox_processes(used_uids[0])


@pytest.mark.parametrize(
    "program",
    [
        "x = bytearray(10 * 1024 ** 3)\n",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024 ** 2))\n",
    ],
    ids=["10 GiB at once", "growing"],
)
def test_memory_bomb_is_contained(program: str) -> None:
    result = run_tests(program, TESTS, limits=dataclasses.replace(FAST, memory_mb=256))
    assert not result.passed and result.status in {"memory", "crashed"}, result


@needs_root
def test_writing_outside_the_workdir_fails(mode: str, host_dir: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o755)
    targets = [host_dir / "new.txt", locked / "new.txt", REPO / f"pwned-{secrets.token_hex(4)}.txt"]
    if mode == "full":  # /tmp is world-writable: only the private /tmp protects it
        targets.append(Path(tempfile.gettempdir()) / f"pwned-{secrets.token_hex(4)}.txt")
    program = "for path in %r:\n" % [str(t) for t in targets] + (
        "    try:\n        open(path, 'w').write('pwned')\n        print('WROTE', path)\n"
        "    except OSError as exc:\n        print('DENIED', type(exc).__name__)\n"
    )
    try:
        result = run_program(program, limits=FAST)
        created = [t for t in targets if t.exists()]
    finally:
        for target in targets[2:]:
            target.unlink(missing_ok=True)
    assert created == []
    assert result.stdout.count("DENIED") >= 3, result  # the attempts really were made


@needs_root
def test_deleting_a_host_file_fails(mode: str, host_dir: Path, tmp_path: Path) -> None:
    mine = tmp_path / "victim.txt"
    mine.write_text("precious")
    victims = [host_dir / "victim.txt", mine]
    program = "import os, shutil\nfor path in %r:\n" % [str(v) for v in victims] + (
        "    for attack in (os.remove, lambda p: open(p, 'w'), lambda p: os.chmod(p, 0o777),\n"
        "                   lambda p: shutil.rmtree(os.path.dirname(p))):\n"
        "        try:\n            attack(path)\n            print('DONE')\n"
        "        except OSError as exc:\n            print('DENIED', type(exc).__name__)\n"
    )
    result = run_program(program, limits=FAST)
    assert result.stdout.count("DENIED") == 8 and "DONE" not in result.stdout, result
    assert [v.read_text() for v in victims] == ["precious", "precious"]
    assert oct(victims[0].stat().st_mode & 0o777) == "0o644"


def test_api_keys_are_invisible(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "WANDB_API_KEY", "HF_TOKEN"):
        monkeypatch.setenv(name, "sk-test-secret")
    # Ours (the sandbox's parent) is readable by a sandbox that runs as our uid: when not root.
    paths = ["/proc/self/environ"] + ([f"/proc/{os.getpid()}/environ"] if ROOT else [])
    spy = f"import os\nprint(dict(os.environ))\nfor path in {paths}:\n" + (
        "    try:\n        print(open(path, 'rb').read())\n"
        "    except OSError as exc:\n        print('DENIED', exc)\n"
    )
    result = run_tests(
        RIGHT + spy, "import os\nassert os.environ.get('OPENAI_API_KEY')\n", limits=FAST
    )
    assert "PATH" in result.stdout and ("DENIED" in result.stdout) == ROOT, result
    assert "sk-test-secret" not in result.stdout + result.stderr
    assert (result.passed, result.status) == (False, "failed")


def test_network_is_unreachable(mode: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        solution = (
            "import socket\ntry:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "    CONNECTED = True\nexcept OSError as exc:\n"
            "    print('BLOCKED', exc)\n    CONNECTED = False\n"
        )
        result = run_tests(solution, "assert CONNECTED\n", limits=FAST)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody knocked
    assert "BLOCKED" in result.stdout and result.status == "failed", result
    if mode == "full" or ROOT:  # bubblewrap's, or root's own network namespace
        assert sandbox.network_isolation() == "netns"


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_output_flood_is_capped(stream: str) -> None:
    flood = f"import sys\nwhile True:\n    sys.{stream}.write('x' * 65536)\n"
    result = run_tests(flood, TESTS, limits=dataclasses.replace(FAST, wall_s=20.0))
    assert (result.passed, result.status) == (False, "output_limit")
    assert len(getattr(result, stream)) <= FAST.max_output_bytes
    assert result.duration_s < 5


def test_file_size_is_capped() -> None:
    program = "with open('big', 'wb') as f:\n    f.write(b'x' * 8 * 1024 ** 2)\n"
    result = run_program(program, limits=dataclasses.replace(FAST, max_file_mb=1))
    assert not result.passed and result.status in {"failed", "file_limit"}, result


CHEATS = {
    "exit": "exit(0)",
    "quit": "quit()",
    "sys.exit": "import sys\nsys.exit(0)",
    "os._exit": "import os\nos._exit(0)",
    "SystemExit": "raise SystemExit",
    "SystemExit(0)": "raise SystemExit(0)",
    "SIGKILL self": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "SIGTERM group": "import os, signal\nos.killpg(0, signal.SIGTERM)",
    "excepthook": "import os, sys\nsys.excepthook = lambda *args: os._exit(0)",
    "atexit": "import atexit, os\natexit.register(os._exit, 0)",
    "patch print": "import builtins\nbuiltins.print = lambda *a, **k: None",
    "patch AssertionError": "import builtins\nbuiltins.AssertionError = KeyboardInterrupt",
    "patch exec": "import builtins\nbuiltins.exec = lambda *a, **k: None",
    "patch compile": "import builtins\nbuiltins.compile = lambda *a, **k: compile('', '', 'exec')",
    "patch sys.exit": "import sys\nsys.exit = lambda *a: None",
    "rebind check": "def check(candidate):\n    pass\ncheck = check",
    "overwrite tests": "import os\ntry:\n    os.remove('tests.py')\n    open('tests.py', 'w').write"
    "('pass')\nexcept OSError:\n    pass",
    "guess sentinel": "import secrets\nprint(secrets.token_hex(16))\nprint('ALL TESTS PASSED')\n"
    "exit(0)",
    "snoop": (  # gathers every 32-hex-digit token it can read and prints each on its own line
        "import os, re, sys\nblob = sys.stdin.buffer.read()\n"
        "for path in ('/proc/self/cmdline', '/proc/self/environ', 'tests.py', '_harness.py'):\n"
        "    blob += open(path, 'rb').read()\n"
        "for fd in map(int, os.listdir('/proc/self/fd')):\n    try:\n"
        "        os.set_blocking(fd, False)\n        blob += os.read(fd, 4096)\n"
        "    except OSError:\n        pass\n"
        "for token in set(re.findall(rb'[0-9a-f]{32}', blob)):\n    print(token.decode())\n"
        "exit(0)"
    ),
}


@pytest.mark.parametrize("entry_point", ["add", None], ids=["split", "combined"])
@pytest.mark.parametrize("cheat", CHEATS.values(), ids=CHEATS.keys())
def test_cheating_never_passes(cheat: str, entry_point: str | None) -> None:
    result = run_tests(WRONG + cheat + "\n", TESTS, entry_point=entry_point, limits=FAST)
    assert not result.passed, result
    assert result.status in {"exited_early", "failed", "crashed"}, result


@pytest.mark.parametrize("patch", ["patch print", "patch sys.exit", "overwrite tests"])
def test_harmless_patches_do_not_break_an_honest_pass(patch: str) -> None:
    # The counterpart of the cheats above: the verdict does not hinge on what they patch.
    result = run_tests(RIGHT + CHEATS[patch] + "\n", TESTS, limits=FAST)
    assert result.passed, result


def _processes_with(marker: str) -> list[int]:
    """Host pids whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_uid_in_use_is_never_handed_out_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two live sandboxes never share a uid; 200 draws from 16,000 without release would
    repeat one ~70% of the time by chance alone."""
    monkeypatch.setattr(jail, "_uids_in_use", set())
    uids = [jail._allocate_uid() for _ in range(200)]
    assert len(set(uids)) == 200
    assert all(uid in jail.UID_POOL for uid in uids)


def test_many_jobs_in_parallel_leave_nothing_behind(used_uids: list[int]) -> None:
    # Each job also starts a grandchild that escapes the process group with setsid().
    marker = f"ttc-escape-{secrets.token_hex(6)}"
    escape = (
        "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', "
        f"'import time; time.sleep(60)', {marker!r}], start_new_session=True)\n"
        "print('STARTED')\n"
    )
    jobs = [((RIGHT if i % 2 == 0 else WRONG) + escape, TESTS) for i in range(16)]
    results = run_many(jobs, entry_point="add", limits=FAST, max_workers=4)
    assert [r.passed for r in results] == [i % 2 == 0 for i in range(16)]
    assert all("STARTED" in r.stdout for r in results)  # the escapes really ran
    if ROOT:  # a uid drawn for each of the two sides of every job, at least; a released uid
        assert len(used_uids) >= 32  # may be drawn again (test_a_uid_in_use_is_never_...)
    deadline = time.monotonic() + 2  # SIGKILLed: gone once the kernel has reaped them
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(marker) == []
