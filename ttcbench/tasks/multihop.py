"""Procedural multi-hop QA: questions that need exactly k facts, over an invented world.

A seed builds a small knowledge base of invented people, companies, cities and countries
(names from random syllables, so no model knows them and closed-book accuracy is chance).
Every relation is functional (one mother, one employer, ...) and each fact is stated in one
document only, its subject's, so a question that follows k relations from a named entity
("In which country is the city where the employer of the mother of Ilvara Tomsen is
headquartered?") has one answer, reachable only through the k gold documents. The hop count
k is the problem class: it is the difficulty knob multi-hop benchmarks (HotpotQA, MuSiQue)
only approximate. Distractor documents about other entities make retrieval part of the task.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import pairwise, zip_longest
from typing import Any

from ttcbench.types import Problem, TaskError

__all__ = ["World", "build_world", "chains", "documents", "load_multihop", "question"]


@dataclass(frozen=True)
class _Relation:
    subject: str
    object: str
    sentence: str
    """How the subject's document states the fact ({Subj}/{Poss}: pronouns)."""
    phrase: str
    """A noun phrase for the object, nesting the subject's phrase as {x}."""
    question: str
    """The question asking for the object, for the last hop."""


RELATIONS: dict[str, _Relation] = {
    "born_in": _Relation(
        "person", "city", "{Subj} was born in {obj}.", "the birthplace of {x}",
        "In which city was {x} born?"),
    "employer": _Relation(
        "person", "company", "{Subj} works for {obj}.", "the employer of {x}",
        "Which company does {x} work for?"),
    "mother": _Relation(
        "person", "person", "{Poss} mother is {obj}.", "the mother of {x}",
        "Who is the mother of {x}?"),
    "located_in": _Relation(
        "company", "city", "{Subj} is headquartered in {obj}.",
        "the city where {x} is headquartered", "In which city is {x} headquartered?"),
    "founder": _Relation(
        "company", "person", "{Subj} was founded by {obj}.", "the founder of {x}",
        "Who founded {x}?"),
    "in_country": _Relation(
        "city", "country", "{Subj} lies in {obj}.", "the country in which {x} lies",
        "In which country is {x}?"),
    "mayor": _Relation(
        "city", "person", "{Poss} mayor is {obj}.", "the mayor of {x}",
        "Who is the mayor of {x}?"),
    "capital": _Relation(
        "country", "city", "{Poss} capital is {obj}.", "the capital of {x}",
        "What is the capital of {x}?"),
}  # fmt: skip

_ONSETS = [*"bdfghklmnprstvz", *"bdklmnrstv", "br", "dr", "kr", "qu", "sh", "th", "tr"]
_VOWELS = [*"aeiou", *"aeio", "ai"]
_CODAS = ["", "", "", "", "", "n", "r", "l", "s", "m"]
_COMPANY_KINDS = ["Works", "Holdings", "Industries", "Labs", "Foundry", "Group", "Trading"]
_CLOSED_BOOK_PROMPT = (
    'Answer the question. Finish with a final line "The answer is" followed by the short '
    "answer.\n\nQuestion: {question}"
)


@dataclass(frozen=True)
class World:
    """The knowledge base: entity kinds, facts (subject -> relation -> object) and genders."""

    kinds: dict[str, str]
    facts: dict[str, dict[str, str]]
    female: frozenset[str]
    aliases: dict[str, list[str]]
    """Other accepted answers: a company's name without "Works"/"Labs"/..."""


