"""Tests for fosr/capture/_decode.py: link layers, VLAN tags, IP, transport."""

from __future__ import annotations

import random
import struct
from typing import Any

import numpy as np
import pytest
from capture_builders import read_frames
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR, TCPOptions
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import (
    ARP,
    LLC,
    CookedLinux,
    CookedLinuxV2,
    Dot1AD,
    Dot1Q,
    Dot3,
    Ether,
)
from scapy.packet import Packet, Raw

from fosr.capture import format_address, format_addresses

V4_A, V4_B = "192.0.2.1", "198.51.100.2"
V6_A, V6_B = "2001:db8::1", "2001:db8::2"
UDP_V4 = IP(src=V4_A, dst=V4_B) / UDP(sport=1234, dport=53) / Raw(b"query")
UDP_V6 = IPv6(src=V6_A, dst=V6_B) / UDP(sport=1234, dport=53) / Raw(b"query")


def eth(**fields: Any) -> Ether:
    """Return an Ethernet header with fixed addresses (scapy would ARP for them)."""
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", **fields)


def ah(next_header: int) -> AH:
    """Return an AH header with a 12-byte ICV: 24 bytes, payloadlen 4."""
    return AH(nh=next_header, payloadlen=4, spi=1, seq=2, icv=bytes(12))


# link layers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("link_type", "frame", "version"),
    [
        pytest.param(1, bytes(eth() / UDP_V4), 4, id="ethernet-ipv4"),
        pytest.param(1, bytes(eth() / UDP_V6), 6, id="ethernet-ipv6"),
        pytest.param(113, bytes(CookedLinux() / UDP_V4), 4, id="sll"),
        pytest.param(276, bytes(CookedLinuxV2() / UDP_V6), 6, id="sll2"),
        pytest.param(101, bytes(UDP_V4), 4, id="raw-ipv4"),
        pytest.param(101, bytes(UDP_V6), 6, id="raw-ipv6"),
        pytest.param(12, bytes(UDP_V4), 4, id="dlt-raw-12"),
        pytest.param(14, bytes(UDP_V6), 6, id="dlt-raw-14"),
        pytest.param(228, bytes(UDP_V4), 4, id="ipv4"),
        pytest.param(229, bytes(UDP_V6), 6, id="ipv6"),
        # BSD loopback: host byte order, AF_INET6 numbered per OS
        pytest.param(0, struct.pack("<I", 2) + bytes(UDP_V4), 4, id="null-le"),
        pytest.param(0, struct.pack(">I", 2) + bytes(UDP_V4), 4, id="null-be"),
        pytest.param(0, struct.pack("<I", 24) + bytes(UDP_V6), 6, id="null-netbsd6"),
        pytest.param(0, struct.pack("<I", 28) + bytes(UDP_V6), 6, id="null-freebsd6"),
        pytest.param(0, struct.pack(">I", 30) + bytes(UDP_V6), 6, id="null-darwin6"),
        pytest.param(108, struct.pack(">I", 2) + bytes(UDP_V4), 4, id="loop"),
        # PPP bare, with HDLC-like framing, with a compressed protocol field
        pytest.param(9, b"\x00\x21" + bytes(UDP_V4), 4, id="ppp"),
        pytest.param(9, b"\xff\x03\x00\x57" + bytes(UDP_V6), 6, id="ppp-hdlc"),
        pytest.param(9, b"\x21" + bytes(UDP_V4), 4, id="ppp-compressed"),
        pytest.param(50, b"\xff\x03\x00\x21" + bytes(UDP_V4), 4, id="ppp-hdlc-50"),
    ],
)
def test_decode_link_types(link_type: int, frame: bytes, version: int) -> None:
    table = read_frames([frame], link_type=link_type)
    assert len(table) == 1
    assert table.ip_version[0] == version
    assert format_address(table.src[0]) == (V4_A if version == 4 else V6_A)
    assert format_address(table.dst[0]) == (V4_B if version == 4 else V6_B)
    assert (table.sport[0], table.dport[0], table.proto[0]) == (1234, 53, 17)
    assert table.payload_len[0] == 5
    assert table.stats.link_types == {link_type: 1}


