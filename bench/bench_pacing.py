"""Scheduling lag and rate of fosrd's sender at fixed packet rates.

Feeds the daemon's pacer (fosrd.scheduler.Pacer) with Poisson arrivals of
small frames at each rate, for ``--seconds`` of wall time, and records for
every frame how late it was handed to the outputs (lag: release time minus
due time).  The output is a null sink by default, or the real pcap ring
with ``--ring``, so the figures are the scheduler's own.  Reports the lag
median, p99 and p99.9, and the rate held (frames released over the run
against the rate asked).  Beside it, in the same run, the pacing the
PLATFORM notes measured as a baseline: one asyncio ``call_at`` per frame.

    .venv/bin/python bench/bench_pacing.py --rates 10000 100000 --seconds 20
    .venv/bin/python bench/bench_pacing.py --rates 10000 --seconds 300  # 5 min

Goal (issue 7): p99 at most 1 ms at 10k and 100k packets per second; rate
within 1 % over 5 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fosr.flows.table import FlowTable
from fosr.pipeline import Chunk
from fosr.synth import Frames
from fosrd.outputs import Output
from fosrd.scheduler import GenClock, Pacer

FRAME = 60


class NullOutput(Output):
    kind = "null"

    def emit(self, chunk: Chunk) -> None:
        self.stats.packets += len(chunk.frames)

    def close(self) -> None:
        pass


def poisson_chunks(rate: float, seed: int = 0) -> object:
    """Return a factory of endless chunks of Poisson arrivals at ``rate``/s."""

    def make(start_s: float) -> Iterator[Chunk]:
        rng = np.random.default_rng(seed)
        t = start_s
        flow = 0
        while True:
            n = int(rng.poisson(rate * 0.1))
            ts = np.sort(rng.uniform(t, t + 0.1, n))
            ts_ns = (ts * 1e9).astype(np.int64)
            data = np.zeros(n * FRAME, np.uint8)
            offsets = np.arange(n + 1, dtype=np.int64) * FRAME
            ids = np.arange(flow, flow + n, dtype=np.int64)
            flow += n
            t += 0.1
            yield Chunk(
                Frames(data, offsets, ts_ns, ids), FlowTable.empty(), int(t * 1e9)
            )

    return make


def run_pacer(rate: float, seconds: float, ring: Path | None) -> dict[str, float]:
    lags: list[np.ndarray] = []
    if ring is None:
        out: Output = NullOutput("null")
    else:
        from fosrd.ring import PcapRing

        out = PcapRing(
            "ring", ring, max_file_bytes=64 << 20, max_files=4, flow_log=None
        )
    clock = GenClock(time.time() + 0.5, 1.0)
    pacer = Pacer(
        poisson_chunks(rate),  # type: ignore[arg-type]
        [out],
        clock,
        lead_s=1.0,
        on_release=lambda lag, _: lags.append(lag),
    )
    pacer.start()
    time.sleep(0.5)  # the first frames are due half a second after the start
    began = clock.now_ns()
    before = pacer.stats.packets
    time.sleep(seconds)
    released = pacer.stats.packets - before
    elapsed = (clock.now_ns() - began) / 1e9
    pacer.stop()
    out.close()
    lag = np.concatenate(lags) if lags else np.zeros(1)
    return {
        "median_ms": float(np.median(lag) * 1e3),
        "p99_ms": float(np.percentile(lag, 99) * 1e3),
        "p999_ms": float(np.percentile(lag, 99.9) * 1e3),
        "rate_ratio": released / (rate * elapsed),
    }


def run_call_at(rate: float, seconds: float) -> dict[str, float]:
    """One loop.call_at per frame: the naive asyncio pacer, for comparison."""

    async def main() -> np.ndarray:
        loop = asyncio.get_running_loop()
        rng = np.random.default_rng(1)
        n = int(rate * seconds)
        due = loop.time() + 0.2 + np.cumsum(rng.exponential(1 / rate, n))
        lags = np.zeros(n)
        done = asyncio.Event()

        def fire(i: int) -> None:
            lags[i] = loop.time() - due[i]
            if i == n - 1:
                done.set()

        for i, d in enumerate(due):
            loop.call_at(float(d), fire, i)
        await done.wait()
        return lags

    lag = asyncio.run(main())
    return {
        "median_ms": float(np.median(lag) * 1e3),
        "p99_ms": float(np.percentile(lag, 99) * 1e3),
        "p999_ms": float(np.percentile(lag, 99.9) * 1e3),
        "rate_ratio": 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[10000, 100000])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--ring", action="store_true", help="write a real pcap ring")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the call_at baseline"
    )
    args = parser.parse_args()
    print(
        f"{'pacer':<22} {'rate/s':>8} {'median ms':>10} {'p99 ms':>8} "
        f"{'p99.9 ms':>9} {'rate held':>10}"
    )
    for rate in args.rates:
        with tempfile.TemporaryDirectory() as folder:
            ring = Path(folder) if args.ring else None
            r = run_pacer(rate, args.seconds, ring)
        name = "fosrd (ring)" if args.ring else "fosrd (null output)"
        print(
            f"{name:<22} {rate:>8.0f} {r['median_ms']:>10.3f} {r['p99_ms']:>8.3f} "
            f"{r['p999_ms']:>9.3f} {r['rate_ratio']:>10.4f}"
        )
        if not args.no_baseline:
            b = run_call_at(rate, min(args.seconds, 5.0))
            print(
                f"{'asyncio call_at':<22} {rate:>8.0f} {b['median_ms']:>10.3f} "
                f"{b['p99_ms']:>8.3f} {b['p999_ms']:>9.3f} {'':>10}"
            )


if __name__ == "__main__":
    main()
