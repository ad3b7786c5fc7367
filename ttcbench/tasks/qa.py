"""Short-answer QA grading as researchers know it from SQuAD and HotpotQA.

Scores are the official ones so numbers compare with published results: answers are
normalised with SQuAD's `normalize_answer` (lower-case, no punctuation, no articles, single
spaces), exact match (EM) is string equality after normalisation, and token F1 is the SQuAD
bag-of-tokens F1. As in the HotpotQA script, a yes/no/noanswer gold gets F1 = EM (token
overlap with "yes" means nothing). Two additions the official scripts leave to the caller:

* `extract_answer` picks the answer the model committed to ("The answer is X") with named
  rules, so reports can count how often the last-line fallback decided.
* A prediction that starts with "yes"/"no" ("Yes, they are both rivers") counts as that word
  when the gold is yes/no: models justify binary answers, and EM would otherwise be 0.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from ttcbench.tasks.answer_format import ANSWER_IS_RE, without_reasoning_tags
from ttcbench.types import Grade, Problem, TaskError

__all__ = ["exact_match", "extract_answer", "grade_qa", "normalize_answer", "token_f1"]

_BINARY = ("yes", "no", "noanswer")
"""Golds whose F1 is their EM (HotpotQA official script)."""

_SENTENCE_END_RE = re.compile(r"\.\s+")
_WRAPPERS = "\"'`*“”‘’ \t"
_ABBREVIATION_RE = re.compile(
    r"(?:^|\s)(?:St|Mt|Ft|Ltd|Inc|Co|Corp|Bros|Dr|Mr|Mrs|Ms|Jr|Sr|Prof|Gen|vs"
    r"|[A-Z](?:\.[A-Z])*)$"
)
"""The word before a '.' that makes it an abbreviation, not a sentence end: St. Ltd. F. U.S."""
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """SQuAD's official normalisation: lower-case, drop punctuation, articles, extra spaces."""
    text = s.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def extract_answer(text: str | None) -> tuple[str | None, str]:
    """Return (the final answer the model committed to, the rule that found it).

    Rules: the last "The answer is X" / "Answer: X" / "Final answer: X" ("answer_is"), else
    the last non-empty line ("last_line"), a declared fallback so reports can show how often
    the model ignored the answer format; (None, "none") for empty output.
    """
    text = without_reasoning_tags(text)
    if not text.strip():
        return None, "none"
    for match in reversed(list(ANSWER_IS_RE.finditer(text))):
        answer = _clean_span(_first_sentence(match.group("ans")))
        if answer:
            return answer, "answer_is"
    last_line = [line for line in text.splitlines() if line.strip()][-1]
    answer = _clean_span(last_line)
    return (answer, "last_line") if answer else (None, "none")


def _first_sentence(span: str) -> str:
    """Cut "Paris. I am sure." to "Paris", but keep "St. Louis" and "Quenbrook Ltd." whole."""
    for match in _SENTENCE_END_RE.finditer(span):
        if not _ABBREVIATION_RE.search(span[: match.start()]):
            return span[: match.start()]
    return span


def _clean_span(span: str) -> str:
    """Strip bold, quotes and a final period, repeatedly: `**"Paris".**` -> `Paris`."""
    previous = None
    while span != previous:
        previous = span
        span = span.strip(_WRAPPERS).removesuffix(".")
    return span


def _golds(gold: str | Sequence[str]) -> list[str]:
    return [gold] if isinstance(gold, str) else list(gold)


def _coerce_binary(pred: str, gold: str) -> str:
    """Normalised prediction, read as "yes"/"no" when the gold is and the prediction opens so."""
    norm_pred, norm_gold = normalize_answer(pred), normalize_answer(gold)
    if norm_gold in ("yes", "no"):
        first = norm_pred.split()[:1]
        if first and first[0] in ("yes", "no"):
            return first[0]
    return norm_pred


def exact_match(pred: str, gold: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals a normalised gold (any alias), else 0.0."""
    return max(
        (float(_coerce_binary(pred, g) == normalize_answer(g)) for g in _golds(gold)), default=0.0
    )


def token_f1(pred: str, gold: str | Sequence[str]) -> float:
    """SQuAD token F1 over normalised text, the best over the golds (aliases).

    A yes/no/noanswer on either side scores as EM, as in the HotpotQA official script.
    """
    return max((_f1_one(pred, g) for g in _golds(gold)), default=0.0)


def _f1_one(pred: str, gold: str) -> float:
    norm_pred, norm_gold = _coerce_binary(pred, gold), normalize_answer(gold)
    if (norm_pred in _BINARY or norm_gold in _BINARY) and norm_pred != norm_gold:
        return 0.0
    pred_tokens, gold_tokens = norm_pred.split(), norm_gold.split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)  # SQuAD v2: empty matches only empty
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def grade_qa(output: str, problem: Problem) -> Grade:
    """Grade one output against `problem.answer` and `problem.meta["aliases"]`: score is EM.

    `extracted` is the normalised answer, so answers differing only in case, articles or
    punctuation vote together; `details` carries the best token F1 and the extraction rule.
    """
    golds = [a for a in [problem.answer, *problem.meta.get("aliases", [])] if a is not None]
    if not golds:
        raise TaskError(
            f"QA problem {problem.task}/{problem.id} has no reference answer or aliases; "
            "fix the task data or use a grader that needs none"
        )
    raw, rule = extract_answer(output)
    if raw is None:
        return Grade(extracted=None, score=0.0, details={"f1": 0.0, "rule": rule})
    binary_gold = next((g for g in golds if normalize_answer(g) in ("yes", "no")), None)
    extracted = _coerce_binary(raw, binary_gold) if binary_gold else normalize_answer(raw)
    details = {"f1": token_f1(raw, golds), "rule": rule}
    return Grade(extracted=extracted or None, score=exact_match(raw, golds), details=details)
