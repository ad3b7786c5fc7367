"""Code grading: find the program a chat model wrote, complete it, run hidden tests in a sandbox.

A chat model answers a HumanEval-style prompt (a signature and docstring) in one of several
shapes, and a grader that misreads the shape scores the extraction, not the model:

* one ```python block with the whole function (the shape the prompt asks for);
* several blocks -- the solution, a usage example, a revised solution -- of which the one that
  defines the entry point is the answer (the last such one: models revise, not regress);
* only the function body, as in HumanEval's original completion format;
* bare code without fences, often with prose after it; or a final fence never closed because
  generation hit its token limit.

`extract_code` handles these, `completion_program` turns the code into a runnable program, and
`grade_code` runs it with the hidden tests through `ttcbench.sandbox.run_tests`: the tests run
in a trusted process of their own and call the solution's function across the sandbox
boundary, so a program cannot forge a pass (details: `trusted_compare`). The grade's
`extracted` is a short hash of the normalised code, so majority voting groups identical
programs without storing them twice (the code itself is in the sample's output).
"""

from __future__ import annotations

import ast
import hashlib
import re
import textwrap

from ttcbench.sandbox import SandboxLimits, run_tests
from ttcbench.sandbox.pyparse import parse
from ttcbench.types import Grade, Problem

__all__ = ["CODE_LIMITS", "code_key", "completion_program", "extract_code", "grade_code"]

CODE_LIMITS = SandboxLimits(wall_s=10.0)
"""Per-program limits: HumanEval's canonical solutions pass each test file in well under 1 s."""

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.S | re.M)
"""A fenced block: its language tag and its body, up to the closing fence or the end of text
(an unterminated final fence is a truncated answer, still worth grading)."""
_PYTHON_TAGS = {"", "python", "py", "python3", "py3"}
_CODE_START = re.compile(r"^(?:def |async def |class |import |from \S+ import |@)", re.M)
"""Where bare code begins: a definition, an import or a decorator at column 0."""
_MAIN_GUARD = re.compile(r"^if\s+__name__\s*==\s*['\"]__main__['\"]\s*:")
_MAX_TRIM_LINES = 200


def _defines(code: str, entry_point: str) -> bool:
    """Whether `code` defines `entry_point` at top level (so the tests can call it)."""
    pattern = rf"^(?:async[ \t]+)?def[ \t]+{re.escape(entry_point)}[ \t]*\("
    return re.search(pattern, code, re.M) is not None