def test_decode_unsupported_link_type_counts_every_frame() -> None:
    table = read_frames([bytes(eth() / UDP_V4)] * 3, link_type=127)
    assert len(table) == 0
    assert table.stats.frames == 3
    assert table.stats.skipped == {"link type 127": 3}
    assert table.stats.link_types == {127: 3}


@pytest.mark.parametrize(
    ("link_type", "frame", "reason"),
    [
        (0, struct.pack("<I", 7) + bytes(UDP_V4), "loopback address family 7"),
        (9, b"\xc0\x21" + bytes(20), "PPP protocol 0xc021"),
        (101, b"\x50" + bytes(39), "raw IP version 5"),
        (101, b"", "frame shorter than its headers"),
        (1, bytes(eth() / UDP_V4)[:13], "frame shorter than its headers"),
        (113, bytes(CookedLinux() / UDP_V4)[:15], "frame shorter than its headers"),
        (0, b"\x02\x00", "frame shorter than its headers"),
    ],
)
def test_decode_link_layer_skips(link_type: int, frame: bytes, reason: str) -> None:
    table = read_frames([frame], link_type=link_type)
    assert len(table) == 0
    assert table.stats.skipped == {reason: 1}


# VLAN tags ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "vlan"),
    [
        (eth() / UDP_V4, -1),
        (eth() / Dot1Q(vlan=7) / UDP_V4, 7),
        (eth() / Dot1Q(vlan=4095, prio=5) / UDP_V6, 4095),
        # QinQ: the outer (service) tag is the one kept
        (eth() / Dot1AD(vlan=5) / Dot1Q(vlan=7) / UDP_V4, 5),
        (eth(type=0x9100) / Dot1Q(vlan=9) / UDP_V4, 9),
        (eth() / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / UDP_V4, 1),
    ],
)
def test_decode_vlan_tags(frame: Packet, vlan: int) -> None:
    table = read_frames([bytes(frame)])
    assert table.vlan.tolist() == [vlan]
    assert (table.sport[0], table.dport[0]) == (1234, 53)


def test_decode_vlan_tags_nested_too_deep_are_skipped() -> None:
    frame: Packet = eth()
    for vlan in range(9):
        frame = frame / Dot1Q(vlan=vlan)
    table = read_frames([bytes(frame / UDP_V4)])
    assert table.stats.skipped == {"more than 8 VLAN tags": 1}


def test_decode_vlan_tag_cut_short_is_skipped() -> None:
    table = read_frames([bytes(eth() / Dot1Q(vlan=3) / UDP_V4)[:16]])
    assert table.stats.skipped == {"frame shorter than its headers": 1}


# skip reasons ------------------------------------------------------------------


def _ipv6_chain(depth: int) -> Packet:
    packet: Packet = IPv6(src=V6_A, dst=V6_B)
    for _ in range(depth):
        packet = packet / IPv6ExtHdrDestOpt()
    return packet / UDP()


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (eth() / ARP(), "ethertype 0x0806 (ARP)"),
        (eth(type=0x88B5) / Raw(bytes(46)), "ethertype 0x88b5 (local experimental)"),
        (eth(type=0x1234) / Raw(bytes(46)), "ethertype 0x1234"),
        (Dot3() / LLC() / Raw(bytes(40)), "802.3 length field (LLC frame)"),
        (eth() / IP(proto=2) / Raw(bytes(8)), "IPv4 protocol 2 (IGMP)"),
        (eth() / IP(proto=58) / Raw(bytes(8)), "IPv4 protocol 58 (ICMPv6)"),
        (eth() / IP(proto=250) / Raw(bytes(8)), "IPv4 protocol 250"),
        (eth() / IP(frag=185) / Raw(bytes(8)), "IPv4 non-first fragment"),
        (eth() / IP(version=5) / UDP(), "IPv4 header with version 5"),
        (eth() / IP(ihl=4) / UDP(), "IPv4 header length below 20 bytes"),
        (eth() / IPv6(nh=59), "IPv6 next header 59 (no next header)"),
        (eth() / IPv6(nh=1) / ICMP(), "IPv6 next header 1 (ICMP)"),
        (eth() / IPv6(version=4) / UDP(), "IPv6 header with version 4"),
        (
            eth() / IPv6() / IPv6ExtHdrFragment(offset=3) / Raw(bytes(8)),
            "IPv6 non-first fragment",
        ),
        (eth() / _ipv6_chain(9), "more than 8 IPv6 extension headers"),
        (eth() / IP() / TCP(dataofs=4), "TCP data offset below 5"),
        (eth() / IP(len=30) / TCP(), "IP length shorter than its headers"),
        (eth() / IPv6(plen=4) / UDP(), "IP length shorter than its headers"),
    ],
)
def test_decode_skip_reasons(frame: Packet, reason: str) -> None:
    table = read_frames([bytes(frame)])
    assert len(table) == 0
    assert (table.stats.frames, table.stats.decoded) == (1, 0)
    assert table.stats.skipped == {reason: 1}


