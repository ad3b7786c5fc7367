"""Attacks on the grade: a wrong solution that tries to get itself scored as passed.

Each runs the real sandbox in split mode (``entry_point="add"``: the tests in a trusted jail
of their own, the solution behind a proxy) and asserts the run did not pass; the ``runs``
fixture (``conftest.py``) then checks that nothing of the run is left on the host.  Where a
test could be fooled by an attack that never ran, the attack reports what it did and the test
checks that report too.  Honest controls show that the same tests do pass correct code, so a
failure is the attack's, not the test's.

A test marked ``xfail(strict=True, reason="HOLE: ...")`` is an attack that succeeds today.
"""

from __future__ import annotations

import dataclasses
import textwrap

import pytest
from sandbox_kit import (
    FAST,
    REFUSED,
    RIGHT,
    TESTS,
    TWO_CALLS,
    WRONG,
    code,
    lines_with,
    seen,
    split,
)

from ttcbench.sandbox import run_tests

SLOW_OK = dataclasses.replace(FAST, wall_s=1.0)  # for attacks that end in a timeout

# ---------------------------------------------------------------------------------------------
# Honest code passes (the split mode must not fail correct solutions)

HONEST = {
    "add": (RIGHT, TESTS, 1),
    "two calls": (RIGHT, TWO_CALLS, 2),
    "keyword arguments": (RIGHT, "assert add(a=1, b=2) == 3\nassert add(1, b=2) == 3\n", 2),
    "in-place mutation": (
        "def add(a, b):\n    a.extend(b)\n",
        "x = [1]\nassert add(x, [2]) is None\nassert x == [1, 2]\n",
        1,
    ),
    "raises ValueError": (
        "def add(a, b):\n    raise ValueError(f'no {a}')\n",
        "try:\n    add(1, 2)\nexcept ValueError as exc:\n    assert str(exc) == 'no 1'\n"
        "else:\n    raise AssertionError('no exception')\n",
        1,
    ),
    "floats and isclose": (
        RIGHT,
        "import math\nassert math.isclose(add(0.1, 0.2), 0.3)\n"
        "assert abs(add(0.1, 0.2) - 0.3) < 1e-9\nassert add(0.1, 0.2) != 0.3\n",
        3,
    ),
    "containers": (
        "def add(a, b):\n    return a | b if isinstance(a, (set, dict)) else a + b\n",
        "assert add({1}, {2}) == {1, 2}\nassert add({1: 2}, {3: 4}) == {1: 2, 3: 4}\n"
        "assert add((1,), (2,)) == (1, 2)\nassert add(b'a', b'b') == b'ab'\n"
        "assert add('a', 'b') == 'ab'\nassert add(True, False) == 1\n",
        6,
    ),
    "setup helper": (RIGHT, "assert add(1, 2) == helper(3)\n", 1),
}


@pytest.mark.parametrize(("solution", "tests", "calls"), HONEST.values(), ids=HONEST.keys())
def test_honest_code_passes_the_trusted_way(solution: str, tests: str, calls: int) -> None:
    setup = "def helper(x):\n    return x\n"
    result = split(solution, tests, setup=setup)
    assert result.passed and result.status == "passed", result
    assert result.trusted_compare is True and result.calls == calls, result
    assert result.error is None and result.returncode == 0


@pytest.mark.parametrize("body", ["yield from a\n    yield from b", "return iter(a + b)"])
def test_iterator_results_cross_as_their_items(body: str) -> None:
    # (A bug once: the reply was encoded twice, and the first pass emptied the iterator.)
    tests = "assert list(add([1], [2])) == [1, 2]\nassert add([1], [2]) != [1, 2]\n"
    result = split(f"def add(a, b):\n    {body}\n", tests)
    assert result.passed and result.calls == 2, result


def test_a_wrong_answer_fails() -> None:
    result = split(WRONG)
    assert (result.passed, result.status) == (False, "failed"), result
    assert result.error == "AssertionError: assert candidate(1, 2) == 3"


# ---------------------------------------------------------------------------------------------
# 1. Sentinel theft and snooping: there is no secret on the solution's side to steal

