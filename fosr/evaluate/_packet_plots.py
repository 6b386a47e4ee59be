"""Plots of the packet evaluation: real against synthetic, as PNG figures.

Each function draws one matplotlib figure without pyplot (no global state,
no display needed) and returns it as a report :class:`Figure`.  These are
the plots only the packet evaluation needs: small multiples, one panel per
service, and the validity bars; generic ones (category bars) come from
:mod:`fosr.evaluate._plots`.  Real traffic is blue and drawn first,
synthetic traffic orange, as in the generic plots; synthetic curves are
also dashed, so that both show where they coincide.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter
from matplotlib.typing import LineStyleType

from fosr.evaluate.report import Figure

__all__ = [
    "plot_distributions",
    "plot_validity",
]

Array = npt.NDArray[Any]

# The colours of fosr.evaluate._plots, so that all plots of a report agree.
REAL_COLOUR = "tab:blue"
SYNTHETIC_COLOUR = "tab:orange"
LABELS = ("real", "synthetic")
# Synthetic curves are dashed, so that where they lie on the real ones
# both still show.
_LINE_STYLES: dict[str, LineStyleType] = {"real": "-", "synthetic": (0, (4, 2))}
_COLUMNS = 3
_DPI = 100
# Corners drawn per CDF at most; more are invisible at this size.
_CDF_POINTS = 1000


def plot_validity(
    real: Mapping[str, float], synthetic: Mapping[str, float], *, caption: str
) -> Figure:
    """Draw what tshark found per 1,000 packets, real beside synthetic.

    ``real`` and ``synthetic`` map a label to a rate; both have the same
    labels, drawn top to bottom in their order.
    """
    labels = list(real)
    height = 1.0 + 0.38 * len(labels)
    figure = MplFigure(figsize=(10, height), dpi=_DPI, layout="constrained")
    axes = figure.add_subplot()
    y = np.arange(len(labels))
    values = [np.array([side[k] for k in labels]) for side in (real, synthetic)]
    bar = 0.4
    for offset, side, colour, label in zip(
        (-bar / 2, bar / 2), values, _colours(), LABELS, strict=True
    ):
        bars = axes.barh(y + offset, side, height=bar, color=colour, label=label)
        axes.bar_label(bars, labels=[_short(v) for v in side], padding=3, fontsize=8)
    axes.set_yticks(y, labels)
    axes.invert_yaxis()
    axes.set_xlabel("packets per 1,000 packets")
    axes.margins(x=0.12)
    _finish(axes, legend=True)
    return _to_figure(figure, "What tshark finds, per 1,000 packets", caption)


def plot_distributions(
    real: Mapping[str, Array],
    synthetic: Mapping[str, Array],
    *,
    title: str,
    xlabel: str,
    caption: str,
    log_x: bool = False,
) -> Figure:
    """Draw one panel per service: the two empirical CDFs of a sample.

    ``real`` and ``synthetic`` map a service to its values; a service with
    no values on one side shows only the other.  With ``log_x`` the axis is
    logarithmic and values at or below zero are left out.
    """
    names = list(real)
    rows = max(1, math.ceil(len(names) / _COLUMNS))
    # fixed margins in inches: constrained layout would triple the time
    height_in = 0.7 + 2.3 * rows
    figure = MplFigure(figsize=(10, height_in), dpi=_DPI)
    figure.subplots_adjust(
        left=0.06,
        right=0.985,
        top=1 - 0.7 / height_in,
        bottom=0.5 / height_in,
        wspace=0.22,
        hspace=0.62,
    )
    grid = figure.subplots(rows, _COLUMNS, squeeze=False)
    for axes, name in zip(grid.ravel(), names, strict=False):
        sides = (real[name], synthetic.get(name, np.empty(0)))
        _draw_cdf_panel(axes, sides, log_x=log_x)
        axes.set_title(name, fontsize=10)
        axes.set_xlabel(xlabel, fontsize=8)
    for axes in grid.ravel()[len(names) :]:
        axes.set_visible(False)
    _legend_above(figure, lines=True)
    return _to_figure(figure, title, caption)


def _draw_cdf_panel(axes: Axes, sides: Sequence[Array], *, log_x: bool) -> None:
    """Draw the CDF of each side in one panel, or say that there is none."""
    drawn = 0
    for values, colour, label in zip(sides, _colours(), LABELS, strict=True):
        values = np.asarray(values, dtype=np.float64)
        if log_x:
            values = values[values > 0]
        if len(values) == 0:
            continue
        x, share = _cdf_points(values)
        # start at 0 on the first value, so that a single value still shows
        x, share = np.insert(x, 0, x[0]), np.insert(share, 0, 0.0)
        axes.step(
            x,
            share,
            where="post",
            color=colour,
            label=label,
            linewidth=1.6,
            linestyle=_LINE_STYLES[label],
        )
        drawn += 1
    if not drawn:
        axes.text(
            0.5,
            0.5,
            "no values",
            ha="center",
            va="center",
            color="#777777",
            transform=axes.transAxes,
        )
        axes.set_xticks([])
    elif log_x:
        axes.set_xscale("log")
        # below a decade matplotlib labels the minor ticks, and they collide
        axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_ylim(0, 1.02)
    _finish(axes, legend=False)


def _cdf_points(values: Array, limit: int = _CDF_POINTS) -> tuple[Array, Array]:
    """Return the corners of the empirical CDF, at most about ``limit`` of them.

    Each distinct value is a corner; past ``limit`` the curve keeps evenly
    spaced shares instead, which a figure a thousand pixels wide cannot
    tell apart.
    """
    x, counts = np.unique(values, return_counts=True)
    share = np.cumsum(counts) / len(values)
    if len(x) > limit:
        keep = np.unique(np.searchsorted(share, np.linspace(0, 1, limit)))
        keep = keep[keep < len(x)]
        x, share = x[keep], share[keep]
    return x, share


def _finish(axes: Axes, *, legend: bool) -> None:
    """Apply the common look: light grid, no top and right frame."""
    axes.grid(True, color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=8)
    if legend:
        axes.legend(frameon=False, fontsize=9)


def _legend_above(figure: MplFigure, *, lines: bool = False) -> None:
    """Put one legend for all panels above them: lines or bar swatches."""
    handles = [
        Line2D(
            [],
            [],
            color=colour,
            label=label,
            linewidth=2 if lines else 6,
            linestyle=_LINE_STYLES[label] if lines else "-",
        )
        for colour, label in zip(_colours(), LABELS, strict=True)
    ]
    if figure.get_layout_engine() is None:
        figure.legend(handles=handles, loc="upper center", ncols=2, frameon=False)
    else:
        figure.legend(
            handles=handles, loc="outside upper center", ncols=2, frameon=False
        )


def _colours() -> Sequence[str]:
    return (REAL_COLOUR, SYNTHETIC_COLOUR)


def _short(value: float) -> str:
    """Write a rate with three significant digits, and 0 as 0."""
    return "0" if value == 0 else f"{value:.3g}"


def _to_figure(figure: MplFigure, title: str, caption: str) -> Figure:
    """Render ``figure`` as PNG bytes (without a timestamp, so runs compare)."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return Figure(title=title, png=buffer.getvalue(), caption=caption)
