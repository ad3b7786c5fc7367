"""The report's figures: matplotlib, log2 compute axes, readable in grayscale.

Every series keeps one marker and line style across all figures of a report (`styles`), so
a reader printing in black and white can still follow a strategy from plot to plot. Oracle
strategies (`[oracle]` in the name) are labelled "not deployable" in every legend.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_hex

# Figures are built with `Figure` directly, never pyplot: importing ttcbench must not change
# the user's backend (a notebook's inline plots) and a file-only figure needs no GUI.
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from ttcbench.analysis.fits import CoverageFit
from ttcbench.analysis.references import Reference, overlay_reference

_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
_LINES = ["-", "--", ":", "-."]
# Okabe-Ito: distinct for colour-blind readers; markers and dashes carry it in grayscale.
_COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
Style = dict[str, Any]


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize, dpi=None, **kw):
    """`plt.subplots` without pyplot: a figure no GUI backend ever sees."""
    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(nrows, ncols, **kw)


def styles(series: Sequence[str]) -> dict[str, Style]:
    """One (colour, marker, line style) per series name, stable for the whole report; every
    series gets a colour of its own (Okabe-Ito first, then evenly spaced hues)."""
    names = sorted(set(map(str, series)))
    return {
        name: {
            "color": colour,
            "marker": _MARKERS[i % len(_MARKERS)],
            "linestyle": _LINES[i % len(_LINES)],
        }
        for i, (name, colour) in enumerate(zip(names, colours(len(names)), strict=True))
    }


def colours(n: int) -> list[str]:
    """`n` distinct colours: the Okabe-Ito palette, then hues around the colour wheel."""
    if n <= len(_COLOURS):
        return _COLOURS[:n]
    extra = n - len(_COLOURS)
    return _COLOURS + [to_hex(colorsys.hsv_to_rgb(i / extra, 0.75, 0.8)) for i in range(extra)]


def legend_label(series: str) -> str:
    return f"{series} (oracle: not deployable)" if "[oracle]" in series else series


def draw_curves(
    ax: Axes, table: pd.DataFrame, look: Mapping[str, Style], *, x: str = "compute"
) -> None:
    """One line per strategy with its interval band (whiskers for a one-point strategy, whose
    band would be an invisible hairline); budgets written next to the points. Points without
    a positive compute value (nothing measured) are left out, so the axis stays log2."""
    table = drawable(table, x)
    for strategy, rows in table.groupby("strategy", sort=True):
        rows = rows.sort_values(x)
        style = look.get(str(strategy), {})
        ax.plot(rows[x], rows["accuracy"], label=legend_label(str(strategy)), **style)
        colour = style.get("color")
        if rows[x].nunique() > 1:
            ax.fill_between(rows[x], rows["ci_low"], rows["ci_high"], alpha=0.15, color=colour)
        else:
            whiskers(ax, rows[x], rows["accuracy"], rows["ci_low"], rows["ci_high"], colour)
        for r in rows.itertuples():
            ax.annotate(
                str(r.budget),
                (getattr(r, x), r.accuracy),
                textcoords="offset points",
                xytext=(3, 3),
                fontsize=6,
            )
    _log2_axis(ax, table[x])
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)


def drawable(table: pd.DataFrame, x: str) -> pd.DataFrame:
    """The rows a log2 axis can show: positive compute and a measured accuracy."""
    values = pd.to_numeric(table[x], errors="coerce")
    return table[(values > 0) & table["accuracy"].notna()]


def whiskers(ax: Axes, x: Any, y: Any, low: Any, high: Any, colour: Any) -> None:
    """An interval drawn as an error bar with caps (a band needs two compute values)."""
    y, low, high = (np.asarray(v, float) for v in (y, low, high))
    spread = np.nan_to_num([np.maximum(y - low, 0), np.maximum(high - y, 0)])
    ax.errorbar(x, y, yerr=spread, fmt="none", ecolor=colour, capsize=4, elinewidth=1.2)


def _log2_axis(ax: Axes, values: pd.Series) -> None:
    """A log2 x axis labelled with plain numbers (16, 1,024, 3.2e+12): easier to read than 2^x,
    and it skips mathtext, the costliest part of drawing a small figure. Always log2 (the
    labels say so): callers leave out the points without a positive value."""
    if (pd.to_numeric(values, errors="coerce") > 0).any():
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(_tick))
        ax.xaxis.set_minor_locator(NullLocator())


def _tick(value: float, _position: object) -> str:
    """1, 128, 1,024 for counts; 3.2e+12 for FLOPs; 0.0005 for dollars."""
    return f"{value:,.0f}" if 1 <= value < 1e6 else f"{value:.3g}"


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")


def curves_figure(
    table: pd.DataFrame, look: Mapping[str, Style], path: Path, *, title: str, xlabel: str
) -> Path:
    """Accuracy vs compute per strategy (the report's first figure)."""
    fig, ax = _subplots(figsize=(6.6, 4.2))
    draw_curves(ax, table, look)
    ax.set(xlabel=f"{xlabel} (log2)", ylabel="accuracy (95% CI: band or whiskers)")
    ax.set_title(title, fontsize=9)
    _legend(ax)
    fig.tight_layout()
    return _save(fig, path)


def facets_figure(
    table: pd.DataFrame,
    column: str,
    look: Mapping[str, Style],
    path: Path,
    *,
    title: str,
    xlabel: str,
) -> Path:
    """One panel per value of a class column, same axes, same styles."""
    values = list(dict.fromkeys(table[column].astype(str)))
    ncols = min(len(values), 3)
    nrows = math.ceil(len(values) / ncols)
    fig, axes = _subplots(
        nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows + 0.5), sharey=True, squeeze=False
    )
    for ax, value in zip(axes.flat, values, strict=False):
        rows = table[table[column].astype(str) == value]
        draw_curves(ax, rows, look)
        problems = int(rows["problems"].max()) if len(rows) else 0
        ax.set_title(f"{column.removeprefix('class_')}={value} ({problems} problems)", fontsize=8)
        ax.set_xlabel(f"{xlabel} (log2)", fontsize=7)
    for ax in list(axes.flat)[len(values) :]:
        ax.set_visible(False)
    axes[0][0].set_ylabel("accuracy")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=min(len(labels), 3))
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return _save(fig, path)


