"""The report's sample browser: every call of the runs, filterable, inside report.html.

Researchers audit grading by reading samples: the prompt, the gold target, the full output,
what was extracted from it and how it scored. The browser embeds the calls as JSON in the page
and renders them with a small script (no server, no external file), with filters by task,
each class label, strategy, score and role, a text search and pages of `PAGE_SIZE` cards.

Model output is hostile text: the JSON is escaped so that no `<`, `>` or `&` appears in the
page's source, and the script only ever sets `textContent`, so an output holding
`</script><script>...` or `<img onerror=...>` is shown as the characters it is. The page's
Content-Security-Policy (`report_render`) allows only this script, by hash.

A large run would make a page too heavy to open, so at most `SAMPLE_CAP` calls are embedded by
default, chosen deterministically and stratified (`select_samples`); a note then says how many
are shown and how to see all (`ttcbench-report --samples all`, or calls.parquet).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from ttcbench.analysis.report_data import RunSet
from ttcbench.analysis.report_render import Section, inline

__all__ = ["PAGE_SIZE", "SAMPLE_CAP", "sample_payload", "samples_section", "select_samples"]

SAMPLE_CAP = 2000
"""Calls embedded by default: a page of a few MB that opens in a second."""
PAGE_SIZE = 50
"""Cards per page of the browser."""
NO_VALUE = "—"
"""Shown for a field a run did not record (e.g. `target` in runs older than the column)."""
_STRATA = ["model", "strategy", "task", "problem_id", "role"]
_ORDER = ["task", "problem_id", "model", "strategy", "role", "sample_index"]
_FIELDS = {  # browser field -> calls column
    "task": "task",
    "problem": "problem_id",
    "strategy": "strategy",
    "role": "role",
    "model": "model",
    "sample": "sample_index",
    "target": "target",
    "output": "output",
    "extracted": "extracted",
    "score_value": "score",
    "prompt_tokens": "prompt_tokens",
    "completion_tokens": "completion_tokens",
    "latency_s": "latency_s",
    "cost_usd": "cost_usd",
    "finish": "finish_reason",
    "error": "error",
    "cached": "cached",
}


def select_samples(calls: pd.DataFrame, cap: int | None) -> pd.DataFrame:
    """At most `cap` calls (all when None), in browsing order (task, problem, strategy, role).

    Stratified and deterministic: calls are grouped by model x strategy x task x problem x
    role; the first call of every group comes before any group's second, and within one round
    the strategies take turns (groups in a fixed hashed order), so a cap at least the number
    of groups shows every strategy, problem and role, and a smaller one still every strategy.
    """
    keys = [c for c in _ORDER if c in calls]
    ordered = calls.sort_values(keys, kind="stable").reset_index(drop=True) if keys else calls
    if cap is None or len(ordered) <= cap:
        return ordered
    strata = [c for c in _STRATA if c in ordered] or ["__all"]
    frame = ordered.assign(__all=0) if strata == ["__all"] else ordered
    labels = frame[strata].astype("string").fillna("")
    round_ = frame.groupby(strata, sort=False, dropna=False).cumcount().to_numpy()
    hashed = pd.util.hash_pandas_object(labels, index=False).to_numpy()
    owner = [c for c in ("model", "strategy") if c in frame] or ["__all"]
    turn = (
        labels.assign(__h=hashed, __all="")
        .groupby(owner, sort=False, dropna=False)["__h"]
        .rank(method="dense")
        .to_numpy()
    )
    chosen = np.lexsort((hashed, turn, round_))[:cap]
    return ordered.iloc[np.sort(chosen)].reset_index(drop=True)


def score_state(score: object, error: object = None) -> str:
    """`correct` (score 1), `wrong` (a lower score) or `unscored` (no score: an error, or a
    role such as critique that is not graded)."""
    if _missing(score) or not _missing(error):
        return "unscored"
    return "correct" if float(score) >= 1.0 else "wrong"  # type: ignore[arg-type]


def sample_payload(calls: pd.DataFrame, cap: int | None) -> dict[str, Any]:
    """The browser's JSON: column names, one row per embedded call, the filters (facets) and
    the prompts (deduplicated: many calls share one prompt)."""
    chosen = select_samples(calls, cap)
    classes = sorted(c for c in chosen.columns if c.startswith("class_"))
    prompts: list[list[str]] = []
    prompt_index: dict[str, int] = {}
    columns = [*_FIELDS, "run", "score", "prompt", *classes]
    runs = chosen["run"].map(_run_label) if "run" in chosen else pd.Series("", chosen.index)
    rows = []
    for record, run in zip(chosen.to_dict("records"), runs, strict=True):
        row = [_cell(record.get(column)) for column in _FIELDS.values()]
        row.append(run)
        row.append(score_state(record.get("score"), record.get("error")))
        row.append(_prompt_id(record.get("messages"), prompts, prompt_index))
        row += [_label(record.get(c)) for c in classes]
        rows.append(row)
    facets = [["task", "task"], *([c, c.removeprefix("class_")] for c in classes)]
    facets += [["strategy", "strategy"], ["score", "score"], ["role", "role"]]
    if "model" in chosen and chosen["model"].nunique() > 1:
        facets.append(["model", "model"])
    owner = [c for c in ("model", "strategy") if c in chosen]
    if "run" in chosen and owner and chosen.groupby(owner)["run"].nunique().max() > 1:
        facets.append(["run", "run"])  # one strategy in several runs: a sweep
    return {
        "columns": columns,
        "rows": rows,
        "facets": facets,
        "prompts": prompts,
        "total": len(calls),
        "page_size": PAGE_SIZE,
        "has_target": "target" in calls,
    }


def samples_section(runs: RunSet, cap: int | None = SAMPLE_CAP) -> Section:
    """The report's "Samples" section: the browser in HTML, a one-line pointer in Markdown."""
    title = "Samples"
    calls = runs.calls
    if cap == 0:
        return Section(title, ["The sample browser was left out (`--samples 0`)."])
    if calls.empty or "output" not in calls:
        return Section(
            title,
            ["These runs hold no call records (a Parquet export without calls.parquet, or an "
             "import of attempts only): there are no samples to browse."],
        )  # fmt: skip
    payload = sample_payload(calls, cap)
    shown, total = len(payload["rows"]), payload["total"]
    pointer = (
        f"Sample browser: open `report.html` to read {shown:,} of the {total:,} calls "
        "(prompt, target, full output, extracted answer, score, tokens, latency, cost), "
        "filtered by task, class, strategy, score and role."
    )
    return Section(title, html=_html(payload, _cap_note(shown, total)), script=SCRIPT,
                   markdown=pointer)  # fmt: skip