class _Names:
    """Invented words, none a substring of another, so every name matches only itself."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used = [w.lower() for w in _COMPANY_KINDS]

    def word(self, syllables: int) -> str:
        while True:
            word = "".join(
                self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) + self.rng.choice(_CODAS)
                for _ in range(syllables)
            ).capitalize()
            low = word.lower()
            if not any(low in other or other in low for other in self.used):
                self.used.append(low)
                return word


def build_world(
    seed: int, people: int = 40, companies: int = 12, cities: int = 10, countries: int = 4,
    generations: int = 3,
) -> World:  # fmt: skip
    """A random world of the given sizes, the same for the same arguments.

    People come in `generations`; a mother is a woman of the generation before, so the
    mother relation has no cycles. Each country gets at least one city, its capital.
    """
    _check_sizes(people, companies, cities, countries, generations)
    rng = random.Random(f"multihop-world/{seed}")
    names = _Names(rng)
    persons = [f"{names.word(rng.choice([2, 3]))} {names.word(2)}" for _ in range(people)]
    firms = [names.word(2) for _ in range(companies)]
    aliases = {f"{stem} {rng.choice(_COMPANY_KINDS)}": [stem] for stem in firms}
    towns = [names.word(rng.choice([2, 3])) for _ in range(cities)]
    lands = [names.word(rng.choice([2, 3])) for _ in range(countries)]
    kinds = {p: "person" for p in persons} | {c: "company" for c in aliases}
    kinds |= {t: "city" for t in towns} | {c: "country" for c in lands}
    generation = {p: i * generations // people for i, p in enumerate(persons)}
    # Half are women, and the first of each generation, so every later person has a mother.
    firsts = {persons[0]} | {b for a, b in pairwise(persons) if generation[a] != generation[b]}
    female = {p for p in persons if rng.random() < 0.5 or p in firsts}
    facts: dict[str, dict[str, str]] = {name: {} for name in kinds}
    for person in persons:
        mothers = [m for m in female if generation[m] == generation[person] - 1]
        facts[person]["born_in"] = rng.choice(towns)
        facts[person]["employer"] = rng.choice(list(aliases))
        if mothers:
            facts[person]["mother"] = rng.choice(sorted(mothers))
    for company in aliases:
        facts[company] |= {"located_in": rng.choice(towns), "founder": rng.choice(persons)}
    for i, town in enumerate(towns):
        country = lands[i] if i < len(lands) else rng.choice(lands)
        facts[town] |= {"in_country": country, "mayor": rng.choice(persons)}
    for land in lands:
        facts[land]["capital"] = rng.choice([t for t in towns if facts[t]["in_country"] == land])
    return World(kinds, facts, frozenset(female), aliases)


def _check_sizes(
    people: int, companies: int, cities: int, countries: int, generations: int
) -> None:
    """Refuse a world where some relation would have no object (a country without a city)."""
    if (
        min(companies, cities, countries, generations) < 1
        or countries > cities
        or people < 2 * generations
    ):
        raise TaskError(
            "multihop world needs companies, cities, countries, generations >= 1, countries "
            f"<= cities and people >= 2 * generations; got {people=} {companies=} {cities=} "
            f"{countries=} {generations=}"
        )


def documents(world: World) -> dict[str, str]:
    """One document per entity (title = its name) stating that entity's facts and no others."""
    pronouns = {"person": ("He", "His"), "company": ("It", "Its"), "city": ("It", "Its")}
    pronouns["country"] = pronouns["city"]
    docs = {}
    for name, kind in world.kinds.items():
        subj, poss = ("She", "Her") if name in world.female else pronouns[kind]
        noun = {"person": "woman" if name in world.female else "man"}.get(kind, kind)
        article = "an" if noun[0] in "aeiou" else "a"
        sentences = [f"{name} is {article} {noun}."] + [
            RELATIONS[rel].sentence.format(Subj=subj, Poss=poss, obj=obj)
            for rel, obj in world.facts[name].items()
        ]
        docs[name] = " ".join(sentences)
    return docs


