"""Time the flow model's building blocks on the UGR'16 training flows.

Usage: ``.venv/bin/python bench/bench_flowmodel_blocks.py [--repeat N]
[--double]``

Reads ``ugr16/train-0800-1200.csv.gz`` from ``../shared/data`` beside the
repository (exits with status 2 when it is absent), then prints the best of
``--repeat`` runs of: coding the flows (:func:`encode_flows`), building the
occurrence index, and finding the windows of a few single- and two-row
patterns, with and without a 5 s max gap, plus their candidate scores.
``--double`` stacks the flows with a copy shifted past their last start,
to time about 410,000 rows.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from fosr.flowmodel import (
    Cell,
    CodedTable,
    OccurrenceIndex,
    Pattern,
    candidate_score,
    encode_flows,
    find_windows,
)
from fosr.flows import FlowTable, read_flow_records

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
UGR16 = SHARED / "ugr16" / "train-0800-1200.csv.gz"

T = TypeVar("T")


def best_of(repeat: int, run: Callable[[], T]) -> tuple[float, T]:
    """Return the fastest time of ``repeat`` calls, and the last result."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def doubled(flows: FlowTable) -> FlowTable:
    """Return the flows followed by a copy shifted past their last start."""
    columns = flows.columns()
    columns["start"] = columns["start"] + (flows.start[-1] - flows.start[0] + 1.0)
    return FlowTable.concat([flows, FlowTable.from_columns(columns)])


def patterns(table: CodedTable) -> dict[str, Pattern]:
    """Return the patterns to time, by a short readable name."""
    col = table.column_index
    books = table.codebooks

    def code(name: str, value: object) -> int:
        return int(books[col(name)].encode([value])[0])

    udp, tcp = code("proto", 17), code("proto", 6)
    dns, https = code("server_port", 53), code("server_port", 443)
    return {
        "{UDP, :53}": Pattern.of(
            [{col("proto"): Cell.fix(udp), col("server_port"): Cell.fix(dns)}]
        ),
        "{TCP}": Pattern.of([{col("proto"): Cell.fix(tcp)}]),
        "{TCP, :443, state=SF}": Pattern.of(
            [
                {
                    col("proto"): Cell.fix(tcp),
                    col("server_port"): Cell.fix(https),
                    col("state"): Cell.fix(code("state", "SF")),
                }
            ]
        ),
        "{UDP, :53, client=SET0} {TCP, client=USE0}": Pattern.of(
            [
                {
                    col("proto"): Cell.fix(udp),
                    col("server_port"): Cell.fix(dns),
                    col("client"): Cell.set(0),
                },
                {col("proto"): Cell.fix(tcp), col("client"): Cell.use(0)},
            ]
        ),
        "{TCP, client=SET0} {TCP, client=USE0}": Pattern.of(
            [
                {col("proto"): Cell.fix(tcp), col("client"): Cell.set(0)},
                {col("proto"): Cell.fix(tcp), col("client"): Cell.use(0)},
            ]
        ),
        "{TCP, :443, server=SET0} {server=USE0, :443}": Pattern.of(
            [
                {
                    col("proto"): Cell.fix(tcp),
                    col("server_port"): Cell.fix(https),
                    col("server"): Cell.set(0),
                },
                {col("server"): Cell.use(0), col("server_port"): Cell.fix(https)},
            ]
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per step")
    parser.add_argument("--double", action="store_true", help="time ~410k rows")
    args = parser.parse_args()
    if not UGR16.is_file():
        print(f"UGR'16 training flows not found at {UGR16.resolve()}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    flows = read_flow_records(UGR16)
    if args.double:
        flows = doubled(flows)
    print(f"read {len(flows):,} flows in {time.perf_counter() - started:.2f} s")

    encode_s, table = best_of(args.repeat, lambda: encode_flows(flows))
    sizes = ", ".join(
        f"{n}={s}" for n, s in zip(table.columns, table.sizes, strict=True)
    )
    print(f"encode_flows: {encode_s:.3f} s; codes per column: {sizes}")
    index_s, index = best_of(args.repeat, lambda: OccurrenceIndex.from_table(table))
    print(f"OccurrenceIndex: {index_s:.3f} s")

    gap_ticks = round(5.0 / table.tick_s)
    for name, pattern in patterns(table).items():
        for gap in (None, gap_ticks):
            seconds, windows = best_of(
                args.repeat, partial(find_windows, pattern, index, max_gap_ticks=gap)
            )
            score_s, score = best_of(
                args.repeat, partial(candidate_score, pattern, windows)
            )
            limit = "no max gap" if gap is None else "max gap 5 s"
            print(
                f"{name} ({limit}): {len(windows):,} windows in "
                f"{seconds * 1000:.1f} ms; score {score:,.0f} "
                f"in {score_s * 1000:.1f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