STEAL = code(
    """
    import os, re, stat
    argv = open("/proc/self/cmdline", "rb").read().split(b"\\0")
    at = argv.index(b"_solution_side.py")
    print("PIPES", int(argv[at + 1]), int(argv[at + 2]), flush=True)
    names = os.listdir("/proc/self/fd")
    fds = []
    for name in names:  # the fd listdir used is closed again by now
        try:
            os.fstat(int(name))
            fds.append(int(name))
        except OSError:
            pass
    print("FDS", sorted(fds), flush=True)
    loot = b""
    for fd in sorted(fds):
        print("FD", fd, os.readlink(f"/proc/self/fd/{fd}"), flush=True)
        if fd > 2:
            try:
                os.write(fd, b"?\\n")  # whoever listens: send the sentinel
            except OSError:
                pass
        try:
            os.set_blocking(fd, False)
            loot += os.read(fd, 65536)
        except OSError:
            pass
    for path in ("/proc/self/cmdline", "/proc/self/environ", "/proc/1/cmdline", "/proc/1/environ",
                 "_solution_side.py", "solution.py", "/tmp/tests.py", "/tmp/_harness.py"):
        try:
            loot += open(path, "rb").read()
        except OSError as exc:
            print("MISSING", path, type(exc).__name__, flush=True)
    for token in sorted(set(re.findall(rb"[0-9a-f]{32}", loot))):
        print(token.decode(), flush=True)
    print("LOOT", len(loot), flush=True)
    os._exit(0)
    """
)


def test_sentinel_theft_finds_nothing_and_fails() -> None:
    result = split(WRONG + STEAL)
    assert not result.passed and result.status in REFUSED, result
    assert "before the tests ran" in (result.error or ""), result
    # The solution's process holds its stdio and its two pipes to the test side, nothing else:
    # no socket, no verdict pipe, no host file.
    req, rep = map(int, lines_with("PIPES", result.stdout)[0].split())
    assert lines_with("FDS", result.stdout) == [str(sorted({0, 1, 2, req, rep}))], result.stdout
    assert lines_with("FD 0", result.stdout) == ["/dev/null"]
    assert "MISSING /tmp/tests.py" in result.stdout and "MISSING /tmp/_harness.py" in result.stdout
    assert int(lines_with("LOOT", result.stdout)[0]) > 0  # it did read what it could


SNOOP = code(
    """
    import gc, os, re, sys

    def scan(where):
        found, seen = set(), 0
        objects = gc.get_objects()
        frame = sys._getframe()
        while frame is not None:
            objects += [frame.f_locals, frame.f_globals, frame.f_code.co_consts]
            frame = frame.f_back
        objects += list(sys.modules.values())
        for obj in objects:
            if isinstance(obj, dict):
                values = [*obj.keys(), *obj.values()]
            elif isinstance(obj, (list, tuple, set, frozenset)):
                values = list(obj)
            else:
                values = list(vars(obj).values()) if hasattr(obj, "__dict__") else []
            for value in values:
                seen += 1
                text = value.decode("latin-1") if isinstance(value, bytes) else value
                if isinstance(text, str):
                    found.update(re.findall("TESTMARK-[0-9a-f]{16}", text))
        print("SCANNED", where, seen, flush=True)
        for text in found:
            print("FOUND", text, flush=True)

    scan("import")

    def add(a, b):
        scan("call")  # the serving loop's frames are below this one now
        return a - b
    """
)


def test_frame_and_gc_snooping_finds_no_test_secret(token: str) -> None:
    tests = f"MARK = 'TESTMARK-{token}'\n" + TESTS
    result = split(SNOOP, tests)
    assert (result.passed, result.status) == (False, "failed"), result
    assert len(lines_with("SCANNED", result.stdout)) == 2, result.stdout  # at import, in a call
    assert all(int(line.split()[1]) > 1000 for line in lines_with("SCANNED", result.stdout))
    assert lines_with("FOUND", result.stdout) == []
    assert f"TESTMARK-{token}" not in seen(result)


# ---------------------------------------------------------------------------------------------
# 2. Always-equal values: only plain builtin data crosses, compared by the trusted side

