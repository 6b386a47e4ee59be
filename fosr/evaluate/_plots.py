"""Plots of real against synthetic data, as PNG figures for the report.

Generic helpers: they take numpy arrays and labels and return a
:class:`~fosr.evaluate.report.Figure`, so that the flow and the packet
evaluations draw alike.  Every plot is 900 x 450 pixels, with labelled
axes and a legend naming the two sides (``labels``, "real" and "synthetic"
by default; real is blue, synthetic orange).

matplotlib is used through its object interface with the Agg canvas: no
pyplot, no global backend switch, nothing left open after a call.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure

from fosr.evaluate.report import Figure

__all__ = [
    "plot_acf",
    "plot_category_bars",
    "plot_distribution",
    "plot_heatmaps",
]

Array = npt.NDArray[Any]

_SIZE_IN = (9.0, 4.5)
_DPI = 100
_COLOURS = ("tab:blue", "tab:orange")
_HISTOGRAM_BINS = 40
_LABEL_CHARS = 24
_CDF_POINTS = 1000


def plot_distribution(
    real: Array,
    synthetic: Array,
    *,
    title: str,
    xlabel: str,
    log_scale: bool = False,
    labels: tuple[str, str] = ("real", "synthetic"),
    caption: str = "",
) -> Figure:
    """Draw a histogram (left) and the empirical CDF (right) of two samples.

    Both use the same bins.  ``log_scale`` puts the x axis on a symmetric
    log scale (linear below 1), for counts and durations spanning decades.
    """
    figure, (hist_ax, cdf_ax) = _new_figure(2)
    samples = [
        np.asarray(real, dtype=np.float64),
        np.asarray(synthetic, dtype=np.float64),
    ]
    samples = [s[np.isfinite(s)] for s in samples]
    bins = list(_bins(np.concatenate(samples), log_scale))
    for sample, label, colour in zip(samples, labels, _COLOURS, strict=True):
        if not len(sample):
            continue
        weights = np.full(len(sample), 1.0 / len(sample))
        hist_ax.hist(sample, bins=bins, weights=weights, histtype="step",
                     linewidth=1.5, label=label, color=colour)  # fmt: skip
        x, y = _cdf_points(sample)
        cdf_ax.step(x, y, where="post", label=label, color=colour)
    for ax in (hist_ax, cdf_ax):
        if log_scale:
            ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel(xlabel)
        ax.legend()
    hist_ax.set_ylabel("fraction of rows")
    hist_ax.set_title("histogram")
    cdf_ax.set_ylabel("cumulative fraction of rows")
    cdf_ax.set_title("empirical CDF")
    cdf_ax.set_ylim(0.0, 1.0)
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.84, wspace=0.25)
    return _finish(figure, title, caption)


def plot_category_bars(
    real: Array,
    synthetic: Array,
    *,
    title: str,
    xlabel: str = "fraction of rows",
    top: int = 15,
    labels: tuple[str, str] = ("real", "synthetic"),
    caption: str = "",
) -> Figure:
    """Draw side-by-side bars of the most frequent values of two samples.

    The ``top`` values most frequent in the real sample are shown, most
    frequent on top, then one bar "(other)" for the rest of each sample.
    Values are shown as text, cut to 24 characters.
    """
    real_s = np.asarray(real).astype(str)
    synthetic_s = np.asarray(synthetic).astype(str)
    values, counts = np.unique(real_s, return_counts=True)
    shown = values[np.argsort(-counts, kind="stable")[:top]]
    real_shares = _shares(real_s, shown)
    synthetic_shares = _shares(synthetic_s, shown)
    names = [_cut(str(v)) for v in shown] + ["(other)"]

    figure, (ax,) = _new_figure(1)
    positions = np.arange(len(names))
    height = 0.4
    ax.barh(positions - height / 2, real_shares, height, label=labels[0],
            color=_COLOURS[0])  # fmt: skip
    ax.barh(positions + height / 2, synthetic_shares, height, label=labels[1],
            color=_COLOURS[1])  # fmt: skip
    ax.set_yticks(positions, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.legend()
    # room on the left for labels of 24 characters at 8 points
    figure.subplots_adjust(left=0.24, right=0.98, bottom=0.12, top=0.9)
    return _finish(figure, title, caption)


def plot_heatmaps(
    real: Array,
    synthetic: Array,
    names: Sequence[str],
    *,
    title: str,
    value_label: str = "Pearson correlation",
    labels: tuple[str, str] = ("real", "synthetic"),
    caption: str = "",
) -> Figure:
    """Draw two square matrices side by side (values in [-1, 1]).

    ``real`` and ``synthetic`` are (d, d) matrices, such as correlations,
    whose rows and columns are ``names``; small matrices get their values
    written in the cells.
    """
    figure, axes = _new_figure(2)
    image = None
    for ax, matrix, label in zip(axes, (real, synthetic), labels, strict=True):
        image = ax.imshow(matrix, vmin=-1.0, vmax=1.0, cmap="coolwarm")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_title(label)
        if len(names) <= 8:
            for (i, j), value in np.ndenumerate(matrix):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7)
    assert image is not None, "two axes were drawn"
    figure.subplots_adjust(left=0.1, right=0.84, bottom=0.2, top=0.86, wspace=0.35)
    # the colour bar gets its own strip right of both matrices
    colour_bar = figure.add_axes((0.88, 0.2, 0.015, 0.66))
    figure.colorbar(image, cax=colour_bar, label=value_label)
    return _finish(figure, title, caption)


def plot_acf(
    real: Array,
    synthetic: Array,
    *,
    title: str,
    xlabel: str = "lag (s)",
    lags: Array | None = None,
    labels: tuple[str, str] = ("real", "synthetic"),
    caption: str = "",
) -> Figure:
    """Draw two autocorrelation curves from lag 1 on (lag 0 is always 1).

    The lag axis is logarithmic; long curves are drawn at about 1,000
    log-spaced lags.  ``lags``, if given, marks the lags where the real ACF
    is significant, as dots on the real curve.
    """
    figure, (ax,) = _new_figure(1)
    shown = _log_spaced(min(len(real), len(synthetic)))
    for acf, label, colour in zip((real, synthetic), labels, _COLOURS, strict=True):
        ax.plot(shown, acf[shown], label=label, color=colour, linewidth=1)
    if lags is not None and len(lags):
        marked = np.intersect1d(lags, shown)
        ax.plot(marked, real[marked], ".", color=_COLOURS[0], markersize=3,
                label=f"{labels[0]}: significant lags")  # fmt: skip
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("autocorrelation")
    ax.legend()
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.12, top=0.9)
    return _finish(figure, title, caption)


def _new_figure(columns: int) -> tuple[MplFigure, list[Axes]]:
    """Return a 900 x 450 px figure with ``columns`` axes side by side."""
    figure = MplFigure(figsize=_SIZE_IN, dpi=_DPI)
    FigureCanvasAgg(figure)
    axes = [figure.add_subplot(1, columns, i + 1) for i in range(columns)]
    return figure, axes


def _finish(figure: MplFigure, title: str, caption: str) -> Figure:
    """Render the figure to PNG bytes and wrap it for the report."""
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return Figure(title=title, png=buffer.getvalue(), caption=caption)


def _bins(values: Array, log_scale: bool) -> Array:
    """Return histogram bin edges covering ``values``."""
    if not len(values):
        return np.linspace(0.0, 1.0, _HISTOGRAM_BINS + 1)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.array([low - 0.5, high + 0.5])
    if log_scale and low >= 0.0:
        inner = np.geomspace(max(low, 1.0), max(high, 2.0), _HISTOGRAM_BINS)
        return np.unique(np.concatenate([[low], inner]))
    return np.linspace(low, high, _HISTOGRAM_BINS + 1)


def _log_spaced(n: int) -> Array:
    """Return the lags 1..n-1, or about ``_CDF_POINTS`` log-spaced ones."""
    if n - 1 <= _CDF_POINTS:
        return np.arange(1, n)
    return np.unique(np.geomspace(1, n - 1, _CDF_POINTS).astype(np.int64))


def _cdf_points(sample: Array) -> tuple[Array, Array]:
    """Return the empirical CDF's corners, at most ``_CDF_POINTS`` of them.

    Beyond a thousand corners the curve looks the same at 900 pixels and
    only costs drawing time, so large samples are read at evenly spaced
    ranks (and the extremes).
    """
    ordered = np.sort(sample)
    ranks = np.arange(1, len(ordered) + 1)
    if len(ordered) > _CDF_POINTS:
        keep = np.unique(np.linspace(0, len(ordered) - 1, _CDF_POINTS).astype(int))
        ordered, ranks = ordered[keep], ranks[keep]
    return ordered, ranks / len(sample)


def _shares(values: Array, shown: Array) -> Array:
    """Return the fraction of ``values`` equal to each shown value, then the rest."""
    if not len(values):
        return np.zeros(len(shown) + 1)
    shares = np.array([np.count_nonzero(values == v) for v in shown]) / len(values)
    return np.append(shares, max(0.0, 1.0 - shares.sum()))


def _cut(text: str) -> str:
    """Shorten a label to fit beside a bar."""
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"
