"""The report's first section: how each run was made, read from its `provenance.json`.

One run gets a field-by-field table (command, code version and commit, model, sampling,
prompt template, data, date, machine). Several runs get one compact row each and a line
naming what differs between them, so a merged report never hides that two curves came from
different settings or code. A run written before provenance was recorded says so.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from ttcbench.analysis.report_data import RunSet
from ttcbench.analysis.report_render import Section
from ttcbench.provenance import commit_text, data_text, model_text, sampling_text

NOT_RECORDED = "not recorded"
TITLE = "Provenance"


def _fields(record: dict[str, Any]) -> dict[str, str]:
    """Display text per provenance field of one run."""
    machine = record.get("machine") or {}
    strategy = record.get("strategy") or {}
    tasks = record.get("tasks") or []
    fields = {
        "command": str(record.get("command")),
        "ttcbench": commit_text(record.get("ttcbench")),
        "model": model_text(record.get("model")),
        "sampling": sampling_text(record.get("sampling")),
        "strategy": f"{strategy.get('name')}, budgets {strategy.get('budgets')}",
        "prompt template": " | ".join(f"{t.get('name')}: {t.get('prompt')!r}" for t in tasks),
        "data": "; ".join(data_text(t) for t in tasks),
        "date": str(record.get("date")),
        "machine": f"{machine.get('hostname')} ({machine.get('platform')}, Python "
        f"{machine.get('python')}, {machine.get('cpus')} CPUs)",
    }
    if strategy.get("prompts"):
        fields["strategy prompts"] = " | ".join(
            f"{k}: {v!r}" for k, v in strategy["prompts"].items()
        )
    for earlier in record.get("earlier") or []:
        fields.setdefault("earlier invocations", "")
        fields["earlier invocations"] += (
            f"{earlier.get('date')}: `{earlier.get('command')}` "
            f"(ttcbench {commit_text(earlier.get('ttcbench'))}); "
        )
    return fields


def provenance_section(runs: RunSet) -> Section:
    """How the runs were made (see the module docstring)."""
    records = {run: runs.provenance.get(str(run)) for run in runs.runs}
    if len(records) == 1:
        ((run, record),) = records.items()
        if record is None:
            return Section(TITLE, [f"Provenance: {NOT_RECORDED} for {run} (an older run)."])
        table = pd.DataFrame(list(_fields(record).items()), columns=["field", "value"])
        return Section(TITLE, [f"Run `{run}`; full record in its `provenance.json`."], [],
                       [("how this run was made", table)])  # fmt: skip
    return _many(records)


def _many(records: dict[Any, dict[str, Any] | None]) -> Section:
    root = os.path.commonpath([str(r) for r in records]) if len(records) > 1 else ""
    names = {run: os.path.relpath(run, root) if root else str(run) for run in records}
    shown = {run: _fields(r) for run, r in records.items() if r is not None}
    columns = ["command", "model", "sampling", "ttcbench", "date"]
    rows = [
        {"run": names[run], **{c: shown[run][c] if run in shown else NOT_RECORDED
                               for c in columns}}
        for run in records
    ]  # fmt: skip
    text = [f"One row per run (relative to `{root}`); full records in each `provenance.json`."]
    missing = [names[run] for run, r in records.items() if r is None]
    if missing:
        text.append(f"Provenance {NOT_RECORDED} for {len(missing)} run(s): {', '.join(missing)}.")
    per_field = {f: {fields.get(f) for fields in shown.values()} for f in _all_fields(shown)}
    expected = ("command", "date", "earlier invocations")  # differ in any sweep
    differ = [f for f, v in per_field.items() if len(v) > 1 and f not in expected]
    if differ:
        text.append(
            f"**These runs differ in: {', '.join(differ)}** — compare their curves with this in "
            "mind."
        )
    tables = [("how each run was made", pd.DataFrame(rows))]
    same = [(f, next(iter(v))) for f, v in per_field.items() if len(v) == 1 and f not in columns]
    if same:
        tables.append(("the same in every run", pd.DataFrame(same, columns=["field", "value"])))
    rest = [f for f in differ if f not in columns]
    if rest:
        detail = [{"run": names[run], **{f: shown[run].get(f, "–") for f in rest}}
                  for run in shown]  # fmt: skip
        tables.append(("what differs, per run", pd.DataFrame(detail)))
    return Section(TITLE, text, [], tables)


def _all_fields(shown: dict[Any, dict[str, str]]) -> list[str]:
    return list(dict.fromkeys(f for fields in shown.values() for f in fields))