ALWAYS = (
    "class AlwaysEqual:\n"
    "    def __eq__(self, other):\n        return True\n"
    "    def __ne__(self, other):\n        return False\n"
    "    def __hash__(self):\n        return hash(3)\n"
    "    def __bool__(self):\n        return False\n"
    "    def __float__(self):\n        return 3.0\n"
    "    def __sub__(self, other):\n        return 0.0\n"
    "    __rsub__ = __sub__\n"
    "    def __iter__(self):\n        return iter([1, 2])\n"
    "    def __len__(self):\n        return 2\n"
    "    def __index__(self):\n        return 3\n"
)
EQ = "    def __eq__(self, other):\n        return True\n    __hash__ = {base}.__hash__\n"
FAKES = {  # (return expression, extra definitions, tests), the tests pass an honest add
    "always-equal object": ("AlwaysEqual()", "", TESTS),
    "__ne__ says equal": ("AlwaysEqual()", "", "assert not (add(1, 2) != 3)\n"),
    "int subclass": ("I(0)", "class I(int):\n" + EQ.format(base="int"), TESTS),
    "str subclass": (
        "S('')",
        "class S(str):\n" + EQ.format(base="str"),
        "assert add('a', 'b') == 'ab'\n",
    ),  # fmt: skip
    "list subclass": (
        "L()",
        "class L(list):\n" + EQ.format(base="list"),
        "assert add([1], [2]) == [1, 2]\n",
    ),  # fmt: skip
    "tuple subclass (namedtuple)": (
        "T(0, 0)",
        "import collections\nclass T(collections.namedtuple('T', 'x y')):\n"
        + EQ.format(base="tuple"),
        "assert add((1,), (2,)) == (1, 2)\n",
    ),  # fmt: skip
    "dict subclass": (
        "D()",
        "class D(dict):\n" + EQ.format(base="dict"),
        "assert add({1: 2}, {3: 4}) == {1: 2, 3: 4}\n",
    ),  # fmt: skip
    "falsy always-equal for `== y` and `not`": (
        "AlwaysEqual()",
        "",
        "assert add(1, 2) == 3\nassert not add(2, -2)\n",
    ),
    "repr and str spoofing": (
        "R()",
        "class R:\n    def __repr__(self):\n        return '3'\n    __str__ = __repr__\n",
        "assert str(add(1, 2)) == '3'\nassert repr(add(1, 2)) == '3'\n",
    ),
    "hash trick for `in {...}`": ("AlwaysEqual()", "", "assert add(1, 2) in {3}\n"),
    "fakes inside a list for set()": (
        "[AlwaysEqual(), AlwaysEqual()]",
        "",
        "assert set(add([1], [2])) == {1, 2}\n",
    ),
    "generator of fakes": (
        "(AlwaysEqual() for _ in range(2))",
        "",
        "assert list(add([1], [2])) == [1, 2]\n",
    ),  # fmt: skip
    "float subclass for abs(x - y) < eps": (
        "F(99.0)",
        "class F(float):\n    def __sub__(self, other):\n        return 0.0\n",
        "assert abs(add(1.0, 2.0) - 3.0) < 1e-9\n",
    ),
    "__float__ for math.isclose": (
        "AlwaysEqual()",
        "",
        "import math\nassert math.isclose(add(1.0, 2.0), 3.0)\n",
    ),
    "__class__ spoofing int": (
        "C()",
        "class C(AlwaysEqual):\n    __class__ = property(lambda self: int)\n",
        TESTS,
    ),
    "__index__ for indexing": ("AlwaysEqual()", "", "assert [0, 0, 0, 1][add(1, 2)]\n"),
}


@pytest.mark.parametrize(("value", "extra", "tests"), FAKES.values(), ids=FAKES.keys())
def test_always_equal_values_never_pass(value: str, extra: str, tests: str) -> None:
    solution = ALWAYS + extra + f"def add(a, b):\n    return {value}\n"
    result = split(solution, tests)
    assert (result.passed, result.status) == (False, "failed"), result
    # Refused at the boundary (TypeError), or rebuilt by the test side as a stand-in that is
    # equal only to itself and has only the truth value of the original.


def test_the_always_equal_tests_pass_honest_code() -> None:
    # The counterpart: the tests above fail for the fakes, not because they cannot pass.
    honest = "def add(a, b):\n    return a | b if isinstance(a, dict) else a + b\n"
    distinct = sorted({tests for _, _, tests in FAKES.values()})
    result = split(honest, "".join(distinct))
    assert result.passed and result.calls >= len(distinct), result


# ---------------------------------------------------------------------------------------------
# Harness tampering and forged messages on the pipes