def _cap_note(shown: int, total: int) -> str:
    if shown >= total:
        return f"All {total:,} calls of these runs, {PAGE_SIZE} per page."
    return (
        f"Showing {shown:,} of {total:,} calls, chosen deterministically so that every "
        "strategy, problem and role is represented (as far as the cap allows). To see all, "
        "rerun `ttcbench-report RESULTS --samples all` (a larger page), or load every call "
        'in Python: `ttcbench.load("RESULTS")` (each run folder\'s calls.parquet).'
    )


def _html(payload: dict[str, Any], note: str) -> str:
    return (
        f"<div id='sb' class='sb'><style>{CSS}</style>"
        f"<p class='note' id='sb-cap'>{inline(note)}</p>"
        "<noscript><p class='note'>The sample browser needs JavaScript; the same rows are in "
        "each run's calls.parquet.</p></noscript>"
        "<div id='sb-filters' class='sb-filters'></div>"
        "<div class='sb-bar'><span id='sb-status'></span> "
        "<button type='button' id='sb-prev'>&#8249; previous</button> "
        "<span id='sb-page'></span> "
        "<button type='button' id='sb-next'>next &#8250;</button></div>"
        "<div id='sb-list'></div>"
        f"<script type='application/json' id='sb-data'>{embed_json(payload)}</script>"
        "</div>"
    )


