"""One-way flow records as a table of numpy columns.

A one-way record summarises the packets sent from one endpoint to another,
as NetFlow exporters such as nfdump write them and as CIDDS-001 and UGR'16
publish them.  Pairing (:mod:`fosr.flows.pairing`) turns these records into
bidirectional flows.

For ICMP and ICMPv6 the port columns hold the message type (``src_port``)
and code (``dst_port``), the convention of :class:`~fosr.flows.FlowTable` and
of Zeek.  nfdump writes ``8.0`` or ``2048`` in the destination port column
for an echo request; the readers decode both forms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ONEWAY_COLUMNS", "OneWayTable"]

Array = npt.NDArray[Any]


@dataclass(frozen=True, eq=False)
class OneWayTable:
    """One-way flow records, one row per record, each column a numpy array.

    Columns and their dtypes:

    - ``start``: float64, Unix time of the first packet, seconds;
    - ``duration``: float64, seconds from first to last packet;
    - ``proto``: uint8, IP protocol number;
    - ``src``, ``dst``: object arrays of str, addresses as written
      (anonymised tokens such as CIDDS-001's ``16972_85`` are kept);
    - ``src_port``, ``dst_port``: int32 (ICMP: type and code);
    - ``packets``, ``bytes``: int64, bytes being IP bytes;
    - ``tcp_flags``: uint16, union of the TCP flags of the record;
    - ``tos``: uint8, IP type of service of the first packet (0 if unknown).

    Raises ValueError when the columns differ in length.
    """

    start: Array
    duration: Array
    proto: Array
    src: Array
    src_port: Array
    dst: Array
    dst_port: Array
    packets: Array
    bytes: Array
    tcp_flags: Array
    tos: Array

    def __post_init__(self) -> None:
        n = len(self.start)
        for f in fields(self):
            column = getattr(self, f.name)
            dtype = _DTYPES[f.name]
            if not isinstance(column, np.ndarray) or column.dtype != dtype:
                column = np.asarray(column, dtype=dtype)
                object.__setattr__(self, f.name, column)
            if len(column) != n:
                raise ValueError(
                    f"column {f.name!r} has {len(column)} rows, 'start' has {n}"
                )

    def __len__(self) -> int:
        return len(self.start)

    @classmethod
    def empty(cls) -> OneWayTable:
        """Return a table with no rows."""
        return cls(**{name: np.empty(0, dtype=_DTYPES[name]) for name in _DTYPES})

    @classmethod
    def from_columns(cls, columns: Mapping[str, Sequence[Any] | Array]) -> OneWayTable:
        """Build a table from a mapping of column name to values.

        ``tos`` may be left out and defaults to 0.  Raises ValueError if
        another column is missing or a column is unknown.
        """
        given = dict(columns)
        if "tos" not in given and "start" in given:
            given["tos"] = np.zeros(len(given["start"]), dtype=np.uint8)
        missing = set(ONEWAY_COLUMNS) - set(given)
        extra = set(given) - set(ONEWAY_COLUMNS)
        if missing or extra:
            raise ValueError(
                f"columns missing {sorted(missing)}, unknown {sorted(extra)}"
            )
        return cls(
            **{
                name: np.asarray(given[name], dtype=_DTYPES[name])
                for name in ONEWAY_COLUMNS
            }
        )

    @classmethod
    def concat(cls, tables: Sequence[OneWayTable]) -> OneWayTable:
        """Stack tables row-wise, in the order given."""
        if not tables:
            return cls.empty()
        return cls(
            **{
                name: np.concatenate([getattr(t, name) for t in tables])
                for name in ONEWAY_COLUMNS
            }
        )

    def take(self, index: Array) -> OneWayTable:
        """Return the rows at ``index`` (an integer or boolean array)."""
        return OneWayTable(
            **{name: getattr(self, name)[index] for name in ONEWAY_COLUMNS}
        )

    def sorted_by_start(self) -> OneWayTable:
        """Return the rows ordered by start time (stable)."""
        return self.take(np.argsort(self.start, kind="stable"))

    def columns(self) -> dict[str, Array]:
        """Return the columns as a name-to-array dict, in the canonical order."""
        return {name: getattr(self, name) for name in ONEWAY_COLUMNS}


_DTYPES: dict[str, npt.DTypeLike] = {
    "start": np.float64,
    "duration": np.float64,
    "proto": np.uint8,
    "src": object,
    "src_port": np.int32,
    "dst": object,
    "dst_port": np.int32,
    "packets": np.int64,
    "bytes": np.int64,
    "tcp_flags": np.uint16,
    "tos": np.uint8,
}
ONEWAY_COLUMNS: tuple[str, ...] = tuple(_DTYPES)
