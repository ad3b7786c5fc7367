"""Math grading: find the final answer in a model output, canonicalise it, compare with gold.

Equivalence is math-verify's (`math_verify.parse` / `math_verify.verify`); this module adds
what the library does not do for us:

* `extract_answer` picks the answer span with explicit, named rules (boxed, GSM8K `####`,
  "the answer is", last number) so reports can say how often the last-number fallback fired.
  math-verify's own extraction scans the whole output with its own priorities and reports no
  rule, and knows nothing of `####`.
* `canonical_answer` turns an answer into a string on which equal answers vote together
  (majority voting needs a hashable key, `verify` is only a pairwise test).

Timeouts and threads: math-verify's timeouts use `signal.alarm`, which raises ValueError off
the main thread, and the runner may grade from worker threads. We always pass
`parsing_timeout=None` / `timeout_seconds=None` (no signals) instead of switching on the thread:
a grade must not depend on which thread computed it, and a SIGALRM of ours would silently
cancel any alarm the caller set (pytest-timeout's signal method, for one). What a timeout
would have caught is bounded up front: answers longer than `_MAX_ANSWER_CHARS` are not parsed,
and parsed expressions with huge powers or factorials (`10^{10^{10}}`, which makes
`verify` run for over a minute) are treated as unparseable, see `_is_tame`.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ttcbench.tasks.answer_format import ANSWER_IS_RE, without_reasoning_tags
from ttcbench.types import Grade, Problem, TaskError

if TYPE_CHECKING:
    import sympy

__all__ = ["answers_match", "canonical_answer", "extract_answer", "grade_math"]

_MAX_ANSWER_CHARS = 400
"""Longer 'answers' are prose or runaway output: compared as text, never handed to sympy."""
_MAX_EXPONENT = 10_000
"""An integer power above this (or factorial argument, below) is refused: exact arithmetic on
it is where sympy stalls, and no benchmark answer needs it."""
_MAX_FACTORIAL = 2_000
_SIMPLIFY_MAX_OPS = 30
"""`sympy.simplify` is unbounded in time; only small expressions (all real answers) get it."""


@lru_cache(maxsize=1)
def _configs() -> tuple[list[Any], list[Any]]:
    """math-verify's LaTeX and plain-expression extraction configs. math-verify and sympy
    are imported here, at the first answer that is not a plain integer (~0.5 s): arithmetic
    and GSM8K-style jobs, whose answers are integers, never pay it."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    return [LatexExtractionConfig()], [ExprExtractionConfig()]


class _DropTimeoutDisabledWarning(logging.Filter):
    """math-verify warns once that its timeout is off; we turned it off on purpose (see top)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropTimeoutDisabledWarning())


# --------------------------------------------------------------------------- extraction

_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASH_RE = re.compile(r"####[ \t]*([^\n]*)")
# A number not glued to a word on its left: -3, 1,234, 0.5, 3/4 (a '-' after a digit or a
# letter is subtraction, not a sign: "5-3" ends with 3, not -3).
_NUMBER_RE = re.compile(r"(?<![\w.])(?:-(?=\d))?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?")
_SENTENCE_END_RE = re.compile(r"\.(?:\s|$)")


@lru_cache(maxsize=1024)  # pure; identical outputs (short answers, low temperature) repeat
def extract_answer(text: str) -> tuple[str | None, str]:
    """Return (the final answer the model committed to, the rule that found it).

    Rules by priority: last `\\boxed{}`/`\\fbox{}`, GSM8K `####`, last "the answer is X" /
    "answer: X", then the last number as a declared fallback. The rule name ("boxed",
    "hash", "answer_is", "last_number", "none") lets reports count how often the fallback
    fired, i.e. how often the model did not follow the answer format.
    """
    text = without_reasoning_tags(text)
    if not text:
        return None, "none"
    boxed = _last_boxed(text)
    if boxed is not None:
        return boxed, "boxed"
    for rule, regex, group in (("hash", _HASH_RE, 1), ("answer_is", ANSWER_IS_RE, "ans")):
        for match in reversed(list(regex.finditer(text))):
            answer = _clean_span(match.group(group))
            if answer:
                return answer, rule
    numbers = _NUMBER_RE.findall(text)
    if numbers:
        return numbers[-1], "last_number"
    return None, "none"


def _last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` with balanced braces (a regex cannot balance them).

    A truncated last box (no closing brace) is skipped in favour of an earlier complete one.
    """
    for start in reversed([m.end() for m in _BOXED_RE.finditer(text)]):
        depth = 1
        for i in range(start, len(text)):
            if text[i] == "{" and text[i - 1] != "\\":
                depth += 1
            elif text[i] == "}" and text[i - 1] != "\\":
                depth -= 1
                if depth == 0:
                    content = text[start:i].strip()
                    if content:
                        return content
                    break
    return None