@pytest.mark.parametrize(
    ("frame", "cut_bytes"),
    [
        (eth() / IP(src=V4_A) / TCP(), 14 + 19),  # inside the IPv4 header
        (eth() / IP(options=[IPOption_RR()]) / TCP(), 14 + 30),  # in its options
        (eth() / IP() / TCP(), 14 + 20 + 19),  # inside the TCP header
        (eth() / IP() / TCP(options=[("MSS", 1460)]), 14 + 20 + 22),
        (eth() / IP() / UDP(), 14 + 20 + 7),
        (eth() / IPv6() / UDP(), 14 + 39),
        (eth() / IPv6() / IPv6ExtHdrHopByHop() / UDP(), 14 + 40 + 7),
        (eth() / IPv6() / ICMPv6EchoRequest(), 14 + 40 + 6),
    ],
)
def test_decode_snaplen_cut_inside_headers_is_skipped(
    frame: Packet, cut_bytes: int
) -> None:
    raw = bytes(frame)
    table = read_frames([(0, raw[:cut_bytes], len(raw))])
    assert table.stats.skipped == {"frame shorter than its headers": 1}


def test_decode_snaplen_cut_inside_payload_keeps_the_headers() -> None:
    raw = bytes(eth() / IP() / TCP(sport=80) / Raw(bytes(100)))
    table = read_frames([(0, raw[: 14 + 20 + 20 + 10], len(raw))])
    assert table.sport.tolist() == [80]
    assert table.payload_len.tolist() == [100]
    assert table.payload_caplen.tolist() == [10]
    assert table.wire_len.tolist() == [len(raw)]


# IP ----------------------------------------------------------------------------


def test_decode_ipv4_fields() -> None:
    frame = eth() / IP(src=V4_A, dst=V4_B, tos=0xB8, ttl=3, id=0xBEEF, flags="DF")
    table = read_frames([bytes(frame / UDP(sport=5, dport=6))])
    assert (table.tos[0], table.ttl[0], table.ip_id[0]) == (0xB8, 3, 0xBEEF)
    assert table.df.tolist() == [True]
    assert (table.ip_len[0], table.ip_hdr_len[0]) == (28, 20)
    assert table.src[0].tolist() == [0] * 10 + [0xFF, 0xFF, 192, 0, 2, 1]


def test_decode_ipv6_fields() -> None:
    frame = eth() / IPv6(src=V6_A, dst=V6_B, tc=0xB8, fl=0x12345, hlim=9)
    table = read_frames([bytes(frame / UDP(sport=5, dport=6) / Raw(b"abc"))])
    assert (table.tos[0], table.ttl[0], table.ip_id[0]) == (0xB8, 9, 0x12345)
    assert table.df.tolist() == [False]
    assert (table.ip_len[0], table.ip_hdr_len[0], table.payload_len[0]) == (51, 40, 3)


