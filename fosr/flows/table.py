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

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.flows._columnar import ColumnTable

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
class FlowTable(ColumnTable):
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
FlowTable.DTYPES = _DTYPES
