"""Tests for fosr/capture/_tcp_options.py: the lock-step option walk."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from fosr.capture._headers import PAD_BYTES
from fosr.capture._tcp_options import TcpOptions, parse_tcp_options

MSS_1460 = b"\x02\x04\x05\xb4"
SACK_PERM = b"\x04\x02"
WSCALE_7 = b"\x03\x03\x07"
NOP, EOL = b"\x01", b"\x00"


def timestamps(value: int, echo: int) -> bytes:
    """Return a Timestamps option."""
    return b"\x08\x0a" + struct.pack(">II", value, echo)


def parse(*areas: bytes) -> TcpOptions:
    """Parse option areas laid end to end in one padded buffer."""
    starts, pos = [], 0
    for area in areas:
        starts.append(pos)
        pos += len(area)
    buf = np.frombuffer(b"".join(areas) + bytes(PAD_BYTES), dtype=np.uint8)
    lengths = np.array([len(area) for area in areas], dtype=np.int64)
    return parse_tcp_options(buf, np.array(starts, dtype=np.int64), lengths)


def test_parse_linux_syn_options() -> None:
    options = parse(MSS_1460 + SACK_PERM + timestamps(11, 0) + NOP + WSCALE_7)
    assert options.kinds.tolist() == [b"\x02\x04\x08\x01\x03"]
    assert (options.mss[0], options.wscale[0]) == (1460, 7)
    assert options.sack_perm.tolist() == [True]
    assert (options.has_ts[0], options.ts_val[0], options.ts_ecr[0]) == (True, 11, 0)


def test_parse_aligned_timestamps_fast_path_matches_the_walk() -> None:
    aligned = NOP + NOP + timestamps(0xFFFF_FFFF, 5)
    # the same layout with a trailing NOP is too long for the fast path
    walked = NOP + NOP + timestamps(0xFFFF_FFFF, 5) + NOP + NOP + NOP + NOP
    options = parse(aligned, walked)
    assert options.kinds.tolist() == [b"\x01\x01\x08", b"\x01\x01\x08\x01\x01\x01\x01"]
    assert options.ts_val.tolist() == [0xFFFF_FFFF] * 2
    assert options.ts_ecr.tolist() == [5, 5]
    assert options.has_ts.tolist() == [True, True]


@pytest.mark.parametrize(
    ("area", "kinds"),
    [
        # End of Option List stops the walk; what follows is padding
        (MSS_1460 + EOL + WSCALE_7 + NOP, b"\x02\x00"),
        # a length below 2, past the area, or missing: the kind is kept
        (NOP + b"\x02\x01" + bytes(5), b"\x01\x02"),
        (NOP + b"\x02\x08\x05\xb4", b"\x01\x02"),
        (NOP + NOP + NOP + b"\x1e", b"\x01\x01\x01\x1e"),
        # unknown kinds are stepped over by their length
        (b"\x1e\x06abcd" + MSS_1460, b"\x1e\x02"),
        (b"", b""),
    ],
)
def test_parse_walk_stops_where_it_must(area: bytes, kinds: bytes) -> None:
    options = parse(area)
    assert options.kinds.tolist() == [kinds]


def test_parse_values_need_their_proper_length() -> None:
    # an MSS option of 6 bytes is recorded as a kind but gives no value
    options = parse(b"\x02\x06\x05\xb4\x00\x00" + b"\x03\x04\x07\x00")
    assert options.kinds.tolist() == [b"\x02\x03"]
    assert (options.mss[0], options.wscale[0]) == (0, -1)


def test_parse_window_scale_above_14_reads_as_14() -> None:
    options = parse(b"\x03\x03\xff" + NOP, b"\x03\x03\x0e" + NOP)
    assert options.wscale.tolist() == [14, 14]


def test_parse_repeated_option_last_one_wins() -> None:
    options = parse(MSS_1460 + b"\x02\x04\x02\x18")
    assert options.mss.tolist() == [536]


def test_parse_full_forty_byte_areas() -> None:
    options = parse(NOP * 40, EOL * 40, NOP * 39 + b"\x02")
    assert options.kinds.tolist() == [NOP * 40, EOL, NOP * 39 + b"\x02"]


def test_parse_equal_layouts_share_one_bytes_object() -> None:
    long = MSS_1460 + NOP + WSCALE_7 + NOP + NOP + timestamps(1, 2) + SACK_PERM + EOL
    options = parse(MSS_1460 + NOP, MSS_1460 + NOP, long, long)
    assert options.kinds[0] is options.kinds[1]
    assert options.kinds[2] is options.kinds[3]
    assert options.kinds[2] == b"\x02\x01\x03\x01\x01\x08\x04\x00"
