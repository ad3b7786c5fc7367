"""Accuracy vs compute plots: log-2 compute axis, interval bands, readable in grayscale."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

# Figures are built with `Figure` directly, never pyplot: importing ttcbench must not change
# the user's backend (a notebook's inline plots) and a file-only figure needs no GUI.
from matplotlib.figure import Figure

from ttcbench.analysis.report_figures import drawable, whiskers

# Marker and line style differ per strategy so curves stay apart without colour.
_STYLES = [("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."), ("v", "-"), ("P", "--")]

COMPUTE_AXES = {
    "tokens": "total tokens per problem",
    "sequential_tokens": "sequential tokens per problem",
    "calls": "model calls per problem",
    "budget": "budget",
    "cost_usd": "USD per problem",
    "flops": "FLOPs per problem (2 x params x tokens)",
}


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize, dpi=None, **kw):
    """`plt.subplots` without pyplot: a figure no GUI backend ever sees."""
    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(nrows, ncols, **kw)


def plot_accuracy_vs_compute(
    summary: pd.DataFrame, path: Path, *, x: str = "tokens", title: str = ""
) -> Path:
    """One line per strategy with its confidence band; budgets annotated on the points."""
    if x not in COMPUTE_AXES:
        raise ValueError(f"unknown compute axis {x!r}; valid: {', '.join(COMPUTE_AXES)}")
    fig, ax = _subplots(figsize=(6.4, 4.2), dpi=120)
    # A log2 axis cannot show zero compute, and an all-error budget has no accuracy: such
    # points are left out and counted in a note, so the axis stays what its label says.
    shown = drawable(summary, x)
    for i, (strategy, rows) in enumerate(shown.groupby("strategy", sort=True)):
        rows = rows.sort_values(x)
        marker, line = _STYLES[i % len(_STYLES)]
        lines = ax.plot(rows[x], rows["accuracy"], marker=marker, linestyle=line, label=strategy)
        colour = lines[0].get_color()
        if rows[x].nunique() > 1:
            ax.fill_between(rows[x], rows["ci_low"], rows["ci_high"], alpha=0.18, color=colour)
        else:  # one budget: a band would be an invisible hairline
            whiskers(ax, rows[x], rows["accuracy"], rows["ci_low"], rows["ci_high"], colour)
        for _, r in rows.iterrows():
            ax.annotate(
                f"{r['budget']}",
                (r[x], r["accuracy"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"{COMPUTE_AXES[x]} (log2)")
    if left_out := len(summary) - len(shown):
        note = f"{left_out} of {len(summary)} points not drawn: no accuracy or no compute"
        ax.text(0.01, 0.01, note, transform=ax.transAxes, fontsize=7)
    ax.set_ylabel("accuracy (95% CI band)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.set_title(title, fontsize=9)
    if len(shown):
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
