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

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.flows._columnar import ColumnTable

__all__ = ["ONEWAY_COLUMNS", "OneWayTable"]

Array = npt.NDArray[Any]


@dataclass(frozen=True, eq=False)
class OneWayTable(ColumnTable):
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
OneWayTable.DTYPES = _DTYPES
OneWayTable.DEFAULTS = {"tos": 0}
