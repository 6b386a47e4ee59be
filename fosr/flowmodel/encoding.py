"""Turn a flow table into the coded table that patterns are mined from.

How this works (METHODS.md §1.1 and §1.2, FlowChronicle's preprocessing):

- Columns.  The paper mines Proto, Src IP, Dst IP, Dst Pt, Flags, In/Out
  Byte, In/Out Packet and Duration of bidirectional flows.  Our flows name
  them ``proto``, ``client``, ``server``, ``server_port``, ``tcp_flags``,
  ``fwd_bytes``, ``bwd_bytes``, ``fwd_packets``, ``bwd_packets`` and
  ``duration``; forward is client to server, which sidesteps the reference's
  doubtful In/Out naming.  :data:`DEFAULT_COLUMNS` adds ``state`` (Zeek's
  connection state): it tells a refused or unanswered connection from a
  complete one, which flags alone blur, and the sampler must produce it
  anyway.  The client port is left out as in the paper: it is ephemeral and
  the sampler draws it.  Any other choice of :data:`MINABLE_COLUMNS` may be
  passed.
- Addresses are hosts with roles.  ``client`` and ``server`` share one
  table of hosts, so a host has the same code in both columns; this is what
  lets a placeholder bound on the client column be used on the server
  column (Src -> Dst).  They are the address columns, the only ones that may
  carry placeholders.
- Categorical columns get one code per distinct value, values sorted.
- Continuous columns: zero is bin 0, non-zero values go to about ``bins``
  equal-frequency bins (40 by default, the reference's "v2"); in packet and
  byte columns a frequent whole number gets a bin of its own, so that it
  comes back exactly; see :mod:`fosr.flowmodel.codebook` for the intervals.
- Time: the start of each flow becomes an integer tick of ``tick_s``
  seconds (10 ms by default, the reference's 1/100 s) counted from the first
  flow, whose start is kept as ``origin_s``.  Ticks are
  ``round((start - origin_s) / tick_s)``; the reference rounds both times
  before subtracting, which differs by one tick at most.

Rows stay in the order of the flow table, which must be sorted by start:
occurrence search relies on row order being time order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.errors import InputError
from fosr.flowmodel.codebook import (
    Codebook,
    ColumnKind,
    bin_codes,
    quantile_edges,
)
from fosr.flows.table import FlowTable

__all__ = [
    "ADDRESS_COLUMNS",
    "DEFAULT_BINS",
    "DEFAULT_COLUMNS",
    "DEFAULT_TICK_S",
    "MINABLE_COLUMNS",
    "CodedTable",
    "encode_flows",
]

Array = npt.NDArray[Any]

DEFAULT_COLUMNS: tuple[str, ...] = (
    "proto",
    "client",
    "server",
    "server_port",
    "tcp_flags",
    "fwd_bytes",
    "bwd_bytes",
    "fwd_packets",
    "bwd_packets",
    "duration",
    "state",
)
"""The paper's ten columns (METHODS.md §1.1) plus the connection state."""

DEFAULT_BINS = 40
"""Equal-frequency bins per continuous column, the reference's "v2" value."""

DEFAULT_TICK_S = 0.01
"""Tick length in seconds: the reference's 1/100 s."""

ADDRESS_COLUMNS = frozenset({"client", "server"})
"""Columns holding hosts: shared host codes, placeholders allowed."""

_CONTINUOUS = {
    "duration": False,
    "fwd_packets": True,
    "fwd_bytes": True,
    "bwd_packets": True,
    "bwd_bytes": True,
}
_CATEGORICAL: tuple[str, ...] = (
    "proto",
    "client",
    "client_port",
    "server",
    "server_port",
    "tcp_flags",
    "state",
)

MINABLE_COLUMNS: tuple[str, ...] = _CATEGORICAL + tuple(_CONTINUOUS)
"""Every flow column that may be mined (all but ``start``)."""


