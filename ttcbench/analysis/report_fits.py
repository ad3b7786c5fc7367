"""The report's fitted-curves section: logistic fits of accuracy vs log2 compute.

Only curves that were fitted are listed; the rest (too few budgets, no convergence, flat)
are counted in one line, and "compute to 90%" is given only for curves that climb.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ttcbench.analysis.report_render import Section, compute, interval, number
from ttcbench.analysis.report_sections import ALL, Build, class_label
from ttcbench.analysis.scaling import fit_table


def fits_section(b: Build) -> Section:
    """Logistic fits of accuracy vs log2 compute per strategy and class."""
    quick = b.fit_resamples < 1
    parts = [_fits(b, b.attempts, None, quick)]
    parts += [_fits(b, attempts, view, quick) for view, attempts in b.views]
    table = pd.concat(parts, ignore_index=True)
    b.tables["fits"] = table
    for r in table[(table["class"] == ALL) & (table["status"] == "ok")].itertuples():
        b.metrics[f"report/ceiling/{r.strategy}"] = float(r.ceiling)
    text = [
        "accuracy = floor + (ceiling − floor) / (1 + exp(−slope (log2 compute − midpoint))), "
        "least squares over the measured budgets; the fit range is the compute measured and "
        "nothing here is extrapolated beyond it (`compute to 90%` reads 'beyond measured' "
        "when the fitted curve reaches 90% of its ceiling only past the largest budget, and "
        f"'does not rise' when it climbs less than {RISE} over the compute measured). "
        "A 4-parameter fit needs 4 or more budgets; `flat` means every point is equal."
    ]
    if ((table["status"] == "ok") & (table["budgets"] == 4)).any():
        text.append(
            "With exactly 4 budgets the 4-parameter logistic passes through every point (RMSE "
            "≈ 0): it describes the points, it does not test the curve's shape."
        )
    if line := _unfitted_line(table):
        text.append(line)
    ok = table[table["status"] == "ok"]
    if ok.empty:
        return Section("Fitted curves", text)
    display = _fit_display(ok)
    if quick:
        text.append("Fit intervals were skipped (quick report); `ttcbench-report` adds them.")
        display = display.drop(columns=["ceiling 95% CI"])
    return Section("Fitted curves", text, [], [("logistic fit per strategy × class", display)])


def _unfitted_line(table: pd.DataFrame) -> str:
    """One line for the series without a fit, instead of a table row each: "fits failed for
    7 series: too few points (fewer than 4 budgets); flat for 3 (every point equal)"."""
    failed = table[table["status"] == "failed"]
    few = int((failed["budgets"] < 4).sum())
    reasons = {"too few points (fewer than 4 budgets)": few, "no convergence": len(failed) - few}
    reasons = {why: n for why, n in reasons.items() if n}
    parts = []
    if reasons:
        why = ", ".join(w if n == len(failed) else f"{n} {w}" for w, n in reasons.items())
        parts.append(f"fits failed for {len(failed)} series: {why}")
    flat = int((table["status"] == "flat").sum())
    if flat:
        parts.append(f"flat for {flat} (every point equal: nothing to fit)")
    if not parts:
        return ""
    return f"Not fitted ({len(failed) + flat} of {len(table)} series): " + "; ".join(parts) + "."


def _fits(b: Build, attempts: pd.DataFrame, view: str | None, quick: bool) -> pd.DataFrame:
    by = [view] if view else []
    table = fit_table(attempts, by=by, x=b.column, n_resamples=max(b.fit_resamples, 1))
    if quick:
        for column in ("ceiling_low", "ceiling_high", "compute_90_low", "compute_90_high"):
            table[column] = np.nan
    labels = [class_label(view, v) for v in table[view]] if view else [ALL] * len(table)
    return table.drop(columns=by).assign(**{"class": labels})


def _fit_display(table: pd.DataFrame) -> pd.DataFrame:
    midpoint = 2.0 ** table["midpoint"].astype(float)
    # A failed point fit has no interval, even where some replicates came out flat.
    failed = table["status"] == "failed"
    table = table.assign(**{c: table[c].mask(failed) for c in ("ceiling_low", "ceiling_high")})
    return pd.DataFrame(
        {
            "class": table["class"],
            "strategy": table["strategy"],
            "status": table["status"],
            "floor": table["floor"].map(number),
            "ceiling": table["ceiling"].map(number),
            "ceiling 95% CI": [
                interval(lo, hi)
                for lo, hi in zip(table.ceiling_low, table.ceiling_high, strict=True)
            ],
            "slope / doubling": table["slope"].map(number),
            "midpoint": midpoint.map(compute),
            "RMSE": table["rmse"].map(lambda v: number(v, 4)),
            "fit range": [
                f"{compute(lo)}–{compute(hi)}"
                for lo, hi in zip(table.compute_min, table.compute_max, strict=True)
            ],
            "compute to 90%": [
                "does not rise" if not up else "beyond measured" if v == np.inf else compute(v)
                for v, up in zip(table["compute_90"], _rises(table), strict=True)
            ],
        }
    )


RISE = 0.02
"""A fitted curve that climbs less than this (accuracy) over its range does not rise: its
"compute to 90% of the ceiling" would only restate the smallest budget."""


def _rises(table: pd.DataFrame) -> np.ndarray:
    """Whether each fitted curve climbs by RISE or more within the compute measured, so that
    "compute to 90%" means something (a class stuck at 0 never gets one)."""
    floor, ceiling = table["floor"].to_numpy(float), table["ceiling"].to_numpy(float)
    slope, midpoint = table["slope"].to_numpy(float), table["midpoint"].to_numpy(float)

    def fitted(compute: pd.Series) -> np.ndarray:
        z = np.clip(slope * (np.log2(compute.to_numpy(float)) - midpoint), -60, 60)
        return floor + (ceiling - floor) / (1 + np.exp(-z))

    with np.errstate(invalid="ignore"):
        climb = fitted(table["compute_max"]) - fitted(table["compute_min"])
    return np.nan_to_num(climb) >= RISE
