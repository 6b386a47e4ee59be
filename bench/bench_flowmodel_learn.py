"""Time the flow model's learning on CIDDS-001 and report its description length.

Usage: ``.venv/bin/python bench/bench_flowmodel_learn.py [--sizes 512,1024]
[--max-gap-s S] [--patterns]``

Reads ``cidds001-wk3/train.csv`` from ``../shared/data`` beside the
repository (exits with status 2 when it is absent), codes it with
:func:`encode_flows` (default columns and bins), and for the first 512,
1,024 and 2,048 rows and for all rows runs :func:`learn_flow_model`.  Per
size it prints the learning time, the candidates tested, the number of
patterns (and how many have several rows), and the description length in
bits: model, data, total, the empty model's total and the ratio of the two.
``--patterns`` also prints each pattern with its usage.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from fosr.flowmodel import encode_flows
from fosr.flowmodel.learn import SearchSettings, learn_flow_model
from fosr.flows import read_flow_records

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CIDDS = SHARED / "cidds001-wk3" / "train.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512,1024,2048,all")
    parser.add_argument("--max-gap-s", type=float, default=60.0)
    parser.add_argument("--patterns", action="store_true")
    args = parser.parse_args()
    if not CIDDS.exists():
        print(f"skipped: {CIDDS} is absent", file=sys.stderr)
        return 2

    flows = read_flow_records(str(CIDDS))
    print(f"{CIDDS.name}: {len(flows)} flows")
    settings = SearchSettings(max_gap_s=args.max_gap_s)
    for size in args.sizes.split(","):
        n = len(flows) if size == "all" else min(int(size), len(flows))
        table = encode_flows(flows.sorted_by_start().take(np.arange(n)))

        started = time.perf_counter()
        model = learn_flow_model(table, settings)
        elapsed = time.perf_counter() - started

        multi = sum(len(f.pattern) > 1 for f in model.patterns)
        print(
            f"rows {n:5d}: {elapsed:7.1f} s, {model.n_tested:4d} tested, "
            f"{len(model.patterns):3d} patterns ({multi} multi-row), "
            f"model {model.model_bits:9.0f} + data {model.data_bits:9.0f} = "
            f"{model.total_bits:9.0f} bits; empty {model.empty_bits:9.0f} bits "
            f"({model.total_bits / model.empty_bits:.3f})"
        )
        if args.patterns:
            for fitted in sorted(model.patterns, key=lambda f: -f.usage):
                text = fitted.pattern.describe(table.codebooks)
                print(f"    {fitted.usage:5d}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
