"""`build_report` and `ttcbench-report`: what researchers look at after a run or a sweep.

One call reads one or many runs and writes `report.html` (self-contained: figures embedded,
no external links) and `report.md` (figures in `report_figures/` beside it): accuracy vs
compute per strategy with interval bands, per-class facets, coverage curves, fitted curve
parameters, the "which classes gain" table, the compute-optimal frontier and the value of
adaptive allocation, a FLOPs-matched small-vs-large comparison when two models are present,
and published reference points on request. Analysis never calls a model: everything comes
from the stored attempts and calls (see `report_data`, `report_sections`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ttcbench.analysis import report_figures as figs
from ttcbench.analysis.classes import DIFFICULTY
from ttcbench.analysis.plots import COMPUTE_AXES
from ttcbench.analysis.references import Reference, available_references, load_reference
from ttcbench.analysis.report_compare import (
    frontier_section,
    matched_section,
    references_section,
)
from ttcbench.analysis.report_data import (
    AXES,
    ReportError,
    RunSet,
    axis_column,
    check_axis,
    class_views,
    difficulty_view,
    load,
    pool_calls,
    series_labels,
)
from ttcbench.analysis.report_fits import fits_section
from ttcbench.analysis.report_provenance import provenance_section
from ttcbench.analysis.report_render import (
    FIGURE_DIR,
    Section,
    compute,
    interval,
    number,
    write_html,
    write_markdown,
)
from ttcbench.analysis.report_samples import SAMPLE_CAP, samples_section
from ttcbench.analysis.report_sections import (
    Build,
    classes_section,
    coverage_section,
    gains_section,
    guarded,
)
from ttcbench.analysis.summary import strategy_labels

__all__ = ["Report", "ReportError", "build_report", "main"]


@dataclass
class Report:
    """Where the report went, and its numbers for trackers (W&B) and notebooks."""

    html: Path
    markdown: Path
    figures: dict[str, Path]
    """Figure name -> PNG file (in `report_figures/`)."""
    tables: dict[str, pd.DataFrame]
    """Table name -> the numbers behind it (unformatted)."""
    metrics: dict[str, float]
    """Headline numbers: `report/accuracy_at_max/<strategy>`, gains per doubling, ceilings."""
    sections: list[Section]


def build_report(
    sources: Sequence[Path | str],
    out_dir: Path | str,
    *,
    x: str = "total_tokens",
    by: Sequence[str] | None = None,
    references: Sequence[str] = (),
    n_resamples: int = 1000,
    fit_resamples: int = 200,
    difficulty_bins: int = 3,
    samples: int | None = SAMPLE_CAP,  # calls in the sample browser; None: all (--samples)
) -> Report:
    """Read the runs of `sources` and write the report into `out_dir` (see module docstring).

    `x` is the compute axis (AXES); `by` names class labels to break results down by (default:
    every recorded label that splits the problems, plus `model_difficulty`); `references` names
    published results to overlay (`available_references()`). `fit_resamples=0` skips the
    bootstrap of fitted parameters: a quick report, as a job writes into its run folder.
    """
    column = axis_column(x)
    refs = [_reference(name) for name in references]
    runs = load(sources)
    attempts = runs.attempts.assign(strategy=series_labels(runs.attempts), verifier=None)
    check_axis(attempts, x)
    pools = pool_calls(runs.calls)
    recorded = None if by is None else [c for c in by if c not in ("model_difficulty", DIFFICULTY)]
    views = [(view, attempts) for view in class_views(attempts, recorded)]
    notes = list(runs.notes)
    if by is None or recorded is None or len(recorded) < len(by):
        views += difficulty_view(runs, pools, difficulty_bins, notes)
    xlabel = COMPUTE_AXES.get(column, column).replace(" (2 x params x tokens)", "")
    build = Build(
        runs,
        attempts,
        views,
        pools,
        column,
        xlabel,
        _heading(runs),
        Path(out_dir) / FIGURE_DIR,
        n_resamples,
        fit_resamples,
        figs.styles([*attempts["strategy"], *(s for _, v in views for s in v["strategy"])]),
    )
    sections = [
        provenance_section(runs),
        _overview(build, notes),
        _summary_section(build),
        guarded("Per class", classes_section, build),
        guarded("Coverage (pass@k)", coverage_section, build),
        guarded("Fitted curves", fits_section, build),
        guarded("Which classes gain", gains_section, build),
        guarded("Compute-optimal frontier", frontier_section, build),
    ]
    if len(runs.models) > 1:
        sections.append(guarded("FLOPs-matched: small vs large model", matched_section, build))
    if refs:
        sections.append(references_section(build, refs))
    sections.append(samples_section(runs, samples))  # the sample browser (report_samples)
    return _write(build, sections, Path(out_dir))


def _reference(name: str) -> Reference:
    try:
        return load_reference(name)
    except ValueError as err:
        raise ReportError(f"{err} (--reference NAME)") from None


def _write(build: Build, sections: list[Section], out_dir: Path) -> Report:
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"ttcbench report: {build.heading}"
    html = write_html(out_dir / "report.html", title, sections, build.figures)
    markdown = write_markdown(out_dir / "report.md", title, sections, build.figures)
    return Report(html, markdown, build.figures, build.tables, build.metrics, sections)


def _heading(runs: RunSet) -> str:
    return f"{', '.join(runs.tasks)} · {', '.join(runs.models)} · {runs.size}"


def _overview(b: Build, notes: list[str]) -> Section:
    runs = b.runs
    models = ", ".join(f"{m} ({p:g}B)" if p else m for m, p in runs.models.items())
    text = [
        f"{runs.size}{f' ({runs.problems} distinct)' if len(runs.runs) > 1 else ''}; "
        f"task(s): {', '.join(runs.tasks)}; "
        f"model(s): {models}; compute axis: {b.xlabel}. Intervals are 95% bootstrap "
        "intervals over problems."
    ]
    frames = [b.attempts, *(attempts for _, attempts in b.views)]
    if any(f["strategy"].str.contains("[oracle]", regex=False).any() for f in frames):
        text.append(
            "Strategies marked `[oracle]` choose answers with the oracle verifier, which reads "
            "the gold answer: an upper bound for verifiers, not a deployable strategy."
        )
    errors = int(b.attempts["error"].notna().sum())
    if errors:
        text.append(f"{errors} attempts failed on provider errors and are excluded from accuracy.")
    labelled = runs.attempts.assign(strategy=strategy_labels(runs.attempts))
    table = (
        labelled.groupby("run", sort=True)
        .agg(
            model=("model", "first"),
            strategies=("strategy", lambda s: ", ".join(sorted(set(s)))),
            budgets=("budget", lambda s: ", ".join(map(str, sorted(set(s))))),
            problems=("problem_id", "nunique"),
        )
        .reset_index()
    )
    return Section("Runs", text + notes, [], [("runs read", table)])


def _summary_section(b: Build) -> Section:
    table = b.summary(b.attempts)
    b.tables["summary"] = table
    for r in table.sort_values("budget").groupby("strategy").tail(1).itertuples():
        b.metrics[f"report/accuracy_at_max/{r.strategy}"] = float(r.accuracy)
    figs.curves_figure(
        table, b.look, b.figure("accuracy_vs_compute"), title=b.title, xlabel=b.xlabel
    )
    display = pd.DataFrame(
        {
            "strategy": table["strategy"],
            "deployable": ["no (oracle)" if "[oracle]" in s else "yes" for s in table["strategy"]],
            "budget": table["budget"],
            "problems": table["problems"],
            "errors": table["errors"],
            "accuracy": table["accuracy"].map(number),
            "95% CI": [
                interval(lo, hi) for lo, hi in zip(table.ci_low, table.ci_high, strict=True)
            ],
            b.xlabel: table["compute"].map(compute),
            "tokens/problem": table["tokens"].map(compute),
            "sequential tokens": table["sequential_tokens"].map(compute),
            "calls/problem": table["calls"].map(lambda v: number(v, 2)),
            "USD/problem": table["cost_usd"].map(lambda v: f"{v:.5f}"),
        }
    )
    if b.column in ("tokens", "sequential_tokens", "calls"):  # the axis column already says it
        display = display.drop(
            columns={
                "tokens": "tokens/problem",
                "calls": "calls/problem",
                "sequential_tokens": "sequential tokens",
            }[b.column]
        )
    return Section(
        "Accuracy vs compute", [], ["accuracy_vs_compute"], [("per strategy and budget", display)]
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ttcbench-report",
        description="Write report.html (self-contained) and report.md from ttcbench runs.",
    )
    p.add_argument(
        "results",
        nargs="+",
        type=Path,
        help="run folders, Parquet exports, or folders of runs (a results tree, a multirun sweep)",
    )
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="output folder (default: the one folder given, else ./report)",
    )
    p.add_argument("--x", default="total_tokens", help=f"compute axis: {', '.join(AXES)}")
    p.add_argument(
        "--by",
        action="append",
        default=None,
        help="class label, or model_difficulty (repeatable; default: all that split the problems)",
    )
    p.add_argument(
        "--reference",
        action="append",
        default=[],
        help=f"published results to overlay: {', '.join(available_references())}",
    )
    p.add_argument("--fit-resamples", type=int, default=200, help="0 skips fit intervals")
    p.add_argument(
        "--samples",
        type=lambda v: None if v == "all" else int(v),
        default=SAMPLE_CAP,
        help=f"calls in the HTML sample browser: a number, or all (default {SAMPLE_CAP})",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """`ttcbench-report RESULTS... [-o OUT] [--x AXIS] [--by CLASS] [--reference NAME]`."""
    args = _parser().parse_args(argv)
    single = len(args.results) == 1 and args.results[0].is_dir()
    out = args.out or (args.results[0] if single else Path("report"))
    try:
        report = build_report(
            args.results,
            out,
            x=args.x,
            by=args.by,
            references=args.reference,
            fit_resamples=args.fit_resamples,
            samples=args.samples,
        )
    except ReportError as err:
        print(f"ttcbench-report: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {report.html} and {report.markdown} ({len(report.figures)} figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
