"""Tests of fosr.synth.pcap: write to memory, read back with fosr.capture."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from synth_builders import clean_flows, make_batch

from fosr.capture import read_capture
from fosr.synth import Frames, build_frames, write_pcap


@pytest.fixture(scope="module")
def frames() -> Frames:
    return build_frames(make_batch(clean_flows()), 5)


@pytest.mark.parametrize("nanosecond", [True, False])
def test_write_pcap_round_trips_frames_and_times(
    frames: Frames, nanosecond: bool
) -> None:
    out = io.BytesIO()
    written = write_pcap(out, frames, nanosecond=nanosecond)
    assert written == len(out.getvalue()) == 24 + 16 * len(frames) + len(frames.data)
    table = read_capture(io.BytesIO(out.getvalue()), strict=True)
    assert len(table) == len(frames)
    expected = frames.ts_ns if nanosecond else frames.ts_ns // 1000 * 1000
    assert np.array_equal(table.ts_ns, expected)


def test_write_pcap_frames_follow_their_record_headers(frames: Frames) -> None:
    out = io.BytesIO()
    write_pcap(out, frames)
    raw, at = out.getvalue(), 24
    for i in range(len(frames)):
        sec, frac, caplen, origlen = struct.unpack_from("<IIII", raw, at)
        assert sec * 10**9 + frac == frames.ts_ns[i]
        assert caplen == origlen == len(frames.frame(i))
        assert raw[at + 16 : at + 16 + caplen] == frames.frame(i)
        at += 16 + caplen
    assert at == len(raw)


def test_write_pcap_cuts_frames_at_snaplen(frames: Frames) -> None:
    out = io.BytesIO()
    write_pcap(out, frames, snaplen_bytes=60)
    raw, at = out.getvalue(), 24
    assert struct.unpack_from("<I", raw, 16) == (60,)
    for i in range(len(frames)):
        _, _, caplen, origlen = struct.unpack_from("<IIII", raw, at)
        assert caplen == min(60, origlen)
        assert raw[at + 16 : at + 16 + caplen] == frames.frame(i)[:60]
        at += 16 + caplen
    assert at == len(raw)


def test_write_pcap_appends_without_header(frames: Frames) -> None:
    out = io.BytesIO()
    write_pcap(out, frames)
    write_pcap(out, frames, header=False)
    table = read_capture(io.BytesIO(out.getvalue()), strict=True)
    assert len(table) == 2 * len(frames)


def test_write_pcap_rejects_zero_snaplen(frames: Frames) -> None:
    with pytest.raises(ValueError, match="snaplen"):
        write_pcap(io.BytesIO(), frames, snaplen_bytes=0)
