"""Time packet synthesis and pcap writing against scapy, in one run.

A realistic mix (``--flows`` flows; 80% TCP with a full handshake, data
both ways and a FIN close, payloads mixed: 40% full segments of 1448
bytes, the rest 1-600 bytes; 15% UDP request/response of DNS sizes,
30-60 bytes asked and 60-300 answered; 5% ICMP echo of 56 bytes; four OS
profiles, 10% of flows on a VLAN, ``--ipv6`` of them over IPv6) is built
by ``fosr.synth`` on one core and written by ``write_pcap``; so is a batch
of 100-byte UDP frames.  scapy then builds the first ``--scapy`` packets
of the mix, one object per packet plus ``bytes()``, for the ratio.  The
last line builds the mix again with its payload bytes given (as payload
makers give them) rather than drawn from the random pool.

Each step is the best of ``--repeat`` runs, timed both by the wall clock
and by the process's CPU time: the machine is shared, and CPU time is
what one core spends.  Rates are packets per second.

Usage: .venv/bin/python bench/bench_synth.py [--flows N] [--scapy N] [--repeat R]
       [--ipv6 SHARE]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from typing import BinaryIO

import numpy as np
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw

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


def make_mix(n_flows: int, ipv6_share: float = 0.2, seed: int = 0) -> FlowBatch:
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
    full = rng.random(n) < 0.4
    payload = np.where(full, 1448, rng.integers(1, 601, n)).astype(np.uint32)
    udp = proto[flow] == 17
    asked = rng.integers(30, 61, n)
    payload[udp] = np.where(forward, asked, asked + rng.integers(30, 241, n))[udp]
    payload[proto[flow] == 1] = 56
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
    v6 = rng.random(n_flows) < ipv6_share
    prefix = np.frombuffer(bytes.fromhex("20010db8"), np.uint8)
    ip6 = [rng.integers(0, 256, (n_flows, 16), dtype=np.uint8) for _ in range(2)]
    for address in ip6:
        address[:, :4] = prefix
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
        ip_version=np.where(v6, 6, 4).astype(np.uint8),
        client_ip6=ip6[0],
        server_ip6=ip6[1],
    )


def make_small(n_packets: int, seed: int = 0) -> FlowBatch:
    """Return UDP exchanges whose frames are all 100 bytes (IPv4)."""
    batch = make_mix(n_packets // 2, 0.0, seed)
    n_flows = batch.n_flows
    offsets = np.arange(n_flows + 1, dtype=np.int64) * 2
    starts = batch.ts_ns[batch.offsets[:-1]]
    return FlowBatch(
        proto=np.full(n_flows, 17, np.uint8),
        client_ip=batch.client_ip,
        server_ip=batch.server_ip,
        client_port=batch.client_port,
        server_port=batch.server_port,
        client_mac=batch.client_mac,
        server_mac=batch.server_mac,
        client_os=batch.client_os,
        server_os=batch.server_os,
        vlan=np.full(n_flows, -1, np.int16),
        offsets=offsets,
        ts_ns=np.repeat(starts, 2) + np.tile([0, 1_000_000], n_flows),
        forward=np.tile([True, False], n_flows),
        tcp_flags=np.zeros(2 * n_flows, np.uint8),
        payload_len=np.full(2 * n_flows, 100 - 42, np.uint32),
    )


def with_payloads(batch: FlowBatch, seed: int = 1) -> FlowBatch:
    """Return ``batch`` with random payload bytes given, not drawn."""
    offsets = np.zeros(batch.n_packets + 1, np.int64)
    np.cumsum(batch.payload_len, out=offsets[1:])
    payload = np.random.default_rng(seed).integers(0, 256, int(offsets[-1]), np.uint8)
    columns = {name: getattr(batch, name) for name in batch.__dataclass_fields__}
    columns.update(payload=payload, payload_offsets=offsets)
    return FlowBatch(**columns)


def build_with_scapy(frames: Frames, limit: int) -> int:
    """Rebuild the first ``limit`` frames as scapy objects; return the bytes."""
    total = 0
    for i in range(min(limit, len(frames))):
        ref = Ether(frames.frame(i))
        packet = Ether(src=ref.src, dst=ref.dst)
        if Dot1Q in ref:
            packet = packet / Dot1Q(vlan=ref[Dot1Q].vlan)
        layer: Packet
        l4: Packet
        if IPv6 in ref:
            ip6 = ref[IPv6]
            layer = IPv6(src=ip6.src, dst=ip6.dst, hlim=ip6.hlim, fl=ip6.fl)
            echo = ip6.payload
            if isinstance(echo, (ICMPv6EchoRequest, ICMPv6EchoReply)):
                kind = type(echo)
                body = bytes(echo.payload) if echo.payload else echo.data
                total += len(
                    bytes(packet / layer / kind(id=echo.id, seq=echo.seq, data=body))
                )
                continue
        else:
            ip = ref[IP]
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
        body = bytes((ref[IPv6] if IPv6 in ref else ref[IP]).payload.payload)
        total += len(bytes(packet / layer / l4 / Raw(body)))
    return total


def best_of(repeat: int, step: Callable[[], object]) -> tuple[float, float]:
    """Run ``step`` ``repeat`` times; return the best wall and CPU seconds."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        began, began_cpu = time.perf_counter(), time.process_time()
        step()
        wall = min(wall, time.perf_counter() - began)
        cpu = min(cpu, time.process_time() - began_cpu)
    return wall, cpu


