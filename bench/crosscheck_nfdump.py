"""Compare fosr's connections with nfdump's records on IoT Sentinel.

The IoT Sentinel training captures were exported by nfpcapd + nfdump with a
45 s active and a 15 s idle timeout (``flows-train.csv``).  This script
assembles the same captures with the same timeouts, splits every connection
into its one-way records and prints records, packets and bytes per protocol
side by side, as a markdown table for BENCHMARKS.md.  The test
``tests/fosr/test_nfdump_crosscheck.py`` asserts the tolerances.

Run: ``.venv/bin/python bench/crosscheck_nfdump.py``
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from fosr.capture import read_captures
from fosr.connections import Timeouts, assemble_connections

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "iot-sentinel"
# nfdump's protocol names, and ours; nfpcapd writes protocol 0 for IPv6
# packets behind a hop-by-hop header (MLD), which we decode as ICMPv6
GROUPS = [("TCP", {"TCP"}, 6), ("UDP", {"UDP"}, 17), ("ICMP", {"ICMP"}, 1),
          ("ICMPv6", {"ICMP6", "0"}, 58)]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"IoT Sentinel data not found at {args.data}", file=sys.stderr)
        return 2

    with open(args.data / "splits.csv", newline="") as stream:
        paths = [args.data / "pcaps" / row["f"] for row in csv.DictReader(stream)
                 if row["split"] == "train"]  # fmt: skip
    flows = assemble_connections(read_captures(paths), Timeouts.uniform(15, 45)).flows

    theirs: Counter[tuple[str, str]] = Counter()
    with open(args.data / "flows-train.csv", newline="") as stream:
        for row in csv.DictReader(stream):
            theirs[(row["Proto"], "records")] += 1
            theirs[(row["Proto"], "packets")] += int(row["Packets"])
            theirs[(row["Proto"], "bytes")] += int(row["Bytes"])

    print(f"{len(paths)} captures, timeouts active 45 s, idle 15 s\n")
    print(
        "| protocol | records nfdump | records fosr | packets nfdump "
        "| packets fosr | bytes nfdump | bytes fosr |"
    )
    print("|---|---|---|---|---|---|---|")
    totals = np.zeros(6, dtype=np.int64)
    for label, names, number in GROUPS:
        keep = flows.proto == number
        fwd, bwd = flows.fwd_packets[keep], flows.bwd_packets[keep]
        octets = flows.fwd_bytes[keep].sum() + flows.bwd_bytes[keep].sum()
        ours = [
            int(np.count_nonzero(fwd) + np.count_nonzero(bwd)),
            int(fwd.sum() + bwd.sum()),
            int(octets),
        ]
        nf = [
            sum(theirs[(n, k)] for n in names) for k in ("records", "packets", "bytes")
        ]
        row = [nf[0], ours[0], nf[1], ours[1], nf[2], ours[2]]
        totals += row
        print(f"| {label} | " + " | ".join(f"{v:,}" for v in row) + " |")
    print("| all | " + " | ".join(f"{v:,}" for v in totals) + " |")
    t = totals
    print(
        f"\nrecords {t[1] / t[0] - 1:+.2%}, packets {t[3] / t[2] - 1:+.2%}, "
        f"bytes {t[5] / t[4] - 1:+.2%} (fosr against nfdump)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
