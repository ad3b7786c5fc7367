"""The two programs a graded run starts, as source text (the sandbox has no ttcbench).

* ``SOLUTION_SIDE`` runs the untrusted program, then answers calls: each request names the
  function, its arguments as plain data; each reply is the result (and the mutable arguments
  after the call) as plain data, or the exception the call raised.  It never sees a test.
* ``TEST_SIDE`` runs the task's tests, a trusted program, in a process of its own.  The name
  of the function under test is bound to a proxy that forwards calls to the solution side, so
  every comparison the tests make happens here, between rebuilt builtin values.  It reports
  its verdict on a pipe only the parent reads.
* ``COMBINED`` is the fallback for tests that need the solution's own objects (a class the
  tests instantiate, a setup file): solution and tests in one interpreter, with a sentinel
  the parent sends after the last test.  Code that targets this harness can forge that pass,
  so rows graded this way say ``trusted_compare: false``.

Exit codes of the test side: 0 all tests ran and passed, 1 a test failed (traceback on
stderr), 3 an argument the tests pass is not plain data (the parent falls back to
``COMBINED``), 4 the solution side died or answered garbage (a failure), 5 an argument that
is not plain data after the program had answered a call (a failure: such a value may come
from the program, which must never choose the fallback).
"""

from __future__ import annotations

from pathlib import Path

UNDECOMPOSABLE, SOLUTION_GONE, TAINTED = 3, 4, 5
MAX_REPLY_BYTES = 64 << 20

_PLAIN = (Path(__file__).with_name("plain.py")).read_text(encoding="utf-8")
_PLAIN = _PLAIN.replace("from __future__ import annotations\n", "")

_PRELUDE = """
def _site_builtins():
    # python -S skips `site`, which is what adds exit() and quit(): programs use them.
    import builtins

    def quit(code=None):
        raise SystemExit(code)

    builtins.exit = builtins.quit = quit


_site_builtins()


def _block_network():
    import _socket, socket

    def blocked(*args, **kwargs):
        raise PermissionError("network access is disabled in this sandbox")

    for attr in ("socket", "socketpair", "fromfd", "create_connection", "getaddrinfo"):
        setattr(socket, attr, blocked)
        setattr(_socket, attr, blocked)
"""

SOLUTION_SIDE = (
    _PLAIN
    + _PRELUDE
    + '''
import os as _os, sys as _sys

_MUTABLE = (list, dict, set, bytearray, collections.deque, collections.OrderedDict,
            collections.Counter, collections.defaultdict)


def _opaque(name, result, after, exc):
    """A result that is not plain data (a re.Match, an object) crosses as its type name, its
    truth value and its repr: the test side rebuilds a stand-in equal only to itself, so
    `assert f(x)` / `assert not f(x)` still work and nothing else can be faked with it that a
    plain True or False could not fake already."""
    try:
        encode(after)
        truth = bool(result)
        kind = type(result)
        text = repr(result)[:200]
        label = f"{kind.__module__}.{kind.__qualname__}"
        return ["opaque", label if type(label) is str else "object", truth is True, str(text)]
    except BaseException:
        return ["foreign", f"{name}() returned {exc}"]


def _flush():
    """The program's prints reach the grader's log even though this process is killed."""
    for stream in (_sys.stdout, _sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def _serve(requests, replies, no_net, path, write=_os.write):
    code = compile(open(path, encoding="utf-8").read(), path, "exec")
    if no_net:  # no network namespace here: the best this side can do
        _block_network()
    module = type(_sys)("__main__")
    _sys.modules["__main__"], _sys.argv = module, [path]
    exec(code, module.__dict__)
    _flush()
    reader = open(requests, "rb", closefd=False)
    while line := reader.readline():
        name, args, kwargs = decode(line)
        try:
            if name not in module.__dict__:
                raise NameError(f"name {name!r} is not defined")
            result = module.__dict__[name](*args, **kwargs)
        except Exception as exc:
            text = encode(["raise", type(exc).__name__, str(exc)[:2000]])
        else:
            after = [a if type(a) in _MUTABLE else None for a in args]
            try:
                text = encode(["ok", result, after])
            except NotPlain as exc:
                text = encode(_opaque(name, result, after, exc))
        _flush()
        data = (text + "\\n").encode()
        while data:
            data = data[write(replies, data):]


_serve(int(_sys.argv[1]), int(_sys.argv[2]), _sys.argv[3] == "1", _sys.argv[4])
'''
)

