"""Tests for fosr/capture/_table.py: the packet table and address formatting."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from capture_builders import read_frames
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from fosr.capture import (
    PACKET_COLUMNS,
    PacketTable,
    ReadStats,
    format_address,
    format_addresses,
)
from fosr.capture._table import PACKET_DTYPES

ETHER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def mixed_table(keep_payload: bool = False) -> PacketTable:
    """Return a table of six UDP packets, alternately IPv4 and IPv6."""
    frames = []
    for i in range(6):
        ip = IP(src=f"10.0.0.{i}") if i % 2 == 0 else IPv6(src=f"2001:db8::{i}")
        frames.append(bytes(ETHER / ip / UDP(sport=i) / (bytes([i]) * (i + 1))))
    return read_frames(frames, keep_payload=keep_payload)


def test_table_columns_have_their_documented_dtypes() -> None:
    table = mixed_table()
    assert tuple(table.columns()) == PACKET_COLUMNS
    for name, column in table.columns().items():
        assert column.dtype == PACKET_DTYPES[name], name
        assert len(column) == len(table) == 6
    assert table.src.shape == table.dst.shape == (6, 16)


def test_table_take_rows_by_mask_index_and_slice() -> None:
    table = mixed_table()
    assert table.take(table.ip_version == 6).sport.tolist() == [1, 3, 5]
    assert table.take(np.array([4, 0])).sport.tolist() == [4, 0]
    part = table.take(slice(1, 3))
    assert part.sport.tolist() == [1, 2]
    assert part.stats is table.stats
    assert part.paths == table.paths


def test_table_payload_needs_kept_bytes() -> None:
    assert mixed_table(keep_payload=True).payload(3) == bytes([3]) * 4
    with pytest.raises(ValueError, match="keep_payload"):
        mixed_table().payload(3)


def test_table_payload_of_taken_rows() -> None:
    table = mixed_table(keep_payload=True).take(np.array([5, 2]))
    assert [table.payload(0), table.payload(1)] == [bytes([5]) * 6, bytes([2]) * 3]


def test_table_empty() -> None:
    table = PacketTable.empty()
    assert len(table) == 0
    assert table.src.shape == (0, 16)
    assert table.stats == ReadStats()


def test_table_rejects_columns_of_the_wrong_type_or_length() -> None:
    columns = mixed_table().columns()
    stats = ReadStats()
    with pytest.raises(ValueError, match="'ttl'"):
        bad = {**columns, "ttl": columns["ttl"].astype(np.int64)}
        PacketTable(paths=(), data=None, stats=stats, **bad)
    with pytest.raises(ValueError, match="'proto' has 5 rows"):
        PacketTable(
            paths=(),
            data=None,
            stats=stats,
            **{**columns, "proto": columns["proto"][:5]},
        )


@pytest.mark.parametrize(
    "text", ["192.0.2.1", "0.0.0.0", "2001:db8::1", "::", "fe80::1:2:3:4", "::1"]
)
def test_format_address_round_trips(text: str) -> None:
    address = ipaddress.ip_address(text)
    if address.version == 4:
        address = ipaddress.IPv6Address(f"::ffff:{text}")
    raw = np.frombuffer(address.packed, dtype=np.uint8)
    assert format_address(raw) == text


def test_format_address_needs_16_bytes() -> None:
    with pytest.raises(ValueError, match="16 bytes, not 4"):
        format_address(np.zeros(4, dtype=np.uint8))


def test_format_addresses_formats_each_row() -> None:
    table = mixed_table()
    texts = format_addresses(np.concatenate([table.src, table.src]))
    expected = ["10.0.0.0", "2001:db8::1", "10.0.0.2", "2001:db8::3", "10.0.0.4"]
    assert texts.tolist() == [*expected, "2001:db8::5"] * 2
    assert texts.dtype == object


def test_format_addresses_of_no_rows() -> None:
    assert format_addresses(np.zeros((0, 16), dtype=np.uint8)).tolist() == []
    with pytest.raises(ValueError, match=r"\(N, 16\) array"):
        format_addresses(np.zeros((3, 4), dtype=np.uint8))