@dataclass(frozen=True, eq=False)
class CodedTable:
    """Flows as integer codes, ready for mining.

    - ``codes``: int32, C-contiguous, one row per flow and one column per
      entry of ``columns``;
    - ``ticks``: int64, start of each flow in ticks since ``origin_s``,
      ascending;
    - ``columns``: names of the mined flow columns;
    - ``codebooks``: one per column, to decode codes;
    - ``tick_s``: length of a tick in seconds;
    - ``origin_s``: Unix time in seconds of tick 0, the first flow's start.

    Raises ValueError when the shapes disagree.
    """

    codes: Array
    ticks: Array
    columns: tuple[str, ...]
    codebooks: tuple[Codebook, ...]
    tick_s: float
    origin_s: float

    def __post_init__(self) -> None:
        n_rows, n_columns = len(self.ticks), len(self.columns)
        if self.codes.shape != (n_rows, n_columns):
            raise ValueError(
                f"codes have shape {self.codes.shape}, expected ({n_rows}, {n_columns})"
            )
        if self.codes.dtype != np.int32 or not self.codes.flags.c_contiguous:
            raise ValueError("codes must be a C-contiguous int32 array")
        if len(self.codebooks) != n_columns:
            raise ValueError(f"{len(self.codebooks)} codebooks for {n_columns} columns")

    def __len__(self) -> int:
        return len(self.ticks)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Return the number of codes of each column."""
        return tuple(book.size for book in self.codebooks)

    @property
    def observed_sizes(self) -> tuple[int, ...]:
        """Return the number of codes each column holds in the training rows.

        These are the |dom c| of the MDL pattern cost (METHODS.md §1.4).
        """
        return tuple(book.n_observed for book in self.codebooks)

    @property
    def address_columns(self) -> tuple[int, ...]:
        """Return the indices of the columns that may carry placeholders."""
        return tuple(i for i, b in enumerate(self.codebooks) if b.is_address)

    @property
    def span_ticks(self) -> int:
        """Return the last tick minus the first (0 for an empty table)."""
        return int(self.ticks[-1] - self.ticks[0]) if len(self.ticks) else 0

    def column_index(self, name: str) -> int:
        """Return the position of column ``name``; ValueError if not mined."""
        try:
            return self.columns.index(name)
        except ValueError:
            raise ValueError(
                f"column {name!r} is not mined; mined: {self.columns}"
            ) from None

    def seconds(self, ticks: Array | int) -> Array:
        """Return Unix times in seconds of ``ticks``."""
        return self.origin_s + np.asarray(ticks, dtype=np.float64) * self.tick_s

    def decode_rows(self, codes: Array, rng: np.random.Generator) -> dict[str, Array]:
        """Decode a 2-D array of codes into flow columns, by column name.

        ``codes`` has one column per mined column, in table order.  Binned
        columns draw inside their intervals with ``rng`` (see
        :meth:`Codebook.decode`); the result has the dtypes of
        :class:`~fosr.flows.FlowTable`'s columns.
        """
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != len(self.columns):
            raise ValueError(
                f"codes have shape {codes.shape}, expected (n, {len(self.columns)})"
            )
        empty = FlowTable.empty()
        return {
            name: book.decode(codes[:, i], rng).astype(getattr(empty, name).dtype)
            for i, (name, book) in enumerate(
                zip(self.columns, self.codebooks, strict=True)
            )
        }


def encode_flows(
    flows: FlowTable,
    *,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    bins: int = DEFAULT_BINS,
    tick_s: float = DEFAULT_TICK_S,
) -> CodedTable:
    """Code ``flows`` (sorted by start) for mining.

    ``columns`` lists the flow columns to mine, each once, from
    :data:`MINABLE_COLUMNS`; ``bins`` (at least 1) caps the bins of a
    continuous column; ``tick_s`` (positive) is the tick length in seconds.

    Raises ValueError on a bad argument or flows not sorted by start,
    InputError when a continuous column holds a negative or NaN value.
    """
    _check_arguments(flows, columns, bins, tick_s)
    hosts = _encode_hosts(flows, [c for c in columns if c in ADDRESS_COLUMNS])

    # one coded column and one codebook per mined column
    codes = np.empty((len(flows), len(columns)), dtype=np.int32)
    books = []
    for i, name in enumerate(columns):
        if name in hosts:
            column, book = hosts[name]
        elif name in _CONTINUOUS:
            column, book = _encode_continuous(flows, name, bins)
        else:
            column, book = _encode_categorical(getattr(flows, name), name)
        codes[:, i] = column
        books.append(book)

    origin_s = float(flows.start[0]) if len(flows) else 0.0
    ticks = np.rint((flows.start - origin_s) / tick_s).astype(np.int64)
    return CodedTable(
        codes=codes,
        ticks=ticks,
        columns=tuple(columns),
        codebooks=tuple(books),
        tick_s=float(tick_s),
        origin_s=origin_s,
    )


def _check_arguments(
    flows: FlowTable, columns: Sequence[str], bins: int, tick_s: float
) -> None:
    unknown = [c for c in columns if c not in MINABLE_COLUMNS]
    if unknown:
        raise ValueError(f"cannot mine {unknown}; minable: {MINABLE_COLUMNS}")
    if len(set(columns)) != len(columns) or not columns:
        raise ValueError(f"columns must be distinct and not empty: {columns}")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if not tick_s > 0:
        raise ValueError(f"tick_s must be positive, got {tick_s}")
    if np.any(np.diff(flows.start) < 0):
        raise ValueError("flows must be sorted by start; use sorted_by_start()")


def _encode_hosts(
    flows: FlowTable, names: Sequence[str]
) -> dict[str, tuple[Array, Codebook]]:
    """Code the address columns against one shared table of hosts."""
    if not names:
        return {}
    stacked = np.concatenate([getattr(flows, name) for name in names])
    codes, hosts = _factorize(stacked)
    coded = {}
    for i, name in enumerate(names):
        column = codes[i * len(flows) : (i + 1) * len(flows)]
        book = _categorical_book(name, hosts, column, is_address=True)
        coded[name] = (column, book)
    return coded


def _encode_categorical(values: Array, name: str) -> tuple[Array, Codebook]:
    if values.dtype == object:
        codes, table = _factorize(values)
    else:
        table, inverse = np.unique(values, return_inverse=True)
        codes = inverse.astype(np.int32)
    return codes, _categorical_book(name, table, codes, is_address=False)


def _categorical_book(
    name: str, values: Array, codes: Array, *, is_address: bool
) -> Codebook:
    return Codebook(
        name=name,
        kind=ColumnKind.CATEGORICAL,
        is_address=is_address,
        values=values,
        edges=np.empty(0, dtype=np.float64),
        is_integer=False,
        counts=np.bincount(codes, minlength=len(values)).astype(np.int64),
    )


def _encode_continuous(
    flows: FlowTable, name: str, bins: int
) -> tuple[Array, Codebook]:
    values = np.asarray(getattr(flows, name), dtype=np.float64)
    bad = np.isnan(values) | (values < 0)
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(
            f"column {name!r} holds {values[row]!r}; it must be >= 0",
            where=f"row {row}",
        )
    edges = quantile_edges(values, bins, integer=_CONTINUOUS[name])
    codes = bin_codes(values, edges)
    book = Codebook(
        name=name,
        kind=ColumnKind.CONTINUOUS,
        is_address=False,
        values=np.empty(0, dtype=object),
        edges=edges,
        is_integer=_CONTINUOUS[name],
        counts=np.bincount(codes, minlength=max(len(edges), 1)).astype(np.int64),
    )
    return codes, book


def _factorize(values: Array) -> tuple[Array, Array]:
    """Return int32 codes and the sorted distinct values of an object array.

    Dicts do the work at C speed: ``np.unique`` compares Python strings
    while sorting all rows, about ten times slower on a few hundred
    thousand addresses; here only the distinct values are sorted.
    """
    rows = values.tolist()
    distinct = sorted(dict.fromkeys(rows))
    lookup = {value: code for code, value in enumerate(distinct)}
    codes = np.fromiter(map(lookup.__getitem__, rows), dtype=np.int32, count=len(rows))
    table = np.empty(len(distinct), dtype=object)
    table[:] = distinct
    return codes, table
