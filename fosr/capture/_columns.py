"""Read the columns of the frames that decoded into rows.

The stages in ``_decode`` found where each row's headers start and how long
they are; this pass copies the fields out, one gather per header type, and
leaves the TCP options to ``_tcp_options``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.capture import _headers as h
from fosr.capture._batch import Batch
from fosr.capture._formats import Frames
from fosr.capture._headers import gather
from fosr.capture._tcp_options import parse_tcp_options

Array = npt.NDArray[Any]


def build_columns(batch: Batch, rows: Array, frames: Frames) -> dict[str, Array]:
    """Read the columns of the rows that passed every stage."""
    l3, end = batch.l3[rows], batch.end[rows]
    version, proto = batch.version[rows], batch.proto[rows]
    ip_len, ip_hdr_len = batch.ip_len[rows], batch.ip_hdr_len[rows]
    l4_len = batch.l4_hdr_len[rows]
    l4 = l3 + ip_hdr_len
    payload_off = l4 + l4_len
    columns = {
        "file_index": frames.file_index[rows],
        "frame": frames.frame[rows],
        "ts_ns": frames.ts_ns[rows],
        "wire_len": frames.wire_len[rows].astype(np.uint32),
        "vlan": batch.vlan[rows],
        "ip_version": version,
        "proto": proto,
        "ip_len": ip_len.astype(np.uint32),
        "ip_hdr_len": ip_hdr_len.astype(np.uint16),
        **_network_columns(batch.buf, l3, version),
        **_transport_columns(batch.buf, l4, proto, l4_len),
        "payload_len": (ip_len - ip_hdr_len - l4_len).astype(np.uint32),
        "payload_off": payload_off,
        # Ethernet pads short frames: the IP length bounds the payload too
        "payload_caplen": np.clip(
            np.minimum(end, l3 + ip_len) - payload_off, 0, None
        ).astype(np.uint32),
    }
    return columns


def _network_columns(buf: Array, l3: Array, version: Array) -> dict[str, Array]:
    k = len(l3)
    src = np.zeros((k, 16), dtype=np.uint8)
    dst = np.zeros((k, 16), dtype=np.uint8)
    ttl = np.zeros(k, dtype=np.uint8)
    tos = np.zeros(k, dtype=np.uint8)
    ip_id = np.zeros(k, dtype=np.uint32)
    df = np.zeros(k, dtype=bool)

    # IPv4 addresses become IPv4-mapped IPv6 addresses, ::ffff:a.b.c.d
    v4 = _rows_where(version == 4)
    if len(l3[v4]):
        header = gather(buf, l3[v4], h.IPV4)
        src[v4, 10:12] = dst[v4, 10:12] = 0xFF
        src[v4, 12:] = header["src"]
        dst[v4, 12:] = header["dst"]
        ttl[v4] = header["ttl"]
        tos[v4] = header["tos"]
        ip_id[v4] = header["id"]
        df[v4] = (header["frag"] & 0x4000) != 0

    v6 = _rows_where(version == 6)
    if len(l3[v6]):
        header = gather(buf, l3[v6], h.IPV6)
        src[v6] = header["src"]
        dst[v6] = header["dst"]
        ttl[v6] = header["hlim"]
        tos[v6] = (header["vtcfl"] >> 20) & 0xFF
        ip_id[v6] = header["vtcfl"] & 0xFFFFF
    return {"src": src, "dst": dst, "ttl": ttl, "tos": tos, "ip_id": ip_id, "df": df}


def _rows_where(mask: Array) -> Array | slice:
    """Return the rows where ``mask`` holds, as a slice when that is all.

    Assigning to all rows of a 2-D column through a slice is several times
    faster than through an index array, and most batches are all IPv4.
    """
    return slice(None) if mask.all() else np.flatnonzero(mask)


def _transport_columns(
    buf: Array, l4: Array, proto: Array, l4_len: Array
) -> dict[str, Array]:
    k = len(l4)
    is_tcp = proto == h.IPPROTO_TCP
    zeros32 = np.zeros(k, dtype=np.uint32)

    # TCP and UDP share the port layout; ICMP puts type and code there
    tcp = gather(buf, l4, h.TCP)
    sport = tcp["sport"].astype(np.uint16)
    dport = tcp["dport"].astype(np.uint16)
    icmp_id = np.zeros(k, dtype=np.uint16)
    is_icmp = np.flatnonzero((proto == h.IPPROTO_ICMP) | (proto == h.IPPROTO_ICMPV6))
    if is_icmp.size:
        icmp = gather(buf, l4[is_icmp], h.ICMP)
        sport[is_icmp] = icmp["type"]
        dport[is_icmp] = icmp["code"]
        # echo request and reply: types 8 and 0, ICMPv6 128 and 129
        is_echo = np.where(
            proto[is_icmp] == h.IPPROTO_ICMP,
            np.isin(icmp["type"], (0, 8)),
            np.isin(icmp["type"], (128, 129)),
        )
        icmp_id[is_icmp[is_echo]] = icmp["id"][is_echo]

    flags = ((tcp["off"].astype(np.uint16) & 1) << 8) | tcp["flags"]
    columns: dict[str, Array] = {
        "sport": sport,
        "dport": dport,
        "icmp_id": icmp_id,
        "tcp_flags": np.where(is_tcp, flags, 0).astype(np.uint16),
        "tcp_seq": np.where(is_tcp, tcp["seq"], zeros32).astype(np.uint32),
        "tcp_ack": np.where(is_tcp, tcp["ack"], zeros32).astype(np.uint32),
        "tcp_window": np.where(is_tcp, tcp["win"], 0).astype(np.uint16),
        "tcp_hdr_len": l4_len.astype(np.uint8),
        **_option_columns(buf, l4, is_tcp, l4_len),
    }
    return columns


def _option_columns(
    buf: Array, l4: Array, is_tcp: Array, l4_len: Array
) -> dict[str, Array]:
    k = len(l4)
    columns: dict[str, Array] = {
        "tcp_mss": np.zeros(k, dtype=np.uint16),
        "tcp_wscale": np.full(k, -1, dtype=np.int8),
        "tcp_sack_perm": np.zeros(k, dtype=bool),
        "tcp_ts_val": np.zeros(k, dtype=np.uint32),
        "tcp_ts_ecr": np.zeros(k, dtype=np.uint32),
        "tcp_has_ts": np.zeros(k, dtype=bool),
        "tcp_opt_kinds": np.full(k, b"", dtype=object),
    }
    rows = np.flatnonzero(is_tcp & (l4_len > 20))
    if rows.size:
        options = parse_tcp_options(buf, l4[rows] + 20, l4_len[rows] - 20)
        columns["tcp_mss"][rows] = options.mss
        columns["tcp_wscale"][rows] = options.wscale
        columns["tcp_sack_perm"][rows] = options.sack_perm
        columns["tcp_ts_val"][rows] = options.ts_val
        columns["tcp_ts_ecr"][rows] = options.ts_ecr
        columns["tcp_has_ts"][rows] = options.has_ts
        columns["tcp_opt_kinds"][rows] = options.kinds
    return columns
