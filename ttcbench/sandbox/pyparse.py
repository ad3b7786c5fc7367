"""`ast.parse` that may run in several threads at once.

CPython 3.11 (3.11.7 here) keeps the AST constructor's recursion depth in state shared by all
threads, so two threads building ASTs at once can fail with `SystemError: AST constructor
recursion depth mismatch` (python/cpython#106905): it failed a grade in CI, where the sandbox
checks candidates from a thread pool. One lock serialises the parses; they take microseconds.
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse(source: str) -> ast.Module:
    """`ast.parse(source)`, one thread at a time."""
    with _LOCK:
        return ast.parse(source)
