"""Pace generated frames against the wall clock.

How this works
--------------
Two threads, both off the event loop (PLATFORM.md §2.4: asyncio's timers
round to a millisecond and collapse beyond ~10k events per second):

- the *producer* runs the engine (:class:`fosr.pipeline.Engine`) and queues
  its chunks, staying ``lead_s`` of wall time ahead of the clock;
- the *sender* takes the chunks in order, sleeps until the first frame that
  is not yet due, then hands everything due to every output in one call,
  so a burst of due frames costs one call per output, not one per frame.
  It sleeps with :func:`time.sleep` to 200 µs before the due time and spins
  the rest, which keeps the release within a millisecond of its time.

The :class:`GenClock` maps the monotonic clock onto generated time:
``generated = origin + (monotonic - anchor) x speed``.  At speed 1 it starts
on the wall clock, so frames are stamped with the time they leave.

Caps: a token bucket per cap (packets and bits per second of wall time)
lets frames through; frames held back by a cap wait, and their lag grows.
When a frame is later than ``max_lag_s`` the policy applies: ``catch-up``
sends it anyway, in a burst as fast as the caps allow; ``drop`` drops it
and counts it.  The lag of every frame sent is recorded.

A restart (reload, resume, a new rate) discards what is queued and starts a
new engine at the current generated time; flows in progress at that moment
end early.  TODO: carry the remaining frames of the old engine's flows over
to the new one so that no connection is cut at a reload.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.flows.table import FlowTable
from fosr.pipeline import Chunk, take_frames
from fosrd.outputs import Output

__all__ = ["GenClock", "Pacer", "SenderStats", "TokenBucket"]

Array = npt.NDArray[Any]
log = logging.getLogger(__name__)

SPIN_S = 200e-6
SWITCH_INTERVAL_S = 0.0005
MAX_SLEEP_S = 0.05


class GenClock:
    """Generated time as a function of the monotonic clock.

    ``origin_s`` is the generated time (Unix seconds) at the moment of
    creation; ``monotonic`` may be replaced for tests.
    """

    def __init__(
        self,
        origin_s: float,
        speed: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._mono = monotonic
        self._lock = threading.Lock()
        self._anchor = monotonic()
        self._origin_ns = int(origin_s * 1e9)
        self.speed = float(speed)

    def now_ns(self) -> int:
        """Return the generated time now, in ns since the epoch."""
        with self._lock:
            return self._origin_ns + int(
                (self._mono() - self._anchor) * self.speed * 1e9
            )

    def wall_delay_s(self, generated_ns: int) -> float:
        """Return the monotonic seconds until ``generated_ns`` comes."""
        with self._lock:
            due = self._anchor + (generated_ns - self._origin_ns) / 1e9 / self.speed
        return due - self._mono()

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on, without a jump in generated time."""
        now = self.now_ns()
        with self._lock:
            self._anchor = self._mono()
            self._origin_ns = now
            self.speed = float(speed)

    def monotonic(self) -> float:
        """Return the clock's monotonic time."""
        return self._mono()