def embed_json(payload: object) -> str:
    """JSON safe inside a `<script type="application/json">` element: `<`, `>` and `&` are
    escaped (so no `</script>` or `<!--` can end or confuse it), and lone surrogates, which
    cannot be written as UTF-8, become U+FFFD."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return text.encode("utf-8", "replace").decode("utf-8")


def _missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _cell(value: object) -> object:
    """A JSON value: None for missing, plain numbers and strings otherwise."""
    if _missing(value):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else str(value)
    return value if isinstance(value, str) else str(value)


def _run_label(run: object) -> str:
    """A run folder as `<strategy folder>/<run folder>`: short, and unique within a sweep."""
    parts = str(run).replace("\\", "/").rstrip("/").split("/")
    return "/".join(parts[-2:])


def _label(value: object) -> str:
    return NO_VALUE if _missing(value) else str(value)


def _prompt_id(messages: object, prompts: list[list[str]], index: dict[str, int]) -> int | None:
    """Index into `prompts` of [problem, prompt, whole conversation]: the first user message
    (the problem as posed), the last one when it differs (a critique or revise request; else
    empty) and every turn (empty for a single message); None when no messages were recorded."""
    if isinstance(messages, str):
        try:
            messages = json.loads(messages)  # Parquet exports store the list as JSON text
        except ValueError:
            messages = [{"role": "user", "content": messages}]
    if _missing(messages) or not isinstance(messages, list | np.ndarray) or len(messages) == 0:
        return None
    turns = [m if isinstance(m, dict) else {"content": m} for m in messages]
    users = [t for t in turns if t.get("role", "user") == "user"] or turns
    problem, prompt = str(users[0].get("content", "")), str(users[-1].get("content", ""))
    whole = (
        ""
        if len(turns) == 1
        else "\n\n".join(f"[{t.get('role', '?')}]\n{t.get('content', '')}" for t in turns)
    )
    entry = [problem, "" if prompt == problem else prompt, whole]
    key = "\x00".join(entry)
    if key not in index:
        index[key] = len(prompts)
        prompts.append(entry)
    return index[key]


SCRIPT = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("sb-data").textContent);
  var rows = D.rows.map(function (r) {
    var o = {};
    D.columns.forEach(function (c, i) { o[c] = r[i]; });
    return o;
  });
  var NONE = "\u2014", ORDER = {correct: 0, wrong: 1, unscored: 2};
  var chosen = {}, query = "", page = 0, matching = rows;
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = (text === null || text === "") ? NONE : String(text);
    return e;
  }
  function byId(id) { return document.getElementById(id); }
  function facetValues(key) {
    var counts = {};
    rows.forEach(function (r) { var v = String(r[key]); counts[v] = (counts[v] || 0) + 1; });
    var values = Object.keys(counts).sort(function (a, b) {
      if (key === "score") return ORDER[a] - ORDER[b];
      return a.localeCompare(b, undefined, {numeric: true});
    });
    return values.map(function (v) { return [v, counts[v]]; });
  }
  D.facets.forEach(function (f) {
    var label = el("label", "sb-filter"), select = el("select");
    label.appendChild(el("span", null, f[1]));
    select.setAttribute("data-facet", f[0]);
    var all = el("option", null, "all (" + rows.length + ")");
    all.value = "";
    select.appendChild(all);
    facetValues(f[0]).forEach(function (vc) {
      var o = el("option", null, vc[0] + " (" + vc[1] + ")");
      o.value = vc[0];
      select.appendChild(o);
    });
    select.addEventListener("change", function () { chosen[f[0]] = select.value; update(); });
    label.appendChild(select);
    byId("sb-filters").appendChild(label);
  });
  var search = el("input");
  search.type = "search";
  search.id = "sb-q";
  search.placeholder = "search prompt, output, answer";
  search.addEventListener("input", function () { query = search.value.toLowerCase(); update(); });
  byId("sb-filters").appendChild(search);
  function prompt(r) { return r.prompt === null ? null : D.prompts[r.prompt]; }
  function matches(r) {
    for (var k in chosen) if (chosen[k] && String(r[k]) !== chosen[k]) return false;
    if (!query) return true;
    var p = prompt(r);
    return [r.output, r.extracted, r.target, r.problem, p && p[0], p && p[1]].some(function (t) {
      return t !== null && String(t).toLowerCase().indexOf(query) >= 0;
    });
  }
  function fmt(v, unit) {
    if (v === null || v === undefined) return NONE;
    if (unit === "$") return v === 0 ? "$0" : "$" + Number(v).toPrecision(3);
    if (unit === "s") return Number(v).toFixed(2) + " s";
    return String(v);
  }
  function field(grid, name, value, pre) {
    grid.appendChild(el("div", "sb-k", name));
    var box = el(pre ? "pre" : "div", "sb-v", value);
    grid.appendChild(box);
    return box;
  }
  function card(r) {
    var c = el("div", "sb-card sb-" + r.score), head = el("div", "sb-head");
    head.appendChild(el("span", "sb-badge", r.score));
    var where = [r.task, "problem " + r.problem, r.strategy, r.role, "sample " + fmt(r.sample)];
    D.facets.forEach(function (f) {
      if (f[0] === "model" || f[0] === "run") where.push(r[f[0]]);
    });
    head.appendChild(el("span", "sb-where", where.join(" \u00b7 ")));
    c.appendChild(head);
    var classes = D.facets.filter(function (f) { return f[0].indexOf("class_") === 0; })
      .map(function (f) { return f[1] + "=" + r[f[0]]; });
    var tokens = fmt(r.prompt_tokens) + " in + " + fmt(r.completion_tokens) + " out";
    var meta = [tokens + " tokens", "latency " + fmt(r.latency_s, "s"),
      "cost " + fmt(r.cost_usd, "$"), "finish " + fmt(r.finish)];
    if (r.cached) meta.push("cached");
    if (classes.length) meta.unshift(classes.join(", "));
    c.appendChild(el("div", "sb-meta", meta.join(" \u00b7 ")));
    var grid = el("div", "sb-grid"), p = prompt(r);
    field(grid, "problem", p ? p[0] : null, true);
    if (p && p[1]) field(grid, "prompt", p[1], true);
    field(grid, "target", D.has_target ? r.target : null, true);
    field(grid, "extracted", r.extracted, true);
    field(grid, "score", r.score_value === null ? null : r.score_value + " (" + r.score + ")");
    field(grid, "output", r.output, true).className = "sb-v sb-out";
    if (r.error !== null) field(grid, "error", r.error, true);
    c.appendChild(grid);
    if (p && p[2]) {
      var d = el("details");
      d.appendChild(el("summary", null, "whole conversation"));
      d.appendChild(el("pre", "sb-v", p[2]));
      c.appendChild(d);
    }
    return c;
  }
  function render() {
    var size = D.page_size, pages = Math.max(1, Math.ceil(matching.length / size));
    page = Math.min(Math.max(page, 0), pages - 1);
    var list = byId("sb-list"), start = page * size;
    list.replaceChildren();
    matching.slice(start, start + size).forEach(function (r) { list.appendChild(card(r)); });
    var status = byId("sb-status");
    status.setAttribute("data-matching", String(matching.length));
    status.textContent = matching.length + " of " + rows.length + " samples match" +
      (matching.length ? "; showing " + (start + 1) + "\u2013" +
        Math.min(start + size, matching.length) : "");
    byId("sb-page").textContent = "page " + (page + 1) + " of " + pages;
    byId("sb-prev").disabled = page === 0;
    byId("sb-next").disabled = page >= pages - 1;
  }
  function update() { matching = rows.filter(matches); page = 0; render(); }
  byId("sb-prev").addEventListener("click", function () { page -= 1; render(); });
  byId("sb-next").addEventListener("click", function () { page += 1; render(); });
  render();
})();
"""

CSS = """
.sb-filters{display:flex;flex-wrap:wrap;gap:.4em 1em;margin:.5em 0}
.sb-filter span{font-size:.8em;color:#555;margin-right:.3em}
.sb-bar{margin:.5em 0;font-size:.9em}
.sb-card{border:1px solid #ccc;border-left:5px solid #999;margin:.6em 0;padding:.4em .7em}
.sb-correct{border-left-color:#2a8a3a}.sb-wrong{border-left-color:#c0392b}
.sb-head{font-weight:600}.sb-meta{font-size:.8em;color:#555;margin:.2em 0}
.sb-badge{font-size:.75em;text-transform:uppercase;background:#eee;padding:0 .4em;
margin-right:.5em}
.sb-grid{display:grid;grid-template-columns:6em 1fr;gap:.2em .6em}
.sb-k{font-size:.8em;color:#555;padding-top:.2em}
.sb-v{margin:0;white-space:pre-wrap;overflow-wrap:anywhere;max-height:16em;overflow:auto;
font-size:.85em;background:#fafafa}
.sb-out{max-height:30em}
"""
