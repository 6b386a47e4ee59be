"""Tests for fosr/capture/_formats.py: telling the formats apart."""

from __future__ import annotations

import io

import pytest
from capture_builders import (
    pcap,
    shb,
)

from fosr.capture import read_capture
from fosr.errors import CaptureError


@pytest.mark.parametrize(
    "data",
    [b"", b"\xd4\xc3", pcap([])[:10], b"\x0a\x0d\x0d\x0a", shb()[:20]],
    ids=["empty", "half-magic", "half-pcap-header", "pcapng-magic", "half-shb"],
)
def test_read_file_cut_inside_its_header_is_truncated_at_0(data: bytes) -> None:
    table = read_capture(io.BytesIO(data))
    assert len(table) == 0
    assert table.stats.truncated == [("<stream>", 0)]


@pytest.mark.parametrize(
    "data",
    [b"GIF89a" + bytes(100), b"\x00" * 24, b"ab", b"Hello, world!\n"],
    ids=["gif", "zeros", "two-bytes", "text"],
)
def test_read_not_a_capture_raises_at_offset_0(data: bytes) -> None:
    with pytest.raises(CaptureError) as caught:
        read_capture(io.BytesIO(data))
    assert caught.value.offset == 0
    assert "not a pcap or pcapng file" in str(caught.value)