REPLY_FD = (
    "import os\n"
    "_argv = open('/proc/self/cmdline', 'rb').read().split(b'\\0')\n"
    "REPLIES = int(_argv[_argv.index(b'_solution_side.py') + 2])\n"
    "REQUESTS = int(_argv[_argv.index(b'_solution_side.py') + 1])\n"
)
OK3 = '["list",["ok",3,["list",[]]]]'
TAMPER = {
    "json.dumps replaced": f"import json\njson.dumps = lambda *a, **k: {OK3!r}\n",
    "encode replaced in the harness": (
        f"import sys\nsys._getframe(1).f_globals['encode'] = lambda value: {OK3!r}\n"
    ),
    "decode replaced: requests read as (1, 2)": (
        "import sys\n_g = sys._getframe(1).f_globals\n"
        "_g['decode'] = lambda line: ['add', [1, 2], {}]\n"
    ),
    "sys.modules: fake json": (
        "import sys, types\nfake = types.ModuleType('json')\n"
        f"fake.dumps = lambda *a, **k: {OK3!r}\n"
        "fake.loads = lambda *a, **k: ['add', [1, 2], {}]\n"
        "sys.modules['json'] = fake\nsys._getframe(1).f_globals['json'] = fake\n"
    ),
    "harness rewritten on disk": (
        "import os\nos.unlink('_solution_side.py')\n"
        "open('_solution_side.py', 'w').write('print(\"pwned\")')\n"
        "os.chmod('.', 0o777)\nprint('REWROTE', open('_solution_side.py').read())\n"
    ),
    "thread answering every request with 3": REPLY_FD
    + (
        "import threading\n"
        "def answer():\n    while os.read(REQUESTS, 1 << 16):\n"
        f"        os.write(REPLIES, {OK3!r}.encode() + b'\\n')\n"
        "threading.Thread(target=answer, daemon=True).start()\nimport time\ntime.sleep(0.3)\n"
    ),
    "always-equal tag in a forged reply": REPLY_FD
    + ('os.write(REPLIES, b\'["list",["ok",["AlwaysEqual",[]],["list",[]]]]\\n\' * 2)\n'),
}


@pytest.mark.parametrize("attack", TAMPER.values(), ids=TAMPER.keys())
def test_harness_tampering_cannot_fake_answers(attack: str) -> None:
    # Two calls with different answers: a constant forged reply cannot satisfy both.
    result = split(WRONG + attack, TWO_CALLS)
    assert not result.passed and result.status in REFUSED, result


def test_a_forged_reply_is_no_more_than_a_return_value() -> None:
    # The control of the tampering tests: the forgery does reach the tests (one call, answer 3
    # passes), and it carries plain data only: what `def add(a, b): return 3` would return.
    result = split(WRONG + TAMPER["json.dumps replaced"], TESTS)
    assert result.passed and result.calls == 1, result
    assert split("def add(a, b):\n    return 3\n", TESTS).passed


FORGED_LINES = {  # Python expressions for the bytes written to the reply pipe, in the jail
    "answer ahead of the question": repr(OK3 + "\n"),
    "verdict on the reply pipe": repr('["list",["passed",5]]\n'),
    "raise SystemExit": repr('["list",["raise","SystemExit","0"]]\n'),
    "raise KeyboardInterrupt": repr('["list",["raise","KeyboardInterrupt",""]]\n'),
    "raise GeneratorExit": repr('["list",["raise","GeneratorExit",""]]\n'),
    "raise a non-exception builtin": repr('["list",["raise","print",""]]\n'),
    "JSON object": repr('{"ok": 3}\n'),
    "not JSON": repr("PASSED\n"),
    "deep nesting": """'["list",[' * 100_000 + ']]' * 100_000 + '\\n'""",
    "half a line, then exit": repr(OK3),
    "line over the reply cap": "' ' * (65 << 20) + '\\n'",
}


@pytest.mark.parametrize("line", FORGED_LINES.values(), ids=FORGED_LINES.keys())
def test_forged_reply_lines_fail(line: str) -> None:
    attack = REPLY_FD + f"data = ({line}).encode()\n"
    attack += "while data:\n    data = data[os.write(REPLIES, data):]\n"
    if not eval(line).endswith("\n"):  # noqa: S307 -- our own literal
        attack += "os._exit(0)\n"
    result = split(WRONG + attack, TWO_CALLS)
    assert not result.passed and result.status in REFUSED | {"memory"}, result


FORGE_VERDICT = code(
    """
    import glob, os
    verdict = b'["list",["passed",5]]\\n'
    hits = []
    for fd in range(3, 1024):
        try:
            os.write(fd, verdict)
            hits.append(fd)
        except OSError:
            pass
    for path in glob.glob("/proc/*/fd/*"):
        try:
            with open(path, "wb", buffering=0) as f:
                f.write(verdict)
            hits.append(path)
        except OSError:
            pass
    print("WROTE", hits, flush=True)
    os._exit(0)
    """
)


