"""Report sections that compare with something outside one model's curves: a larger model
at equal FLOPs (`matched.flops_matched`), and results published in papers (`references`)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ttcbench.analysis import report_figures as figs
from ttcbench.analysis.classes import DIFFICULTY
from ttcbench.analysis.frontier import allocation_value, frontier, strategy_levels
from ttcbench.analysis.matched import flops_matched
from ttcbench.analysis.references import Reference
from ttcbench.analysis.report_render import Section, compute, interval, number
from ttcbench.analysis.report_sections import Build


def matched_section(b: Build) -> Section:
    """Small model with test-time compute vs the large model's single sample, equal FLOPs."""
    sized = {model: size for model, size in b.runs.models.items() if size}
    if len(sized) < 2:
        raise ValueError("FLOPs matching needs model.params_b for two models")
    small, large = min(sized, key=sized.__getitem__), max(sized, key=sized.__getitem__)
    table = flops_matched(
        b.runs.attempts, small=small, large=large, n_resamples=b.n_resamples, calls=b.runs.calls
    )
    b.tables["flops_matched"] = table
    display = pd.DataFrame(
        {
            "small model strategy": table["strategy"],
            "FLOPs/problem": table["flops"].map(compute),
            "problems": table["problems"],
            f"{small}": table["small_accuracy"].map(number),
            f"{large} (1 sample)": table["large_accuracy"].map(number),
            "difference [95% CI]": [
                f"{number(d)} {interval(lo, hi)}"
                for d, lo, hi in zip(table["diff"], table.diff_low, table.diff_high, strict=True)
            ],
            "measured at these FLOPs": table["in_range"].map(number),
        }
    )
    text = [
        f"{small} ({sized[small]:g}B) reads its curve at the FLOPs per problem of one sample of "
        f"{large} ({sized[large]:g}B), FLOPs = 2 × parameters × tokens; the difference is "
        "paired over the problems both answered. No extrapolation: a strategy not measured "
        "up to those FLOPs shows 'no'."
    ]
    return Section("FLOPs-matched: small vs large model", text, [], [("at equal FLOPs", display)])


def references_section(b: Build, refs: Sequence[Reference]) -> Section:
    """Published points on a samples-per-problem axis next to our curves, with the claims."""
    summary = b.tables["summary"]
    name = "references"
    title = f"{b.heading} vs published results"
    figs.reference_figure(summary, refs, b.look, b.figure(name), title=title)
    section = Section("Published reference points", [], [name])
    for ref in refs:
        c = ref.citation
        text = f'{c.short}, "{c.title}" (arXiv {c.arxiv}), {c.where or ""}; x: {ref.compute_axis}.'
        if ref.task and ref.task not in b.runs.tasks:
            text += (
                f" Published on {ref.task}, this report's task is {', '.join(b.runs.tasks)}: "
                "compare the shape of the curves, not their level."
            )
        section.text.append(text + (f" {ref.notes}" if ref.notes else ""))
        points = ref.points.assign(accuracy=ref.points["accuracy"].map(number))
        columns = ["model", "task", "kind", "budget", "accuracy", "published", "where"]
        section.tables.append((f"{ref.name}: points as published", points[columns]))
        b.tables[f"reference_{ref.name}"] = ref.points
        if ref.claims:
            claims = pd.DataFrame(
                [{"kind": k.kind, "claim": k.text, "where": k.where} for k in ref.claims]
            )
            section.tables.append((f"{ref.name}: claims (not points)", claims))
    return section


def frontier_section(b: Build) -> Section:
    """The compute-optimal frontier over deployable strategies, and adaptive allocation."""
    deployable = b.attempts[~b.attempts["strategy"].str.contains("[oracle]", regex=False)]
    excluded = sorted(set(b.attempts["strategy"]) - set(deployable["strategy"]))
    text = [f"Oracle strategies left out (not deployable): {', '.join(excluded)}."] * bool(excluded)
    if deployable.empty:
        raise ValueError("every strategy here uses the oracle verifier: no deployable frontier")
    levels = strategy_levels(deployable, x=b.column, n_resamples=b.n_resamples, calls=b.runs.calls)
    front = frontier(levels)
    text.append(
        "The frontier is the best accuracy reachable with at most each compute level, so it "
        "never goes down; intervals and P(best) come from a bootstrap over problems and, "
        "within each problem, over the samples of its pool (one-draw strategies: their "
        "draw's noise), so a lucky draw is not crowned."
    )
    b.tables["frontier"] = front
    section = Section(
        "Compute-optimal frontier",
        text,
        [],
        [("best deployable strategy per compute level", _frontier_display(front, b.xlabel))],
    )
    strategies = deployable["strategy"].nunique()
    if strategies < 2:
        section.text.append(
            "One deployable strategy: the frontier is its own curve, and adaptive allocation "
            "needs two or more (e.g. `ttcbench -m strategy=single,majority_vote`)."
        )
        return section
    for view, _ in b.views:
        if view == DIFFICULTY:  # its attempts are re-scored pools, not the runs' strategies
            continue
        value = allocation_value(
            deployable, [view], x=b.column, n_resamples=b.n_resamples, calls=b.runs.calls
        )
        b.tables[f"allocation_{view}"] = value
        section.tables.append(
            (
                f"value of adaptive allocation by {view.removeprefix('class_')}: "
                "best strategy per class vs best single strategy",
                _allocation_display(value, b.xlabel),
            )
        )
    return section


def _frontier_display(front: pd.DataFrame, xlabel: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            xlabel: front["compute"].map(compute),
            "best strategy": [
                s if reached == c else f"{s} (at {compute(reached)})"
                for s, c, reached in zip(
                    front.best_strategy, front.compute, front.reached_at, strict=True
                )
            ],
            "accuracy [95% CI]": [
                f"{number(a)} {interval(lo, hi)}"
                for a, lo, hi in zip(front.accuracy, front.ci_low, front.ci_high, strict=True)
            ],
            "P(best)": front["p_best"].map(lambda v: number(v, 2)),
            "not separable from": front["overlapping"].replace("", "–"),
        }
    )


def _allocation_display(value: pd.DataFrame, xlabel: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            xlabel: value["compute"].map(compute),
            "allocation": value["allocation"],
            "adaptive": value["oracle_accuracy"].map(number),
            "best single": [
                f"{number(a)} ({s})"
                for a, s in zip(value.single_accuracy, value.single_strategy, strict=True)
            ],
            "gain [95% CI]": [
                f"{number(g)} {interval(lo, hi)}"
                for g, lo, hi in zip(value.gain, value.gain_low, value.gain_high, strict=True)
            ],
        }
    )