class TokenBucket:
    """Allow ``rate`` units per second with a burst of ``burst`` units."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.tokens = self.burst
        self.stamp = now

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last call."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_s(self, units: float) -> float:
        """Return the seconds until ``units`` tokens are there."""
        return max(0.0, (units - self.tokens) / self.rate)


@dataclass
class SenderStats:
    """What the sender counts; read from other threads without a lock."""

    packets: int = 0
    bytes: int = 0
    flows: int = 0
    dropped_late: int = 0
    skipped: int = 0
    chunks: int = 0
    heartbeat: int = 0
    lag_s: float = 0.0
    queue_chunks: int = 0
    queue_packets: int = 0
    generated_until_ns: int = 0


class Pacer:
    """The producer and sender threads around one engine at a time.

    ``make_chunks(start_s)`` returns the engine's chunk iterator from a
    generated time; ``outputs`` receive every release; ``on_release(lags,
    chunk)`` is called after each release with the lags in seconds (for
    metrics), from the sender thread.
    """

    def __init__(
        self,
        make_chunks: Callable[[float], Iterator[Chunk]],
        outputs: Sequence[Output],
        clock: GenClock,
        *,
        lead_s: float = 2.0,
        max_pps: float = 0.0,
        max_bps: float = 0.0,
        behind: str = "catch-up",
        max_lag_s: float = 1.0,
        on_release: Callable[[Array, Chunk], None] | None = None,
    ) -> None:
        self.outputs = list(outputs)
        self.clock = clock
        self.lead_s = lead_s
        self.behind = behind
        self.max_lag_s = max_lag_s
        self.on_release = on_release
        self.stats = SenderStats()
        self.paused = threading.Event()
        self.error: BaseException | None = None
        self._caps = (max_pps, max_bps)
        self._buckets: list[tuple[TokenBucket, bool]] = []
        self._set_caps(max_pps, max_bps)
        self._stop = threading.Event()
        self._generation = 0
        self._queue: queue.Queue[tuple[int, Chunk]] = queue.Queue(maxsize=64)
        self._producer: threading.Thread | None = None
        self._make_chunks = make_chunks
        self._sender = threading.Thread(target=self._send_loop, name="fosrd-sender")
        self._lock = threading.Lock()
        self._counts = threading.Lock()

    # control, from the event loop

    def start(self) -> None:
        """Start generating at the clock's time and sending.

        Also shortens the interpreter's thread switch interval (process
        wide) from 5 ms to 0.5 ms: the sender waking from its sleep
        otherwise waits up to 5 ms for the engine thread to release the
        GIL, which would be the lag of every frame due then.
        """
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._start_producer(self.clock.now_ns() / 1e9)
        self._sender.start()

    def restart(
        self, make_chunks: Callable[[float], Iterator[Chunk]] | None = None
    ) -> None:
        """Start a new engine at the current generated time; drop what is queued."""
        with self._lock:
            if make_chunks is not None:
                self._make_chunks = make_chunks
            self._start_producer(self.clock.now_ns() / 1e9)

    def set_caps(self, max_pps: float, max_bps: float) -> None:
        """Change the caps (0: none)."""
        self._set_caps(max_pps, max_bps)

    def stop(self, timeout_s: float = 3.0) -> None:
        """Stop both threads; the sender finishes the release it is in."""
        self._stop.set()
        self._generation += 1
        if self._sender.is_alive():
            self._sender.join(timeout_s)

    @property
    def alive(self) -> bool:
        """Return whether the sender runs."""
        return self._sender.is_alive()

    # the producer

    def _start_producer(self, start_s: float) -> None:
        self._generation += 1
        generation = self._generation
        with self._counts:
            for chunk in _drain(self._queue):
                self.stats.queue_packets -= len(chunk.frames)
        chunks = self._make_chunks(start_s)
        self._producer = threading.Thread(
            target=self._produce,
            args=(chunks, generation),
            name=f"fosrd-engine-{generation}",
            daemon=True,
        )
        self._producer.start()

    def _produce(self, chunks: Iterator[Chunk], generation: int) -> None:
        try:
            for chunk in chunks:
                # hand the chunk over lead_s before its first frame is due
                # (waiting for its end instead made the first part of every
                # batch late by batch_s - lead_s)
                first_ns = (
                    int(chunk.frames.ts_ns[0]) if len(chunk.frames) else chunk.end_ns
                )
                while generation == self._generation and not self._stop.is_set():
                    ahead_s = self.clock.wall_delay_s(first_ns)
                    if ahead_s <= self.lead_s:
                        break
                    time.sleep(min(0.05, ahead_s - self.lead_s))
                while generation == self._generation and not self._stop.is_set():
                    try:
                        self._queue.put((generation, chunk), timeout=0.05)
                        break
                    except queue.Full:
                        continue
                if generation != self._generation or self._stop.is_set():
                    return
                with self._counts:
                    self.stats.queue_packets += len(chunk.frames)
                self.stats.generated_until_ns = chunk.end_ns
                self.stats.queue_chunks = self._queue.qsize()
        except BaseException as error:  # reported by the daemon, which stops
            log.exception("generation failed")
            self.error = error
            self._stop.set()

    # the sender

    def _send_loop(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    generation, chunk = self._queue.get(timeout=0.05)
                except queue.Empty:
                    self.stats.heartbeat += 1
                    continue
                self.stats.queue_chunks = self._queue.qsize()
                if generation == self._generation:
                    self._release(chunk, generation)
                with self._counts:
                    self.stats.queue_packets -= len(chunk.frames)
        except BaseException as error:
            log.exception("the sender failed")
            self.error = error
            self._stop.set()

    def _release(self, chunk: Chunk, generation: int) -> None:
        frames = chunk.frames
        ts = frames.ts_ns
        first = _first_frames(chunk)
        pos, n = 0, len(frames)
        while pos < n:
            self.stats.heartbeat += 1
            if self._stop.is_set() or generation != self._generation:
                return
            if self.paused.is_set():
                time.sleep(0.01)
                continue
            now = self.clock.now_ns()
            due = int(np.searchsorted(ts, now, side="right"))
            if due <= pos:
                _sleep_until(self.clock, int(ts[pos]))
                continue
            due = pos + self._allowed(frames, pos, due)
            if due <= pos:
                continue
            lags = (now - ts[pos:due]) / 1e9 / self.clock.speed
            index = np.arange(pos, due)
            if self.behind == "drop":
                late = lags > self.max_lag_s
                if late.any():
                    self.stats.dropped_late += int(late.sum())
                    index = index[~late]
                    lags = lags[~late]
            self._emit(chunk, index, first)
            if self.on_release is not None and len(lags):
                self.on_release(lags, chunk)
            if len(lags):
                self.stats.lag_s = float(lags[-1])
            pos = due
        self.stats.chunks += 1

    def _emit(self, chunk: Chunk, index: Array, first: Array) -> None:
        if len(index) == 0:
            return
        sub = take_frames(chunk.frames, index)
        starting = np.flatnonzero((first >= index[0]) & (first <= index[-1]))
        # flows are numbered in start order, so those starting here are a run
        flows = chunk.flows.take(starting) if len(starting) else FlowTable.empty()
        first_flow = chunk.first_flow + (int(starting[0]) if len(starting) else 0)
        piece = Chunk(sub, flows, int(sub.ts_ns[-1]) + 1, first_flow)
        for output in self.outputs:
            try:
                output.emit(piece)
            except Exception:  # an output must not stop the others
                log.exception("output %s failed", output.name)
                output.stats.count_error("exception")
        self.stats.packets += len(sub)
        self.stats.bytes += int(sub.offsets[-1])
        self.stats.flows += len(flows)
        for bucket, is_bits in self._buckets:
            bucket.tokens -= int(sub.offsets[-1]) * 8 if is_bits else len(sub)

    def _allowed(self, frames: Any, pos: int, due: int) -> int:
        """Return how many of frames[pos:due] the caps let through now."""
        if not self._buckets:
            return due - pos
        now = self.clock.monotonic()
        allowed = due - pos
        wait = 0.0
        for bucket, is_bits in self._buckets:
            bucket.refill(now)
            if is_bits:
                sizes = np.cumsum(np.diff(frames.offsets[pos : due + 1])) * 8
                fit = int(np.searchsorted(sizes, bucket.tokens, side="right"))
                if fit == 0:
                    wait = max(wait, bucket.wait_s(float(sizes[0])))
            else:
                fit = int(bucket.tokens)
                if fit == 0:
                    wait = max(wait, bucket.wait_s(1.0))
            allowed = min(allowed, fit)
        if allowed == 0:
            time.sleep(min(max(wait, 50e-6), MAX_SLEEP_S))
        return allowed

    def _set_caps(self, max_pps: float, max_bps: float) -> None:
        now = self.clock.monotonic()
        buckets: list[tuple[TokenBucket, bool]] = []
        # a burst of 10 ms of traffic: smooth enough, few wake-ups
        if max_pps > 0:
            buckets.append((TokenBucket(max_pps, max_pps / 100, now), False))
        if max_bps > 0:
            buckets.append((TokenBucket(max_bps, max(max_bps / 100, 12112), now), True))
        self._buckets = buckets


def _first_frames(chunk: Chunk) -> Array:
    """Return, per ground-truth flow of the chunk, the index of its first frame."""
    n = len(chunk.flows)
    first = np.full(n, -1, np.int64)
    if n == 0 or len(chunk.frames) == 0:
        return first
    rows = chunk.frames.flow - chunk.first_flow
    mine = np.flatnonzero((rows >= 0) & (rows < n))
    # the first occurrence of each flow: reversed assignment keeps the lowest
    first[rows[mine[::-1]]] = mine[::-1]
    return first


def _sleep_until(clock: GenClock, generated_ns: int) -> None:
    delay = clock.wall_delay_s(generated_ns)
    if delay > SPIN_S:
        time.sleep(min(delay - SPIN_S, MAX_SLEEP_S))
        return
    deadline = clock.monotonic() + delay
    while clock.monotonic() < deadline:
        pass


def _drain(q: queue.Queue[tuple[int, Chunk]]) -> list[Chunk]:
    """Empty the queue; return the chunks it held."""
    chunks = []
    while True:
        try:
            chunks.append(q.get_nowait()[1])
        except queue.Empty:
            return chunks