def chains(world: World, hops: int) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Every (entities, relations) path of exactly `hops` facts that never revisits an entity.

    Revisits are excluded because "the mother of the employer's founder of X" may be X,
    whose name the question already gives away.
    """
    found: list[tuple[tuple[str, ...], tuple[str, ...]]] = []

    def walk(path: tuple[str, ...], rels: tuple[str, ...]) -> None:
        if len(rels) == hops:
            found.append((path, rels))
            return
        for rel, obj in world.facts[path[-1]].items():
            if obj not in path:
                walk((*path, obj), (*rels, rel))

    for start in world.kinds:
        walk((start,), ())
    return found


def question(path: tuple[str, ...], rels: tuple[str, ...]) -> str:
    """The question for a chain: nested noun phrases for all but the last hop, then a query."""
    phrase = path[0]
    for rel in rels[:-1]:
        phrase = RELATIONS[rel].phrase.format(x=phrase)
    return RELATIONS[rels[-1]].question.format(x=phrase)


def _settings(spec: dict[str, Any]) -> dict[str, Any]:
    """The generator knobs of a spec, checked, with defaults."""
    settings = {
        "hops": list(spec.get("hops", [1, 2, 3, 4])),
        "distractors": spec.get("distractors", 4),
        "size": spec.get("size", 100),
        "closed_book": bool(spec.get("closed_book", False)),
        "world": {
            k: spec[k]
            for k in ("people", "companies", "cities", "countries", "generations")
            if k in spec
        },
    }
    hops, distractors = settings["hops"], settings["distractors"]
    if not hops or any(not isinstance(k, int) or not 1 <= k <= 8 for k in hops):
        raise TaskError(f"task {spec['name']!r}: hops must be integers in 1..8, got {hops}")
    if not isinstance(distractors, int) or distractors < 0:
        raise TaskError(f"task {spec['name']!r}: distractors must be >= 0, got {distractors}")
    return settings


def load_multihop(spec: dict[str, Any], limit: int | None, seed: int) -> list[Problem]:
    """Problems for each hop count in `spec["hops"]`, interleaved, at most `limit`.

    Hop classes alternate (round-robin), so any prefix is balanced across classes; each
    class's problems are a fixed shuffle of all its chains, so problem i never depends on
    `limit`.
    """
    settings = _settings(spec)
    world = build_world(seed, **settings["world"])
    docs = documents(world)
    per_class = -(-limit // len(settings["hops"])) if limit else settings["size"]
    streams = []
    for hops in settings["hops"]:
        paths = chains(world, hops)
        if not paths:
            raise TaskError(f"task {spec['name']!r}: the world has no {hops}-hop chains")
        random.Random(f"multihop/{seed}/{hops}").shuffle(paths)
        streams.append(
            [
                _problem(spec, settings, world, docs, seed, index, chain)
                for index, chain in enumerate(paths[:per_class])
            ]
        )
    problems = [p for group in zip_longest(*streams) for p in group if p is not None]
    return problems[:limit] if limit else problems


def _problem(
    spec: dict[str, Any], settings: dict[str, Any], world: World, docs: dict[str, str],
    seed: int, index: int, chain: tuple[tuple[str, ...], tuple[str, ...]],
) -> Problem:  # fmt: skip
    """One problem: the question on `chain`, its gold documents and shuffled distractors."""
    path, rels = chain
    hops, answer = len(rels), path[-1]
    gold = list(path[:-1])
    others = [name for name in docs if name not in path]
    if settings["distractors"] > len(others):
        raise TaskError(
            f"task {spec['name']!r}: {settings['distractors']} distractors asked, but the "
            f"world has only {len(others)} other entities; lower distractors or grow the world"
        )
    rng = random.Random(f"multihop/{seed}/{hops}/{index}")
    titles = gold + rng.sample(others, settings["distractors"])
    rng.shuffle(titles)
    return Problem(
        task=spec["name"],
        id=f"multihop/h{hops}/{index:04d}",
        prompt=_prompt(spec, settings["closed_book"], question(path, rels), docs, titles),
        answer=answer,
        classes={
            "family": spec["family"],
            "hops": str(hops),
            "distractors": str(settings["distractors"]),
            "book": "closed" if settings["closed_book"] else "open",
        },
        meta={
            "aliases": list(world.aliases.get(answer, [])),
            "gold_docs": gold,
            "chain": list(path),
            "relations": list(rels),
        },
    )


def _prompt(
    spec: dict[str, Any], closed_book: bool, text: str, docs: dict[str, str], titles: list[str]
) -> str:
    """The context documents, then the question; closed book drops the documents."""
    if closed_book:
        return spec.get("closed_book_prompt", _CLOSED_BOOK_PROMPT).format(question=text)
    context = "\n\n".join(f"Title: {t}\n{docs[t]}" for t in titles)
    return spec["prompt"].format(context=context, question=text)
