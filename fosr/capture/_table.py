"""Decoded packets as a table of numpy columns, and what reading them found."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


@dataclass
class ReadStats:
    """What a read found besides the packets: counts of frames and skips.

    ``skipped`` maps a reason ("ethertype 0x0806 (ARP)", "IPv4 protocol 2
    (IGMP)", "link type 127", "frame shorter than its headers", ...) to the
    number of frames skipped for it; ``frames == decoded + sum(skipped)``.
    ``truncated`` lists (path, byte offset of the incomplete record or block)
    for every file that ends mid-record; ``bad_files`` lists (path, what was
    wrong) for every file skipped under ``skip_bad``.
    """

    frames: int = 0
    decoded: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    link_types: dict[int, int] = field(default_factory=dict)  # link type -> frames
    truncated: list[tuple[str, int]] = field(default_factory=list)
    bad_files: list[tuple[str, str]] = field(default_factory=list)
    bytes_read: int = 0


@dataclass(frozen=True, eq=False)
class PacketTable:
    """Decoded IP packets, one row per packet, columns as numpy arrays, in file order.

    Only IPv4 and IPv6 packets carrying TCP, UDP, ICMP (over IPv4) or ICMPv6
    (over IPv6) become rows; ``stats.skipped`` counts the other frames.

    Columns and their dtypes:

    - ``file_index``: uint16, index into ``paths``;
    - ``frame``: uint32, 0-based index of the frame in its file, counting
      every frame, skipped ones too;
    - ``ts_ns``: int64, Unix time in nanoseconds;
    - ``wire_len``: uint32, original length of the frame, link layer included;
    - ``vlan``: int32, outermost VLAN id, -1 when untagged;
    - ``ip_version``: uint8, 4 or 6;
    - ``src``, ``dst``: (N, 16) uint8, IPv6 addresses, IPv4 ones as
      IPv4-mapped ``::ffff:a.b.c.d`` (``ip_version`` tells a mapped address in
      an IPv6 header apart);
    - ``proto``: uint8, 6, 17, 1 or 58, for IPv6 the protocol after the
      extension headers;
    - ``ip_len``: uint32, IP bytes as declared: IPv4 total length, IPv6 40 +
      payload length.  When the header says 0 (TCP segmentation offload, or
      an IPv6 jumbogram) it is the frame's original length minus the link
      header;
    - ``ip_hdr_len``: uint16, IPv4 header with options; IPv6 40 + extension
      headers;
    - ``ttl``: uint8, TTL or hop limit;
    - ``tos``: uint8, TOS or traffic class;
    - ``ip_id``: uint32, IPv4 identification or IPv6 flow label;
    - ``df``: bool, IPv4 don't-fragment flag (False for IPv6);
    - ``sport``, ``dport``: uint16 ports; ICMP and ICMPv6 type and code;
    - ``icmp_id``: uint16, identifier of ICMP echo request and reply (types 8
      and 0; ICMPv6 128 and 129), 0 otherwise;
    - ``tcp_flags``: uint16, the 9 flag bits, NS as 0x100 (0 for non-TCP);
    - ``tcp_seq``, ``tcp_ack``: uint32 (0 for non-TCP);
    - ``tcp_window``: uint16, raw, unscaled;
    - ``tcp_hdr_len``: uint8, transport header length in bytes: the TCP data
      offset times 4, and 8 for UDP, ICMP and ICMPv6 (the fixed part of their
      headers: ICMP echo data, or the quoted packet of an error, is payload);
    - ``tcp_mss``: uint16, 0 when absent;
    - ``tcp_wscale``: int8, -1 when absent, shift counts above 14 read as 14;
    - ``tcp_sack_perm``, ``tcp_has_ts``: bool;
    - ``tcp_ts_val``, ``tcp_ts_ecr``: uint32, 0 when absent;
    - ``tcp_opt_kinds``: object array of bytes, the option kinds in order,
      NOP and EOL included (``b"\\x02\\x04\\x08\\x01\\x03"`` for Linux's SYN),
      ``b""`` when there are none; equal values are one shared object;
    - ``payload_len``: uint32, transport payload length by the IP length
      fields, not limited by the snap length;
    - ``payload_off``: int64, offset of the payload in ``data``;
    - ``payload_caplen``: uint32, payload bytes actually captured.

    ``data`` holds the bytes of the files read, back to back (and some
    padding), when the read kept them; ``payload_off`` indexes it.
    """

    paths: tuple[str, ...]
    file_index: Array
    frame: Array
    ts_ns: Array
    wire_len: Array
    vlan: Array
    ip_version: Array
    src: Array
    dst: Array
    proto: Array
    ip_len: Array
    ip_hdr_len: Array
    ttl: Array
    tos: Array
    ip_id: Array
    df: Array
    sport: Array
    dport: Array
    icmp_id: Array
    tcp_flags: Array
    tcp_seq: Array
    tcp_ack: Array
    tcp_window: Array
    tcp_hdr_len: Array
    tcp_mss: Array
    tcp_wscale: Array
    tcp_sack_perm: Array
    tcp_ts_val: Array
    tcp_ts_ecr: Array
    tcp_has_ts: Array
    tcp_opt_kinds: Array
    payload_len: Array
    payload_off: Array
    payload_caplen: Array
    data: Array | None
    stats: ReadStats

    def __post_init__(self) -> None:
        n = len(self.file_index)
        for name, dtype in PACKET_DTYPES.items():
            column = getattr(self, name)
            if not isinstance(column, np.ndarray) or column.dtype != dtype:
                raise ValueError(f"column {name!r} is not a numpy {dtype} array")
            if len(column) != n:
                raise ValueError(
                    f"column {name!r} has {len(column)} rows, 'file_index' has {n}"
                )
        for name in ("src", "dst"):
            if getattr(self, name).shape[1:] != (16,):
                raise ValueError(f"column {name!r} must have shape (N, 16)")

    def __len__(self) -> int:
        return len(self.file_index)

    @classmethod
    def empty(
        cls, paths: tuple[str, ...] = (), stats: ReadStats | None = None
    ) -> PacketTable:
        """Return a table with no rows."""
        columns: dict[str, Any] = {
            name: np.zeros(0, dtype=dtype) for name, dtype in PACKET_DTYPES.items()
        }
        columns["src"] = np.zeros((0, 16), dtype=np.uint8)
        columns["dst"] = np.zeros((0, 16), dtype=np.uint8)
        return cls(paths=paths, data=None, stats=stats or ReadStats(), **columns)

    def payload(self, i: int) -> bytes:
        """Return the captured payload bytes of row ``i``.

        Raises ValueError when the table was read without keep_payload.
        """
        if self.data is None:
            raise ValueError("payload bytes were not kept; read with keep_payload=True")
        start = int(self.payload_off[i])
        return self.data[start : start + int(self.payload_caplen[i])].tobytes()

    def take(self, index: Any) -> PacketTable:
        """Return the rows at ``index`` (an integer array, a boolean mask or a slice).

        The result shares ``paths``, ``data`` and ``stats`` with this table.
        """
        return replace(
            self, **{name: getattr(self, name)[index] for name in PACKET_DTYPES}
        )

    def columns(self) -> dict[str, Array]:
        """Return the columns as a name-to-array dict, in the canonical order."""
        return {name: getattr(self, name) for name in PACKET_DTYPES}


PACKET_DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(dtype)
    for name, dtype in [
        ("file_index", np.uint16),
        ("frame", np.uint32),
        ("ts_ns", np.int64),
        ("wire_len", np.uint32),
        ("vlan", np.int32),
        ("ip_version", np.uint8),
        ("src", np.uint8),  # (N, 16)
        ("dst", np.uint8),  # (N, 16)
        ("proto", np.uint8),
        ("ip_len", np.uint32),
        ("ip_hdr_len", np.uint16),
        ("ttl", np.uint8),
        ("tos", np.uint8),
        ("ip_id", np.uint32),
        ("df", bool),
        ("sport", np.uint16),
        ("dport", np.uint16),
        ("icmp_id", np.uint16),
        ("tcp_flags", np.uint16),
        ("tcp_seq", np.uint32),
        ("tcp_ack", np.uint32),
        ("tcp_window", np.uint16),
        ("tcp_hdr_len", np.uint8),
        ("tcp_mss", np.uint16),
        ("tcp_wscale", np.int8),
        ("tcp_sack_perm", bool),
        ("tcp_ts_val", np.uint32),
        ("tcp_ts_ecr", np.uint32),
        ("tcp_has_ts", bool),
        ("tcp_opt_kinds", object),
        ("payload_len", np.uint32),
        ("payload_off", np.int64),
        ("payload_caplen", np.uint32),
    ]
}
PACKET_COLUMNS: tuple[str, ...] = tuple(PACKET_DTYPES)

_V4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"


def format_address(addr16: Any) -> str:
    """Write one 16-byte address: dotted quad when IPv4-mapped, else IPv6.

    Raises ValueError unless ``addr16`` holds exactly 16 bytes.
    """
    raw = bytes(np.asarray(addr16, dtype=np.uint8).ravel())
    if len(raw) != 16:
        raise ValueError(f"an address has 16 bytes, not {len(raw)}")
    if raw[:12] == _V4_MAPPED_PREFIX:
        return str(ipaddress.IPv4Address(raw[12:]))
    return ipaddress.IPv6Address(raw).compressed


def format_addresses(addrs: Array) -> Array:
    """Write an (N, 16) array of addresses; return an object array of str.

    Each distinct address is formatted once.
    """
    addrs = np.ascontiguousarray(addrs, dtype=np.uint8)
    if addrs.ndim != 2 or addrs.shape[1] != 16:
        raise ValueError(f"addresses must be an (N, 16) array, not {addrs.shape}")
    keys = addrs.view(np.dtype((np.void, 16))).ravel()
    unique, inverse = np.unique(keys, return_inverse=True)
    texts = np.empty(len(unique), dtype=object)
    texts[:] = [
        format_address(np.frombuffer(key.tobytes(), np.uint8)) for key in unique
    ]
    return texts[inverse.ravel()]
