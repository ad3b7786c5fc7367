"""The report's sections, each computed by the analysis modules from one shared context.

A section that the data cannot support (one strategy for a frontier, a curve with too few
budgets for a fit, no pools for coverage) says why in a note instead of failing the report:
the analysis modules raise ValueError for such data, and `guarded` turns that into the note.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ttcbench.analysis import report_figures as figs
from ttcbench.analysis.classes import DIFFICULTY, class_gains, which_classes_gain
from ttcbench.analysis.curves import compute_values
from ttcbench.analysis.fits import CoverageFit, fit_coverage
from ttcbench.analysis.pools import pool_estimates
from ttcbench.analysis.report_data import RunSet
from ttcbench.analysis.report_render import Section, compute, interval, number
from ttcbench.analysis.summary import summarize

ALL = "all"


@dataclass
class Build:
    """What every section reads, and what they add to the report (figures, tables, metrics)."""

    runs: RunSet
    attempts: pd.DataFrame
    """Attempts with `strategy` set to the report's series label (verifier included)."""
    views: list[tuple[str, pd.DataFrame]]
    """(class column, attempts) to break results down by; model difficulty has its own."""
    pools: pd.DataFrame
    """Each problem's pool of independent samples (`report_data.pool_calls`)."""
    column: str
    xlabel: str
    heading: str
    """task · model · N problems: the start of every figure title."""
    figure_dir: Path
    n_resamples: int
    fit_resamples: int
    look: dict[str, figs.Style]
    figures: dict[str, Path] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"{self.heading} · x: {self.xlabel}"

    def figure(self, name: str) -> Path:
        path = self.figure_dir / f"{name}.png"
        self.figures[name] = path
        return path

    def summary(self, attempts: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
        """`summarize` (the numbers of summary.csv) plus mean compute on the report's axis."""
        table = summarize(attempts, by=tuple(by), n_resamples=self.n_resamples)
        ok = attempts[attempts["error"].isna()]
        keys = [*by, "strategy", "budget"]
        mean = ok.assign(compute=compute_values(ok, self.column)).groupby(keys)["compute"].mean()
        return table.merge(mean.reset_index(), on=keys, how="left")


def guarded(title: str, make: Callable[[Build], Section], build: Build) -> Section:
    """Run one section; data it cannot use becomes a note naming why (see module docstring)."""
    try:
        return make(build)
    except ValueError as err:
        return Section(title, [f"Not available for these runs: {err}"])


def class_label(view: str, value: object) -> str:
    return f"{view.removeprefix('class_')}={value}"


def classes_section(b: Build) -> Section:
    """Accuracy vs compute faceted by each class view."""
    section = Section("Per class")
    if not b.views:
        section.text.append("These runs have no class label with two or more values.")
    for view, attempts in b.views:
        table = b.summary(attempts, (view,))
        b.tables[f"summary_by_{view}"] = table
        name = f"facets_{view.removeprefix('class_')}"
        figs.facets_figure(table, view, b.look, b.figure(name), title=b.title, xlabel=b.xlabel)
        section.figures.append(name)
        rows = table.assign(
            **{
                "class": [class_label(view, v) for v in table[view]],
                "accuracy [95% CI]": [
                    f"{number(a)} {interval(lo, hi)}"
                    for a, lo, hi in zip(table.accuracy, table.ci_low, table.ci_high, strict=True)
                ],
                b.xlabel: table["compute"].map(compute),
            }
        )
        cols = ["class", "strategy", "budget", "problems", "accuracy [95% CI]", b.xlabel]
        section.tables.append((f"Accuracy by {view.removeprefix('class_')}", rows[cols]))
    return section


def _gain_rows(b: Build) -> pd.DataFrame:
    """`class_gains` over all problems and per class of every view, with a `class` column."""
    parts = [
        class_gains(b.attempts, [], x=b.column, n_resamples=b.n_resamples).assign(**{"class": ALL})
    ]
    for view, attempts in b.views:
        gains = class_gains(attempts, [view], x=b.column, n_resamples=b.n_resamples)
        parts.append(gains.assign(**{"class": [class_label(view, v) for v in gains[view]]}))
    keep = ["class", "strategy", *parts[0].columns.drop(["strategy", "class"])]
    return which_classes_gain(pd.concat([p[keep] for p in parts], ignore_index=True))


def gains_section(b: Build) -> Section:
    """The headline table: which classes gain from more compute, sorted by gain."""
    headline = _gain_rows(b)
    b.tables["which_classes_gain"] = headline
    for r in headline[headline["class"] == ALL].itertuples():
        b.metrics[f"report/gain_per_doubling/{r.strategy}"] = float(r.gain_per_doubling)
    figs.gains_figure(headline, b.figure("gains"), title=b.title, xlabel=b.xlabel)
    display = pd.DataFrame(
        {
            "class": headline["class"],
            "strategy": headline["strategy"],
            "problems": headline["problems"],
            "budgets": [
                f"{lo}–{hi}"
                for lo, hi in zip(headline.budget_min, headline.budget_max, strict=True)
            ],
            "accuracy": [
                f"{number(a)} → {number(z)}"
                for a, z in zip(headline.acc_min, headline.acc_max, strict=True)
            ],
            "gain per doubling": headline["gain_per_doubling"].map(number),
            "95% CI": [
                interval(lo, hi)
                for lo, hi in zip(headline.gain_low, headline.gain_high, strict=True)
            ],
            "gains (CI > 0)": headline["gains"].map(number),
        }
    )
    text = [
        f"Gain per doubling = (accuracy at the largest budget − accuracy at the smallest) / "
        f"log2(compute ratio), compute = {b.xlabel}; 95% bootstrap interval over the class's "
        "problems. Sorted from the largest gain."
    ]
    return Section("Which classes gain", text, ["gains"], [("class × strategy", display)])


def coverage_section(b: Build) -> Section:
    """pass@k curves from the pools, with the power law exp(-a k^-b) fitted to each."""
    coverage = coverage_table(b)
    if coverage.empty:
        raise ValueError("no pool of two or more samples per problem and no oracle attempts")
    fits: dict[str, CoverageFit] = {}
    rows = []
    for series, group in coverage.groupby("series", sort=True):
        group = group.sort_values("budget")
        fit = fits[str(series)] = fit_coverage(group["budget"], group["accuracy"])
        rows.append(
            {
                "series": series,
                "problems": int(group["problems"].max()),
                "k range": f"{int(group.budget.min())}–{int(group.budget.max())}",
                "pass@1": number(group["accuracy"].iloc[0]),
                "pass@max": number(group["accuracy"].iloc[-1]),
                "status": fit.status,
                "a": number(fit.a, 4),
                "b": number(fit.b, 4),
                "RMSE": number(fit.rmse, 4),
            }
        )
    b.tables["coverage"] = coverage
    b.tables["coverage_fits"] = pd.DataFrame(
        [
            {
                "series": s,
                "a": f.a,
                "b": f.b,
                "rmse": f.rmse,
                "k_min": f.k_min,
                "k_max": f.k_max,
                "status": f.status,
            }
            for s, f in fits.items()
        ]
    )
    figs.coverage_figure(coverage, fits, b.figure("coverage"), title=b.heading)
    text = [
        "Coverage pass@k is the chance that at least one of k samples is correct: best-of-k "
        "with a perfect verifier (an oracle, so an upper bound, not a deployable strategy). "
        "Exact unbiased estimates from each problem's pool; fitted as exp(−a k^−b) (Brown et "
        "al. 2024) over the k measured."
    ]
    return Section(
        "Coverage (pass@k)", text, ["coverage"], [("coverage power law", pd.DataFrame(rows))]
    )


def coverage_table(b: Build) -> pd.DataFrame:
    """pass@k per model (all problems, and per class of the first recorded view)."""
    recorded = [v for v, _ in b.views if v != DIFFICULTY][:1]
    parts = []
    for model, pool in b.pools.groupby("model", sort=True):
        n_max = int(pool.groupby(["task", "problem_id"]).size().max())
        if n_max < 2:
            continue
        ks = sorted({2**i for i in range(n_max.bit_length())} | {n_max})
        est = pool_estimates(pool, ks, estimators=("pass_at_k",))
        prefix = f"{model}: " if len(b.runs.models) > 1 else ""
        parts.append(summarize(est, n_resamples=b.n_resamples).assign(series=prefix + "all"))
        for view in (v for v in recorded if v in est):
            table = summarize(est, by=(view,), n_resamples=b.n_resamples)
            parts.append(table.assign(series=[prefix + class_label(view, v) for v in table[view]]))
    if not parts:  # no pools: best-of-n attempts with the oracle are pass@k too
        oracle = b.attempts[b.attempts["strategy"].str.contains("[oracle]", regex=False)]
        if not oracle.empty:
            parts.append(
                summarize(oracle, n_resamples=b.n_resamples).assign(series=lambda t: t["strategy"])
            )
    columns = ["series", "budget", "problems", "accuracy", "ci_low", "ci_high"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
