"""Tests for fosr/capture/_pcapng.py: walking pcapng blocks."""

from __future__ import annotations

import io
import logging
import struct

import numpy as np
import pytest
from capture_builders import (
    block,
    end_of_options,
    epb,
    idb,
    option,
    packet_block,
    pcapng,
    shb,
    spb,
)
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from fosr.capture import read_capture
from fosr.capture._pcapng import units_to_ns
from fosr.errors import CaptureError, TruncatedInputError

ETHER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
FRAMES = [bytes(ETHER / IP() / UDP(sport=1000 + i, dport=53)) for i in range(4)]
RAW_V6 = bytes(IPv6() / UDP(sport=7, dport=9))


def test_read_pcapng_sections_of_different_byte_orders() -> None:
    # each section numbers its interfaces from 0 and has its own byte order
    data = b"".join(
        [
            shb(),
            idb(1),
            epb(0, 1_000_000, FRAMES[0]),
            shb(big_endian=True),
            idb(101, big_endian=True),
            idb(1, tsresol=9, big_endian=True),
            epb(1, 2_000_000_000, FRAMES[1], big_endian=True),
            epb(0, 3_000_000, RAW_V6, big_endian=True),
            shb(),
            idb(1),
            epb(0, 4_000_000, FRAMES[2]),
        ]
    )
    table = read_capture(io.BytesIO(data))
    assert table.ts_ns.tolist() == [n * 1_000_000_000 for n in (1, 2, 3, 4)]
    assert table.sport.tolist() == [1000, 1001, 7, 1002]
    assert table.stats.link_types == {1: 3, 101: 1}


@pytest.mark.parametrize(
    ("tsresol", "units", "ts_ns"),
    [
        (None, 1_500_000, 1_500_000_000),  # default: microseconds
        (3, 1_500, 1_500_000_000),
        (9, 1_500_000_001, 1_500_000_001),
        (12, 1_500_000_000_007, 1_500_000_000),
        (0x80 | 10, 1536, 1_500_000_000),  # 2**-10 s
        (0x80 | 30, 3 << 29, 1_500_000_000),
    ],
)
def test_read_pcapng_timestamp_resolutions(
    tsresol: int | None, units: int, ts_ns: int
) -> None:
    data = shb() + idb(1, tsresol=tsresol) + epb(0, units, FRAMES[0])
    assert read_capture(io.BytesIO(data)).ts_ns.tolist() == [ts_ns]


def test_read_pcapng_timestamp_offset() -> None:
    data = shb() + idb(1, tsresol=9, tsoffset_s=1_600_000_000) + epb(0, 5, FRAMES[0])
    table = read_capture(io.BytesIO(data))
    assert table.ts_ns.tolist() == [1_600_000_000_000_000_005]


def test_read_pcapng_interfaces_of_several_link_types() -> None:
    data = b"".join(
        [
            shb(),
            idb(1),
            idb(101),
            idb(127),
            epb(0, 1, FRAMES[0]),
            epb(1, 2, RAW_V6),
            epb(2, 3, b"\x00" * 30),
            epb(1, 4, RAW_V6),
        ]
    )
    table = read_capture(io.BytesIO(data))
    assert table.frame.tolist() == [0, 1, 3]
    assert table.ip_version.tolist() == [4, 6, 6]
    assert table.stats.skipped == {"link type 127": 1}
    assert table.stats.link_types == {1: 1, 101: 2, 127: 1}


def test_read_pcapng_simple_and_obsolete_packet_blocks() -> None:
    data = b"".join(
        [
            shb(),
            idb(1, snaplen=50),
            spb(FRAMES[0]),  # no timestamp: before any other packet, 0
            packet_block(0, 7_000_000, FRAMES[1]),
            # a simple packet block's captured length is capped by the snap length
            spb(FRAMES[2] + bytes(10), wire_len=len(FRAMES[2]) + 10),
            epb(0, 9_000_000, FRAMES[3]),
        ]
    )
    table = read_capture(io.BytesIO(data))
    assert table.ts_ns.tolist() == [0, 7 * 10**9, 7 * 10**9, 9 * 10**9]
    assert table.sport.tolist() == [1000, 1001, 1002, 1003]
    assert table.wire_len[2] == len(FRAMES[2]) + 10


