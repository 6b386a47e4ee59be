"""Header layouts as numpy record types, the gather that reads them, and skips.

Each layout names its fields as the RFC does; multi-byte fields are
big-endian (network order).  The decoder copies a fixed number of bytes per
packet out of the capture buffer (:func:`gather`) and views them through one
of these types, so the layouts double as the parser's table of field
offsets.  :class:`Skip` and its texts say why a frame gave no row.
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]

# Ethernet II (IEEE 802.3): destination, source, EtherType or length.
ETHERNET = np.dtype([("dst", "u1", 6), ("src", "u1", 6), ("type", ">u2")])

# Linux cooked capture v1 (LINKTYPE_LINUX_SLL): packet type, ARPHRD type,
# address length, 8 address bytes, protocol (an EtherType for IP).
SLL = np.dtype(
    [
        ("pkttype", ">u2"),
        ("hatype", ">u2"),
        ("halen", ">u2"),
        ("addr", "u1", 8),
        ("protocol", ">u2"),
    ]
)

# Linux cooked capture v2 (LINKTYPE_LINUX_SLL2): protocol comes first.
SLL2 = np.dtype(
    [
        ("protocol", ">u2"),
        ("reserved", ">u2"),
        ("ifindex", ">u4"),
        ("hatype", ">u2"),
        ("pkttype", "u1"),
        ("halen", "u1"),
        ("addr", "u1", 8),
    ]
)

# IEEE 802.1Q tag after the TPID: tag control information, inner EtherType.
VLAN_TAG = np.dtype([("tci", ">u2"), ("type", ">u2")])

# IPv4 (RFC 791): vihl is version (4 bits) and IHL in 32-bit words (4 bits);
# frag holds the flags (3 bits) and the fragment offset in 8-byte units.
IPV4 = np.dtype(
    [
        ("vihl", "u1"),
        ("tos", "u1"),
        ("len", ">u2"),
        ("id", ">u2"),
        ("frag", ">u2"),
        ("ttl", "u1"),
        ("p", "u1"),
        ("sum", ">u2"),
        ("src", "u1", 4),
        ("dst", "u1", 4),
    ]
)

# IPv6 (RFC 8200): vtcfl is version (4), traffic class (8), flow label (20).
IPV6 = np.dtype(
    [
        ("vtcfl", ">u4"),
        ("plen", ">u2"),
        ("nxt", "u1"),
        ("hlim", "u1"),
        ("src", "u1", 16),
        ("dst", "u1", 16),
    ]
)

# The first 4 bytes of any IPv6 extension header we walk (RFC 8200 section 4,
# RFC 4302 for AH); for the fragment header, off holds the fragment offset in
# its top 13 bits.
IPV6_EXT = np.dtype([("nxt", "u1"), ("len", "u1"), ("off", ">u2")])

# TCP (RFC 9293): off is the data offset in its top 4 bits and the NS flag
# (RFC 3540, now historic) in its lowest bit; flags holds CWR..FIN.
TCP = np.dtype(
    [
        ("sport", ">u2"),
        ("dport", ">u2"),
        ("seq", ">u4"),
        ("ack", ">u4"),
        ("off", "u1"),
        ("flags", "u1"),
        ("win", ">u2"),
        ("sum", ">u2"),
        ("urp", ">u2"),
    ]
)

# ICMP (RFC 792) and ICMPv6 (RFC 4443): for echo request and reply the rest
# of the 8-byte header is an identifier and a sequence number.
ICMP = np.dtype(
    [("type", "u1"), ("code", "u1"), ("sum", ">u2"), ("id", ">u2"), ("seq", ">u2")]
)

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
# 802.1Q, 802.1ad (QinQ) and the pre-standard QinQ TPID some switches use.
ETHERTYPE_VLAN = (0x8100, 0x88A8, 0x9100)

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
# IPv6 extension headers the decoder walks past: hop-by-hop, routing,
# fragment, destination options and authentication header.
IPV6_EXTENSIONS = (0, 43, 44, 60, 51)
IPPROTO_FRAGMENT = 44
IPPROTO_AH = 51

ETHERTYPE_NAMES: dict[int, str] = {
    0x0806: "ARP",
    0x0842: "Wake-on-LAN",
    0x22F0: "AVTP",
    0x22F3: "TRILL",
    0x6002: "DEC MOP",
    0x8035: "RARP",
    0x809B: "AppleTalk",
    0x80F3: "AARP",
    0x8137: "IPX",
    0x8808: "Ethernet flow control",
    0x8809: "slow protocols (LACP)",
    0x8847: "MPLS",
    0x8848: "MPLS multicast",
    0x8863: "PPPoE discovery",
    0x8864: "PPPoE session",
    0x887B: "HomePlug",
    0x888E: "EAPOL",
    0x8892: "PROFINET",
    0x8899: "Realtek",
    0x88B5: "local experimental",
    0x88CC: "LLDP",
    0x88E1: "HomePlug AV",
    0x88E5: "MACsec",
    0x88F7: "PTP",
    0x8902: "CFM",
    0x893A: "IEEE 1905.1",
    0x9000: "loopback",
}

IP_PROTOCOL_NAMES: dict[int, str] = {
    0: "hop-by-hop options",
    1: "ICMP",
    2: "IGMP",
    4: "IPv4 in IP",
    6: "TCP",
    17: "UDP",
    41: "IPv6 in IP",
    43: "routing header",
    44: "fragment header",
    46: "RSVP",
    47: "GRE",
    50: "ESP",
    51: "AH",
    58: "ICMPv6",
    59: "no next header",
    60: "destination options",
    88: "EIGRP",
    89: "OSPF",
    103: "PIM",
    112: "VRRP",
    115: "L2TP",
    132: "SCTP",
    135: "mobility header",
    136: "UDP-Lite",
    139: "HIP",
    140: "Shim6",
}


class Skip(enum.IntEnum):
    """Why a frame gave no row; the value goes in a uint8 column."""

    NONE = 0
    LINK_TYPE = 1
    SHORT = 2
    LLC = 3
    ETHERTYPE = 4
    VLAN_DEPTH = 5
    LOOPBACK_FAMILY = 6
    PPP_PROTOCOL = 7
    RAW_VERSION = 8
    IPV4_VERSION = 9
    IPV4_IHL = 10
    IPV4_FRAGMENT = 11
    IPV4_PROTOCOL = 12
    IPV6_VERSION = 13
    IPV6_FRAGMENT = 14
    IPV6_CHAIN = 15
    IPV6_NEXT_HEADER = 16
    TCP_OFFSET = 17
    IP_LENGTH = 18


MAX_VLAN_TAGS = 8  # chosen without evidence: real QinQ stacks hold two or three
MAX_IPV6_EXTENSIONS = 8  # chosen without evidence: real chains hold one to three

_TEMPLATES: dict[Skip, str] = {
    Skip.LINK_TYPE: "link type {value}",
    Skip.SHORT: "frame shorter than its headers",
    Skip.LLC: "802.3 length field (LLC frame)",
    Skip.ETHERTYPE: "ethertype 0x{value:04x}",
    Skip.VLAN_DEPTH: f"more than {MAX_VLAN_TAGS} VLAN tags",
    Skip.LOOPBACK_FAMILY: "loopback address family {value}",
    Skip.PPP_PROTOCOL: "PPP protocol 0x{value:04x}",
    Skip.RAW_VERSION: "raw IP version {value}",
    Skip.IPV4_VERSION: "IPv4 header with version {value}",
    Skip.IPV4_IHL: "IPv4 header length below 20 bytes",
    Skip.IPV4_FRAGMENT: "IPv4 non-first fragment",
    Skip.IPV4_PROTOCOL: "IPv4 protocol {value}",
    Skip.IPV6_VERSION: "IPv6 header with version {value}",
    Skip.IPV6_FRAGMENT: "IPv6 non-first fragment",
    Skip.IPV6_CHAIN: f"more than {MAX_IPV6_EXTENSIONS} IPv6 extension headers",
    Skip.IPV6_NEXT_HEADER: "IPv6 next header {value}",
    Skip.TCP_OFFSET: "TCP data offset below 5",
    Skip.IP_LENGTH: "IP length shorter than its headers",
}


def describe_skip(reason: Skip, value: int) -> str:
    """Return the text counted in ReadStats.skipped, e.g. "IPv4 protocol 2 (IGMP)"."""
    text = _TEMPLATES[reason].format(value=value)
    name = None
    if reason is Skip.ETHERTYPE:
        name = ETHERTYPE_NAMES.get(value)
    elif reason in (Skip.IPV4_PROTOCOL, Skip.IPV6_NEXT_HEADER):
        name = IP_PROTOCOL_NAMES.get(value)
    return f"{text} ({name})" if name else text


# The reader appends this many zero bytes to every batch buffer, so that a
# fixed-size gather starting inside any frame stays inside the buffer; fields
# read past a frame's captured length are never used (every stage checks the
# captured length first).
PAD_BYTES = 64


def gather(buf: Array, pos: Array, dtype: np.dtype[Any]) -> Array:
    """Copy ``dtype.itemsize`` bytes at each offset in ``pos`` into records.

    ``buf`` is a uint8 array ending in PAD_BYTES of padding; every offset must
    lie inside it before the padding.  Returns a 1-D array of ``dtype``.
    """
    size = dtype.itemsize
    assert size <= PAD_BYTES, f"gather of {size} bytes exceeds the padding"
    # one strided view whose item i is the `size` bytes at offset i: numpy
    # copies each item with one memcpy, which is several times faster than
    # indexing a 2-D window view or a structured view directly
    windows = np.ndarray(
        shape=(len(buf) - size + 1,),
        dtype=np.dtype((np.void, size)),
        buffer=buf,
        strides=(1,),
    )
    return windows[pos].view(dtype)
