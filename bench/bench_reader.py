"""Time the capture reader against scapy's rdpcap, side by side in one run.

Both read the IoT Sentinel training captures (``split == train`` in
``../shared/data/iot-sentinel/splits.csv``) and touch, for every IP packet,
the source and destination address, the ports, the TCP flags, the IP length
and the TTL.  scapy dissects each packet into objects and is read through
haslayer/getlayer; fosr.capture decodes all files in one batch into numpy
columns.  Each side is timed as the best of ``--repeat`` runs after one
warm-up pass over the files (so both read from the page cache).

Usage: .venv/bin/python bench/bench_reader.py [--limit N] [--repeat R]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scapy
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.utils import rdpcap

from fosr.capture import format_addresses, read_captures

REPO = Path(__file__).resolve().parents[1]
IOT_SENTINEL = REPO / ".." / "shared" / "data" / "iot-sentinel"


def training_captures(root: Path, limit: int | None) -> list[Path]:
    """Return the training captures listed in splits.csv, in its order."""
    with open(root / "splits.csv", newline="") as file:
        rows = [row for row in csv.DictReader(file) if row["split"] == "train"]
    return [root / "pcaps" / row["f"] for row in rows[:limit]]


def read_with_scapy(paths: list[Path]) -> int:
    """Read with rdpcap and access the fields of every IP packet; return frames."""
    frames = 0
    for path in paths:
        for packet in rdpcap(str(path)):
            frames += 1
            if packet.haslayer(IP):
                ip = packet.getlayer(IP)
                _ = (ip.src, ip.dst, ip.len, ip.ttl)
            elif packet.haslayer(IPv6):
                ip6 = packet.getlayer(IPv6)
                _ = (ip6.src, ip6.dst, ip6.plen + 40, ip6.hlim)
            else:
                continue
            if packet.haslayer(TCP):
                tcp = packet.getlayer(TCP)
                _ = (tcp.sport, tcp.dport, int(tcp.flags))
            elif packet.haslayer(UDP):
                udp = packet.getlayer(UDP)
                _ = (udp.sport, udp.dport)
    return frames


def read_with_fosr(paths: list[Path]) -> int:
    """Read with read_captures and touch the same columns; return frames."""
    table = read_captures(paths)
    for column in (
        table.src,
        table.dst,
        table.sport,
        table.dport,
        table.tcp_flags,
        table.ip_len,
        table.ttl,
    ):
        int(column.sum(dtype=np.int64))
    return table.stats.frames


def read_with_fosr_text(paths: list[Path]) -> int:
    """As read_with_fosr, and also write the addresses as text like scapy."""
    table = read_captures(paths)
    format_addresses(table.src)
    format_addresses(table.dst)
    return table.stats.frames


def best_of(
    repeat: int, run: Callable[[list[Path]], int], paths: list[Path]
) -> tuple[int, float]:
    """Return the frames read and the shortest of ``repeat`` runs, in seconds."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        frames = run(paths)
        timings.append(time.perf_counter() - started)
    return frames, min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--limit", type=int, default=None, help="read the first N files"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per side (best counts)"
    )
    parser.add_argument(
        "--data", type=Path, default=IOT_SENTINEL, help="IoT Sentinel directory"
    )
    args = parser.parse_args()
    if not (args.data / "splits.csv").is_file():
        parser.exit(
            1, f"no splits.csv under {args.data.resolve()}: shared data absent\n"
        )

    paths = training_captures(args.data, args.limit)
    size_bytes = sum(path.stat().st_size for path in paths)
    for path in paths:  # warm the page cache for both sides
        path.read_bytes()

    frames, fosr_s = best_of(args.repeat, read_with_fosr, paths)
    _, fosr_text_s = best_of(args.repeat, read_with_fosr_text, paths)
    scapy_frames, scapy_s = best_of(args.repeat, read_with_scapy, paths)
    assert scapy_frames == frames, f"scapy read {scapy_frames} frames, fosr {frames}"

    ratio = scapy_s / fosr_s
    print(
        f"{len(paths)} files, {size_bytes / 1e6:.1f} MB, {frames} frames; "
        f"best of {args.repeat}; Python {platform.python_version()}, "
        f"numpy {np.__version__}, scapy {scapy.VERSION}"
    )
    print(
        f"scapy rdpcap + getlayer  {scapy_s:8.3f} s  {frames / scapy_s:12,.0f} frames/s"
    )
    print(
        f"fosr read_captures       {fosr_s:8.3f} s  {frames / fosr_s:12,.0f} frames/s"
    )
    text_rate = frames / fosr_text_s
    print(f"  + addresses as text    {fosr_text_s:8.3f} s  {text_rate:12,.0f} frames/s")
    print(f"ratio {ratio:.0f}x (with addresses as text {scapy_s / fosr_text_s:.0f}x)")
    print()
    print("| date | files | frames | scapy s | fosr s | fosr frames/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {datetime.date.today()} | {len(paths)} | {frames} | {scapy_s:.2f} "
        f"| {fosr_s:.3f} | {frames / fosr_s:,.0f} | {ratio:.0f}x |"
    )


if __name__ == "__main__":
    main()
