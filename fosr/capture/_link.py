"""Link layers and VLAN tags: where each frame's network header starts.

Each decoder handles the frames of one link type and records, for those long
enough to hold its header, the offset of the network header and an EtherType
saying what it is.  Raw IP links make one up from the version nibble, BSD
loopback from the address family and PPP from its protocol field, so that
the later stages see one vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.capture import _headers as h
from fosr.capture._batch import Batch, Check
from fosr.capture._headers import Skip, gather

Array = npt.NDArray[Any]

_U16 = np.dtype(">u2")
_U32_LITTLE = np.dtype("<u4")
_U32_BIG = np.dtype(">u4")
# BSD loopback address families: AF_INET, and AF_INET6 as NetBSD/OpenBSD,
# FreeBSD and Darwin number it
_AF_INET = 2
_AF_INET6 = (24, 28, 30)
_PPP_TO_ETHERTYPE = {0x0021: h.ETHERTYPE_IPV4, 0x0057: h.ETHERTYPE_IPV6}


def decode_link_layers(batch: Batch, link_type: Array) -> Array:
    """Find the network header of every frame; return the rows that have one.

    Frames of a link type without a decoder are skipped as "link type N".
    """
    if not len(link_type):
        return np.zeros(0, dtype=np.int64)
    if link_type.min() == link_type.max():  # the common case: skip the sort
        groups = [(int(link_type[0]), np.arange(len(link_type)))]
    else:
        groups = [
            (value, np.flatnonzero(link_type == value))
            for value in np.unique(link_type).tolist()
        ]
    alive = []
    for value, rows in groups:
        decode = _LINK_DECODERS.get(value)
        if decode is None:
            batch.reason[rows] = Skip.LINK_TYPE
            batch.value[rows] = value
            continue
        alive.append(decode(batch, rows))
    return np.sort(np.concatenate(alive)) if alive else np.zeros(0, dtype=np.int64)


def _set_link(
    batch: Batch,
    rows: Array,
    header_len: Array | int,
    ethertype: Array,
    checks: Sequence[Check] = (),
) -> Array:
    """Record where the network header starts; skip frames too short for it."""
    is_short = batch.caplen(rows) < header_len
    passed = batch.check(rows, [(is_short, Skip.SHORT, 0), *checks])
    if isinstance(header_len, np.ndarray):
        header_len = header_len[passed]
    rows = rows[passed]
    batch.l3[rows] = batch.start[rows] + header_len
    batch.ethertype[rows] = ethertype[passed]
    return rows


def _link_ethernet(batch: Batch, rows: Array) -> Array:
    header = gather(batch.buf, batch.start[rows], h.ETHERNET)
    return _set_link(batch, rows, h.ETHERNET.itemsize, header["type"])


def _link_sll(batch: Batch, rows: Array) -> Array:
    header = gather(batch.buf, batch.start[rows], h.SLL)
    return _set_link(batch, rows, h.SLL.itemsize, header["protocol"])


def _link_sll2(batch: Batch, rows: Array) -> Array:
    header = gather(batch.buf, batch.start[rows], h.SLL2)
    return _set_link(batch, rows, h.SLL2.itemsize, header["protocol"])


def _link_raw(batch: Batch, rows: Array) -> Array:
    """Raw IP: the version nibble says IPv4 or IPv6."""
    version = batch.buf[batch.start[rows]] >> 4
    ethertype = np.where(version == 4, h.ETHERTYPE_IPV4, h.ETHERTYPE_IPV6)
    checks: list[Check] = [
        (batch.caplen(rows) < 1, Skip.SHORT, 0),
        ((version != 4) & (version != 6), Skip.RAW_VERSION, version),
    ]
    return _set_link(batch, rows, 0, ethertype, checks)


def _link_raw_ipv4(batch: Batch, rows: Array) -> Array:
    return _set_link(batch, rows, 0, np.full(len(rows), h.ETHERTYPE_IPV4))


def _link_raw_ipv6(batch: Batch, rows: Array) -> Array:
    return _set_link(batch, rows, 0, np.full(len(rows), h.ETHERTYPE_IPV6))


def _link_null(batch: Batch, rows: Array) -> Array:
    """BSD loopback: an address family in the capturing host's byte order."""
    family = gather(batch.buf, batch.start[rows], _U32_LITTLE).astype(np.int64)
    # families are small numbers, so a large one was written big-endian
    swapped = gather(batch.buf, batch.start[rows], _U32_BIG).astype(np.int64)
    family = np.where(family > 0xFFFF, swapped, family)
    return _set_family(batch, rows, family)


