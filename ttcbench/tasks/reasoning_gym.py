"""Procedural, verifiable problems from reasoning-gym: offline, unlimited, with known knobs.

A spec lists generators, each a reasoning-gym dataset with a difficulty config and the class
labels it stands for; problems are drawn round-robin so every class is equally represented.
"""

from __future__ import annotations

from itertools import zip_longest
from typing import Any

from ttcbench.types import Problem, TaskError


def load_reasoning_gym(spec: dict[str, Any], limit: int | None, seed: int) -> list[Problem]:
    """Problems from each generator in `spec["generators"]`, interleaved, at most `limit`."""
    import reasoning_gym

    generators = spec.get("generators") or []
    if not generators:
        raise TaskError(f"task {spec['name']!r}: a reasoning_gym task needs `generators`")
    # Draw extra so that dropping repeated questions still leaves `limit` problems.
    per_generator = 2 * -(-limit // len(generators)) if limit else spec.get("size", 100)
    streams = []
    for index, gen in enumerate(generators):
        try:
            dataset = reasoning_gym.create_dataset(
                gen["dataset"],
                size=per_generator,
                seed=seed + 1000 * index,
                **gen.get("config", {}),
            )
        except Exception as err:
            raise TaskError(f"task {spec['name']!r}: generator {gen['dataset']!r}: {err}") from err
        streams.append([_problem(spec, gen, i, item) for i, item in enumerate(dataset)])
    problems = _distinct([p for group in zip_longest(*streams) for p in group if p is not None])
    return problems[:limit] if limit else problems


def _distinct(problems: list[Problem]) -> list[Problem]:
    """Drop repeated questions: small generator spaces (1-digit sums) repeat by chance, and a
    repeat would count one question twice in every accuracy estimate."""
    seen: set[str] = set()
    unique = []
    for problem in problems:
        if problem.prompt not in seen:
            seen.add(problem.prompt)
            unique.append(problem)
    return unique


def _item_class(item: dict, rule: str) -> str:
    """A class label read off one generated item: `metadata.<key>`, or `cot_steps` (lines of
    a GSM-style worked solution before `####`, a difficulty knob the generator does not set)."""
    metadata = item.get("metadata", {})
    if rule == "cot_steps":
        solution = str(metadata.get("answer_cot", "")).split("####")[0]
        return str(len([line for line in solution.splitlines() if line.strip()]))
    if rule.startswith("metadata."):
        return str(metadata.get(rule.removeprefix("metadata."), ""))
    raise TaskError(f"unknown item class rule {rule!r}; valid: cot_steps, metadata.<key>")


def _problem(spec: dict[str, Any], gen: dict[str, Any], index: int, item: dict) -> Problem:
    classes = {"family": spec["family"], **{k: str(v) for k, v in gen.get("classes", {}).items()}}
    classes |= {k: _item_class(item, rule) for k, rule in gen.get("item_classes", {}).items()}
    label = "-".join(classes[k] for k in sorted(gen.get("classes", {})))
    return Problem(
        task=spec["name"],
        id=f"{gen['dataset']}/{label}/{index:04d}",
        prompt=spec["prompt"].format(question=item["question"]),
        answer=str(item["answer"]),
        classes=classes,
        meta={"source_dataset": gen["dataset"]},
    )
