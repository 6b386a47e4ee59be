"""Decode the link, IP and transport headers of many frames at once.

How this works.  The frames of a batch lie in one uint8 buffer and are known
by their offsets and captured lengths (:class:`Frames`).  Decoding runs in
stages, each over an index array of the frames still alive:

1. link layer, per link type (``_link``): where the network header starts, and its
   EtherType (raw IP and loopback links get one made up from the version
   nibble or the address family);
2. VLAN tags, stacked ones too; the outermost VLAN id is kept;
3. IPv4, or IPv6 and its extension headers: header length, upper-layer
   protocol, IP length;
4. the transport header's length: the TCP data offset, 8 bytes for UDP,
   ICMP and ICMPv6.

A frame that fails a stage leaves the index with a :class:`Skip` reason and
a value (the EtherType, the protocol number, ...), counted afterwards.  The
frames that pass every stage become rows, and their columns are read in one
more pass (``_columns``).

Every stage checks a frame's captured length before trusting a field, so a
frame cut by the snap length is skipped as "frame shorter than its headers"
instead of decoded from the bytes of the next record.  Headers are copied out
with fixed-size gathers (:func:`gather`), which may read past the captured
bytes; that is safe because every gather starts at or before the end of its
frame's captured bytes and the buffer ends in PAD_BYTES of padding, and
harmless because the values read past the end fail a length check first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.capture import _headers as h
from fosr.capture._batch import Batch
from fosr.capture._columns import build_columns
from fosr.capture._formats import Frames
from fosr.capture._headers import Skip, describe_skip, gather
from fosr.capture._link import decode_link_layers, decode_vlan_tags

Array = npt.NDArray[Any]

_IPV4_PROTOCOLS = (h.IPPROTO_ICMP, h.IPPROTO_TCP, h.IPPROTO_UDP)
_IPV6_PROTOCOLS = (h.IPPROTO_ICMPV6, h.IPPROTO_TCP, h.IPPROTO_UDP)


def decode_frames(
    buf: Array, frames: Frames
) -> tuple[dict[str, Array], dict[str, int]]:
    """Decode every frame; return the columns of the IP rows and skip counts.

    ``buf`` must end in PAD_BYTES of padding.  Columns are named and typed as
    in PacketTable; the counts map a reason text to a number of frames.
    """
    batch = Batch(buf, frames)
    rows = decode_link_layers(batch, frames.link_type)
    rows = decode_vlan_tags(batch, rows)

    # split by EtherType
    ethertype = batch.ethertype[rows]
    is_ipv4 = ethertype == h.ETHERTYPE_IPV4
    is_ipv6 = ethertype == h.ETHERTYPE_IPV6
    batch.check(
        rows,
        [
            (ethertype < 0x0600, Skip.LLC, 0),
            (~is_ipv4 & ~is_ipv6, Skip.ETHERTYPE, ethertype),
        ],
    )
    ipv4 = _decode_ipv4(batch, rows[is_ipv4])
    ipv6 = _decode_ipv6(batch, rows[is_ipv6])
    rows = np.sort(np.concatenate([ipv4, ipv6]))

    rows = _check_transport(batch, rows)
    return build_columns(batch, rows, frames), _count_skipped(batch)


# network layer --------------------------------------------------------------


def _decode_ipv4(batch: Batch, rows: Array) -> Array:
    l3, end = batch.l3[rows], batch.end[rows]
    header = gather(batch.buf, l3, h.IPV4)
    version = header["vihl"] >> 4
    ihl = (header["vihl"] & 0x0F).astype(np.int64) * 4
    protocol = header["p"]
    passed = batch.check(
        rows,
        [
            (l3 + 20 > end, Skip.SHORT, 0),
            (version != 4, Skip.IPV4_VERSION, version),
            (ihl < 20, Skip.IPV4_IHL, 0),
            (l3 + ihl > end, Skip.SHORT, 0),
            # a first fragment has offset 0 and keeps the transport header
            ((header["frag"] & 0x1FFF) != 0, Skip.IPV4_FRAGMENT, 0),
            (~np.isin(protocol, _IPV4_PROTOCOLS), Skip.IPV4_PROTOCOL, protocol),
        ],
    )
    rows, l3 = rows[passed], l3[passed]
    total = header["len"][passed].astype(np.int64)
    batch.version[rows] = 4
    batch.proto[rows] = protocol[passed]
    batch.ip_hdr_len[rows] = ihl[passed]
    # Total length 0 comes from TCP segmentation offload: the stack hands
    # the NIC one large segment and the capture sees it before the split
    # (Wireshark reports it as "bogus, possibly TSO").  Fall back to the
    # frame's own length, minus the link header: the original (wire) length,
    # which is the captured length unless a snap length cut the frame.
    batch.ip_len[rows] = np.where(total == 0, batch.wire_end[rows] - l3, total)
    return rows


def _decode_ipv6(batch: Batch, rows: Array) -> Array:
    l3 = batch.l3[rows]
    header = gather(batch.buf, l3, h.IPV6)
    version = header["vtcfl"] >> 28
    passed = batch.check(
        rows,
        [
            (l3 + 40 > batch.end[rows], Skip.SHORT, 0),
            (version != 6, Skip.IPV6_VERSION, version),
        ],
    )
    rows, l3, header = rows[passed], l3[passed], header[passed]
    payload = header["plen"].astype(np.int64)
    batch.version[rows] = 6
    # payload length 0: a jumbogram (RFC 2675) or TSO; as for IPv4 above,
    # fall back to the frame's original length
    batch.ip_len[rows] = np.where(payload == 0, batch.wire_end[rows] - l3, 40 + payload)

    # step over extension headers to the upper-layer protocol
    next_header = header["nxt"].astype(np.int64)
    header_end = l3 + 40
    _walk_ipv6_extensions(batch, rows, next_header, header_end)
    alive = batch.reason[rows] == Skip.NONE
    rows, next_header, header_end = rows[alive], next_header[alive], header_end[alive]

    is_other = ~np.isin(next_header, _IPV6_PROTOCOLS)
    passed = batch.check(rows, [(is_other, Skip.IPV6_NEXT_HEADER, next_header)])
    rows = rows[passed]
    batch.proto[rows] = next_header[passed]
    batch.ip_hdr_len[rows] = header_end[passed] - batch.l3[rows]
    return rows


def _walk_ipv6_extensions(
    batch: Batch, rows: Array, next_header: Array, header_end: Array
) -> None:
    """Walk extension headers, updating ``next_header`` and ``header_end``.

    Both arrays are aligned with ``rows`` and updated in place.  A non-first
    fragment is skipped: its transport header is in another packet.
    """
    walking = np.flatnonzero(np.isin(next_header, h.IPV6_EXTENSIONS))
    for _ in range(h.MAX_IPV6_EXTENSIONS):
        if not walking.size:
            break
        # every extension header is a multiple of 8 bytes long, AH included
        at = header_end[walking]
        is_short = at + 8 > batch.end[rows[walking]]
        passed = batch.check(rows[walking], [(is_short, Skip.SHORT, 0)])
        walking, at = walking[passed], at[passed]

        ext = gather(batch.buf, at, h.IPV6_EXT)
        kind = next_header[walking]
        size = ext["len"].astype(np.int64)
        is_fragment = kind == h.IPPROTO_FRAGMENT
        # RFC 4302: AH length is in 4-byte units, minus 2; others in 8-byte
        # units, not counting the first 8 bytes; fragment headers are fixed
        length = np.where(kind == h.IPPROTO_AH, (size + 2) * 4, (size + 1) * 8)
        length = np.where(is_fragment, 8, length)
        next_header[walking] = ext["nxt"]
        header_end[walking] = at + length

        is_later = is_fragment & ((ext["off"] >> 3) != 0)
        passed = batch.check(rows[walking], [(is_later, Skip.IPV6_FRAGMENT, 0)])
        walking = walking[passed]
        walking = walking[np.isin(next_header[walking], h.IPV6_EXTENSIONS)]
    too_deep = np.ones(len(walking), dtype=bool)
    batch.check(rows[walking], [(too_deep, Skip.IPV6_CHAIN, 0)])


# transport layer -------------------------------------------------------------


def _check_transport(batch: Batch, rows: Array) -> Array:
    """Find the transport header length; skip frames that cannot hold it."""
    l4 = batch.l3[rows] + batch.ip_hdr_len[rows]
    # every transport header we decode is at least 8 bytes; checking this
    # first keeps the gather below inside the frame even when extension
    # headers claimed more bytes than it has
    passed = batch.check(rows, [(l4 + 8 > batch.end[rows], Skip.SHORT, 0)])
    rows, l4 = rows[passed], l4[passed]
    end = batch.end[rows]

    tcp = gather(batch.buf, l4, h.TCP)
    is_tcp = batch.proto[rows] == h.IPPROTO_TCP
    offset = (tcp["off"] >> 4).astype(np.int64) * 4
    l4_len = np.where(is_tcp, offset, 8)
    headers_len = batch.ip_hdr_len[rows] + l4_len
    passed = batch.check(
        rows,
        [
            (is_tcp & (l4 + 20 > end), Skip.SHORT, 0),
            (is_tcp & (offset < 20), Skip.TCP_OFFSET, 0),
            (l4 + l4_len > end, Skip.SHORT, 0),
            (batch.ip_len[rows] < headers_len, Skip.IP_LENGTH, 0),
        ],
    )
    rows = rows[passed]
    batch.l4_hdr_len[rows] = l4_len[passed]
    return rows


def _count_skipped(batch: Batch) -> dict[str, int]:
    """Count skipped frames per reason text."""
    skipped = np.flatnonzero(batch.reason)
    keys = (batch.reason[skipped].astype(np.int64) << 32) | batch.value[skipped]
    values, counts = np.unique(keys, return_counts=True)
    texts = [
        describe_skip(Skip(key >> 32), key & 0xFFFF_FFFF) for key in values.tolist()
    ]
    # every (reason, value) pair has its own text
    return dict(zip(texts, counts.tolist(), strict=True))
