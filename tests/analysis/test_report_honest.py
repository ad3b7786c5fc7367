"""Reports that say only what was run (issue 12, item 5): one test per complaint, each built
from real runs against the scripted server of tests/fakeserver.py.

The runs: majority_vote on 2, 4 and 6 problems (so a merged title must not say "6
problems"), `single` at one budget (an interval that must stay visible), and a run whose
every call failed (left out with a note). Hard problems (two-digit operands) are always
answered wrong, so the `difficulty=hard` class never rises.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fakeserver import FakeOpenAI, solve_arithmetic
from matplotlib.figure import Figure

import ttcbench
from ttcbench.analysis import plots
from ttcbench.analysis import report_figures as figs
from ttcbench.analysis.report import ReportError, build_report
from ttcbench.types import IncompleteRun

SIZES = {"r2": 2, "r4": 4, "r6": 6}


def reply(body: dict) -> str:
    """Hard problems (two-digit operands) always wrong; easy ones wrong 1 time in 3, by hash."""
    prompt = body["messages"][-1]["content"]
    expression = re.search(r"Calculate ([-+*/() 0-9]+)\.", prompt)
    if expression and any(len(n) >= 2 for n in re.findall(r"\d+", expression.group(1))):
        return "The answer is 99999"
    draw = int(hashlib.sha256(f"{prompt}|{body.get('seed')}".encode()).hexdigest(), 16)
    return f"The answer is {1000 + draw % 3}" if draw % 3 == 0 else solve_arithmetic(body)


def job(server: FakeOpenAI, results: Path, name: str, *extra: str) -> Path:
    return ttcbench.run(
        [f"results_dir={results}", f"cache.path={results}/cache.sqlite", "logger=none",
         "model=llamacpp_server", f"model.api_base={server.api_base}", "model.name=fake",
         "retry.max_attempts=1", "retry.initial_wait_s=0.01", f"name={name}", *extra]
    )  # fmt: skip


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("honest") / "results"
    with FakeOpenAI(reply) as server:
        for name, limit in SIZES.items():
            job(server, results, name, f"task.limit={limit}", "budget.values=[1,2,4,8]")
        job(server, results, "single", "task.limit=4", "strategy=single", "budget.values=[1]")
    with FakeOpenAI(reply) as server, pytest.raises(IncompleteRun):
        server.outage(1e6, 500)  # every call fails: an all-error run
        job(server, results, "allerr", "task.limit=3", "budget.values=[1,2]", "cache.enabled=false")
    return results


@pytest.fixture(scope="module")
def report(results: Path, tmp_path_factory: pytest.TempPathFactory):
    return build_report([results], tmp_path_factory.mktemp("report"), fit_resamples=0)


def test_merged_title_says_runs_and_problem_range(report) -> None:
    title = report.markdown.read_text().splitlines()[0]
    assert title == "# ttcbench report: arithmetic · fake · 4 runs, 2–6 problems"
    assert "<h1>ttcbench report: arithmetic · fake · 4 runs, 2–6 problems</h1>" in (
        report.html.read_text()
    )


def test_only_strategies_that_ran_each_in_its_own_colour(
    results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[tuple[pd.DataFrame, dict]] = []
    facets = figs.facets_figure

    def spy(table: pd.DataFrame, column: str, look: dict, *args, **kwargs) -> Path:
        drawn.append((table, look))
        return facets(table, column, look, *args, **kwargs)

    monkeypatch.setattr(figs, "facets_figure", spy)
    runs = [results / name for name in SIZES]  # majority_vote only
    result = build_report(runs, tmp_path, fit_resamples=0)
    assert "summary_by_class_model_difficulty" in result.tables  # the pool-derived view
    for table in result.tables.values():
        for column in ("strategy", "series", "best_strategy"):
            if column in table:
                assert not table[column].astype(str).str.contains("best_of_n").any()
    assert "best_of_n" not in result.markdown.read_text()
    for table, look in drawn:  # every series drawn has a style, and no two share a colour
        assert set(table["strategy"]) <= set(look)
        colours = [style["color"] for style in look.values()]
        assert len(set(colours)) == len(colours)


def test_styles_give_every_series_its_own_colour() -> None:
    look = figs.styles([f"series {i}" for i in range(15)])
    assert len({style["color"] for style in look.values()}) == 15


def test_failed_and_flat_fits_are_one_line(report) -> None:
    fits = report.tables["fits"]
    failed, flat = (int((fits["status"] == s).sum()) for s in ("failed", "flat"))
    assert failed and flat  # the runs do have both (the hard class is flat at 0)
    markdown = report.markdown.read_text()
    line = next(t for t in markdown.splitlines() if "Not fitted" in t)
    assert f"fits failed for {failed} series: too few points (fewer than 4 budgets)" in line
    assert f"flat for {flat} (every point equal" in line
    assert "| failed |" not in markdown and "| flat |" not in markdown


def test_no_compute_to_90_for_a_class_that_never_rises(report) -> None:
    summary = report.tables["summary_by_class_difficulty"]
    hard = summary[summary["class_difficulty"] == "hard"]
    assert (hard["accuracy"] == 0).all()  # stuck at 0 at every budget
    markdown = report.markdown.read_text()
    (fits,) = [part for part in markdown.split("\n## ") if part.startswith("Fitted curves")]
    rows = [t for t in fits.splitlines() if t.startswith("| difficulty=hard |")]
    assert all(t.rstrip(" |").endswith("does not rise") for t in rows)  # never "17"
    assert "| difficulty=easy |" in fits  # the class that rises is listed


def test_does_not_rise_for_a_fitted_but_level_curve() -> None:
    from ttcbench.analysis.report_fits import _fit_display

    row = {"class": "all", "strategy": "s", "status": "ok", "floor": 0.0, "ceiling": 0.5,
           "ceiling_low": np.nan, "ceiling_high": np.nan, "slope": 3.0, "midpoint": 20.0,
           "rmse": 0.0, "compute_min": 16.0, "compute_max": 128.0, "compute_90": 16.0}  # fmt: skip
    rising = dict(row, midpoint=5.0, compute_90=64.0)  # climbs within 16..128
    shown = _fit_display(pd.DataFrame([row, rising]))["compute to 90%"]
    assert list(shown) == ["does not rise", "64"]


def one_point_axes(monkeypatch: pytest.MonkeyPatch) -> list:
    made: list = []
    subplots = plots._subplots

    def spy(*args, **kwargs):
        fig, ax = subplots(*args, **kwargs)
        made.append(ax)
        return fig, ax

    monkeypatch.setattr(plots, "_subplots", spy)
    return made


def test_one_budget_strategy_has_visible_whiskers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    table = pd.DataFrame(
        {"strategy": ["single"], "budget": [1], "compute": [17.0], "tokens": [17.0],
         "accuracy": [0.75], "ci_low": [0.25], "ci_high": [1.0]}
    )  # fmt: skip
    ax = Figure().subplots()
    figs.draw_curves(ax, table, figs.styles(["single"]))
    (bars,) = ax.containers  # an error bar with caps, not a zero-width band
    segment = bars.lines[2][0].get_segments()[0]
    assert segment[0][1] == pytest.approx(0.25) and segment[1][1] == pytest.approx(1.0)
    made = one_point_axes(monkeypatch)
    plots.plot_accuracy_vs_compute(table, tmp_path / "one.png")
    assert made[0].containers  # the job's own plot too


def test_all_error_run_is_left_out_with_a_note(report, results: Path, tmp_path: Path) -> None:
    markdown = report.markdown.read_text()
    assert f"Left out {results / 'allerr'}: all 6 of its attempts failed" in markdown
    assert "allerr" not in " ".join(report.tables["summary"]["strategy"])
    with pytest.raises(ReportError, match="all 6 of its attempts failed"):
        build_report([results / "allerr"], tmp_path, fit_resamples=0)


def test_axes_stay_log2_when_a_point_has_no_compute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    table = pd.DataFrame(
        {"strategy": ["m"] * 3, "budget": [1, 2, 4], "tokens": [0.0, 34.0, 68.0],
         "accuracy": [np.nan, 0.5, 0.7], "ci_low": [np.nan, 0.4, 0.6],
         "ci_high": [np.nan, 0.6, 0.8]}
    )  # fmt: skip
    made = one_point_axes(monkeypatch)
    plots.plot_accuracy_vs_compute(table, tmp_path / "plot.png")
    ax = made[0]
    assert ax.get_xscale() == "log" and "(log2)" in ax.get_xlabel()
    assert any("1 of 3 points not drawn" in t.get_text() for t in ax.texts)
    report_ax = Figure().subplots()
    figs.draw_curves(report_ax, table.rename(columns={"tokens": "compute"}), {})
    assert report_ax.get_xscale() == "log"


def test_no_warnings(results: Path, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_report([results], tmp_path / "all", fit_resamples=20)
        build_report([results / "single"], tmp_path / "single", fit_resamples=0)
