"""Every notebook runs top to bottom with nbclient on tiny settings, in a temporary working
directory (results there too), with the kernel's own inline plotting backend as in Jupyter.

The notebooks read their sizes and extra overrides from the environment (TTCBENCH_NB_*), so
the fast tests point them at a scripted OpenAI-compatible server and the slow one at the
embedded model. They are committed with the outputs of a real small run on the embedded
model (`python notebooks/regenerate.py`); the tests check those outputs are there and clean.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat
import pytest
from fakeserver import FakeOpenAI, solve_arithmetic
from nbclient import NotebookClient

import ttcbench

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["quickstart", "compare_strategies", "reproduce_self_consistency"]


def reply(body: dict) -> str:
    """A right answer, or (one time in three, by a hash of prompt and seed) a wrong one."""
    prompt = body["messages"][-1]["content"]
    draw = int(hashlib.sha256(f"{prompt}|{body.get('seed')}".encode()).hexdigest(), 16)
    return f"The answer is {1000 + draw % 3}" if draw % 3 == 0 else solve_arithmetic(body)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The kernel inherits this environment: results and the call cache under tmp_path."""
    monkeypatch.setenv("TTCBENCH_NB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("TTCBENCH_CACHE", str(tmp_path / "cache.sqlite"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # Agg would hide what plt.show() shows
    return tmp_path


def execute(name: str, cwd: Path) -> nbformat.NotebookNode:
    book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return book


def text_of(book: nbformat.NotebookNode) -> str:
    """Everything the executed cells printed or displayed as text."""
    parts = []
    for cell in book.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def images(cell: nbformat.NotebookNode) -> int:
    return sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))


def plot_cell(book: nbformat.NotebookNode) -> nbformat.NotebookNode:
    (cell,) = [c for c in book.cells if c.cell_type == "code" and "plt.show()" in c.source]
    return cell


@pytest.mark.parametrize("name", NAMES)
def test_committed_with_clean_outputs_and_a_parameters_cell(name: str) -> None:
    book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(book)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert code[0].metadata.get("tags") == ["parameters"] and "TTCBENCH_NB_" in code[0].source
    assert all(c.execution_count is not None for c in code), "run notebooks/regenerate.py"
    assert all(c.outputs for c in code[1:]), "every cell after the parameters shows something"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    streams = "".join(o.text for o in outputs if o.output_type == "stream")
    assert "Traceback" not in streams and "\r" not in streams and "/tmp/" not in streams
    assert not [c for c in code if "execution" in c.metadata], "timings make noisy diffs"


def test_committed_quickstart_shows_its_plot() -> None:
    book = nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4)
    assert images(plot_cell(book)) == 1
    assert images(book.cells[-1]) == 1  # the report's figure


def test_quickstart_on_a_scripted_server(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI(reply) as server:
        monkeypatch.setenv(
            "TTCBENCH_NB_OVERRIDES", f"model=llamacpp_server model.api_base={server.api_base}"
        )
        monkeypatch.setenv("TTCBENCH_NB_LIMIT", "4")
        monkeypatch.setenv("TTCBENCH_NB_FIT_RESAMPLES", "0")
        book = execute("quickstart", workdir)
    assert len(server.requests) == 4 * 8  # one pool per problem: best_of_n reuses the cache
    report = workdir / "results/quickstart-report/report.html"
    assert report.is_file() and "best_of_n[oracle]" in report.read_text()
    assert "gain_per_doubling" in text_of(book)
    assert "32/32 [" in text_of(book)  # ttcbench.run's progress bar, on by default
    assert images(plot_cell(book)) == 1  # importing ttcbench left the inline backend alone


@pytest.mark.slow
def test_quickstart_on_the_embedded_model(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"LIMIT": "1", "BUDGETS": "1,2", "MAX_TOKENS": "32"}.items():
        monkeypatch.setenv(f"TTCBENCH_NB_{key}", value)
    book = execute("quickstart", workdir)
    runs = {p.parent for p in (workdir / "results/arithmetic/smollm2").rglob("summary.csv")}
    assert len(runs) == 2  # majority_vote and best_of_n
    assert (workdir / "results/quickstart-report/report.html").is_file()
    assert images(plot_cell(book)) == 1


def test_compare_strategies_on_stored_runs(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = workdir / "stored"
    with FakeOpenAI(reply) as server:
        for strategy in ("majority_vote", "best_of_n"):
            ttcbench.run(
                [f"results_dir={results}", f"strategy={strategy}", "task.limit=6",
                 "logger=none", "model=llamacpp_server", f"model.api_base={server.api_base}"]
            )  # fmt: skip
    monkeypatch.setenv("TTCBENCH_NB_RUNS", str(results))
    monkeypatch.setenv("TTCBENCH_NB_FIT_RESAMPLES", "10")
    book = execute("compare_strategies", workdir)
    printed = text_of(book)
    assert "2 runs, 6 problems" in printed
    assert "best_of_n[oracle] - majority_vote at budget 8" in printed
    assert (results / "comparison-report/report.html").is_file()


def test_reproduce_self_consistency(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI(reply) as server:
        monkeypatch.setenv(
            "TTCBENCH_NB_OVERRIDES", f"model=llamacpp_server model.api_base={server.api_base}"
        )
        monkeypatch.setenv("TTCBENCH_NB_LIMIT", "2")
        monkeypatch.setenv("TTCBENCH_NB_BUDGETS", "1,2,4")
        book = execute("reproduce_self_consistency", workdir)
    printed = text_of(book)
    assert "Wang et al. 2022" in printed and "PaLM-540B" in printed
    (report,) = (workdir / "results/gsm_symbolic").rglob("reproduction/report.html")
    assert "Wang et al. 2022" in report.read_text()
