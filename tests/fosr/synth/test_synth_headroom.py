"""Frames built with headroom, and pcap records written into it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from synth_builders import T0, Flow, clean_flows, make_batch

from fosr.capture import read_capture
from fosr.synth import Frames, build_frames, iter_frames, write_pcap
from fosr.synth._copy import copy_segments


def packed(frames: Frames) -> Frames:
    """Return the same frames back to back, without headroom."""
    data = np.frombuffer(b"".join(frames.frame(i) for i in range(len(frames))), "u1")
    offsets = np.concatenate([[0], np.cumsum(frames.lengths())])
    return Frames(data.copy(), offsets, frames.ts_ns, frames.flow)


@pytest.mark.parametrize("with_payloads", [False, True])
def test_headroom_frames_carry_the_same_headers(with_payloads: bool) -> None:
    batch = make_batch(clean_flows(), with_payloads=with_payloads)
    plain = build_frames(batch, 4)
    roomy = build_frames(batch, 4, headroom_bytes=16)
    assert roomy.headroom_bytes == 16
    assert np.array_equal(plain.lengths(), roomy.lengths())
    assert np.array_equal(np.diff(roomy.offsets), roomy.lengths() + 16)
    for i in range(len(plain)):
        a, b = plain.frame(i), roomy.frame(i)
        if with_payloads:
            assert a == b
        else:  # random payloads, and so checksums, differ
            assert a[:34] == b[:34]


def test_write_pcap_from_headroom_equals_the_copying_path() -> None:
    batch = make_batch(clean_flows())
    chunks = list(iter_frames(batch, 6, 5, headroom_bytes=16))
    fast, slow = io.BytesIO(), io.BytesIO()
    for i, chunk in enumerate(chunks):
        expected = packed(chunk)  # before write_pcap fills the headroom
        write_pcap(fast, chunk, header=i == 0)
        write_pcap(slow, expected, header=i == 0)
    assert fast.getvalue() == slow.getvalue()
    table = read_capture(io.BytesIO(fast.getvalue()), strict=True)
    assert len(table) == batch.n_packets


def test_write_pcap_cuts_headroom_frames_at_snaplen() -> None:
    frames = build_frames(make_batch(clean_flows()), 2, headroom_bytes=16)
    cut, whole = io.BytesIO(), io.BytesIO()
    write_pcap(cut, frames, snaplen_bytes=60)
    write_pcap(whole, packed(frames), snaplen_bytes=60)
    assert cut.getvalue() == whole.getvalue()


def test_iter_frames_rejects_negative_headroom() -> None:
    with pytest.raises(ValueError, match="headroom"):
        next(iter_frames(make_batch(clean_flows()), 0, headroom_bytes=-1))


@pytest.mark.parametrize("size", [0, 1, 7, 31, 32, 33, 255, 256, 257, 1500])
def test_copy_segments_copies_every_length(size: int) -> None:
    rng = np.random.default_rng(size)
    length = np.array([size, 3, size, 40, 300], np.int64)
    src = rng.integers(0, 256, 4000, np.uint8)
    src_at = np.array([0, 1700, 1710, 3000, 3100])
    dst = np.zeros(5000, np.uint8)
    dst_at = np.cumsum(length + 5) - length
    copy_segments(dst, dst_at, src, src_at, length)
    expected = np.zeros(5000, np.uint8)
    for d, s, n in zip(dst_at, src_at, length, strict=True):
        expected[d : d + n] = src[s : s + n]
    assert np.array_equal(dst, expected)


def test_long_payloads_are_copied_whole() -> None:
    body = bytes(range(256)) * 5 + b"end"
    flow = Flow(17, "10.0.0.1", "10.0.0.2", 1, 2, [(T0, True, 0, len(body))])
    flow.payloads = [body]
    frames = build_frames(make_batch([flow], with_payloads=True))
    assert frames.frame(0)[-len(body) :] == body
