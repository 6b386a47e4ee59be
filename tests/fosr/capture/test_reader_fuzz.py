"""Property tests: the capture reader on cut, flipped and random bytes.

Whatever the bytes, a read returns a consistent table or raises a FosrError;
it never hangs and never lets a struct, numpy or index error escape.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from capture_builders import (
    block_offsets,
    epb,
    idb,
    packet_block,
    pcap,
    record_offsets,
    shb,
    spb,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Dot1Q, Ether

from fosr.capture import PacketTable, read_capture
from fosr.errors import FosrError

ETHER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
SYN_OPTIONS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("WScale", 7)]
FRAMES = [
    bytes(ETHER / IP() / TCP(flags="S", options=SYN_OPTIONS)),
    bytes(ETHER / Dot1Q(vlan=3) / IPv6() / IPv6ExtHdrHopByHop() / UDP() / b"ab"),
    bytes(ETHER / IPv6() / IPv6ExtHdrFragment(m=1) / TCP(options=[("NOP", None)])),
    bytes(ETHER / IP(options=b"\x94\x04\x00\x00") / ICMP() / b"ping"),
]
SMALL_PCAP = pcap(FRAMES)
SMALL_PCAPNG = b"".join(
    [
        shb(),
        idb(1, tsresol=9, tsoffset_s=-5),
        epb(0, 10**18, FRAMES[0]),
        spb(FRAMES[1]),
        shb(big_endian=True),
        idb(1, snaplen=40, tsresol=0x83, big_endian=True),
        packet_block(0, 77, FRAMES[2], big_endian=True),
        epb(0, 78, FRAMES[3], big_endian=True),
    ]
)
HEADERS = [pcap([]), pcap([], big_endian=True, nanosecond=True), shb() + idb(1)]

# a read of a few kilobytes takes milliseconds; a second means a hang
FUZZ = settings(
    max_examples=300,
    deadline=1000,
    suppress_health_check=[HealthCheck.too_slow],
)


def read_or_none(data: bytes) -> PacketTable | None:
    """Read ``data``; return None when it raised one of our errors."""
    try:
        table = read_capture(io.BytesIO(data), keep_payload=True)
    except FosrError:
        return None
    _check_consistent(table, len(data))
    return table


def _check_consistent(table: PacketTable, size: int) -> None:
    stats = table.stats
    assert stats.frames == stats.decoded + sum(stats.skipped.values())
    assert len(table) == stats.decoded
    assert np.all(table.payload_caplen <= table.payload_len)
    assert np.all(table.payload_off + table.payload_caplen <= size)
    assert np.all(table.ip_hdr_len >= 20)
    assert set(table.proto.tolist()) <= {1, 6, 17, 58}


@pytest.mark.parametrize("data", [SMALL_PCAP, SMALL_PCAPNG], ids=["pcap", "pcapng"])
def test_read_valid_fixture_decodes_every_frame(data: bytes) -> None:
    table = read_or_none(data)
    assert table is not None
    assert len(table) == 4
    assert table.stats.truncated == []


@pytest.mark.parametrize(
    ("data", "boundaries"),
    [
        (SMALL_PCAP, set(record_offsets(SMALL_PCAP))),
        (SMALL_PCAPNG, set(block_offsets(SMALL_PCAPNG)[1:])),
    ],
    ids=["pcap", "pcapng"],
)
def test_read_cut_at_every_position_keeps_a_prefix(
    data: bytes, boundaries: set[int]
) -> None:
    complete = read_capture(io.BytesIO(data))
    previous = 0
    for cut in range(len(data)):
        # a cut is never an error: it keeps what came before it, and only a
        # cut between records reads as a complete file
        table = read_capture(io.BytesIO(data[:cut]))
        last_record = max([0, *(b for b in boundaries if b <= cut)])
        expected = [] if cut in boundaries else [("<stream>", last_record)]
        assert table.stats.truncated == expected
        assert table.stats.frames >= previous
        previous = table.stats.frames
        assert table.frame.tolist() == complete.frame.tolist()[: len(table)]
    assert previous == complete.stats.frames - 1


@FUZZ
@given(st.binary(max_size=4096))
def test_read_random_bytes_raises_only_our_errors(data: bytes) -> None:
    read_or_none(data)


@FUZZ
@given(st.sampled_from(HEADERS), st.binary(max_size=2048))
def test_read_random_records_after_a_valid_header(header: bytes, body: bytes) -> None:
    read_or_none(header + body)


@FUZZ
@given(
    st.sampled_from([SMALL_PCAP, SMALL_PCAPNG]),
    st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=8
    ),
)
def test_read_flipped_bytes_raise_only_our_errors(
    data: bytes, flips: list[tuple[int, int]]
) -> None:
    damaged = bytearray(data)
    for position, mask in flips:
        damaged[position % len(damaged)] ^= mask
    read_or_none(bytes(damaged))


@FUZZ
@given(st.lists(st.binary(min_size=0, max_size=120), max_size=12), st.integers(0, 300))
def test_read_random_frames_of_every_link_type(
    frames: list[bytes], link_type: int
) -> None:
    # random frame contents reach the decoder, not just the record walk
    table = read_or_none(pcap(frames, link_type=link_type))
    assert table is not None
    assert table.stats.frames == len(frames)
