"""The columns flows are judged on, encoded once and shared by every metric.

The columns are the ten of FlowChronicle's evaluation (METHODS.md §2), in
our names, plus the start time:

- continuous: ``duration``, ``fwd_bytes``, ``bwd_bytes``, ``fwd_packets``,
  ``bwd_packets`` (the paper's Duration, In/Out Byte, In/Out Packet);
- discrete: ``proto``, ``client``, ``server``, ``server_port``,
  ``tcp_flags`` (Proto, Src IP, Dst IP, Dst Pt, Flags).

Every set taking part in one evaluation is encoded together: each discrete
column gets one vocabulary (its distinct values over all the sets, sorted)
and rows hold indices into it, so that equal values have equal codes in
every set.  Continuous values are kept as given and also as
``sign(v) * log(1 + |v|)``: bytes, packets and durations span six orders of
magnitude, and on a linear scale a single large flow would squeeze all the
others into one corner of every distance and histogram.

Time alignment.  The sets compared cover different periods (CIDDS-001's
training week days against the two days after; UGR'16's morning against
its early afternoon; a generator's output covers whatever period it was run
for), so absolute start times never overlap.  Density, coverage and MD use
the start time as the paper does, after mapping it to [0, 1):

- ``"day"``: the time of day (UTC), as a fraction of 24 h.  Comparable
  between sets of any length and it is what a generator driven by a
  time-of-day rate profile reproduces (METHODS.md §1.7);
- ``"span"``: the position within the set's own span, (start - first) /
  (last - first).  Used when the real sets cover less than a day, where
  times of day would not overlap at all (UGR'16's 08:00-12:00 against
  12:00-14:00) and would judge the period recorded rather than the traffic;
- ``"auto"`` (the default): ``"day"`` when every real set (the real one
  and, if given, the training one) spans at least 24 h, else ``"span"``.
  The synthetic set does not take part in the choice: it is judged on the
  real data's terms.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.errors import InputError
from fosr.flows.table import FlowTable

__all__ = [
    "CONTINUOUS_COLUMNS",
    "DISCRETE_COLUMNS",
    "TIME_ALIGNMENTS",
    "EncodedFlows",
    "Vocabulary",
    "align_start",
    "check_flows",
    "choose_time_alignment",
    "draw_rows",
    "encode_flows",
    "signed_log",
]

Array = npt.NDArray[Any]

CONTINUOUS_COLUMNS: tuple[str, ...] = (
    "duration",
    "fwd_bytes",
    "bwd_bytes",
    "fwd_packets",
    "bwd_packets",
)
DISCRETE_COLUMNS: tuple[str, ...] = (
    "proto",
    "client",
    "server",
    "server_port",
    "tcp_flags",
)
TIME_ALIGNMENTS: tuple[str, ...] = ("auto", "day", "span")

# positions of the discrete columns in EncodedFlows.codes
PROTO, CLIENT, SERVER, PORT, FLAGS = range(5)
# positions of the continuous columns in EncodedFlows.values
DURATION, FWD_BYTES, BWD_BYTES, FWD_PACKETS, BWD_PACKETS = range(5)

_DAY_S = 86_400.0


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """The distinct values of each discrete column, sorted; codes index them."""

    values: tuple[Array, ...]

    def size(self, column: int) -> int:
        """Return the number of distinct values of discrete column ``column``."""
        return len(self.values[column])


@dataclass(frozen=True, eq=False)
class EncodedFlows:
    """One set of flows in the evaluation's columns.

    - ``start``: float64, Unix time of each flow, seconds;
    - ``time``: float64 in [0, 1), the start aligned (module docstring);
    - ``values``: float64 (n, 5), the continuous columns as recorded;
    - ``logs``: float64 (n, 5), :func:`signed_log` of ``values``;
    - ``codes``: int64 (n, 5), the discrete columns as vocabulary indices;
    - ``ids``: int64, the row of the source set each row was taken from,
      so that copies made by resampling can be told apart from flows that
      merely look alike.
    """

    start: Array
    time: Array
    values: Array
    logs: Array
    codes: Array
    ids: Array

    def __len__(self) -> int:
        return len(self.start)

    def take(self, index: Array) -> EncodedFlows:
        """Return the rows at ``index`` (ids follow the rows)."""
        return EncodedFlows(
            start=self.start[index],
            time=self.time[index],
            values=self.values[index],
            logs=self.logs[index],
            codes=self.codes[index],
            ids=self.ids[index],
        )


def signed_log(values: Array) -> Array:
    """Return ``sign(v) * log(1 + |v|)``: log-like, defined for every real v."""
    values = np.asarray(values, dtype=np.float64)
    return np.sign(values) * np.log1p(np.abs(values))


def choose_time_alignment(requested: str, real_sets: Sequence[FlowTable]) -> str:
    """Resolve ``"auto"`` to ``"day"`` or ``"span"`` from the real sets' spans.

    Raises ValueError for an unknown alignment.
    """
    if requested not in TIME_ALIGNMENTS:
        raise ValueError(
            f"unknown time alignment {requested!r}; known: {TIME_ALIGNMENTS}"
        )
    if requested != "auto":
        return requested
    spans_s = [float(t.start.max() - t.start.min()) for t in real_sets if len(t)]
    return "day" if spans_s and min(spans_s) >= _DAY_S else "span"


def align_start(start: Array, alignment: str) -> Array:
    """Map Unix start times to [0, 1) by ``"day"`` or ``"span"`` alignment."""
    start = np.asarray(start, dtype=np.float64)
    if alignment == "day":
        return np.mod(start, _DAY_S) / _DAY_S
    if alignment != "span":
        raise ValueError(f"unknown time alignment {alignment!r}")
    if not len(start):
        return start.copy()
    first, span_s = start.min(), float(start.max() - start.min())
    if span_s <= 0.0:
        return np.zeros_like(start)
    # keep the last flow inside [0, 1) like the time of day does
    aligned: Array = np.minimum((start - first) / span_s, np.nextafter(1.0, 0.0))
    return aligned


def encode_flows(
    tables: Sequence[FlowTable], alignment: str
) -> tuple[list[EncodedFlows], Vocabulary]:
    """Encode tables together, with one shared vocabulary per discrete column.

    ``alignment`` is ``"day"`` or ``"span"`` (resolve ``"auto"`` first with
    :func:`choose_time_alignment`).
    """
    sizes = [len(t) for t in tables]
    bounds = np.cumsum([0, *sizes])
    vocabulary: list[Array] = []
    codes = np.empty((int(bounds[-1]), len(DISCRETE_COLUMNS)), dtype=np.int64)
    for c, name in enumerate(DISCRETE_COLUMNS):
        column = np.concatenate([getattr(t, name) for t in tables])
        if column.dtype == object:
            column = column.astype(str)
        distinct, inverse = np.unique(column, return_inverse=True)
        vocabulary.append(distinct)
        codes[:, c] = inverse.reshape(-1)

    encoded = []
    for i, table in enumerate(tables):
        values = np.column_stack(
            [getattr(table, name).astype(np.float64) for name in CONTINUOUS_COLUMNS]
        ).reshape(len(table), len(CONTINUOUS_COLUMNS))
        encoded.append(
            EncodedFlows(
                start=table.start.astype(np.float64),
                time=align_start(table.start, alignment),
                values=values,
                logs=signed_log(values),
                codes=codes[bounds[i] : bounds[i + 1]],
                ids=np.arange(len(table), dtype=np.int64),
            )
        )
    return encoded, Vocabulary(tuple(vocabulary))


def check_flows(
    table: FlowTable,
    role: str,
    *,
    min_rows: int,
    path: str | os.PathLike[str] | None = None,
) -> None:
    """Raise InputError if ``table`` cannot be judged.

    It needs at least ``min_rows`` rows, finite start times and durations,
    and addresses in at least one row of each address column.  ``role``
    ("real", "synthetic", "train") and ``path`` go into the message.
    """
    if len(table) < min_rows:
        what = "no flows" if not len(table) else f"only {len(table)} flows"
        raise InputError(
            f"{role} set has {what}; the evaluation needs at least {min_rows}",
            path=path,
        )
    for name in ("start", "duration"):
        bad = int(np.count_nonzero(~np.isfinite(getattr(table, name))))
        if bad:
            raise InputError(
                f"{role} set: column {name!r} holds {bad} values that are not "
                "finite numbers",
                path=path,
            )
    for name in ("client", "server"):
        if not np.any(getattr(table, name).astype(str) != ""):
            raise InputError(
                f"{role} set: column {name!r} is empty in every row", path=path
            )


def draw_rows(n_rows: int, sample_size: int, rng: np.random.Generator) -> Array:
    """Return ``sample_size`` row indices out of ``n_rows``.

    Without replacement when the set is large enough, with replacement
    otherwise.  Raises ValueError on an empty set.
    """
    if n_rows <= 0:
        raise ValueError("cannot draw rows from an empty set")
    replace = n_rows < sample_size
    return np.sort(rng.choice(n_rows, size=sample_size, replace=replace))
