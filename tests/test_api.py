"""The Python API as a notebook user meets it: `import ttcbench` is cheap and changes nothing
(no heavy imports, the matplotlib backend left alone), its names tab-complete, and
`ttcbench.run` shows a progress bar unless told not to.

Import-time checks run in a fresh interpreter, since this one has imported everything.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fakeserver import FakeOpenAI

import ttcbench

HEAVY = ("litellm", "hydra", "wandb", "matplotlib", "pandas")


def python(code: str, **env: str) -> str:
    """Run `code` in a fresh interpreter with extra environment; return its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_import_ttcbench_imports_no_heavy_dependency() -> None:
    loaded = python(f"import sys, ttcbench; print([m for m in {HEAVY} if m in sys.modules])")
    assert loaded == "[]"


def test_run_and_load_tab_complete() -> None:
    assert {"run", "load", "__version__"} <= set(dir(ttcbench))
    assert callable(ttcbench.run)


@pytest.mark.skipif(
    importlib.util.find_spec("ttcbench.load") is None, reason="ttcbench/load.py not written yet"
)
def test_load_is_the_function_even_after_its_module_is_imported() -> None:
    # `import ttcbench.load` binds the package attribute to the submodule of the same name;
    # the package keeps the function there instead.
    kind = python("import ttcbench.load, ttcbench; print(callable(ttcbench.load))")
    assert kind == "True"


def test_importing_ttcbench_keeps_the_matplotlib_backend(tmp_path: Path) -> None:
    """A notebook's inline backend (or any other) survives importing ttcbench and drawing
    its figures, so `plt.show()` in the next cell still shows the plot."""
    backend = (
        "module://matplotlib_inline.backend_inline"
        if importlib.util.find_spec("matplotlib_inline")
        else "svg"
    )
    after = python(
        f"""
        from pathlib import Path

        import pandas as pd
        import matplotlib
        import ttcbench, ttcbench.analysis.report, ttcbench.analysis.plots, ttcbench.job
        from ttcbench.analysis.plots import plot_accuracy_vs_compute

        summary = pd.DataFrame({{
            "strategy": ["a", "a"], "budget": [1, 2], "tokens": [10.0, 20.0],
            "accuracy": [0.2, 0.4], "ci_low": [0.1, 0.3], "ci_high": [0.3, 0.5],
        }})
        assert plot_accuracy_vs_compute(summary, Path({str(tmp_path / "curve.png")!r})).is_file()
        print(matplotlib.get_backend())
        """,
        MPLBACKEND=backend,
    )
    assert after == backend


def run_args(results: Path, api_base: str) -> list[str]:
    return [
        f"results_dir={results}", "task.limit=1", "budget.values=[1,2]", "logger=none",
        "strategy=majority_vote", "model=llamacpp_server", f"model.api_base={api_base}",
    ]  # fmt: skip


def test_run_shows_a_progress_bar_by_default(
    results: Path, fake_openai: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    ttcbench.run(run_args(results, fake_openai.api_base))
    assert "2/2 [" in capsys.readouterr().err  # tqdm's "100%|####| 2/2 [00:00<00:00, ...]"


def test_run_is_quiet_with_progress_false(
    results: Path, fake_openai: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    ttcbench.run(run_args(results, fake_openai.api_base), progress=False)
    assert "2/2 [" not in capsys.readouterr().err