def _link_loop(batch: Batch, rows: Array) -> Array:
    """OpenBSD loopback: like null, but always big-endian."""
    family = gather(batch.buf, batch.start[rows], _U32_BIG).astype(np.int64)
    return _set_family(batch, rows, family)


def _set_family(batch: Batch, rows: Array, family: Array) -> Array:
    is_ipv6 = np.isin(family, _AF_INET6)
    ethertype = np.where(is_ipv6, h.ETHERTYPE_IPV6, h.ETHERTYPE_IPV4)
    is_other = (family != _AF_INET) & ~is_ipv6
    checks: list[Check] = [(is_other, Skip.LOOPBACK_FAMILY, family)]
    return _set_link(batch, rows, 4, ethertype, checks)


def _link_ppp(batch: Batch, rows: Array) -> Array:
    """PPP (RFC 1661), with or without HDLC-like framing (RFC 1662)."""
    start = batch.start[rows]
    framing = gather(batch.buf, start, _U16) == 0xFF03
    at = start + 2 * framing
    # an odd first byte is a protocol field compressed to one byte (RFC 1661)
    first = batch.buf[at].astype(np.int64)
    is_compressed = (first & 1) == 1
    protocol = np.where(is_compressed, first, gather(batch.buf, at, _U16))
    header_len = at - start + np.where(is_compressed, 1, 2)
    ethertype = np.zeros(len(rows), dtype=np.int64)
    for ppp, ether in _PPP_TO_ETHERTYPE.items():
        ethertype[protocol == ppp] = ether
    checks: list[Check] = [(ethertype == 0, Skip.PPP_PROTOCOL, protocol)]
    return _set_link(batch, rows, header_len, ethertype, checks)


_LINK_DECODERS: dict[int, Callable[[Batch, Array], Array]] = {
    0: _link_null,
    1: _link_ethernet,
    9: _link_ppp,
    # DLT_RAW is 12 on most systems and 14 on OpenBSD; libpcap writes 101
    # (LINKTYPE_RAW) to files, but old files keep the DLT value
    12: _link_raw,
    14: _link_raw,
    50: _link_ppp,  # PPP in HDLC-like framing
    101: _link_raw,
    108: _link_loop,
    113: _link_sll,
    228: _link_raw_ipv4,
    229: _link_raw_ipv6,
    276: _link_sll2,
}
SUPPORTED_LINK_TYPES = frozenset(_LINK_DECODERS)


def decode_vlan_tags(batch: Batch, rows: Array) -> Array:
    """Step over 802.1Q and 802.1ad tags, keeping the outermost VLAN id."""
    tagged = rows[np.isin(batch.ethertype[rows], h.ETHERTYPE_VLAN)]
    for _ in range(h.MAX_VLAN_TAGS):
        if not tagged.size:
            break
        l3 = batch.l3[tagged]
        tag = gather(batch.buf, l3, h.VLAN_TAG)
        passed = batch.check(tagged, [(l3 + 4 > batch.end[tagged], Skip.SHORT, 0)])
        tagged, tag = tagged[passed], tag[passed]
        is_outermost = batch.vlan[tagged] < 0
        batch.vlan[tagged[is_outermost]] = tag["tci"][is_outermost] & 0x0FFF
        batch.ethertype[tagged] = tag["type"]
        batch.l3[tagged] += 4
        tagged = tagged[np.isin(batch.ethertype[tagged], h.ETHERTYPE_VLAN)]
    batch.check(tagged, [(np.ones(len(tagged), dtype=bool), Skip.VLAN_DEPTH, 0)])
    alive: Array = rows[batch.reason[rows] == Skip.NONE]
    return alive
