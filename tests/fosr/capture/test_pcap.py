"""Tests for fosr/capture/_pcap.py: walking pcap files and their records."""

from __future__ import annotations

import io
import logging
import struct

import numpy as np
import pytest
from capture_builders import (
    pcap,
    record_offsets,
)
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from fosr.capture import read_capture
from fosr.errors import CaptureError, TruncatedInputError

ETHER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
FRAMES = [bytes(ETHER / IP() / UDP(sport=1000 + i, dport=53)) for i in range(4)]
T0_NS = 1_700_000_000_123_456_789


@pytest.mark.parametrize("big_endian", [False, True], ids=["little", "big"])
@pytest.mark.parametrize("nanosecond", [False, True], ids=["usec", "nsec"])
def test_read_pcap_byte_orders_and_resolutions(
    big_endian: bool, nanosecond: bool
) -> None:
    frames = [(T0_NS + i * 1_000_001, f) for i, f in enumerate(FRAMES)]
    data = pcap(frames, big_endian=big_endian, nanosecond=nanosecond)
    table = read_capture(io.BytesIO(data))
    expected = np.array([ts for ts, _ in frames])
    if not nanosecond:
        expected = expected // 1000 * 1000
    assert table.ts_ns.tolist() == expected.tolist()
    assert table.sport.tolist() == [1000, 1001, 1002, 1003]
    assert table.frame.tolist() == [0, 1, 2, 3]
    assert table.wire_len.tolist() == [len(f) for f in FRAMES]
    assert table.stats.frames == table.stats.decoded == 4
    assert table.stats.bytes_read == len(data)
    assert table.stats.truncated == []


def test_read_pcap_wire_length_is_kept_apart_from_captured_length() -> None:
    table = read_capture(io.BytesIO(pcap([(0, FRAMES[0], 1514)])))
    assert table.wire_len.tolist() == [1514]


def test_read_pcap_fcs_bits_of_the_link_type_field_are_ignored() -> None:
    # bits 26-31 of the link type field tell whether frames carry an FCS
    table = read_capture(io.BytesIO(pcap(FRAMES, link_type=0x1400_0001)))
    assert len(table) == 4
    assert table.stats.link_types == {1: 4}


def test_read_pcap_of_no_frames() -> None:
    table = read_capture(io.BytesIO(pcap([])))
    assert len(table) == 0
    assert table.stats.frames == 0
    assert table.stats.truncated == []


@pytest.mark.parametrize("cut_bytes", [1, 8, 16, 20])
def test_read_truncated_pcap_keeps_the_frames_before_the_cut(
    cut_bytes: int, caplog: pytest.LogCaptureFixture
) -> None:
    data = pcap(FRAMES)
    last = record_offsets(data)[-1]
    with caplog.at_level(logging.WARNING, logger="fosr.capture"):
        table = read_capture(io.BytesIO(data[: last + cut_bytes]))
    assert table.sport.tolist() == [1000, 1001, 1002]
    assert table.stats.truncated == [("<stream>", last)]
    assert len(caplog.records) == 1
    assert "<stream>" in caplog.text and f"offset {last}" in caplog.text


def test_read_truncated_strict_raises() -> None:
    data = pcap(FRAMES)
    last = record_offsets(data)[-1]
    with pytest.raises(TruncatedInputError) as caught:
        read_capture(io.BytesIO(data[: last + 3]), strict=True)
    assert caught.value.offset == last


def test_read_trailing_junk_shorter_than_a_record_header_is_a_cut() -> None:
    data = pcap(FRAMES)
    table = read_capture(io.BytesIO(data + b"junk"))
    assert len(table) == 4
    assert table.stats.truncated == [("<stream>", len(data))]


def test_read_corrupt_pcap_record_length_raises_with_offset() -> None:
    data = bytearray(pcap(FRAMES))
    second = record_offsets(bytes(data))[1]
    struct.pack_into("<I", data, second + 8, 262_145)
    with pytest.raises(CaptureError) as caught:
        read_capture(io.BytesIO(bytes(data)))
    assert caught.value.offset == second
    assert "262145" in str(caught.value)
    assert not isinstance(caught.value, TruncatedInputError)


def test_read_pcap_of_unsupported_version_raises() -> None:
    data = bytearray(pcap(FRAMES))
    struct.pack_into("<H", data, 4, 3)
    with pytest.raises(CaptureError, match="version 3.4"):
        read_capture(io.BytesIO(bytes(data)))
