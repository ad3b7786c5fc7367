"""A reasoning-gym task imports only its generators' modules (start-up: the whole package is
~1.8 s of sympy, cellpylib and matplotlib), yet draws exactly the problems the whole package
draws, and `import reasoning_gym` elsewhere in the process still gets the whole package."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
{first}
from ttcbench.tasks.registry import read_spec
from ttcbench.tasks.reasoning_gym import load_reasoning_gym

spec = read_spec({task!r})
problems = load_reasoning_gym(spec, limit=6, seed=3)
heavy = sorted(m for m in ("sympy", "matplotlib", "cellpylib", "reasoning_gym.algebra")
               if m in sys.modules)
import reasoning_gym  # another user of the package, later in the same process
out = {{"problems": [[p.id, p.prompt, p.answer, p.classes] for p in problems], "heavy": heavy,
        "version": reasoning_gym.__version__,
        "datasets": len(reasoning_gym.factory.DATASETS),
        "other": reasoning_gym.create_dataset("basic_arithmetic", size=1, seed=0)[0]["question"]}}
print(json.dumps(out))
"""


def probe(task: str, first: str = "") -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(task=task, first=first)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("task", ["arithmetic", "family_relationships"])
def test_a_task_imports_only_its_generators_and_draws_the_same_problems(task: str) -> None:
    alone = probe(task)
    whole = probe(task, first="import reasoning_gym")  # the package imported in full first
    assert alone["heavy"] == []
    assert "sympy" in whole["heavy"]  # the probe does see what the whole package imports
    assert alone["problems"] == whole["problems"] and len(alone["problems"]) == 6
    # the package completed on use: every generator registered, as after a plain import
    assert (alone["datasets"], alone["version"], alone["other"]) == (
        whole["datasets"], whole["version"], whole["other"],
    )  # fmt: skip


def test_an_unknown_generator_is_named_in_the_error(tmp_path) -> None:
    code = (
        "from ttcbench.tasks.reasoning_gym import load_reasoning_gym\n"
        "spec = {'name': 't', 'family': 'math', 'prompt': '{question}',\n"
        "        'generators': [{'dataset': 'no_such_generator'}]}\n"
        "load_reasoning_gym(spec, limit=2, seed=0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert "TaskError: task 't': generator 'no_such_generator'" in done.stderr
