"""Whether a test file can be checked in a trusted process, away from the solution.

The test side (see ``harness``) binds exactly one name to a proxy: the function under test.
That works when the tests need nothing else from the solution: every other name they read is
a builtin, something the tests define or import themselves, or something the trusted setup
(HumanEval's prompt: helpers such as ``poly`` or ``encode_cyclic``) defines.  Tests that read
another name of the solution (a class they instantiate, a helper they call) cannot be split
and run the fallback way (``trusted_compare: false``).
"""

from __future__ import annotations

import ast
import builtins

from ttcbench.sandbox.pyparse import parse


def bound_names(tree: ast.AST) -> set[str]:
    """Every name the code binds anywhere: assignments, defs, imports, arguments, loops."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            names.update(node.names)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
    return names


def module_names(tree: ast.Module) -> set[str]:
    """The names a module binds at its top level (not its functions' locals)."""
    names: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(stmt.name)
        else:
            names |= bound_names(stmt)
    return names


def foreign_names(tests: str, setup: str, entry_point: str) -> set[str] | None:
    """Names the tests read that only the solution can provide; None when either text does
    not parse (the fallback then reports the syntax error)."""
    try:
        test_tree, setup_tree = parse(tests), parse(setup)
    except (SyntaxError, ValueError):
        return None
    read = {
        n.id for n in ast.walk(test_tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    known = bound_names(test_tree) | module_names(setup_tree) | set(dir(builtins))
    known |= {"__name__", "__file__", "__builtins__", "__doc__"}
    return read - known - {entry_point}


def can_split(tests: str, setup: str, entry_point: str | None) -> tuple[bool, str]:
    """(True, "") when the tests can run apart from the solution, else (False, why)."""
    if not entry_point:
        return False, "no entry point named"
    foreign = foreign_names(tests, setup, entry_point)
    if foreign is None:
        return False, "the tests do not parse"
    if foreign:
        return False, f"the tests use {', '.join(sorted(foreign))} from the solution"
    return True, ""