def test_forging_the_verdict_fails() -> None:
    result = split(WRONG + FORGE_VERDICT)
    assert not result.passed and result.status in REFUSED, result
    assert lines_with("WROTE", result.stdout), result  # it wrote what it could: its own pipes


# ---------------------------------------------------------------------------------------------
# 5. Exits, kills and patches on the solution's side (split mode)

EXITS = {
    "exit(0)": "exit(0)",
    "quit()": "quit()",
    "sys.exit(0)": "import sys\nsys.exit(0)",
    "os._exit(0)": "import os\nos._exit(0)",
    "raise SystemExit": "raise SystemExit(0)",
    "atexit os._exit(0)": "import atexit, os\natexit.register(os._exit, 0)\nexit(1)",
    "excepthook": "import os, sys\nsys.excepthook = lambda *a: os._exit(0)\nraise ValueError",
    "SIGKILL self": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "SIGKILL parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos._exit(0)",
    "SIGTERM parent": "import os, signal\nos.kill(os.getppid(), signal.SIGTERM)\nos._exit(0)",
    "killpg(0, SIGKILL)": "import os, signal\nos.killpg(0, signal.SIGKILL)",
    "kill(-1, SIGKILL)": "import os, signal\nos.kill(-1, signal.SIGKILL)\nos._exit(0)",
    "close stdio": "import os\nfor fd in (0, 1, 2):\n    os.close(fd)",
    "os._exit(0) in the call": "import os\ndef add(a, b):\n    os._exit(0)",
    "SystemExit in the call": "def add(a, b):\n    raise SystemExit(0)",
    "KeyboardInterrupt in the call": "def add(a, b):\n    raise KeyboardInterrupt",
    "kill(-1) in the call": (
        "import os, signal\ndef add(a, b):\n    os.kill(-1, signal.SIGKILL)\n    return 3\n"
    ),
    "SIGKILL the parent in the call": (
        "import os, signal\ndef add(a, b):\n    os.kill(os.getppid(), signal.SIGKILL)\n"
        "    os._exit(0)\n"
    ),
}


@pytest.mark.parametrize("cheat", EXITS.values(), ids=EXITS.keys())
def test_exits_and_kills_never_pass(cheat: str) -> None:
    result = split(WRONG + cheat + "\n")
    assert not result.passed and result.status in REFUSED, result


STALLS = {
    "infinite loop at import": "while True:\n    pass",
    "infinite loop in the call": "def add(a, b):\n    while True:\n        pass",
    "sleep": "import time\ntime.sleep(30)",
    "SIGSTOP self in the call": (
        "import os, signal\ndef add(a, b):\n    os.kill(os.getpid(), signal.SIGSTOP)\n    return 3"
    ),
    "SIGSTOP the namespace's init": (
        "import os, signal, time\nos.kill(1, signal.SIGSTOP)\ntime.sleep(30)"
    ),
    "ignore SIGTERM and sleep": (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(30)"
    ),
}


@pytest.mark.parametrize("stall", STALLS.values(), ids=STALLS.keys())
def test_stalls_hit_the_wall_clock(stall: str) -> None:
    result = split(WRONG + stall + "\n", limits=SLOW_OK)
    assert (result.passed, result.status) == (False, "timeout"), result
    assert result.duration_s < SLOW_OK.wall_s + 2


PATCHES = {
    "patch print": "import builtins\nbuiltins.print = lambda *a, **k: None",
    "patch AssertionError": "import builtins\nbuiltins.AssertionError = KeyboardInterrupt",
    "patch exec": "import builtins\nbuiltins.exec = lambda *a, **k: None",
    "patch compile": "import builtins\nbuiltins.compile = lambda *a, **k: compile('', '', 'exec')",
    "patch sys.exit": "import sys\nsys.exit = lambda *a: None",
    "patch os._exit": "import os\nos._exit = lambda *a: None",
    "rebind check": "def check(candidate):\n    pass",
    "overwrite tests.py": "import os\nopen('tests.py', 'w').write('pass')",
}


@pytest.mark.parametrize("patch", PATCHES.values(), ids=PATCHES.keys())
def test_patching_builtins_changes_nothing(patch: str) -> None:
    # They live in the solution's interpreter only: the wrong add still fails.
    wrong = split(WRONG + patch + "\n")
    assert (wrong.passed, wrong.status) == (False, "failed"), wrong
    assert wrong.error == "AssertionError: assert candidate(1, 2) == 3", wrong


