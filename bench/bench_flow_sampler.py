"""Time the flow sampler on a model learnt from CIDDS-001.

Usage: ``.venv/bin/python bench/bench_flow_sampler.py [--hours H]
[--batch-s S] [--rate-scale X] [--shards N]``

Reads ``cidds001-wk3/train.csv`` from ``../shared/data`` beside the
repository (exits with status 2 when it is absent), codes it with
:func:`encode_flows`, learns a model (about 25 s) and fits its timing, then
samples ``--hours`` of flows from noon of the first training day in batches of
``--batch-s`` seconds with the rate profile multiplied by ``--rate-scale``
(the training rate is a few flows per minute, far too few to time), and
prints flows per second of wall-clock time and of this process's CPU time
(the latter is steadier on a shared machine).  The goal is at least
500,000 flows per second.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

from fosr.flowmodel import encode_flows
from fosr.flowmodel.learn import SearchSettings, learn_flow_model
from fosr.flowmodel.sampler import FlowSampler
from fosr.flowmodel.timing import fit_timing
from fosr.flows import read_flow_records

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CIDDS = SHARED / "cidds001-wk3" / "train.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--batch-s", type=float, default=60.0)
    parser.add_argument("--rate-scale", type=float, default=100_000.0)
    parser.add_argument("--shards", type=int, default=1)
    args = parser.parse_args()
    if not CIDDS.exists():
        print(f"skipped: {CIDDS} is absent", file=sys.stderr)
        return 2

    flows = read_flow_records(str(CIDDS)).sorted_by_start()
    table = encode_flows(flows)
    started = time.perf_counter()
    settings = SearchSettings()
    model = learn_flow_model(table, settings)
    timing = fit_timing(model, table, max_gap_s=settings.max_gap_s)
    print(
        f"{len(flows)} flows, {len(model.patterns)} patterns, learnt in "
        f"{time.perf_counter() - started:.1f} s; profile "
        f"{timing.rates_per_s.shape}, {int(timing.extrapolated.sum())} bins "
        f"extrapolated, max gap {timing.max_gap_s:.2f} s"
    )

    # sample in batches and time it
    sampler = FlowSampler(
        model,
        timing,
        table.columns,
        table.codebooks,
        seed=1,
        shards=args.shards,
        rate_scale=args.rate_scale,
    )
    n_batches = round(args.hours * 3600 / args.batch_s)
    total = 0
    started, started_cpu = time.perf_counter(), time.process_time()
    batches = sampler.batches(table.origin_s + 12 * 3600, args.batch_s)
    for batch in itertools.islice(batches, n_batches):
        total += len(batch)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - started_cpu
    print(
        f"sampled {total} flows in {n_batches} batches of {args.batch_s:g} s "
        f"in {elapsed:.2f} s: {total / elapsed:,.0f} flows/s "
        f"({total / cpu:,.0f} per CPU second; "
        f"rate scale {args.rate_scale:g}, shard 0 of {args.shards})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