def test_decode_ipv4_options_move_the_transport_header() -> None:
    # record route with room for two addresses: 11 bytes, padded to 12
    route = IPOption_RR(routers=["10.0.0.1", "10.0.0.2"])
    frame = eth() / IP(options=[route]) / TCP(sport=7, dport=8)
    table = read_frames([bytes(frame)])
    assert table.ip_hdr_len.tolist() == [32]
    assert (table.sport[0], table.dport[0], table.payload_len[0]) == (7, 8, 0)


def test_decode_ipv4_first_fragment_keeps_ports_later_ones_skipped() -> None:
    first = eth() / IP(flags="MF", frag=0, proto=17) / UDP(sport=9, dport=10)
    later = eth() / IP(flags="MF", frag=3, proto=17) / Raw(bytes(24))
    last = eth() / IP(frag=6, proto=17) / Raw(bytes(10))
    table = read_frames([bytes(first / Raw(bytes(16))), bytes(later), bytes(last)])
    assert table.frame.tolist() == [0]
    assert (table.sport[0], table.dport[0], table.payload_len[0]) == (9, 10, 16)
    assert table.stats.skipped == {"IPv4 non-first fragment": 2}


def test_decode_ipv6_extension_headers_are_walked() -> None:
    chain = (
        IPv6(src=V6_A, dst=V6_B)
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting()
        / IPv6ExtHdrDestOpt()
        / ah(next_header=44)
        / IPv6ExtHdrFragment(offset=0, m=1, nh=6)
        / TCP(sport=443, dport=5000, flags="SA")
        / Raw(b"hello")
    )
    table = read_frames([bytes(eth() / chain)])
    assert table.proto.tolist() == [6]
    assert table.ip_hdr_len.tolist() == [40 + 8 + 8 + 8 + 24 + 8]
    assert (table.sport[0], table.dport[0], table.tcp_flags[0]) == (443, 5000, 0x12)
    assert table.payload_len.tolist() == [5]
    assert table.ip_len.tolist() == [len(bytes(chain))]


def test_decode_total_length_zero_falls_back_to_the_frame_length() -> None:
    # TSO: one 3000-byte segment captured before the NIC split it
    v4 = eth() / IP(len=0) / TCP() / Raw(bytes(3000))
    v6 = eth() / IPv6(plen=0) / TCP() / Raw(bytes(3000))
    table = read_frames([bytes(v4), bytes(v6)])
    assert table.ip_len.tolist() == [3040, 3060]
    assert table.payload_len.tolist() == [3000, 3000]
    assert table.payload_caplen.tolist() == [3000, 3000]


def test_decode_ethernet_padding_is_not_payload() -> None:
    raw = bytes(eth() / IP() / UDP() / Raw(b"ab"))
    padded = raw + bytes(60 - len(raw))
    table = read_frames([padded], keep_payload=True)
    assert (table.ip_len[0], table.payload_len[0], table.payload_caplen[0]) == (
        30,
        2,
        2,
    )
    assert table.wire_len.tolist() == [60]
    assert table.payload(0) == b"ab"


# transport ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "sport", "dport", "icmp_id", "payload_len"),
    [
        (IP() / ICMP(type=8, id=0x1234, seq=1) / Raw(bytes(56)), 8, 0, 0x1234, 56),
        (IP() / ICMP(type=0, id=0x4321) / Raw(bytes(56)), 0, 0, 0x4321, 56),
        (IP() / ICMP(type=3, code=1) / IP() / UDP(), 3, 1, 0, 28),
        (IPv6() / ICMPv6EchoRequest(id=77, data=b"abcd"), 128, 0, 77, 4),
        (IPv6() / ICMPv6EchoReply(id=78), 129, 0, 78, 0),
        (IPv6() / ICMPv6DestUnreach(code=4) / IPv6() / UDP(), 1, 4, 0, 48),
    ],
)
def test_decode_icmp_type_code_and_echo_id(
    frame: Packet, sport: int, dport: int, icmp_id: int, payload_len: int
) -> None:
    table = read_frames([bytes(eth() / frame)])
    assert (table.sport[0], table.dport[0], table.icmp_id[0]) == (sport, dport, icmp_id)
    assert (table.tcp_hdr_len[0], table.payload_len[0]) == (8, payload_len)
    assert (table.tcp_flags[0], table.tcp_seq[0], table.tcp_mss[0]) == (0, 0, 0)


