"""Writing a report: one self-contained HTML file and a Markdown file with its figures.

The HTML embeds every figure as a base64 PNG and carries its own CSS: no external `src` or
`href`, so it opens offline, attaches to an e-mail and survives being copied anywhere. The
Markdown links the same PNG files, kept in `report_figures/` next to it. A section may carry
raw HTML and a script (the sample browser); the page's Content-Security-Policy allows exactly
those scripts, by hash, and no external resource, so text that slipped through unescaped could
still neither run nor load anything.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

FIGURE_DIR = "report_figures"

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.85em}
th,td{border:1px solid #bbb;padding:.25em .55em;text-align:right}
th{background:#eee}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #ddd}
.note{background:#f6f6f6;border-left:4px solid #888;padding:.4em .8em}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
code{background:#f0f0f0;padding:0 .2em}
"""


@dataclass
class Section:
    """One part of the report: paragraphs, then figures, then tables (caption, frame)."""

    title: str
    text: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    html: str = ""
    """Raw HTML after the tables; trusted: the report code that builds it escapes all data."""
    script: str = ""
    """JavaScript for `html`, inlined at the end of the page (and allowed by the CSP)."""
    markdown: str = ""
    """What the Markdown report says in place of `html` and `script`."""


def number(value: object, digits: int = 3) -> str:
    """A cell: fixed digits for accuracies, 4 significant digits for compute-like values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:.{digits}f}" if abs(value) < 10 or digits == 0 else f"{value:.4g}"
    return str(value)


def compute(value: object) -> str:
    """Compute values (tokens, FLOPs, USD) at 4 significant digits."""
    if isinstance(value, int | float) and math.isfinite(value):
        return f"{value:.4g}"
    return number(value)


def interval(low: object, high: object, digits: int = 3) -> str:
    return f"[{number(low, digits)}, {number(high, digits)}]"


def inline(text: str) -> str:
    """Escaped HTML with `code` spans: the only markup report text uses."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _html_table(caption: str, frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return (
        f"<table><caption>{inline(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _md_table(caption: str, frame: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [f"**{caption}**", "", "| " + " | ".join(cell(c) for c in frame.columns) + " |"]
    lines.append("|" + "---|" * len(frame.columns))
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


def _policy(scripts: Sequence[str]) -> str:
    """Nothing external, and no script but these (by hash): an unescaped `<script>` or
    `onerror=` in model output would be inert."""
    hashes = [base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in scripts]
    allowed = " ".join(f"'sha256-{h}'" for h in hashes) or "'none'"
    return f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src {allowed}"


def write_html(
    path: Path, title: str, sections: Sequence[Section], figures: Mapping[str, Path]
) -> Path:
    """The self-contained report (see the module docstring)."""
    scripts = [section.script for section in sections if section.script]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f'<meta http-equiv="Content-Security-Policy" content="{_policy(scripts)}">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p class='note'>{inline(t)}</p>" for t in section.text]
        for name in section.figures:
            data = base64.b64encode(figures[name].read_bytes()).decode("ascii")
            parts.append(
                f"<p><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'></p>"
            )
        parts += [_html_table(caption, frame) for caption, frame in section.tables]
        parts += [section.html] if section.html else []
    parts += [f"<script>{script}</script>" for script in scripts]
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def write_markdown(
    path: Path, title: str, sections: Sequence[Section], figures: Mapping[str, Path]
) -> Path:
    """The Markdown report; figures are linked relative to the file."""
    parts = [f"# {title}"]
    for section in sections:
        parts.append(f"## {section.title}")
        parts += [f"> {t}" for t in section.text]
        for name in section.figures:
            relative = figures[name].relative_to(path.parent).as_posix()
            parts.append(f"![{name}]({relative})")
        parts += [_md_table(caption, frame) for caption, frame in section.tables]
        parts += [section.markdown] if section.markdown else []
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path