TEST_SIDE = (
    _PLAIN
    + f'''
import builtins as _builtins, os as _os, sys as _sys

_MAX_REPLY = {MAX_REPLY_BYTES}


def _no_dumps():
    """Same-uid processes (no namespaces, not root) may not ptrace us or read our memory."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
    except Exception:
        pass


def _write(fd, text):
    data = (text + "\\n").encode()
    while data:
        data = data[_os.write(fd, data):]


class _Opaque:
    """What a function returned that is not plain data: true or false as it was, equal only to
    itself (its ``__eq__`` is object's, never the program's)."""

    __slots__ = ("type_name", "truth", "text")

    def __init__(self, type_name, truth, text):
        self.type_name, self.truth, self.text = str(type_name), truth is True, str(text)

    def __bool__(self):
        return self.truth

    def __repr__(self):
        return f"<{{self.type_name}} from the sandbox: {{self.text}}>"


def _proxy(name, requests, replies, verdict, state):
    reader = open(replies, "rb", closefd=False)

    def stop(code, kind, message):
        _write(verdict, encode([kind, message]))
        _os._exit(code)

    def call(*args, **kwargs):
        try:
            request = encode([name, args, kwargs])
        except NotPlain as exc:
            if state["calls"]:  # the value may come from the program: never let it choose
                stop({TAINTED}, "tainted", f"after the program answered, the tests passed {{exc}}")
            stop({UNDECOMPOSABLE}, "undecomposable", f"the tests pass {{exc}}")
        try:
            _write(requests, request)
        except OSError:
            stop({SOLUTION_GONE}, "solution_gone", "the solution's process ended early")
        line = reader.readline(_MAX_REPLY)
        if not line.endswith(b"\\n"):
            stop({SOLUTION_GONE}, "solution_gone", "the solution's process ended early")
        try:
            reply = decode(line)
            kind = reply[0]
        except (ValueError, TypeError, IndexError):
            stop({SOLUTION_GONE}, "solution_gone", "the solution's process sent garbage")
        state["calls"] += 1
        if kind == "ok":
            _, result, after = reply
            for old, new in zip(args, after):
                if new is not None and (type(old) is type(new) or isinstance(old, dict)):
                    if type(old) in (list, bytearray):
                        old[:] = new
                    elif isinstance(old, dict | set):
                        old.clear()
                        old.update(new)
                    elif type(old) is collections.deque:
                        old.clear()
                        old.extend(new)
            return result
        if kind == "opaque":
            return _Opaque(*reply[1:])
        if kind == "raise":
            _, exc_name, message = reply
            exc_type = getattr(_builtins, str(exc_name), None)
            if exc_type in (StopIteration, StopAsyncIteration):  # would end the tests' loop
                exc_type = None
            if isinstance(exc_type, type) and issubclass(exc_type, Exception):
                raise exc_type(message)
            raise RuntimeError(f"{{exc_name}}: {{message}}")
        raise TypeError(str(reply[1]))

    call.__name__ = call.__qualname__ = name
    return call


def _check(requests, replies, verdict, name, setup_path, tests_path):
    _no_dumps()
    setup, tests = (
        compile(open(p, encoding="utf-8").read(), p, "exec") for p in (setup_path, tests_path)
    )
    module = type(_sys)("__main__")
    _sys.modules["__main__"], _sys.argv = module, [tests_path]
    state = {{"calls": 0}}
    exec(setup, module.__dict__)
    module.__dict__[name] = _proxy(name, requests, replies, verdict, state)
    exec(tests, module.__dict__)
    _write(verdict, encode(["passed", state["calls"]]))
    _os._exit(0)


_check(*map(int, _sys.argv[1:4]), *_sys.argv[4:])
'''
)

COMBINED = (
    _PRELUDE
    + """
import os, sys

def main(ctl, no_net, paths, run=exec, read=os.read, write=os.write, exit_=os._exit):
    codes = [compile(open(path, encoding="utf-8").read(), path, "exec") for path in paths]
    if no_net:  # no network namespace here: the best this side can do
        _block_network()
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
)
