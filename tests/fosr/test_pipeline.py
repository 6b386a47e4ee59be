"""The generation engine: chunks in time order, complete, and repeatable."""

from __future__ import annotations

from itertools import islice

import numpy as np
from pipeline_fakes import EvenPackets, HashHosts, ListFlows, flow_table

from fosr.pipeline import Engine, merge_frames, take_frames
from fosr.synth import Frames

T0 = 1_700_000_000.0


def _engine(n: int = 300, seed: int = 1) -> Engine:
    flows = ListFlows(flow_table(n, T0, 20.0))
    return Engine(flows, EvenPackets(), HashHosts(), seed=seed, batch_s=2.0)


def test_chunks_are_time_ordered_cover_their_span_and_hold_every_packet() -> None:
    engine = _engine()
    chunks = list(islice(engine.chunks(T0), 14))  # 28 s: every flow has ended
    begin_ns = int(T0 * 1e9)
    total_flows = 0
    for chunk in chunks:
        ts = chunk.frames.ts_ns
        assert np.all(np.diff(ts) >= 0)
        assert np.all(ts < chunk.end_ns) and np.all(ts >= begin_ns)
        begin_ns = chunk.end_ns
        total_flows += len(chunk.flows)
    assert total_flows == 300
    truth_packets = sum(
        int(c.flows.fwd_packets.sum() + c.flows.bwd_packets.sum()) for c in chunks
    )
    assert truth_packets == sum(len(c.frames) for c in chunks)


def test_ground_truth_counts_the_frames_built() -> None:
    chunks = list(islice(_engine(50).chunks(T0), 14))
    flows = [c.flows for c in chunks]
    frames_flow = np.concatenate([c.frames.flow for c in chunks])
    lengths = np.concatenate([np.diff(c.frames.offsets) for c in chunks])
    per_flow = np.bincount(frames_flow, minlength=50)
    per_flow_bytes = np.bincount(frames_flow, lengths - 14, minlength=50)
    truth_packets = np.concatenate([f.fwd_packets + f.bwd_packets for f in flows])
    truth_bytes = np.concatenate([f.fwd_bytes + f.bwd_bytes for f in flows])
    assert np.array_equal(per_flow, truth_packets)
    assert np.array_equal(per_flow_bytes, truth_bytes)


def test_same_seed_same_bytes_and_another_seed_other_bytes() -> None:
    a = list(islice(_engine(seed=3).chunks(T0), 5))
    b = list(islice(_engine(seed=3).chunks(T0), 5))
    c = list(islice(_engine(seed=4).chunks(T0), 5))
    assert all(
        np.array_equal(x.frames.data, y.frames.data) for x, y in zip(a, b, strict=True)
    )
    assert not all(
        np.array_equal(x.frames.data, z.frames.data) for x, z in zip(a, c, strict=True)
    )


def _frames(ts: list[int], sizes: list[int], tag: int) -> Frames:
    data = np.concatenate([np.full(s, tag + i, np.uint8) for i, s in enumerate(sizes)])
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    flow = np.arange(len(ts), dtype=np.int64) + tag
    return Frames(data, offsets, np.array(ts, np.int64), flow)


def test_merge_and_take_keep_each_frame_whole() -> None:
    a = _frames([1, 5, 9], [3, 4, 5], 10)
    b = _frames([2, 5, 7], [6, 7, 8], 20)
    merged = merge_frames(a, b)
    assert merged.ts_ns.tolist() == [1, 2, 5, 5, 7, 9]
    assert merged.flow.tolist() == [10, 20, 11, 21, 22, 12]  # a first on ties
    for i, flow in enumerate(merged.flow.tolist()):
        frame = merged.frame(i)
        assert set(frame) == {flow}
    picked = take_frames(merged, np.array([4, 0]))
    assert picked.frame(0) == bytes([22] * 8) and picked.frame(1) == bytes([10] * 3)


class _FailsOnce(EvenPackets):
    def __init__(self) -> None:
        self.calls = 0

    def sample(self, flows, rng):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == 2:
            raise IndexError("walk left the table")
        return super().sample(flows, rng)


def test_a_failing_packet_batch_is_dropped_and_counted() -> None:
    table = flow_table(200, T0, 10.0)
    engine = Engine(ListFlows(table), _FailsOnce(), HashHosts(), seed=1, batch_s=2.0)
    chunks = list(islice(engine.chunks(T0), 8))
    assert engine.failed_flows > 0
    assert sum(len(c.flows) for c in chunks) == 200 - engine.failed_flows
