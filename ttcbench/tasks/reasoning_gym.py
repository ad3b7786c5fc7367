"""Procedural, verifiable problems from reasoning-gym: offline, unlimited, with known knobs.

A spec lists generators, each a reasoning-gym dataset with a difficulty config and the class
labels it stands for; problems are drawn round-robin so every class is equally represented.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable
from itertools import zip_longest
from pathlib import Path
from types import ModuleType
from typing import Any

from ttcbench.types import Problem, TaskError


def load_reasoning_gym(spec: dict[str, Any], limit: int | None, seed: int) -> list[Problem]:
    """Problems from each generator in `spec["generators"]`, interleaved, at most `limit`."""
    generators = spec.get("generators") or []
    if not generators:
        raise TaskError(f"task {spec['name']!r}: a reasoning_gym task needs `generators`")
    create_dataset = dataset_factory(gen["dataset"] for gen in generators)
    # Draw extra so that dropping repeated questions still leaves `limit` problems.
    per_generator = 2 * -(-limit // len(generators)) if limit else spec.get("size", 100)
    streams = []
    for index, gen in enumerate(generators):
        try:
            dataset = create_dataset(
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


def dataset_factory(names: Iterable[str]) -> Callable[..., Any]:
    """reasoning-gym's `create_dataset`, with only the generator modules of `names` imported.

    `import reasoning_gym` imports all ~100 generators and their libraries (sympy, cellpylib,
    matplotlib: ~1.8 s, before the first request). Its package body is deferred instead
    (`_DeferredPackage`); each generator's own module, found by its file name, registers it.
    A generator found no other way, or a version whose modules do not import alone, gets the
    whole package, as before."""
    package = _deferred_package("reasoning_gym")
    names = list(names)
    try:
        for module in filter(None, map(_generator_module, names)):
            importlib.import_module(module)
        registered = importlib.import_module("reasoning_gym.factory").DATASETS
        found = all(name in registered for name in names)
    except ImportError:
        found = False
    if not found and isinstance(package, _DeferredPackage):
        package.run_body()  # imports and registers every generator
    return importlib.import_module("reasoning_gym.factory").create_dataset  # type: ignore[no-any-return]


def _generator_module(name: str) -> str | None:
    """The module named after generator `name` (its convention: `arithmetic/chain_sum.py`)."""
    root = Path(sys.modules["reasoning_gym"].__path__[0])
    for path in sorted(root.rglob(f"{name}.py")):
        return ".".join(("reasoning_gym", *path.relative_to(root).with_suffix("").parts))
    return None


class _DeferredPackage(ModuleType):
    """A package whose `__init__` runs at the first use of a name it defines (a submodule
    name imports that submodule alone), so importing one submodule does not import them all;
    `import reasoning_gym` elsewhere in the process still gets the whole package on use."""

    def __getattr__(self, name: str) -> Any:
        if importlib.util.find_spec(f"{self.__name__}.{name}") is not None:
            return importlib.import_module(f"{self.__name__}.{name}")
        self.run_body()
        return ModuleType.__getattribute__(self, name)

    def run_body(self) -> None:
        """Run the package's `__init__` (once): it imports every submodule not yet imported."""
        self.__class__ = ModuleType  # type: ignore[assignment]
        self.__spec__.loader.exec_module(self)  # type: ignore[union-attr]


def _deferred_package(name: str) -> ModuleType:
    """The package `name` from sys.modules, or a `_DeferredPackage` put there."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise TaskError(f"{name} is not installed: pip install {name.replace('_', '-')}")
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _DeferredPackage
    sys.modules[name] = module
    return module


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