def to_file(write: Callable[[BinaryIO], int]) -> int:
    """Run ``write`` on a fresh file under /tmp; return the bytes written."""
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "bench.pcap"), "wb") as out:
            return write(out)


def time_batch(name: str, batch: FlowBatch, repeat: int) -> Frames:
    """Time building and writing ``batch``; print one line per step."""
    n = batch.n_packets
    frames = build_frames(batch, 1)
    roomy = list(iter_frames(batch, 1, headroom_bytes=16))

    def rewrite_roomy(out: BinaryIO) -> int:
        return sum(write_pcap(out, c, header=i == 0) for i, c in enumerate(roomy))

    def pipeline(out: BinaryIO) -> int:
        chunks = iter_frames(batch, 1, headroom_bytes=16)
        return sum(write_pcap(out, c, header=i == 0) for i, c in enumerate(chunks))

    steps: list[tuple[str, Callable[[], object]]] = [
        ("iter_frames (chunks)", lambda: sum(map(len, iter_frames(batch, 1)))),
        ("build_frames (one buffer)", lambda: build_frames(batch, 1)),
        ("write_pcap, packed frames, memory", lambda: write_pcap(io.BytesIO(), frames)),
        (
            "write_pcap, packed frames, /tmp",
            lambda: to_file(lambda o: write_pcap(o, frames)),
        ),
        ("write_pcap, headroom chunks, memory", lambda: rewrite_roomy(io.BytesIO())),
        ("write_pcap, headroom chunks, /tmp", lambda: to_file(rewrite_roomy)),
        ("iter_frames + write_pcap to /tmp", lambda: to_file(pipeline)),
    ]
    print(f"{name}: {n} packets, {len(frames.data) / n:.0f} B/frame")
    for label, step in steps:
        wall, cpu = best_of(repeat, step)
        print(
            f"  {label:38s} {n / wall / 1e6:6.2f} M/s wall  "
            f"{n / cpu / 1e6:6.2f} M/s cpu"
        )
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=100_000)
    parser.add_argument("--scapy", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ipv6", type=float, default=0.2)
    args = parser.parse_args()

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; best of "
        f"{args.repeat}"
    )
    print(
        "$ .venv/bin/python bench/"
        + " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])
    )
    mix = make_mix(args.flows, args.ipv6)
    frames = time_batch(f"mix of {args.flows} flows", mix, args.repeat)
    small = make_small(mix.n_packets)
    time_batch("100-byte UDP frames", small, args.repeat)
    given = with_payloads(mix)
    wall, cpu = best_of(args.repeat, lambda: sum(map(len, iter_frames(given, 1))))
    print(
        f"mix with given payload bytes (copied in, summed): iter_frames "
        f"{given.n_packets / wall / 1e6:.2f} M/s wall  "
        f"{given.n_packets / cpu / 1e6:.2f} M/s cpu"
    )

    began = time.process_time()
    built = build_with_scapy(frames, args.scapy)
    scapy_cpu = time.process_time() - began
    count = min(args.scapy, len(frames))
    fosr_wall, fosr_cpu = best_of(1, lambda: sum(map(len, iter_frames(mix, 1))))
    print(
        f"scapy builds {count} packets of the mix ({built} bytes) at "
        f"{count / scapy_cpu / 1e3:.2f} k/s cpu; iter_frames is "
        f"{mix.n_packets / fosr_cpu / (count / scapy_cpu):.0f}x faster"
    )


if __name__ == "__main__":
    main()
