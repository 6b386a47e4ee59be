"""Time packet synthesis and pcap writing against scapy, in one run.

A realistic mix (``--flows`` flows of 2-40 packets; 80% TCP with a full
handshake, data both ways with payloads of 0-1460 bytes and a FIN close,
15% UDP request/response, 5% ICMP echo; four OS profiles, 10% of flows
on a VLAN) is built by ``fosr.synth.build_frames`` on one core and written
by ``write_pcap`` to an in-memory buffer and to a file under /tmp.  scapy
then builds the first ``--scapy`` packets of the same batch, one object
per packet plus ``bytes()``, for the ratio.  Each fosr step is the best of
``--repeat`` runs.

Usage: .venv/bin/python bench/bench_synth.py [--flows N] [--scapy N] [--repeat R]
       [--max-payload BYTES]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import tempfile
import time

import numpy as np
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from fosr.synth import (
    OS_PROFILES,
    FlowBatch,
    Frames,
    build_frames,
    iter_frames,
    write_pcap,
)

SYN, ACK, FIN, PSH = 0x02, 0x10, 0x01, 0x08
T0_NS = 1_700_000_000 * 10**9


def make_mix(n_flows: int, max_payload: int = 1460, seed: int = 0) -> FlowBatch:
    """Return a batch of ``n_flows`` random flows (see the module docstring)."""
    rng = np.random.default_rng(seed)
    proto = rng.choice(np.array([6, 17, 1], np.uint8), n_flows, p=[0.8, 0.15, 0.05])
    counts = np.where(proto == 6, rng.integers(6, 41, n_flows), 2)
    counts = np.where(proto == 1, 2 * rng.integers(1, 5, n_flows), counts)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    n = int(offsets[-1])
    flow = np.repeat(np.arange(n_flows), counts)
    k = np.arange(n) - offsets[flow]
    last = counts[flow] - 1 - k

    # TCP: S, SA, A, data..., FA, FA, A; UDP and ICMP alternate directions
    forward = rng.random(n) < 0.5
    forward[k % 2 == 0] |= proto[flow][k % 2 == 0] != 6
    forward[k % 2 == 1] &= proto[flow][k % 2 == 1] == 6
    flags = np.where(forward | True, PSH | ACK, 0).astype(np.uint8)
    head = {0: (True, SYN), 1: (False, SYN | ACK), 2: (True, ACK)}
    tail = {2: (True, FIN | ACK), 1: (False, FIN | ACK), 0: (True, ACK)}
    for place, table in ((k, head), (last, tail)):
        for at, (fwd, fl) in table.items():
            pick = (place == at) & (proto[flow] == 6)
            forward[pick], flags[pick] = fwd, fl
    flags[proto[flow] != 6] = 0
    payload = rng.integers(0, max_payload + 1, n).astype(np.uint32)
    payload[(flags & (SYN | FIN)) > 0] = 0
    payload[(proto[flow] == 6) & (flags == ACK)] = 0

    # times: flows start over a minute, packets 0.1-20 ms apart
    start = T0_NS + rng.integers(0, 60 * 10**9, n_flows)
    gaps = rng.integers(100_000, 20_000_000, n)
    gaps[offsets[:-1]] = 0
    ts = (
        start[flow] + np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[offsets[:-1]], counts)
    )
    n_os = len(OS_PROFILES)
    return FlowBatch(
        proto=proto,
        client_ip=rng.integers(0x0A000000, 0x0AFFFFFF, n_flows, dtype=np.uint32),
        server_ip=rng.integers(0xC0000200, 0xC00002FF, n_flows, dtype=np.uint32),
        client_port=rng.integers(32768, 61000, n_flows).astype(np.uint16),
        server_port=rng.choice(np.array([443, 80, 53, 123], np.uint16), n_flows),
        client_mac=rng.integers(0, 256, (n_flows, 6), dtype=np.uint8),
        server_mac=rng.integers(0, 256, (n_flows, 6), dtype=np.uint8),
        client_os=rng.integers(0, n_os, n_flows).astype(np.uint8),
        server_os=rng.integers(0, n_os, n_flows).astype(np.uint8),
        vlan=np.where(rng.random(n_flows) < 0.1, 100, -1).astype(np.int16),
        offsets=offsets,
        ts_ns=ts.astype(np.int64),
        forward=forward,
        tcp_flags=flags,
        payload_len=payload,
    )


def build_with_scapy(frames: Frames, limit: int) -> int:
    """Rebuild the first ``limit`` frames as scapy objects; return the bytes."""
    total = 0
    for i in range(min(limit, len(frames))):
        ref = Ether(frames.frame(i))
        ip = ref[IP]
        packet = Ether(src=ref.src, dst=ref.dst)
        if Dot1Q in ref:
            packet = packet / Dot1Q(vlan=ref[Dot1Q].vlan)
        layer = IP(src=ip.src, dst=ip.dst, ttl=ip.ttl, id=ip.id, flags=ip.flags)
        if TCP in ref:
            t = ref[TCP]
            l4 = TCP(
                sport=t.sport,
                dport=t.dport,
                seq=t.seq,
                ack=t.ack,
                flags=t.flags,
                window=t.window,
                options=t.options,
            )
        elif UDP in ref:
            l4 = UDP(sport=ref[UDP].sport, dport=ref[UDP].dport)
        else:
            l4 = ICMP(type=ref[ICMP].type, id=ref[ICMP].id, seq=ref[ICMP].seq)
        body = bytes(l4.payload if False else ref[IP].payload.payload)
        total += len(bytes(packet / layer / l4 / Raw(body)))
    return total


def best_of(repeat: int, step: object) -> tuple[float, object]:
    """Run ``step`` ``repeat`` times; return the best seconds and a result."""
    assert callable(step), "step is a function"
    best, result = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        result = step()
        best = min(best, time.perf_counter() - began)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=100_000)
    parser.add_argument("--scapy", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-payload", type=int, default=1460)
    args = parser.parse_args()

    batch = make_mix(args.flows, args.max_payload)
    n = batch.n_packets
    build_s, frames = best_of(args.repeat, lambda: build_frames(batch, 1))
    assert isinstance(frames, Frames), "build_frames returns Frames"
    stream_s, _ = best_of(args.repeat, lambda: sum(map(len, iter_frames(batch, 1))))
    memory_s, _ = best_of(args.repeat, lambda: write_pcap(io.BytesIO(), frames))

    def to_file() -> int:
        with tempfile.NamedTemporaryFile(suffix=".pcap") as out:
            written = write_pcap(out, frames)
            out.flush()
            return written

    def pipeline() -> int:
        with tempfile.NamedTemporaryFile(suffix=".pcap") as out:
            written = 0
            for i, chunk in enumerate(iter_frames(batch, 1)):
                written += write_pcap(out, chunk, header=i == 0)
            out.flush()
            return written

    file_s, written = best_of(args.repeat, to_file)
    pipeline_s, _ = best_of(args.repeat, pipeline)
    began = time.perf_counter()
    build_with_scapy(frames, args.scapy)
    scapy_s = time.perf_counter() - began
    scapy_pps = min(args.scapy, n) / scapy_s

    def rate(seconds: float) -> str:
        return f"{seconds:8.3f} s  {n / seconds / 1e6:6.2f} M packets/s"

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; {args.flows} "
        f"flows, {n} packets, {len(frames.data) / n:.0f} B/frame, "
        f"best of {args.repeat}"
    )
    print(f"build_frames (one buffer)    {rate(build_s)}")
    print(f"iter_frames (chunks)         {rate(stream_s)}")
    print(f"write_pcap to memory         {rate(memory_s)}")
    print(f"write_pcap to /tmp file      {rate(file_s)}  ({written} bytes)")
    print(f"iter_frames + write_pcap     {rate(pipeline_s)}")
    print(
        f"scapy build                  {scapy_s:8.3f} s  {scapy_pps / 1e3:6.2f} k "
        f"packets/s ({min(args.scapy, n)} packets); iter_frames is "
        f"{n / stream_s / scapy_pps:.0f}x"
    )


if __name__ == "__main__":
    main()
