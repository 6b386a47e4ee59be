"""The figures of the flow report: real flows against synthetic flows.

One histogram-and-CDF pair per numeric column (the five continuous columns
on a log axis, and the aligned start time), one bar chart per discrete
column (its 15 most frequent real values), the correlation matrices of
the continuous columns side by side, and the ACF curves of the temporal
metric.  Sets larger than ``_PLOT_ROWS`` are subsampled (seeded), which
changes nothing visible and keeps drawing under a few seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.evaluate._flow_columns import (
    CONTINUOUS_COLUMNS,
    DISCRETE_COLUMNS,
    align_start,
    signed_log,
)
from fosr.evaluate._flow_metrics import AcfComparison, correlation_matrix
from fosr.evaluate._plots import (
    plot_acf,
    plot_category_bars,
    plot_distribution,
    plot_heatmaps,
)
from fosr.evaluate.report import Figure
from fosr.flows.table import PROTO_NAMES, FlowTable, format_tcp_flags

__all__ = ["draw_acf_figures", "draw_figures"]

Array = npt.NDArray[Any]

_PLOT_ROWS = 100_000
_UNITS = {
    "duration": "duration (s)",
    "fwd_bytes": "forward bytes (client to server)",
    "bwd_bytes": "backward bytes (server to client)",
    "fwd_packets": "forward packets",
    "bwd_packets": "backward packets",
}


def draw_figures(
    real: FlowTable, synthetic: FlowTable, alignment: str, *, seed: int
) -> list[Figure]:
    """Return the distribution figures of ``synthetic`` against ``real``."""
    rng = np.random.default_rng(seed)
    real, synthetic = _subsample(real, rng), _subsample(synthetic, rng)
    figures = []
    for name in CONTINUOUS_COLUMNS:
        figures.append(
            plot_distribution(
                getattr(real, name),
                getattr(synthetic, name),
                title=name,
                xlabel=_UNITS[name],
                log_scale=True,
            )
        )
    time_label = "time of day (fraction of 24 h, UTC)"
    if alignment == "span":
        time_label = "position within the set's span (0 = first flow, 1 = last)"
    figures.append(
        plot_distribution(
            align_start(real.start, alignment),
            align_start(synthetic.start, alignment),
            title="start",
            xlabel=time_label,
        )
    )
    for name in DISCRETE_COLUMNS:
        figures.append(
            plot_category_bars(
                _display(real, name), _display(synthetic, name), title=name
            )
        )
    figures.append(
        plot_heatmaps(
            correlation_matrix(_logs(real)),
            correlation_matrix(_logs(synthetic)),
            CONTINUOUS_COLUMNS,
            title="Pearson correlation of the continuous columns (log values)",
        )
    )
    return figures


def draw_acf_figures(comparisons: Mapping[str, AcfComparison]) -> list[Figure]:
    """Return one ACF figure per column of the synthetic set's comparison."""
    return [
        plot_acf(
            comparison.real,
            comparison.synthetic,
            title=f"autocorrelation of per-second {column}",
            lags=comparison.lags,
        )
        for column, comparison in comparisons.items()
    ]


def _subsample(table: FlowTable, rng: np.random.Generator) -> FlowTable:
    if len(table) <= _PLOT_ROWS:
        return table
    return table.take(np.sort(rng.choice(len(table), _PLOT_ROWS, replace=False)))


def _logs(table: FlowTable) -> Array:
    return np.column_stack([signed_log(getattr(table, n)) for n in CONTINUOUS_COLUMNS])


def _display(table: FlowTable, name: str) -> Array:
    """Return a discrete column as the text people read: TCP, .AP.SF, 443."""
    column = getattr(table, name)
    if name == "proto":
        return np.array([PROTO_NAMES.get(int(p), str(int(p))) for p in column])
    if name == "tcp_flags":
        distinct, inverse = np.unique(column, return_inverse=True)
        text = np.array([format_tcp_flags(int(f)) for f in distinct])
        return text[inverse.reshape(-1)]
    return np.asarray(column).astype(str)