def test_decode_tcp_fields() -> None:
    segment = TCP(
        sport=40000,
        dport=443,
        seq=0xFFFF_FFF0,
        ack=7,
        flags=0x1D2,
        window=65535,
        options=[
            ("MSS", 1460),
            ("SAckOK", b""),
            ("Timestamp", (5, 6)),
            ("NOP", None),
            ("WScale", 7),
        ],
    )
    table = read_frames([bytes(eth() / IP() / segment / Raw(b"xy"))])
    assert (table.sport[0], table.dport[0]) == (40000, 443)
    assert (table.tcp_seq[0], table.tcp_ack[0]) == (0xFFFF_FFF0, 7)
    assert table.tcp_flags.tolist() == [0x1D2]  # NS, CWR, ACK, SYN, ECE
    assert (table.tcp_window[0], table.tcp_hdr_len[0]) == (65535, 40)
    assert (table.tcp_mss[0], table.tcp_wscale[0]) == (1460, 7)
    assert table.tcp_sack_perm.tolist() == [True]
    assert table.tcp_has_ts.tolist() == [True]
    assert (table.tcp_ts_val[0], table.tcp_ts_ecr[0]) == (5, 6)
    assert table.tcp_opt_kinds.tolist() == [b"\x02\x04\x08\x01\x03"]
    assert table.payload_len.tolist() == [2]


def test_decode_udp_has_no_tcp_fields() -> None:
    table = read_frames([bytes(eth() / UDP_V4)])
    assert (table.tcp_hdr_len[0], table.tcp_wscale[0], table.tcp_opt_kinds[0]) == (
        8,
        -1,
        b"",
    )


# cross-check with scapy ----------------------------------------------------------


def _random_frame(rng: random.Random) -> Packet:
    """Return a random Ethernet frame of a kind the reader decodes."""
    if rng.random() < 0.5:
        ip: Packet = IP(
            src=".".join(str(rng.randrange(256)) for _ in range(4)),
            dst=".".join(str(rng.randrange(256)) for _ in range(4)),
            ttl=rng.randrange(256),
            tos=rng.randrange(256),
            id=rng.randrange(65536),
            flags=rng.choice(["", "DF"]),
            options=[IPOption_RR(routers=["10.0.0.1"])] if rng.random() < 0.2 else [],
        )
        icmp: Packet = ICMP(
            type=rng.choice([0, 8, 3, 11]),
            code=rng.randrange(4),
            id=rng.randrange(65536),
        )
    else:
        ip = IPv6(
            src=f"2001:db8::{rng.randrange(65536):x}",
            dst=f"fe80::{rng.randrange(65536):x}",
            hlim=rng.randrange(256),
            tc=rng.randrange(256),
            fl=rng.randrange(1 << 20),
        )
        for header in rng.sample(
            [IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt], rng.randrange(3)
        ):
            ip = ip / header()
        icmp = rng.choice([ICMPv6EchoRequest, ICMPv6EchoReply])(id=rng.randrange(65536))
    options = rng.sample(
        [
            ("MSS", rng.randrange(65536)),
            ("WScale", rng.randrange(15)),
            ("SAckOK", b""),
            ("Timestamp", (rng.randrange(1 << 32), rng.randrange(1 << 32))),
            ("NOP", None),
            ("NOP", None),
        ],
        rng.randrange(7),
    )
    transport = rng.choice(
        [
            TCP(
                sport=rng.randrange(65536),
                dport=rng.randrange(65536),
                seq=rng.randrange(1 << 32),
                ack=rng.randrange(1 << 32),
                flags=rng.randrange(512),
                window=rng.randrange(65536),
                options=options,
            ),
            UDP(sport=rng.randrange(65536), dport=rng.randrange(65536)),
            icmp,
        ]
    )
    frame = eth() / ip
    if rng.random() < 0.2:
        frame = eth() / Dot1Q(vlan=rng.randrange(4096)) / ip
    return frame / transport / Raw(bytes(rng.randrange(300)))


