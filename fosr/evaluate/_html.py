"""Lay out a :class:`~fosr.evaluate.report.Report` as one self-contained page.

The page needs nothing but a browser: the style sheet is inline, fonts are
the reader's own, plots are PNG data URLs and there is no JavaScript (the
raw JSON folds away in a ``<details>`` element).  Every piece of text from
the report is escaped, so a file named ``<script>.pcap`` shows as written.

Order: a header saying what was compared, when and by which fosr; a table
of contents; then each section with its paragraph, its tables and its
figures; last the raw results.  Table cells are formatted by type:

- integers with thousands separators (``12,476``);
- other numbers with three significant digits (``0.0123``, ``4.82``,
  ``1.23e-07``), integral values without decimals, numbers of 1,000 and
  more rounded to units;
- ``None`` and non-finite numbers as an em dash;
- numbers are right-aligned in tabular figures, so that digits line up.

A column whose title starts with "±" or ends with "std" holds standard
deviations: its cells read ``± 0.0123`` and sit close to the column before.
"""

from __future__ import annotations

import base64
import html
import math
import re
import struct
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from fosr import __version__
from fosr.evaluate.report import Cell, Figure, Report, Section, Table

__all__ = ["format_cell", "render_html"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DASH = "\u2014"

_STYLE = """
:root { --ink: #1b1f24; --muted: #5b6470; --rule: #d8dde3; --band: #f4f6f8;
  --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans",
  "DejaVu Sans", sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 1.75rem; line-height: 1.2; margin: 0 0 4px; }
h2 { font-size: 1.35rem; margin: 40px 0 8px; padding-top: 8px;
  border-top: 2px solid var(--rule); }
h3 { font-size: 1.05rem; margin: 24px 0 6px; }
p { margin: 6px 0 10px; max-width: 75ch; }
a { color: var(--accent); }
code { font: 0.9em ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  overflow-wrap: anywhere; }
.kind { color: var(--muted); margin: 0 0 16px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr;
  gap: 2px 16px; margin: 0 0 8px; padding: 12px 16px; background: var(--band);
  border-radius: 6px; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; min-width: 0; }
nav.toc { margin: 20px 0 8px; }
nav.toc h2 { border: 0; margin: 0 0 4px; padding: 0; font-size: 1.1rem; }
nav.toc ol { margin: 0; padding-left: 1.4em; }
nav.toc ol ol { list-style: none; padding-left: 0.6em; color: var(--muted);
  font-size: 0.92rem; }
.table-wrap { overflow-x: auto; margin: 8px 0 4px; }
table { border-collapse: collapse; font-size: 0.92rem; }
caption { text-align: left; font-weight: 600; padding: 0 0 6px;
  font-size: 1rem; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--rule);
  vertical-align: top; }
thead th { border-bottom: 2px solid var(--ink); text-align: left;
  vertical-align: bottom; max-width: 11em; line-height: 1.25; }
tbody tr:nth-child(even) { background: var(--band); }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
td.std { color: var(--muted); padding-left: 0; }
th.std { padding-left: 0; }
td.empty { color: #9aa3ad; }
tbody th { text-align: left; font-weight: 600; white-space: nowrap; }
p.note { color: var(--muted); font-size: 0.88rem; margin-top: 2px; }
figure { margin: 20px 0; }
figure img { display: block; max-width: 100%; height: auto;
  border: 1px solid var(--rule); }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 6px;
  max-width: 75ch; }
figcaption strong { color: var(--ink); }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); }
pre { background: var(--band); padding: 12px; overflow-x: auto;
  font-size: 0.8rem; line-height: 1.35; }
footer { margin-top: 48px; color: var(--muted); font-size: 0.85rem; }
@media print { h2 { break-after: avoid; } figure, table { break-inside: avoid; } }
"""


def render_html(report: Report, *, now: datetime | None = None) -> str:
    """Return ``report`` as one HTML page with its plots embedded.

    ``now`` is when the report was made, shown in the header (aware
    datetimes print in UTC); the current time when None.
    """
    created = (now or datetime.now(UTC)).astimezone(UTC)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="fosr {_e(__version__)}">',
        f"<title>{_e(report.title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        "<main>",
        _header(report, created),
        _contents(report.sections),
        *(_section(i, section) for i, section in enumerate(report.sections, 1)),
        _raw_results(report),
        f"<footer>Made by fosr {_e(__version__)} on "
        f"{_e(created.strftime('%Y-%m-%d %H:%M UTC'))}.</footer>",
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def format_cell(value: Cell) -> str:
    """Return a table cell's text (not escaped) as the page shows it."""
    if value is None or isinstance(value, bool):
        return _DASH if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return _format_float(value)
    return str(value)


def _format_float(value: float) -> str:
    """Write a number with three significant digits, readably."""
    if not math.isfinite(value):
        return _DASH
    # decide the layout on the rounded value, so that 999.7 reads "1,000"
    magnitude = abs(float(f"{value:.3g}"))
    if magnitude == 0:
        return "0"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude < 1e-4:
        return f"{value:.2e}"
    if value == round(value):
        return f"{value:.0f}"
    decimals = max(0, 2 - math.floor(math.log10(magnitude)))
    return f"{value:.{decimals}f}"


def _header(report: Report, created: datetime) -> str:
    facts = [
        (role.capitalize(), f"<code>{_e(text)}</code>")
        for role, text in report.inputs.items()
    ]
    facts += [
        ("Created", _e(created.strftime("%Y-%m-%d %H:%M UTC"))),
        ("fosr", _e(__version__)),
    ]
    items = "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in facts)
    return (
        f"<header><h1>{_e(report.title)}</h1>"
        f'<p class="kind">An evaluation of {_e(report.kind)}. What was compared, '
        "and when:</p>"
        f'<dl class="facts">{items}</dl></header>'
    )


def _contents(sections: Sequence[Section]) -> str:
    entries = []
    for i, section in enumerate(sections, 1):
        parts = [(f"s{i}-t{j}", t.title) for j, t in enumerate(section.tables, 1)]
        parts += [(f"s{i}-f{j}", f.title) for j, f in enumerate(section.figures, 1)]
        inner = "".join(f'<li><a href="#{a}">{_e(t)}</a></li>' for a, t in parts)
        entries.append(
            f'<li><a href="#s{i}">{_e(section.title)}</a>'
            + (f"<ol>{inner}</ol>" if inner else "")
            + "</li>"
        )
    entries.append('<li><a href="#raw">Raw results (JSON)</a></li>')
    return f'<nav class="toc"><h2>Contents</h2><ol>{"".join(entries)}</ol></nav>'


def _section(number: int, section: Section) -> str:
    parts = [f'<section id="s{number}"><h2>{number}. {_e(section.title)}</h2>']
    parts += [f"<p>{_e(p.strip())}</p>" for p in _paragraphs(section.text)]
    for j, table in enumerate(section.tables, 1):
        parts.append(_table(table, f"s{number}-t{j}"))
    for j, figure in enumerate(section.figures, 1):
        parts.append(_figure(figure, f"s{number}-f{j}"))
    parts.append("</section>")
    return "\n".join(parts)


def _paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def _table(table: Table, anchor: str) -> str:
    kinds = [
        _column_kind(title, [row[i] if i < len(row) else None for row in table.rows])
        for i, title in enumerate(table.columns)
    ]
    head = "".join(
        f'<th scope="col" class="{kind}">{_e(title)}</th>'
        for title, kind in zip(table.columns, kinds, strict=True)
    )
    body = "".join(
        "<tr>" + "".join(_cell(row, i, kind) for i, kind in enumerate(kinds)) + "</tr>"
        for row in table.rows
    )
    note = f'<p class="note">{_e(table.note)}</p>' if table.note else ""
    return (
        f'<div class="table-wrap" id="{anchor}"><table>'
        f"<caption>{_e(table.title)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{note}"
    )


def _column_kind(title: str, values: Iterable[Cell]) -> str:
    """Return a column's CSS class: "num", "num std" or "text"."""
    present = [v for v in values if v is not None]
    numeric = all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in present
    )
    if not numeric:
        return "text"
    stripped = title.strip()
    if stripped.startswith("±") or stripped.lower().endswith("std"):
        return "num std"
    return "num"


