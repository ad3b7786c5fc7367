"""Parsing Python in several threads at once (the sandbox checks candidates from a pool).

On CPython 3.11.7, bare `ast.parse` in 8 threads with the garbage collector running finalizers
fails with `SystemError: AST constructor recursion depth mismatch` in most threads
(python/cpython#106905); it failed a grade in CI. `pyparse.parse` must never.
"""

from __future__ import annotations

import ast
import gc
import threading
from collections.abc import Callable

from ttcbench.sandbox.pyparse import parse

SOURCE = "\n".join(
    f"assert (\nf([{i}.0, 2.0, [3, (4, {{5: 6}})]], 0.5)\n) == (\nFalse\n)" for i in range(60)
)


class Finalized:
    """Garbage whose finalizer runs Python code in the middle of another thread's parse."""

    def __del__(self) -> None:
        sum(range(50))


def failures(parser: Callable[[str], ast.Module], threads: int = 8, rounds: int = 60) -> list:
    errors: list[str] = []

    def work() -> None:
        for _ in range(rounds):
            junk = [Finalized() for _ in range(20)]
            for item in junk:
                item.cycle = item  # type: ignore[attr-defined]
            try:
                assert len(parser(SOURCE).body) == 60
            except SystemError as err:
                errors.append(str(err))
                return

    old = gc.get_threshold()
    gc.set_threshold(50, 5, 5)
    try:
        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        gc.set_threshold(*old)
    return errors


def test_parses_in_many_threads_never_fail() -> None:
    assert failures(parse) == []
