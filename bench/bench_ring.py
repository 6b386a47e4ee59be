"""Time the pcap ring against scapy's PcapWriter on the same frames.

``--packets`` frames of ``--size`` bytes (and a second set of at most
``--mixed`` frames with lengths drawn uniformly from 60-1514 bytes, the
realistic case) are emitted to a :class:`fosrd.ring.PcapRing` in chunks of
``--chunk`` frames, rotating every ``--file-mb`` MB, into a fresh folder
under ``--dir``.  The same lengths are also built with 16 bytes of headroom
per frame, which classic pcap fills with the record headers and writes
without copying a frame.  The time covers encoding, the writes and
rotation (fsync of each finished file included).  scapy's fastest path,
``PcapWriter.write_packet(bytes, sec, usec)`` after ``write_header``,
writes the first ``--scapy`` frames of the same set to one file in the
same folder, for the ratio.  Each figure is the best of ``--repeat`` runs.

Usage: .venv/bin/python bench/bench_ring.py [--packets N] [--size BYTES]
       [--mixed N] [--chunk N] [--file-mb MB] [--scapy N] [--repeat R]
       [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np
from scapy.utils import PcapWriter

from fosr.flows import FlowTable
from fosr.synth import Frames
from fosrd.outputs import Chunk
from fosrd.ring import PcapRing

T0_NS = 1_700_000_000 * 10**9


def make_frames(lengths: np.ndarray, seed: int = 0, headroom: int = 0) -> Frames:
    """Return frames of the given lengths, 10 µs apart, random bytes."""
    rng = np.random.default_rng(seed)
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths + headroom, out=offsets[1:])
    data = rng.integers(0, 256, int(offsets[-1]), dtype=np.uint8)
    ts_ns = T0_NS + np.arange(len(lengths), dtype=np.int64) * 10_000
    flow = np.zeros(len(lengths), np.int64)
    return Frames(data, offsets, ts_ns, flow, headroom)


def slice_frames(frames: Frames, lo: int, hi: int) -> Frames:
    """Return frames ``lo:hi`` as a Frames of their own (a chunk's frames)."""
    offsets = frames.offsets[lo : hi + 1]
    return Frames(
        frames.data[offsets[0] : offsets[-1]],
        offsets - offsets[0],
        frames.ts_ns[lo:hi],
        frames.flow[lo:hi],
        frames.headroom_bytes,
    )


def time_ring(frames: Frames, args: argparse.Namespace, fmt: str) -> float:
    """Return the seconds to emit ``frames`` to a fresh ring, best of R."""
    chunks = []
    for lo in range(0, len(frames), args.chunk):
        part = slice_frames(frames, lo, min(lo + args.chunk, len(frames)))
        chunks.append(Chunk(part, EMPTY, int(part.ts_ns[-1]) + 1))
    best = float("inf")
    for _ in range(args.repeat):
        folder = tempfile.mkdtemp(dir=args.dir)
        try:
            ring = PcapRing(
                "bench",
                folder,
                format=fmt,
                max_file_bytes=args.file_mb * 1_000_000,
                max_files=4,
            )
            began = time.perf_counter()
            for chunk in chunks:
                ring.emit(chunk)
            ring.close()
            best = min(best, time.perf_counter() - began)
            assert ring.stats.packets == len(frames), ring.status()
        finally:
            shutil.rmtree(folder)
    return best


def time_ceiling(frames: Frames, args: argparse.Namespace) -> float:
    """Return the seconds to write the ring's bytes, already encoded, best of R.

    The same total size in chunk-sized ``os.write`` calls with an fsync per
    ``--file-mb``: what the folder's file system allows at all.
    """
    chunk_bytes = (int(frames.offsets[-1]) + 16 * len(frames)) * args.chunk
    block = np.zeros(chunk_bytes // len(frames), np.uint8)
    n_blocks = -(-len(frames) // args.chunk)
    per_file = max(1, args.file_mb * 1_000_000 // len(block))
    best = float("inf")
    for _ in range(args.repeat):
        folder = tempfile.mkdtemp(dir=args.dir)
        try:
            began = time.perf_counter()
            fd = -1
            for k in range(n_blocks):
                if k % per_file == 0:
                    if fd >= 0:
                        os.fsync(fd)
                        os.close(fd)
                    path = os.path.join(folder, f"raw{k}")
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o640)
                os.write(fd, block)
            os.fsync(fd)
            os.close(fd)
            best = min(best, time.perf_counter() - began)
        finally:
            shutil.rmtree(folder)
    return best


def time_scapy(frames: Frames, args: argparse.Namespace) -> tuple[int, float]:
    """Return (frames, seconds) for scapy's PcapWriter on the first frames."""
    n = min(args.scapy, len(frames))
    packets = [frames.frame(i) for i in range(n)]
    stamps = [(int(t) // 10**9, int(t) % 10**9 // 1000) for t in frames.ts_ns[:n]]
    best = float("inf")
    for _ in range(args.repeat):
        folder = tempfile.mkdtemp(dir=args.dir)
        try:
            began = time.perf_counter()
            writer = PcapWriter(os.path.join(folder, "scapy.pcap"), linktype=1)
            writer.write_header(None)
            for packet, (sec, usec) in zip(packets, stamps, strict=True):
                writer.write_packet(packet, sec=sec, usec=usec)
            writer.close()
            best = min(best, time.perf_counter() - began)
        finally:
            shutil.rmtree(folder)
    return n, best


EMPTY = FlowTable.empty()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--file-mb", type=int, default=50)
    parser.add_argument("--mixed", type=int, default=200_000)
    parser.add_argument("--scapy", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()

    rng = np.random.default_rng(1)
    sets = {
        f"{args.size} B": np.full(args.packets, args.size),
        "60-1514 B": rng.integers(60, 1515, min(args.packets, args.mixed)),
    }
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus")
    print(f"folder: {args.dir or tempfile.gettempdir()}\n")
    print("| frames | writer | packets | pkt/s | MB/s | x scapy |")
    print("|---|---|---|---|---|---|")
    for label, lengths in sets.items():
        frames = make_frames(lengths)
        n_scapy, scapy_s = time_scapy(frames, args)
        scapy_pps = n_scapy / scapy_s
        mb_per_frame = frames.offsets[-1] / len(frames) / 1e6
        for fmt in ("pcap", "pcap-ns", "pcapng"):
            pps = len(frames) / time_ring(frames, args, fmt)
            print(
                f"| {label} | PcapRing {fmt} | {len(frames)} | {pps:,.0f} | "
                f"{pps * mb_per_frame:,.0f} | {pps / scapy_pps:.1f} |"
            )
        pps = len(frames) / time_ceiling(frames, args)
        print(
            f"| {label} | os.write of encoded bytes (I/O ceiling) | {len(frames)} "
            f"| {pps:,.0f} | {pps * mb_per_frame:,.0f} | {pps / scapy_pps:.1f} |"
        )
        # frames built with 16 bytes of headroom: pcap records in place
        roomy = make_frames(lengths, headroom=16)
        pps = len(roomy) / time_ring(roomy, args, "pcap")
        print(
            f"| {label} | PcapRing pcap, 16 B headroom | {len(roomy)} | "
            f"{pps:,.0f} | {pps * mb_per_frame:,.0f} | {pps / scapy_pps:.1f} |"
        )
        del roomy
        print(
            f"| {label} | scapy PcapWriter.write_packet | {n_scapy} | "
            f"{scapy_pps:,.0f} | {scapy_pps * mb_per_frame:,.0f} | 1.0 |"
        )


if __name__ == "__main__":
    main()
