"""Accuracy vs compute plots: log-2 compute axis, interval bands, readable in grayscale."""

from __future__ import annotations

from pathlib import Path

# Figures are built with `Figure` directly, never pyplot: importing ttcbench must not change
# the user's backend (a notebook's inline plots) and a file-only figure needs no GUI.
from matplotlib.figure import Figure
import pandas as pd

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
    for i, (strategy, rows) in enumerate(summary.groupby("strategy", sort=True)):
        rows = rows.sort_values(x)
        marker, line = _STYLES[i % len(_STYLES)]
        ax.plot(rows[x], rows["accuracy"], marker=marker, linestyle=line, label=strategy)
        ax.fill_between(rows[x], rows["ci_low"], rows["ci_high"], alpha=0.18)
        for _, r in rows.iterrows():
            ax.annotate(
                f"{r['budget']}",
                (r[x], r["accuracy"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
    if (summary[x] > 0).all():
        ax.set_xscale("log", base=2)
    ax.set_xlabel(COMPUTE_AXES[x])
    ax.set_ylabel("accuracy (95% CI band)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