def test_read_pcapng_steps_over_other_blocks() -> None:
    data = b"".join(
        [
            shb(),
            block(4, bytes(8)),  # name resolution
            idb(1),
            block(5, bytes(12)),  # interface statistics
            block(0x0000_0BAD, bytes(9)),  # custom
            epb(0, 1, FRAMES[0]),
            block(10, bytes(20)),  # decryption secrets
        ]
    )
    assert len(read_capture(io.BytesIO(data))) == 1


def test_read_pcapng_ignores_malformed_interface_options() -> None:
    body = struct.pack("<HHI", 1, 0, 0) + option(9, b"\x09") + b"\x0e\x00\xff\x00"
    data = shb() + block(1, body + end_of_options()) + epb(0, 5_000_000, FRAMES[0])
    # the if_tsresol before the broken option still counts
    assert read_capture(io.BytesIO(data)).ts_ns.tolist() == [5_000_000]


def test_units_to_ns_of_extreme_resolutions_does_not_overflow() -> None:
    units = np.array([2**64 - 1, 12345], dtype=np.uint64)
    for tsresol in (0, 9, 19, 28, 29, 127, 0x80, 0x80 | 63, 0x80 | 64, 0xFF):
        assert units_to_ns(units, tsresol).dtype == np.int64


def test_read_truncated_pcapng_keeps_the_frames_before_the_cut(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = pcapng(FRAMES)
    with caplog.at_level(logging.WARNING, logger="fosr.capture"):
        table = read_capture(io.BytesIO(data[:-5]))
    assert table.sport.tolist() == [1000, 1001, 1002]
    last_block = len(data) - len(epb(0, 0, FRAMES[3]))
    assert table.stats.truncated == [("<stream>", last_block)]
    assert len(caplog.records) == 1


def _epb_with_length(length: int, trailer: int) -> bytes:
    good = epb(0, 1, FRAMES[0])
    return struct.pack("<II", 6, length) + good[8:-4] + struct.pack("<I", trailer)


@pytest.mark.parametrize(
    ("bad_block", "message"),
    [
        (_epb_with_length(82, 82), "not a multiple of 4"),
        (_epb_with_length(8, 8), "not a multiple of 4 of at least 12"),
        (_epb_with_length(len(epb(0, 1, FRAMES[0])), 4), "disagrees with its trailing"),
        (_epb_with_length(0x7FFF_FFF0, 0), "implausible"),
        (epb(3, 1, FRAMES[0]), "names interface 3, but its section defines 1"),
        (block(6, struct.pack("<IIIII", 0, 0, 0, 500, 500) + bytes(8)), "runs past"),
        (block(6, bytes(4)), "too short"),
        (shb(version=(2, 0)), "unsupported pcapng version 2.0"),
        (block(0x0A0D0D0A, b"\x01\x02\x03\x04" + bytes(16)), "byte-order magic"),
    ],
)
def test_read_corrupt_pcapng_block_raises_with_offset(
    bad_block: bytes, message: str
) -> None:
    head = shb() + idb(1) + epb(0, 1, FRAMES[0])
    with pytest.raises(CaptureError, match=message) as caught:
        read_capture(io.BytesIO(head + bad_block + epb(0, 2, FRAMES[1])))
    assert caught.value.offset == len(head)
    assert not isinstance(caught.value, TruncatedInputError)


def test_read_pcapng_packet_before_any_interface_raises() -> None:
    with pytest.raises(CaptureError, match="section defines 0"):
        read_capture(io.BytesIO(shb() + spb(FRAMES[0])))