def _clean_span(span: str) -> str:
    """Trim an answer span: cut at the end of the sentence, drop bold, `$` and a final period."""
    span = _SENTENCE_END_RE.split(span, maxsplit=1)[0]
    span = span.replace("**", "").strip()
    if len(span) >= 2 and span[0] == "$" and span[-1] == "$":
        span = span.strip("$").strip()
    return span.rstrip(".").strip()


# --------------------------------------------------------------------------- parsing


_WHOLE_TEXT_RE = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox)\{([^{}]*)\}")


def _strip_delimiters(answer: str) -> str:
    """Drop math delimiters, `$`, surrounding whitespace and a final period; squeeze spaces."""
    s = answer.strip()
    for left, right in (("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(left) and s.endswith(right):
            s = s[len(left) : -len(right)]
    s = re.sub(r"(?<!\\)\$", "", s)  # math delimiters and currency; `\$` is left to the parser
    s = " ".join(s.split()).rstrip(".").strip()
    # An answer wholly in `\text{5 cm}` parses as the symbol `5cm`; unwrapped, math-verify's
    # unit handling reads it as 5 (and `\text{(A)}` stays the letter a).
    whole_text = _WHOLE_TEXT_RE.fullmatch(s)
    return whole_text.group(1).strip() if whole_text else s


def _normalise_text(answer: str) -> str:
    """The canonical form of an answer that does not parse as math: stripped and casefolded."""
    return _strip_delimiters(answer).casefold()


# A plain-text word of 3+ letters, not a LaTeX command and not glued to a number or variable
# ("dollars" in "5 dollars", not "sqrt" in "\sqrt" or "xy" in "2xy").
_PLAIN_WORD_RE = re.compile(r"(?<![\\\w])[a-zA-Z]{3,}")
_TEXT_RE = re.compile(r"\\text\{[^}]*\}")
_INTEGER_RE = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")


@lru_cache(maxsize=8192)
def _parse_answer(answer: str) -> Any | None:
    """Parse one extracted answer into a sympy object, or None when it does not parse.

    math-verify's LaTeX extractor wants math delimiters (`\\dfrac12` alone parses to nothing),
    so the answer is wrapped in `$...$`. Plain-text words then become products of symbols
    ("5 dollars" -> 5*d*o*l*...), which the plain-expression extractor reads correctly as 5;
    it is used when LaTeX fails or a LaTeX-free answer has words, and prose it cannot read
    either ("Monday") is left to text comparison. It is not used otherwise: it reads only a
    number off many LaTeX forms (`[0, 1)` -> 1, `2\\sqrt{2}` -> 2, `y = 2x+1` -> 2), so
    offering both parses to `verify` would accept wrong answers.
    """
    import sympy

    s = _strip_delimiters(answer) if answer else ""
    if not s or len(s) > _MAX_ANSWER_CHARS:
        return None
    if _INTEGER_RE.fullmatch(s):  # what math-verify makes of it, without its ~0.5 ms parse
        return sympy.Integer(int(s))
    latex, plain = _configs()
    parsed = _first_parse(f"${s}$", latex)
    if parsed is False:
        return None  # too big to compute with: the plain reading would be a wrong number
    has_words = "\\" not in s and bool(_PLAIN_WORD_RE.search(_TEXT_RE.sub("", s)))
    if parsed is None or has_words:
        expr = _first_parse(s, plain)
        if expr is not None and expr is not False and (parsed is None or not _free_symbols(expr)):
            parsed = expr
        elif has_words:
            return None
    return _drop_variable_name(parsed) if parsed is not None else None


def _first_parse(text: str, config: list[Any]) -> Any | None:
    """math-verify's first parse of `text`: a sympy object, None if none, False if too big.

    No signal timeout (see the module docstring); `_is_tame` bounds the work instead.
    """
    import sympy
    from math_verify import parse
    from sympy.matrices import MatrixBase

    for item in parse(text, config, fallback_mode="no_fallback", parsing_timeout=None):
        if isinstance(item, sympy.Basic | MatrixBase):
            return item if _is_tame(item) else False
    return None


def _is_tame(obj: Any) -> bool:
    """False for expressions whose exact evaluation would stall (see `_MAX_EXPONENT`)."""
    import sympy
    from sympy.matrices import MatrixBase

    items = list(obj) if isinstance(obj, MatrixBase) else [obj]
    for item in items:
        for node in sympy.preorder_traversal(item):
            if isinstance(node, sympy.Pow) and node.base.is_number:
                if _numeric_above(node.exp, _MAX_EXPONENT):
                    return False
            elif isinstance(node, sympy.factorial) and _numeric_above(node.args[0], _MAX_FACTORIAL):
                return False
    return True


def _numeric_above(value: Any, limit: int) -> bool:
    """Whether a numeric sympy value exceeds `limit` in magnitude (symbolic values do not).

    `evalf` keeps power towers like `10^{10^{10}}` as floats, so this is cheap even where the
    exact value would not be; a value that cannot be compared (zoo, nan) counts as too big.
    """
    if not getattr(value, "is_number", False):
        return False
    try:
        return bool(abs(value.evalf(15)) > limit)
    except (TypeError, ValueError, ArithmeticError):
        return True


def _free_symbols(obj: Any) -> set[Any]:
    return set(getattr(obj, "free_symbols", set()))


def _drop_variable_name(obj: Any) -> Any:
    """`x = 3` -> `3`: a named final answer is the value (verify does the same)."""
    import sympy

    if isinstance(obj, sympy.Eq) and isinstance(obj.lhs, sympy.Symbol):
        return obj.rhs
    return obj


# --------------------------------------------------------------------------- public API


@lru_cache(maxsize=65536)  # pure; a job grades the same few answers thousands of times
def canonical_answer(answer: str) -> str:
    """A string on which equivalent answers agree, so that majority voting counts them together.

    `1/2`, `0.5`, `\\frac{1}{2}` and `\\dfrac12` all give `1/2`; `1,234`, `1234.0` give
    `1234`; units, `$` and `x =` are dropped as math-verify drops them. Decimals become exact
    rationals so a fraction and its decimal vote together. An answer that does not parse keeps
    a whitespace/`$`/case-normalised text form. Never raises: a vote key must always exist.
    """
    integer = _plain_integer(answer)
    if integer is not None:  # what sympy would print, without importing it
        return str(integer)
    try:
        parsed = _parse_answer(answer)
        if parsed is not None:
            return _canonical_form(parsed)
    except Exception:  # a sympy/parser crash means "no math form", not a failed run
        pass
    try:
        return _normalise_text(answer)
    except Exception:
        return str(answer)


@lru_cache(maxsize=65536)  # pure, like canonical_answer: votes repeat answers per problem
def answers_match(predicted: str, gold: str) -> bool:
    """Whether a predicted answer equals the gold one, by math-verify's equivalence.

    Answers with the same canonical form match outright, so grading never disagrees with
    voting. Otherwise `verify(gold, pred)` decides (gold first: it is the reference and
    math-verify treats the two sides differently, e.g. for `x = 3`). Both sides go through
    `_parse_answer`, which tries LaTeX and plain-expression parsing. Any parser crash counts
    as "not equal": a grader must return a score, not raise.
    """
    if not predicted or not gold or not predicted.strip() or not gold.strip():
        return False
    predicted_int, gold_int = _plain_integer(predicted), _plain_integer(gold)
    if predicted_int is not None and gold_int is not None:
        return predicted_int == gold_int  # verify's verdict on two integers
    try:
        if canonical_answer(predicted) == canonical_answer(gold):
            return True
        gold_parsed, pred_parsed = _parse_answer(gold), _parse_answer(predicted)
        if gold_parsed is None or pred_parsed is None:
            return False
        from math_verify import verify

        return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))
    except Exception:
        return False