def _cell(row: Sequence[Cell], i: int, kind: str) -> str:
    value = row[i] if i < len(row) else None
    text = format_cell(value)
    classes = kind
    if value is None or text == _DASH:
        classes += " empty"
    elif kind == "num std":
        text = "± " + text
    if i == 0 and kind == "text":
        return f'<th scope="row" class="{classes}">{_e(text)}</th>'
    return f'<td class="{classes}">{_e(text)}</td>'


def _figure(figure: Figure, anchor: str) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    size = ""
    if figure.png.startswith(_PNG_SIGNATURE) and len(figure.png) >= 24:
        width, height = struct.unpack(">II", figure.png[16:24])
        size = f' width="{width}" height="{height}"'
    caption = f"<strong>{_e(figure.title)}.</strong>"
    if figure.caption:
        caption += f" {_e(figure.caption)}"
    return (
        f'<figure id="{anchor}"><img src="data:image/png;base64,{data}" '
        f'alt="{_e(figure.title)}"{size}><figcaption>{caption}</figcaption></figure>'
    )


def _raw_results(report: Report) -> str:
    return (
        '<section id="raw"><h2>Raw results (JSON)</h2>'
        "<p>The same numbers for machines, as <code>--json</code> writes them.</p>"
        f"<details><summary>Show the JSON</summary><pre>{_e(report.to_json())}</pre>"
        "</details></section>"
    )


def _e(text: str) -> str:
    return html.escape(text, quote=True)
