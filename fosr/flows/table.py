"""Bidirectional flow records as a table of numpy columns.

A flow is one connection seen from both sides.  The *client* is the side that
opened it (the SYN sender for TCP, the first sender or the side on the
ephemeral port for UDP, the echo requester for ICMP) and *forward* means
client to server.  Bytes count IP bytes (header and payload, no link layer),
as NetFlow exporters such as nfdump do.

For ICMP the port columns hold the message type (client port) and code
(server port), as Zeek's ``conn.log`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "FLOW_COLUMNS",
    "PROTO_NAMES",
    "PROTO_NUMBERS",
    "TCP_FLAG_BITS",
    "FlowTable",
    "format_tcp_flags",
    "parse_tcp_flags",
]

PROTO_NAMES: dict[int, str] = {
    1: "ICMP",
    2: "IGMP",
    6: "TCP",
    17: "UDP",
    47: "GRE",
    50: "ESP",
    58: "ICMPv6",
    132: "SCTP",
}
PROTO_NUMBERS: dict[str, int] = {name.upper(): n for n, name in PROTO_NAMES.items()}
PROTO_NUMBERS["ICMP6"] = 58
PROTO_NUMBERS["IPV6-ICMP"] = 58

# TCP flag bits as in the header's flags octet (RFC 9293 and RFC 3168).
TCP_FLAG_BITS: dict[str, int] = {
    "F": 0x01,
    "S": 0x02,
    "R": 0x04,
    "P": 0x08,
    "A": 0x10,
    "U": 0x20,
    "E": 0x40,
    "C": 0x80,
}
# nfdump prints six positions, most significant first, and two more for
# ECE and CWR when either is set.
_NFDUMP_ORDER = "UAPRSF"
_NFDUMP_ORDER_ECN = "CEUAPRSF"


def format_tcp_flags(bits: int) -> str:
    """Render a flag bit mask in nfdump's positional style, e.g. ``.AP.SF``."""
    order = _NFDUMP_ORDER_ECN if bits & 0xC0 else _NFDUMP_ORDER
    return "".join(c if bits & TCP_FLAG_BITS[c] else "." for c in order)


def parse_tcp_flags(text: str) -> int:
    """Parse flags written positionally (``.AP.SF``) or as letters (``SA``).

    Raises ValueError on a character that is no flag letter and no dot.
    """
    bits = 0
    for char in text.strip().upper():
        if char == ".":
            continue
        try:
            bits |= TCP_FLAG_BITS[char]
        except KeyError:
            raise ValueError(f"not a TCP flag: {char!r} in {text!r}") from None
    return bits


Array = npt.NDArray[Any]


@dataclass(frozen=True, eq=False)
class FlowTable:
    """Bidirectional flows, one row per flow, each column a numpy array.

    Columns and their dtypes:

    - ``start``: float64, Unix time of the first packet, seconds;
    - ``duration``: float64, seconds from first to last packet;
    - ``proto``: uint8, IP protocol number;
    - ``client``, ``server``: object arrays of str, addresses as written
      (anonymised tokens such as CIDDS-001's ``16972_85`` are kept);
    - ``client_port``, ``server_port``: int32 (ICMP: type and code);
    - ``fwd_packets``, ``fwd_bytes``, ``bwd_packets``, ``bwd_bytes``: int64;
    - ``tcp_flags``: uint16, union of the TCP flags seen in both directions;
    - ``state``: object array of str, the Zeek connection state (``S0``,
      ``SF``, ``REJ``, ``RSTO``, ...), empty when the source cannot tell.
    """

    start: Array
    duration: Array
    proto: Array
    client: Array
    client_port: Array
    server: Array
    server_port: Array
    fwd_packets: Array
    fwd_bytes: Array
    bwd_packets: Array
    bwd_bytes: Array
    tcp_flags: Array
    state: Array

    def __post_init__(self) -> None:
        n = len(self.start)
        for f in fields(self):
            column = getattr(self, f.name)
            dtype = _DTYPES[f.name]
            if not isinstance(column, np.ndarray) or column.dtype != dtype:
                object.__setattr__(self, f.name, np.asarray(column, dtype=dtype))
            if len(getattr(self, f.name)) != n:
                raise ValueError(
                    f"column {f.name!r} has {len(column)} rows, 'start' has {n}"
                )

    def __len__(self) -> int:
        return len(self.start)

    @classmethod
    def empty(cls) -> FlowTable:
        """Return a table with no rows."""
        return cls(**{name: np.empty(0, dtype=_DTYPES[name]) for name in _DTYPES})

    @classmethod
    def from_columns(cls, columns: Mapping[str, Sequence[Any] | Array]) -> FlowTable:
        """Build a table from a mapping of column name to values.

        Raises ValueError if a column is missing or unknown.
        """
        missing = set(FLOW_COLUMNS) - set(columns)
        extra = set(columns) - set(FLOW_COLUMNS)
        if missing or extra:
            raise ValueError(
                f"columns missing {sorted(missing)}, unknown {sorted(extra)}"
            )
        return cls(
            **{
                name: np.asarray(columns[name], dtype=_DTYPES[name])
                for name in FLOW_COLUMNS
            }
        )

    @classmethod
    def concat(cls, tables: Sequence[FlowTable]) -> FlowTable:
        """Stack tables row-wise, in the order given."""
        if not tables:
            return cls.empty()
        return cls(
            **{
                name: np.concatenate([getattr(t, name) for t in tables])
                for name in FLOW_COLUMNS
            }
        )

    def take(self, index: Array) -> FlowTable:
        """Return the rows at ``index`` (an integer or boolean array)."""
        return FlowTable(**{name: getattr(self, name)[index] for name in FLOW_COLUMNS})

    def sorted_by_start(self) -> FlowTable:
        """Return the rows ordered by start time (stable)."""
        return self.take(np.argsort(self.start, kind="stable"))

    def columns(self) -> dict[str, Array]:
        """Return the columns as a name-to-array dict, in the canonical order."""
        return {name: getattr(self, name) for name in FLOW_COLUMNS}


_DTYPES: dict[str, npt.DTypeLike] = {
    "start": np.float64,
    "duration": np.float64,
    "proto": np.uint8,
    "client": object,
    "client_port": np.int32,
    "server": object,
    "server_port": np.int32,
    "fwd_packets": np.int64,
    "fwd_bytes": np.int64,
    "bwd_packets": np.int64,
    "bwd_bytes": np.int64,
    "tcp_flags": np.uint16,
    "state": object,
}
FLOW_COLUMNS: tuple[str, ...] = tuple(_DTYPES)