def grade_math(output: str, problem: Problem) -> Grade:
    """Grade one model output against `problem.answer`: 1.0 if the extracted answer matches.

    `extracted` is the canonical answer (the vote key); `details["rule"]` says which
    extraction rule fired, so reports can show how often the last-number fallback decided.
    """
    if problem.answer is None:
        raise TaskError(
            f"math problem {problem.task}/{problem.id} has no reference answer; "
            "fix the task data or use a grader that needs none"
        )
    raw, rule = extract_answer(output or "")
    if raw is None:
        return Grade(extracted=None, score=0.0, details={"rule": rule})
    score = 1.0 if answers_match(raw, problem.answer) else 0.0
    return Grade(extracted=canonical_answer(raw), score=score, details={"rule": rule})


def _plain_integer(answer: str) -> int | None:
    """The answer's value if it is a plain integer (`42`, `$-7$`, `3.`), else None."""
    s = _strip_delimiters(answer)
    return int(s) if _INTEGER_RE.fullmatch(s) else None


def _canonical_form(parsed: Any) -> str:
    """Print a parsed answer: exact numbers, small expressions simplified, sets as parsed."""
    import sympy

    exact = parsed.xreplace({f: _rationalise(f) for f in parsed.atoms(sympy.Float)})
    if (
        isinstance(exact, sympy.Expr)
        and not exact.is_Number
        and sympy.count_ops(exact) <= _SIMPLIFY_MAX_OPS
    ):
        exact = sympy.simplify(exact)
    return sympy.sstr(exact).replace("\n", "")  # matrices print on several lines


def _rationalise(value: sympy.Float) -> sympy.Rational:
    """A decimal as an exact rational; a long decimal within 1e-9 of a simple fraction as it.

    Few-digit decimals are exact ("0.75" -> 3/4). A long one such as 0.3333333333 is meant as
    1/3, and `verify` (which rounds) agrees, so the vote key should too.
    """
    import sympy

    exact = sympy.nsimplify(value, rational=True)
    if exact.q <= 10**6:
        return exact
    simple = exact.limit_denominator(1000)
    if abs(simple - exact) <= sympy.Rational(1, 10**9) * max(1, abs(exact)):
        return simple
    return exact
