"""Tests for ttcbench.tasks.multihop: determinism, exact hop counts, answerability, classes."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from ttcbench.tasks.multihop import World, build_world, chains, documents, load_multihop
from ttcbench.tasks.qa import grade_qa
from ttcbench.types import Problem, TaskError

SPEC_PATH = Path(__file__).resolve().parents[2] / "tasks" / "multihop.yaml"
_TITLE_RE = re.compile(r"^Title: (.+)\n(.+)$", re.MULTILINE)


def _spec(**overrides: Any) -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text()) | overrides


def _world(spec: dict[str, Any], seed: int = 0) -> World:
    keys = ("people", "companies", "cities", "countries", "generations")
    return build_world(seed, **{k: spec[k] for k in keys})


def _context(problem: Problem) -> dict[str, str]:
    """The documents in a prompt, title -> text."""
    return dict(_TITLE_RE.findall(problem.prompt))


def _follow(facts: dict[str, dict[str, str]], start: str, relations: list[str]) -> str | None:
    """The entity reached from `start` along `relations`, or None where a fact is missing."""
    entity: str | None = start
    for rel in relations:
        entity = facts.get(entity, {}).get(rel) if entity else None
    return entity


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return load_multihop(_spec(), limit=80, seed=0)


def test_spec_matches_the_registry_contract() -> None:
    spec = _spec()
    assert {k: spec[k] for k in ("name", "family", "source", "grader")} == {
        "name": "multihop", "family": "qa", "source": "multihop", "grader": "qa"
    }  # fmt: skip
    assert "{context}" in spec["prompt"] and "{question}" in spec["prompt"]
    assert spec["prompt"].index("{context}") < spec["prompt"].index("{question}")
    assert "The answer is" in spec["prompt"]


def test_deterministic_and_seed_dependent(problems: list[Problem]) -> None:
    assert load_multihop(_spec(), limit=80, seed=0) == problems
    other = load_multihop(_spec(), limit=80, seed=1)
    assert [p.prompt for p in other] != [p.prompt for p in problems]
    assert len({p.id for p in problems}) == len({p.prompt for p in problems}) == 80
    assert problems[0].id == "multihop/h1/0000" and problems[3].id == "multihop/h4/0000"


def test_each_class_has_exactly_k_hops(problems: list[Problem]) -> None:
    facts = _world(_spec()).facts
    for problem in problems:
        k = int(problem.classes["hops"])
        chain, relations = problem.meta["chain"], problem.meta["relations"]
        assert len(relations) == len(problem.meta["gold_docs"]) == k
        assert len(chain) == len(set(chain)) == k + 1  # never revisits an entity
        assert all(facts[chain[i]][relations[i]] == chain[i + 1] for i in range(k))
        assert problem.answer == chain[-1] and problem.meta["gold_docs"] == chain[:-1]
        question = problem.prompt.rsplit("Question: ", 1)[1]
        assert chain[0] in question and problem.answer not in question


def test_answer_is_reachable_only_through_the_gold_docs(problems: list[Problem]) -> None:
    facts = _world(_spec()).facts
    for problem in problems:
        context = _context(problem)
        start, relations = problem.meta["chain"][0], problem.meta["relations"]
        known = {title: facts[title] for title in context}
        assert _follow(known, start, relations) == problem.answer
        for gold in problem.meta["gold_docs"]:
            without = {t: f for t, f in known.items() if t != gold}
            assert _follow(without, start, relations) is None, (problem.id, gold)
        chain = problem.meta["chain"]
        for i, gold in enumerate(problem.meta["gold_docs"]):
            assert chain[i + 1] in context[gold]  # the hop's entity is named in its gold doc


def test_documents_state_only_their_own_facts() -> None:
    world = _world(_spec())
    docs = documents(world)
    names = list(world.kinds)
    assert all(a == b or a not in b for a in names for b in names)  # no name inside another
    for subject, text in docs.items():
        mentioned = {name for name in names if name in text} - {subject}
        assert mentioned == set(world.facts[subject].values()), subject


def test_distractor_count_and_shuffle(problems: list[Problem]) -> None:
    for problem in problems:
        context = _context(problem)
        gold = problem.meta["gold_docs"]
        assert len(context) == len(gold) + 4 and set(gold) <= set(context)
        assert not set(context) & (set(problem.meta["chain"]) - set(gold))
        assert problem.classes == {
            "family": "qa", "hops": str(len(gold)), "distractors": "4", "book": "open"
        }  # fmt: skip
    assert any(list(_context(p))[0] not in p.meta["gold_docs"] for p in problems)  # shuffled
    some = load_multihop(_spec(distractors=9), limit=4, seed=0)
    assert [len(_context(p)) - len(p.meta["gold_docs"]) for p in some] == [9, 9, 9, 9]
    with pytest.raises(TaskError, match="distractors"):
        load_multihop(_spec(distractors=500), limit=1, seed=0)


def test_closed_book_omits_the_context() -> None:
    open_book = load_multihop(_spec(), limit=8, seed=0)
    closed = load_multihop(_spec(closed_book=True), limit=8, seed=0)
    docs = documents(_world(_spec()))
    for shut, shown in zip(closed, open_book, strict=True):
        assert "Title:" not in shut.prompt and not _context(shut)
        assert all(docs[t] not in shut.prompt for t in shown.meta["gold_docs"])
        assert shut.prompt.endswith(shown.prompt.rsplit("Question: ", 1)[1])
        assert (shut.answer, shut.classes["book"]) == (shown.answer, "closed")


def test_round_robin_balance_under_limit() -> None:
    for limit, expected in ((10, [3, 3, 2, 2]), (8, [2, 2, 2, 2]), (1, [1, 0, 0, 0])):
        got = Counter(p.classes["hops"] for p in load_multihop(_spec(), limit=limit, seed=0))
        assert [got[k] for k in "1234"] == expected
    small = load_multihop(_spec(), limit=8, seed=0)
    large = load_multihop(_spec(), limit=40, seed=0)
    assert small == large[:8]  # a problem never depends on the limit
    assert len(load_multihop(_spec(hops=[2], size=7), limit=None, seed=0)) == 7


def test_gold_as_prediction_scores_one(problems: list[Problem]) -> None:
    for problem in problems:
        assert grade_qa(f"The answer is {problem.answer}.", problem).score == 1.0
        for alias in problem.meta["aliases"]:
            assert grade_qa(f"Answer: {alias}", problem).score == 1.0
    wrong = problems[0].meta["chain"][0]
    assert grade_qa(f"The answer is {wrong}.", problems[0]).score == 0.0


def test_chains_exist_for_long_hops_and_bad_knobs_fail() -> None:
    world = _world(_spec())
    assert all(chains(world, k) for k in range(1, 7))
    for bad in ({"hops": [0]}, {"hops": []}, {"hops": ["2"]}, {"distractors": -1}):
        with pytest.raises(TaskError):
            load_multihop(_spec(**bad), limit=4, seed=0)
    with pytest.raises(TaskError, match="world needs"):
        load_multihop(_spec(countries=20), limit=4, seed=0)