def _scapy_fields(frame: bytes) -> dict[str, Any]:
    """Return the table's fields of ``frame`` as scapy dissects it."""
    packet = Ether(frame)
    fields: dict[str, Any] = {"vlan": packet[Dot1Q].vlan if Dot1Q in packet else -1}
    if IP in packet:
        ip = packet[IP]
        fields.update(
            ip_version=4,
            src=ip.src,
            dst=ip.dst,
            ttl=ip.ttl,
            tos=ip.tos,
            ip_id=ip.id,
            df=bool(ip.flags.DF),
            ip_len=ip.len,
            ip_hdr_len=ip.ihl * 4,
        )
        layer = ip.payload
    else:
        ip = packet[IPv6]
        fields.update(
            ip_version=6,
            src=ip.src,
            dst=ip.dst,
            ttl=ip.hlim,
            tos=ip.tc,
            ip_id=ip.fl,
            df=False,
            ip_len=40 + ip.plen,
        )
        layer, hdr_len = ip.payload, 40
        while isinstance(layer, IPv6ExtHdrHopByHop | IPv6ExtHdrDestOpt):
            hdr_len += len(bytes(layer)) - len(bytes(layer.payload))
            layer = layer.payload
        fields["ip_hdr_len"] = hdr_len
    if isinstance(layer, TCP):
        names = TCPOptions[1]
        options = dict(layer.options)
        fields.update(
            proto=6,
            sport=layer.sport,
            dport=layer.dport,
            tcp_seq=layer.seq,
            tcp_ack=layer.ack,
            tcp_flags=int(layer.flags),
            tcp_window=layer.window,
            tcp_hdr_len=layer.dataofs * 4,
            tcp_mss=options.get("MSS", 0),
            tcp_wscale=options.get("WScale", -1),
            tcp_sack_perm="SAckOK" in options,
            tcp_has_ts="Timestamp" in options,
            tcp_ts_val=options.get("Timestamp", (0, 0))[0],
            tcp_ts_ecr=options.get("Timestamp", (0, 0))[1],
            tcp_opt_kinds=bytes(names[name] for name, _ in layer.options),
            payload_len=len(bytes(layer)) - layer.dataofs * 4,
        )
    else:
        is_udp = isinstance(layer, UDP)
        fields.update(
            proto=17 if is_udp else 1 if fields["ip_version"] == 4 else 58,
            sport=layer.sport if is_udp else layer.type,
            dport=layer.dport if is_udp else layer.code,
            icmp_id=0 if is_udp or layer.type not in (0, 8, 128, 129) else layer.id,
            tcp_hdr_len=8,
            payload_len=len(bytes(layer)) - 8,
            tcp_flags=0,
        )
    return fields


def test_decode_matches_scapy_on_a_mixed_capture() -> None:
    rng = random.Random(20240611)
    frames = [bytes(_random_frame(rng)) for _ in range(400)]
    table = read_frames(frames, keep_payload=True)
    assert len(table) == len(frames)
    columns = table.columns()
    columns["src"], columns["dst"] = (
        format_addresses(table.src),
        format_addresses(table.dst),
    )
    for i, frame in enumerate(frames):
        expected = _scapy_fields(frame)
        got = {name: columns[name][i] for name in expected}
        got["src"], got["dst"] = str(got["src"]), str(got["dst"])
        assert got == expected, f"frame {i}: {Ether(frame).summary()}"
        payload = table.payload(i)
        assert len(payload) == expected["payload_len"]
        assert frame.endswith(payload)


def test_decode_keeps_file_order_across_link_types_and_versions() -> None:
    frames = [bytes(eth() / (UDP_V4 if i % 3 else UDP_V6)) for i in range(10)]
    frames.insert(4, bytes(eth() / ARP()))
    table = read_frames(frames)
    assert table.frame.tolist() == [0, 1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert table.ip_version.tolist() == [6, 4, 4, 6, 4, 4, 6, 4, 4, 6]
    assert np.all(np.diff(table.ts_ns) > 0)
