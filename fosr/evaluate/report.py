"""The evaluation report: numbers for machines, tables and plots for people.

An evaluation (of flows or of packets) produces one :class:`Report`.  Its
``results`` are plain JSON values (numbers, strings, lists, dicts) and are
what ``--json`` writes; its ``sections`` hold the tables and the plots (PNG
images) that ``--html`` lays out on one self-contained page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Figure", "Report", "Section", "Table"]

Cell = str | int | float | None


@dataclass(frozen=True)
class Figure:
    """A plot, as PNG bytes, with a title and a one-sentence caption."""

    title: str
    png: bytes
    caption: str = ""


@dataclass(frozen=True)
class Table:
    """A table of cells; ``note`` is a sentence shown under it."""

    title: str
    columns: list[str]
    rows: list[list[Cell]]
    note: str = ""


@dataclass
class Section:
    """A part of the report: a heading, a paragraph, tables, then figures."""

    title: str
    text: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


@dataclass
class Report:
    """The outcome of one evaluation.

    ``kind`` is ``"flows"`` or ``"packets"``; ``inputs`` names the files
    compared (role to path); ``results`` is JSON-serialisable.
    """

    title: str
    kind: str
    inputs: dict[str, str]
    results: dict[str, Any]
    sections: list[Section] = field(default_factory=list)

    def to_json(self) -> str:
        """Return the machine-readable report: kind, inputs and results."""
        document = {
            "kind": self.kind,
            "title": self.title,
            "inputs": self.inputs,
            "results": self.results,
        }
        return json.dumps(document, indent=2, sort_keys=False, allow_nan=False)

    def to_html(self) -> str:
        """Return a self-contained HTML page (plots embedded as data URLs)."""
        from fosr.evaluate._html import render_html

        return render_html(self)