def test_patching_builtins_does_not_break_an_honest_pass() -> None:
    right = split(RIGHT + "\n".join(PATCHES.values()) + "\n")
    assert right.passed and right.calls == 1, right


# ---------------------------------------------------------------------------------------------
# Downgrades: forcing the forgeable fallback

# The combined fallback's weakness: the program shares the interpreter with the harness and
# asks for the sentinel itself.
THEFT = code(
    """
    import os, stat
    for fd in map(int, os.listdir("/proc/self/fd")):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.write(fd, b"?")
                print(os.read(fd, 64).decode().strip(), flush=True)
                os._exit(0)
        except OSError:
            pass
    """
)
# Takes the sentinel where the combined fallback runs (the harness file is there), and in
# split mode answers the first call with an iterator of MAX_ITEMS + 1 items, a value that
# cannot be encoded again when the tests pass it back: before the fix the test side then
# reported "undecomposable" and the parent reran everything the combined way.
DOWNGRADE = "import os\nif os.path.exists('/tmp/_harness.py'):  # combined: take the sentinel\n"
DOWNGRADE += textwrap.indent(THEFT, "    ") + code(
    """
    def add(a, b):
        argv = open("/proc/self/cmdline", "rb").read().split(b"\\0")
        replies = int(argv[argv.index(b"_solution_side.py") + 2])
        items = b",".join([b"0"] * 1_000_001)
        data = b'["list",["ok",["iter",[' + items + b']],["list",[]]]]\\n'
        while data:
            data = data[os.write(replies, data):]
        os._exit(0)
    """
)
NESTED_TESTS = (
    "def check(candidate):\n    assert candidate(candidate(1, 2), 3) == 6\n\ncheck(add)\n"
)


def test_the_nested_call_test_is_fair() -> None:
    assert split(RIGHT, NESTED_TESTS).passed
    assert not split(WRONG, NESTED_TESTS).passed


def test_a_solution_cannot_force_the_fallback() -> None:
    result = run_tests(WRONG + DOWNGRADE, NESTED_TESTS, entry_point="add", limits=FAST)
    assert not result.passed, result


def test_a_forced_fallback_is_at_least_flagged() -> None:
    # Weaker than the test above, kept should that one ever regress: a forced fallback that
    # passed would at least never be reported as trusted.
    result = run_tests(WRONG + DOWNGRADE, NESTED_TESTS, entry_point="add", limits=FAST)
    assert not result.passed or (result.trusted_compare is False and result.notes), result


def test_stop_iteration_cannot_end_a_map_early() -> None:
    tests = "assert all(map(lambda c: add(*c[0]) == c[1], [((1, 2), 3), ((2, 2), 4)]))\n"
    assert split(RIGHT, tests).passed  # the test is fair
    result = split("def add(a, b):\n    raise StopIteration\n", tests)
    assert not result.passed, result


def test_stop_iteration_in_a_generator_test_fails() -> None:
    tests = "assert all(add(a, b) == c for a, b, c in [(1, 2, 3), (2, 2, 4)])\n"
    assert split(RIGHT, tests).passed
    result = split("def add(a, b):\n    raise StopIteration\n", tests)
    assert not result.passed and "StopIteration" in (result.error or "")


# ---------------------------------------------------------------------------------------------
# The combined fallback (tests that use more of the solution than one function)

CLASS_TESTS = "assert Adder().add(1, 2) == 3\n"
ADDER = "class Adder:\n    def add(self, a, b):\n        return a - b\n"


def test_fallback_results_are_never_trusted() -> None:
    # The documented contract of the fallback: whatever it decides, it says so.
    results = [
        run_tests(solution, CLASS_TESTS, entry_point="add", limits=FAST)
        for solution in (ADDER, ADDER + THEFT, ADDER.replace("a - b", "a + b"))
    ]
    for result in results:
        assert result.trusted_compare is False, result
        assert result.notes == ["fallback: the tests use Adder from the solution"], result
    assert [r.passed for r in results][::2] == [False, True], results  # wrong fails, right passes


@pytest.mark.xfail(
    strict=True,
    reason="HOLE (documented in run.py/harness.py): in the combined fallback the solution "
    "shares the interpreter with the harness; it writes '?' to the control socket itself, "
    "reads the sentinel, prints it and exits 0 (a pass with trusted_compare False)",
)
def test_the_fallback_sentinel_cannot_be_stolen() -> None:
    result = run_tests(ADDER + THEFT, CLASS_TESTS, entry_point="add", limits=FAST)
    assert not result.passed, result
