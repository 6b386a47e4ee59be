"""Time the packet evaluation on IoT Sentinel and print the real validity figures.

Usage: ``.venv/bin/python bench/bench_evaluate_packets.py [--no-plots]
[--check-checksums] [--html OUT.html] [--json OUT.json]``

Compares the evaluation captures of IoT Sentinel (``split == eval`` in
``splits.csv``, 137 files) as the real side with the training captures
(413 files) as the "synthetic" side, then prints the seconds taken and,
for both sides, what tshark finds per 1,000 packets: the targets that
generated traffic is compared against.  Reads ``../shared/data`` beside
the repository and exits with status 2 when it or tshark is absent.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path

from fosr.evaluate.packets import evaluate_packets

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
IOT = SHARED / "iot-sentinel"


def split_files(split: str) -> list[Path]:
    """Return the IoT Sentinel captures of one split, in splits.csv order."""
    with open(IOT / "splits.csv", newline="") as file:
        return [
            IOT / "pcaps" / row["f"]
            for row in csv.DictReader(file)
            if row["split"] == split
        ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-plots", action="store_true", help="skip the figures")
    parser.add_argument(
        "--check-checksums", action="store_true", help="have tshark check checksums"
    )
    parser.add_argument("--html", type=Path, help="also write the HTML page here")
    parser.add_argument("--json", type=Path, help="also write the JSON report here")
    args = parser.parse_args()
    if not IOT.is_dir():
        print(f"shared data not found at {IOT.resolve()}", file=sys.stderr)
        return 2
    if shutil.which("tshark") is None:
        print("tshark is not installed (Debian package tshark)", file=sys.stderr)
        return 2

    real, synthetic = split_files("eval"), split_files("train")
    started = time.perf_counter()
    report = evaluate_packets(
        real, synthetic, plots=not args.no_plots, check_checksums=args.check_checksums
    )
    evaluated = time.perf_counter()
    page = report.to_html()
    rendered = time.perf_counter()

    results = report.results
    totals = results["totals"]
    print(
        f"eval {len(real)} captures ({totals['real']['frames']:,} frames) against "
        f"train {len(synthetic)} captures ({totals['synthetic']['frames']:,} frames): "
        f"evaluate_packets {evaluated - started:.1f} s, to_html "
        f"{rendered - evaluated:.2f} s ({len(page) / 1e6:.1f} MB)"
    )
    print(f"{'per 1,000 packets':32} {'eval (real)':>12} {'train':>12}")
    rates = {
        side: results["validity"][side]["per_1000"] for side in ("real", "synthetic")
    }
    counts = results["validity"]["real"]["counts"]
    for key, rate in rates["real"].items():
        if key == "bad_checksum" and not args.check_checksums:
            continue
        print(
            f"{key:32} {rate:12.3f} {rates['synthetic'][key]:12.3f}"
            f"   ({counts[key]:,} eval packets)"
        )
    mix = results["services"]["service_mix_js"]
    print(f"service mix JS distance, eval against train: {mix:.3f}")
    for row in results["services"]["rows"]:
        distances = "  ".join(
            f"{k}={'-' if v is None else format(v, '.3g')}"
            for k, v in row["distances"].items()
        )
        print(f"  {row['service']:>12}: {distances}")

    if args.html:
        args.html.write_text(page)
    if args.json:
        args.json.write_text(report.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
