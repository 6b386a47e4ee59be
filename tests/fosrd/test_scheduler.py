"""Pacing: frames leave on time, in order, under caps, pause and restart."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
from pipeline_fakes import EvenPackets, HashHosts, ListFlows, flow_table

from fosr.pipeline import Chunk, Engine
from fosrd.outputs import Output
from fosrd.scheduler import GenClock, Pacer


class Recorder(Output):
    kind = "test"

    def __init__(self) -> None:
        super().__init__("recorder")
        self.ts: list[np.ndarray] = []
        self.sent_at: list[float] = []
        self.flows = 0
        self.closed = False

    def emit(self, chunk: Chunk) -> None:
        self.ts.append(chunk.frames.ts_ns.copy())
        self.sent_at.append(time.monotonic())
        self.flows += len(chunk.flows)
        self.stats.packets += len(chunk.frames)

    def close(self) -> None:
        self.closed = True


def _chunks(  # type: ignore[no-untyped-def]
    start: float, n: int = 400, span: float = 20.0, late_s: float = 0.0
):
    """Return an engine factory over ``n`` flows; ``late_s`` starts it early."""
    table = flow_table(n, start, span)

    def make(start_s: float) -> Iterator[Chunk]:
        engine = Engine(
            ListFlows(table), EvenPackets(), HashHosts(), seed=0, batch_s=1.0
        )
        return engine.chunks(start_s - late_s)

    return make


def _run(pacer: Pacer, seconds: float) -> None:
    pacer.start()
    try:
        time.sleep(seconds)
    finally:
        pacer.stop()


def test_frames_leave_in_order_and_on_time_at_speed_four() -> None:
    now = time.time()
    clock = GenClock(now, speed=4.0)
    out = Recorder()
    lags: list[np.ndarray] = []
    pacer = Pacer(
        _chunks(now + 0.5, span=4.0),
        [out],
        clock,
        lead_s=1.0,
        on_release=lambda lag, _: lags.append(lag),
    )
    _run(pacer, 2.5)  # 10 generated seconds: every flow has ended
    ts = np.concatenate(out.ts)
    assert np.all(np.diff(ts) >= 0)
    assert out.flows == 400
    assert len(ts) == pacer.stats.packets > 1000
    lag = np.concatenate(lags)
    assert np.median(lag) < 0.01
    assert pacer.error is None


def test_packet_cap_holds_the_rate() -> None:
    now = time.time()
    clock = GenClock(now, speed=10.0)
    out = Recorder()
    pacer = Pacer(_chunks(now, n=2000, span=5.0), [out], clock, max_pps=2000.0)
    _run(pacer, 1.5)
    sent = pacer.stats.packets
    assert 1500 < sent <= 2000 * 1.5 + 20 + 1  # 1.5 s at 2000/s plus the burst


def test_drop_policy_drops_what_is_too_late() -> None:
    now = time.time()
    clock = GenClock(now, speed=1.0)
    out = Recorder()
    late = _chunks(now - 5.0, n=300, span=6.0, late_s=5.0)  # five seconds behind
    pacer = Pacer(late, [out], clock, behind="drop", max_lag_s=0.5)
    _run(pacer, 1.5)
    assert pacer.stats.dropped_late > 0
    assert pacer.stats.packets > 0


def test_pause_stops_and_resume_restarts_at_the_current_time() -> None:
    now = time.time()
    clock = GenClock(now, speed=10.0)
    out = Recorder()
    pacer = Pacer(_chunks(now, n=3000, span=30.0), [out], clock, lead_s=0.3)
    pacer.start()
    try:
        time.sleep(0.5)
        pacer.paused.set()
        time.sleep(0.1)
        held = pacer.stats.packets
        time.sleep(0.5)
        assert pacer.stats.packets == held
        resumed_at = clock.now_ns()
        pacer.restart()
        pacer.paused.clear()
        time.sleep(0.5)
        assert pacer.stats.packets > held
    finally:
        pacer.stop()
    later = np.concatenate(out.ts)[held:]
    # nothing stamped inside the pause is sent after it
    assert later.min() >= resumed_at - 1e9  # the first restarted chunk starts then


def test_speed_change_keeps_generated_time_continuous() -> None:
    ticks = iter(np.arange(0, 100, 1.0))
    clock = GenClock(1000.0, speed=2.0, monotonic=lambda: float(next(ticks)))
    # anchor read at 0; the next read is 1 s later -> 2 generated seconds
    assert clock.now_ns() == int(1002e9)
    clock.set_speed(10.0)  # reads 2 (now: 1004) and re-anchors at 3
    assert clock.now_ns() == int(1014e9)
