"""Time reading and pairing the shared flow record sets.

Usage: ``.venv/bin/python bench/bench_flow_readers.py [--repeat N]``

Prints, per file, the one-way records read, the flows after pairing, and
the seconds and records per second of reading, of pairing and of both (the
best of ``--repeat`` runs).  Reads ``../shared/data`` beside the repository
and exits with status 2 when it is absent.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fosr.flows.oneway import OneWayTable
from fosr.flows.pairing import pair_oneway
from fosr.flows.readers import read_nfdump_csv, read_ugr16_csv

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
FILES: list[tuple[str, Callable[[Path], OneWayTable]]] = [
    ("ugr16/train-0800-1200.csv.gz", read_ugr16_csv),
    ("cidds001-wk3/train.csv", read_nfdump_csv),
]


def best_of(repeat: int, path: Path, read: Callable[[Path], OneWayTable]) -> str:
    """Return one result line: the fastest of ``repeat`` read-and-pair runs."""
    read_s = pair_s = float("inf")
    records = flows = 0
    for _ in range(repeat):
        started = time.perf_counter()
        table = read(path)
        read_at = time.perf_counter()
        paired = pair_oneway(table)
        paired_at = time.perf_counter()
        read_s = min(read_s, read_at - started)
        pair_s = min(pair_s, paired_at - read_at)
        records, flows = len(table), len(paired)
    total_s = read_s + pair_s
    return (
        f"{path.relative_to(SHARED)}: {records:,} records -> {flows:,} flows; "
        f"read {read_s:.2f} s ({records / read_s:,.0f} records/s), "
        f"pair {pair_s:.2f} s ({records / pair_s:,.0f} records/s), "
        f"total {total_s:.2f} s ({records / total_s:,.0f} records/s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per file")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"shared data not found at {SHARED.resolve()}", file=sys.stderr)
        return 2
    for name, read in FILES:
        print(best_of(args.repeat, SHARED / name, read), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