def _strip_main_guard(code: str) -> str:
    """Drop top-level `if __name__ == "__main__":` blocks.  The sandbox runs the solution as
    `__main__`, so a demo block would run too: `input()` or `unittest.main()` there would fail
    a correct solution before the hidden tests start."""
    lines, kept, skipping = code.splitlines(), [], False
    for line in lines:
        if _MAIN_GUARD.match(line):
            skipping = True
        elif skipping and line.strip() and not line[0].isspace():
            skipping = False
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def _compiling_prefix(text: str) -> str:
    """The longest prefix of `text`, in whole lines, that compiles: bare code is often followed
    by prose ("This function works by...").  All of it when no prefix compiles, so that the
    sandbox reports the syntax error."""
    lines = text.splitlines()
    for end in range(len(lines), max(0, len(lines) - _MAX_TRIM_LINES), -1):
        candidate = "\n".join(lines[:end])
        try:
            compile(candidate, "<answer>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            continue
        return candidate
    return text


def _tidy(code: str) -> str | None:
    """Dedent (blocks inside markdown lists are indented), drop demo blocks, trim blank edges."""
    code = _strip_main_guard(textwrap.dedent(code)).strip("\n")
    return code + "\n" if code.strip() else None


def extract_code(output: str | None, entry_point: str | None = None) -> str | None:
    """The program in a chat model's output, or None when nothing in it looks like code.

    Fenced Python (or untagged) blocks come first: the last one defining `entry_point`, else
    the longest.  Without such blocks, the text from the first line that starts a definition or
    an import, cut before any trailing prose."""
    if not output:
        return None
    blocks = [body for tag, body in _FENCE.findall(output) if tag.lower() in _PYTHON_TAGS]
    blocks = [body for body in blocks if body.strip()]
    if blocks:
        defining = [b for b in blocks if entry_point and _defines(textwrap.dedent(b), entry_point)]
        return _tidy(defining[-1] if defining else max(blocks, key=len))
    start = _CODE_START.search(output)
    if start is None:
        return None
    return _tidy(_compiling_prefix(output[start.start() :]))


def _preamble(prompt: str, entry_point: str) -> str:
    """What the prompt gives before the entry point's `def`: its imports and helper functions
    (HumanEval/10's `is_palindrome`), which a model that writes only its function may omit."""
    match = re.search(rf"^(?:async[ \t]+)?def[ \t]+{re.escape(entry_point)}[ \t]*\(", prompt, re.M)
    if match is None:  # no signature to cut at: keep the import lines
        imports = [line for line in prompt.splitlines() if re.match(r"(?:import|from) ", line)]
        return "\n".join(imports) + "\n" if imports else ""
    return prompt[: match.start()]


def completion_program(code: str, problem: Problem) -> str:
    """The program to test.  Code that defines the entry point runs after the prompt's preamble;
    code that does not is a body (HumanEval's completion format), re-indented under the prompt's
    signature and docstring."""
    prompt, entry_point = problem.meta["prompt"], problem.meta["entry_point"]
    if _defines(code, entry_point):
        preamble = _preamble(prompt, entry_point)
        return f"{preamble.rstrip()}\n\n\n{code}" if preamble.strip() else code
    body = textwrap.indent(textwrap.dedent(code), "    ")
    return prompt + ("" if prompt.endswith("\n") else "\n") + body


def code_key(code: str) -> str:
    """A 12-hex-digit voting key: programs equal up to formatting and comments share one.  The
    AST's source form is the normal form; code that does not parse is compared line by line."""
    try:
        normal = ast.unparse(parse(code))  # graders may run in threads
    except (SyntaxError, ValueError):
        normal = "\n".join(line.rstrip() for line in code.splitlines() if line.strip())
    return hashlib.sha1(normal.encode("utf-8", "replace")).hexdigest()[:12]


def doctest_asserts(prompt: str, entry_point: str | None = None) -> str:
    """HumanEval's public tests: the examples of the prompt's docstring as asserts. They are
    what the model is shown, so feedback from them never leaks the hidden tests. `>>>`
    examples first; prompts without them often write `f(x) == y`, `f(x) => y` or `f(x) ➞ y`
    lines instead, which are read when `entry_point` is given."""
    import doctest

    lines = []
    for example in doctest.DocTestParser().get_examples(prompt):
        # The parser reads a docstring's closing quotes as part of the last expected output.
        want = "\n".join(
            line for line in example.want.splitlines() if line.strip() not in ('"""', "'''")
        ).strip()
        if want:
            # Own lines, so a trailing `# comment` in the example cannot swallow the `)`.
            lines.append(f"assert (\n{example.source.strip()}\n) == (\n{want}\n)")
    if not lines and entry_point:
        lines = _arrow_examples(prompt, entry_point)
    return "\n".join(lines) + ("\n" if lines else "")


def _arrow_examples(prompt: str, entry_point: str) -> list[str]:
    """`f(args) == / => / ➞ / -> value` lines whose arguments and value are Python literals
    (`true`/`false` read as booleans); placeholders like `f(a) => True` are skipped."""
    pattern = re.compile(rf"^\s*({re.escape(entry_point)}\((.*)\))\s*(?:==|=>|➞|->)\s*(.+?)\s*$")
    out = []
    for line in prompt.splitlines():
        match = pattern.match(line)
        if match is None:
            continue
        call, args, want = (_python_booleans(g) for g in match.groups())
        want = want.rstrip(".,;")
        try:
            ast.literal_eval(f"({args},)" if args.strip() else "()")
            ast.literal_eval(want)
        except (ValueError, SyntaxError):
            continue
        out.append(f"assert (\n{call}\n) == (\n{want}\n)")
    return out


def _python_booleans(text: str) -> str:
    return re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", text))


def grade_code(output: str, problem: Problem) -> Grade:
    """Score 1.0 when the extracted program passes the problem's hidden tests in the sandbox.

    `problem.meta["tests"]`, where present, is a complete test program (MBPP's asserts);
    otherwise tests follow HumanEval's convention: `problem.meta["test"]` defines
    `check(candidate)` and we append the call on the entry point."""
    entry_point = problem.meta["entry_point"]
    code = extract_code(output, entry_point)
    if code is None:
        details = {"passed": False, "status": "no_code", "error": "no code found in the output"}
        return Grade(extracted=None, score=0.0, details=details)
    tests = problem.meta.get("tests") or problem.meta["test"] + f"\ncheck({entry_point})\n"
    result = run_tests(
        completion_program(code, problem),
        tests,
        entry_point=entry_point,
        setup=problem.meta.get("prompt", ""),
        limits=CODE_LIMITS,
    )
    details = {
        "passed": result.passed,
        "status": result.status,
        "error": result.error,
        "trusted_compare": result.trusted_compare,
    }
    return Grade(extracted=code_key(code), score=1.0 if result.passed else 0.0, details=details)
