"""Tests for ttcbench.tasks.qa: SQuAD normalisation, EM/F1, yes/no, aliases and extraction."""

from __future__ import annotations

import pytest

from ttcbench.tasks.qa import exact_match, extract_answer, grade_qa, normalize_answer, token_f1
from ttcbench.types import Problem, TaskError


def _problem(answer: str | None, aliases: list[str] | None = None) -> Problem:
    meta = {"aliases": aliases} if aliases is not None else {}
    return Problem(task="toy_qa", id="q0", prompt="Who?", answer=answer, meta=meta)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Big Cat", "big cat"),
        ("  a   dog,  an apple and THE end. ", "dog apple and end"),
        ("U.S.A.", "usa"),
        ("Saint-Étienne!", "saintétienne"),
        ("theory of the atom", "theory of atom"),  # only whole-word articles go
        ("Anne", "anne"),
        ("", ""),
    ],
)
def test_normalize_answer_follows_squad(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


@pytest.mark.parametrize(
    ("pred", "gold", "em", "f1"),
    [
        ("the big cat", "big cat", 1.0, 1.0),
        ("big red cat", "big cat", 0.0, 0.8),  # P = 2/3, R = 1
        ("Barack Obama", "Obama", 0.0, 2 / 3),  # P = 1/2, R = 1
        ("cat", "big cat", 0.0, 2 / 3),  # P = 1, R = 1/2
        ("dog", "big cat", 0.0, 0.0),
        ("cat cat", "cat", 0.0, 2 / 3),  # Counter overlap counts a repeated token once
        ("", "cat", 0.0, 0.0),
        ("The", "a", 1.0, 1.0),  # both normalise to empty
    ],
)
def test_exact_match_and_token_f1(pred: str, gold: str, em: float, f1: float) -> None:
    assert exact_match(pred, gold) == em
    assert token_f1(pred, gold) == pytest.approx(f1)


@pytest.mark.parametrize(
    ("pred", "gold", "em", "f1"),
    [
        ("Yes, they are both rivers.", "yes", 1.0, 1.0),
        ("No.", "no", 1.0, 1.0),
        ("yes", "no", 0.0, 0.0),
        ("Yes, they are both rivers.", "no", 0.0, 0.0),
        ("yes", "yes sir", 0.0, 0.0),  # a yes/no prediction scores F1 only if it is exact
        ("no way", "way", 0.0, 2 / 3),  # not coerced: the gold is not yes/no
        ("noanswer", "no answer", 0.0, 0.0),
    ],
)
def test_yes_no_answers(pred: str, gold: str, em: float, f1: float) -> None:
    assert exact_match(pred, gold) == em
    assert token_f1(pred, gold) == pytest.approx(f1)


def test_aliases_score_the_best_gold() -> None:
    assert exact_match("Quenbrook", ["Quenbrook Works", "Quenbrook"]) == 1.0
    assert token_f1("Quenbrook Labs", ["Quenbrook Works", "Labs"]) == pytest.approx(2 / 3)
    assert exact_match("x", []) == 0.0
    grade = grade_qa("The answer is Quenbrook.", _problem("Quenbrook Works", ["Quenbrook"]))
    assert grade.score == 1.0
    assert grade.details["f1"] == 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Step 1 ... The answer is Paris.", ("Paris", "answer_is")),
        ("Answer: Ilvara Tomsen", ("Ilvara Tomsen", "answer_is")),
        ("Final answer: **Tolmere**", ("Tolmere", "answer_is")),
        ('**Final Answer:** "Tolmere".', ("Tolmere", "answer_is")),
        ("The answer is: 'Vel Oria'", ("Vel Oria", "answer_is")),
        ("the answer is X. Hmm, wait.\nThe answer is Y.", ("Y", "answer_is")),
        ("The answer is Paris. I am sure of it.", ("Paris", "answer_is")),
        ("The answer is St. Louis.", ("St. Louis", "answer_is")),
        ("The answer is Quenbrook Ltd.", ("Quenbrook Ltd", "answer_is")),
        ("The answer is John F. Kennedy.", ("John F. Kennedy", "answer_is")),
        ("I think so.\n\nParis\n\n", ("Paris", "last_line")),
        ("The answer is:\n**Paris**", ("Paris", "answer_is")),
        ("the answer is Rome.\nAnswer:", ("Rome", "answer_is")),  # an empty span is skipped
        # Reasoning tags are markup, never the answer or the last line.
        ("The answer is Paris.\n\nThe answer is \n</think>", ("Paris", "answer_is")),
        ("<think>Rome?</think>\nParis\n</think>", ("Paris", "last_line")),
        ("<think></think>", (None, "none")),
        ("", (None, "none")),
        ("  \n ", (None, "none")),
        (None, (None, "none")),
    ],
)
def test_extract_answer_rules(text: str | None, expected: tuple[str | None, str]) -> None:
    assert extract_answer(text) == expected


def test_grade_qa_extracted_is_the_vote_key() -> None:
    problem = _problem("Ilvara Tomsen")
    first = grade_qa("The answer is ilvara tomsen.", problem)
    second = grade_qa("Answer: **The Ilvara Tomsen**", problem)
    assert first.extracted == second.extracted == "ilvara tomsen"
    assert first.score == second.score == 1.0
    assert first.details == {"f1": 1.0, "rule": "answer_is"}
    wrong = grade_qa("Thinking...\nIlvara", problem)
    assert (wrong.score, wrong.details["rule"]) == (0.0, "last_line")
    assert wrong.details["f1"] == pytest.approx(2 / 3)


def test_grade_qa_yes_no_votes_together() -> None:
    problem = _problem("yes")
    grades = [grade_qa(t, problem) for t in ("The answer is Yes, both.", "Answer: yes")]
    assert [g.extracted for g in grades] == ["yes", "yes"]
    assert [g.score for g in grades] == [1.0, 1.0]


def test_grade_qa_without_an_answer() -> None:
    grade = grade_qa("", _problem("Paris"))
    assert (grade.extracted, grade.score, grade.details) == (None, 0.0, {"f1": 0.0, "rule": "none"})
    assert grade_qa("The answer is the.", _problem("Paris")).extracted is None
    with pytest.raises(TaskError, match="no reference answer"):
        grade_qa("Paris", _problem(None))


@pytest.mark.parametrize(
    "gold",
    ["Paris", "Ilvara Tomsen", "the Eiffel Tower", "1,234", "yes", "no", "U.S.A.",
     "Quenbrook Works", "St. Louis", "Saint-Étienne", "\"Hey Jude\"", "3.14"],
)  # fmt: skip
def test_gold_as_prediction_scores_one(gold: str) -> None:
    grade = grade_qa(f"The answer is {gold}", _problem(gold))
    assert grade.score == 1.0
    assert grade.details["f1"] == 1.0
    assert grade_qa(f"Reasoning.\nThe answer is {gold}.", _problem(gold)).score == 1.0