def coverage_figure(
    table: pd.DataFrame, fits: Mapping[str, CoverageFit], path: Path, *, title: str
) -> Path:
    """pass@k (coverage) vs k per series, with the fitted power law over its fitted range."""
    fig, ax = _subplots(figsize=(6.6, 4.2))
    look = styles(list(table["series"]))
    for series, rows in table.groupby("series", sort=True):
        style = look[str(series)]
        rows = rows.sort_values("budget")
        ax.plot(rows["budget"], rows["accuracy"], label=str(series), **style)
        if rows["budget"].nunique() > 1:
            ax.fill_between(
                rows["budget"], rows["ci_low"], rows["ci_high"], alpha=0.12, color=style["color"]
            )
        else:
            whiskers(ax, rows["budget"], rows["accuracy"], rows["ci_low"], rows["ci_high"],
                     style["color"])  # fmt: skip
        fit = fits.get(str(series))
        if fit is not None and fit.status == "ok":
            k = np.geomspace(fit.k_min, fit.k_max, 50)
            ax.plot(k, fit.predict(k), color=style["color"], linestyle=(0, (1, 3)), linewidth=1)
    _log2_axis(ax, table["budget"])
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.set(xlabel="samples k (log2)", ylabel="coverage pass@k (95% CI band)")
    ax.set_title(title + "\ndotted: fitted exp(-a k^-b), within the fitted range", fontsize=9)
    _legend(ax)
    fig.tight_layout()
    return _save(fig, path)


def gains_figure(headline: pd.DataFrame, path: Path, *, title: str, xlabel: str) -> Path:
    """Gain per doubling of compute with its interval, one row per class and strategy;
    oracle rows have hollow markers (not deployable)."""
    rows = headline.iloc[::-1].reset_index(drop=True)  # largest gain on top
    fig, ax = _subplots(figsize=(8.0, 1.4 + 0.27 * len(rows)))
    gain = rows["gain_per_doubling"].to_numpy(float)
    low = np.maximum(np.nan_to_num(gain - rows["gain_low"].to_numpy(float)), 0)
    high = np.maximum(np.nan_to_num(rows["gain_high"].to_numpy(float) - gain), 0)
    oracle = rows["strategy"].astype(str).str.contains("[oracle]", regex=False).to_numpy()
    for hollow in (False, True):
        y = np.flatnonzero(oracle == hollow)
        ax.errorbar(
            gain[y],
            y,
            xerr=[low[y], high[y]],
            fmt="o",
            color="black",
            ecolor="0.4",
            capsize=3,
            markersize=5,
            markerfacecolor="white" if hollow else "black",
        )
    ax.axvline(0.0, color="0.5", linewidth=0.8, linestyle="--")
    ax.set_yticks(
        np.arange(len(rows)),
        [f"{c} · {s}" for c, s in zip(rows["class"], rows["strategy"], strict=True)],
        fontsize=7,
    )
    ax.set_xlabel(
        f"accuracy gain per doubling of {xlabel} (95% CI); hollow: oracle, not deployable",
        fontsize=8,
    )
    ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def reference_figure(
    table: pd.DataFrame,
    references: Sequence[Reference],
    look: Mapping[str, Style],
    path: Path,
    *,
    title: str,
) -> Path:
    """Our curves against samples per problem, with published points (hollow, dashed)."""
    fig, ax = _subplots(figsize=(6.6, 4.4))
    draw_curves(ax, table, look, x="budget")
    grays = ["0.1", "0.3", "0.5", "0.65"]
    drawn = 0
    for ref in references:
        for model in dict.fromkeys(ref.points["model"]):
            overlay_reference(
                ax,
                ref,
                "budget",
                models=[model],
                color=grays[drawn % 4],
                marker=_MARKERS[-1 - drawn % len(_MARKERS)],
            )
            drawn += 1
    budgets = pd.concat([table["budget"], *(r.points["budget"] for r in references)])
    _log2_axis(ax, budgets)
    ax.set(xlabel="samples per problem (log2)", ylabel="accuracy")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    return _save(fig, path)
