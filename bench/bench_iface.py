"""Time InterfaceOutput against tcpreplay --topspeed on the same veth.

Two fresh network namespaces are joined by a veth pair (both ends up, names
with a random suffix, removed at the end).  The traffic is a
realistic mix (``--flows`` flows of 2-40 packets: 80% TCP with a
handshake, data both ways and a FIN close, 15% UDP request and response,
5% ICMP echo; 20% of flows IPv6, 10% on a VLAN; payloads up to
``--max-payload`` bytes, at most 1400 so that every frame fits the
1500-byte MTU) is built once by ``fosr.synth.iter_frames`` in chunks of
``--chunk`` frames (what the scheduler hands an output) and written to a
pcap under /tmp.  Then, in rounds, the same frames go out of the sending
end:

- ``fosrd iface``: ``InterfaceOutput.emit`` over the chunks, in the bench
  process, with qdisc bypass off and on, for each ``--batch`` size, and
  with the one-``send``-per-frame fallback;
- ``tcpreplay --topspeed`` on the pcap (``ip netns exec``), as is and with
  ``--preload-pcap --no-flow-stats`` (its fastest settings).

Packet rates are per run (packets sent / wall seconds; tcpreplay's own
"Rated" figure); the table shows the median and best of ``--repeat``
rounds, the frames the peer end received, and each row's ratio to the
median of plain ``tcpreplay --topspeed``.  Nothing listens on the peer: its
kernel drops the frames after the veth receive path, which runs on the
sending CPU for both tools alike.  On a shared machine the wall-clock rates
swing with the load; "CPU us/pkt" (user and system time of the sender,
tcpreplay's start-up and pcap reading included, per packet) does not, and
is the steadier comparison.

Needs root (namespaces, raw sockets) and tcpreplay
(``apt-get update && apt-get install -y tcpreplay``).

Usage: .venv/bin/python bench/bench_iface.py [--flows N] [--repeat R]
       [--batch 256,1024] [--chunk N] [--max-payload BYTES]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pyroute2 import IPRoute, netns

from fosr.flows import FlowTable
from fosr.synth import OS_PROFILES, FlowBatch, Frames, iter_frames, write_pcap
from fosrd.iface import InterfaceOutput
from fosrd.outputs import Chunk

SYN, ACK, FIN, PSH = 0x02, 0x10, 0x01, 0x08
T0_NS = 1_700_000_000 * 10**9
TCPREPLAY_RATED = re.compile(r"Rated:.*?([\d.]+) pps")
TCPREPLAY_SENT = re.compile(r"Successful packets:\s+(\d+)")


@dataclass
class Row:
    """The runs of one sender setting."""

    label: str
    pps: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    received: list[int] = field(default_factory=list)


@dataclass
class Lab:
    """A veth pair from ``tx`` in ``tx_ns`` to ``rx`` in ``rx_ns``."""

    tx_ns: str
    rx_ns: str
    tx: str
    rx: str

    def open(self) -> None:
        """Create both namespaces and the pair; bring everything up."""
        netns.create(self.tx_ns)
        netns.create(self.rx_ns)
        with IPRoute(netns=self.tx_ns, flags=0) as ipr:
            peer = {"ifname": self.rx, "net_ns_fd": self.rx_ns}
            ipr.link("add", ifname=self.tx, kind="veth", peer=peer)
            ipr.link("set", index=ipr.link_lookup(ifname=self.tx)[0], state="up")
        with IPRoute(netns=self.rx_ns, flags=0) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=self.rx)[0], state="up")

    def close(self) -> None:
        """Remove both namespaces (and with them the pair)."""
        for name in (self.tx_ns, self.rx_ns):
            if name in netns.listnetns():
                netns.remove(name)

    def received(self) -> int:
        """Return the frames the peer end has received so far."""
        with IPRoute(netns=self.rx_ns, flags=0) as ipr:
            link = ipr.get_links(ipr.link_lookup(ifname=self.rx)[0])[0]
            return int(link.get_attr("IFLA_STATS64")["rx_packets"])


def make_mix(n_flows: int, max_payload: int, seed: int = 0) -> FlowBatch:
    """Return ``n_flows`` random flows of the mix the module docstring gives."""
    rng = np.random.default_rng(seed)
    proto = rng.choice(np.array([6, 17, 1], np.uint8), n_flows, p=[0.8, 0.15, 0.05])
    counts = np.where(proto == 6, rng.integers(6, 41, n_flows), 2)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    n = int(offsets[-1])
    flow = np.repeat(np.arange(n_flows), counts)
    k = np.arange(n) - offsets[flow]
    last = counts[flow] - 1 - k
    tcp = proto[flow] == 6

    # TCP: S, SA, A, data both ways, FA, FA, A; others alternate directions
    forward = np.where(tcp, rng.random(n) < 0.5, k % 2 == 0)
    flags = np.where(tcp, PSH | ACK, 0).astype(np.uint8)
    edges = [(k, 0, True, SYN), (k, 1, False, SYN | ACK), (k, 2, True, ACK)]
    edges += [(last, 2, True, FIN | ACK), (last, 1, False, FIN | ACK)]
    edges += [(last, 0, True, ACK)]
    for place, at, fwd, bits in edges:
        pick = tcp & (place == at)
        forward[pick], flags[pick] = fwd, bits
    payload = rng.integers(0, max_payload + 1, n).astype(np.uint32)
    payload[tcp & ((flags & (SYN | FIN)) > 0)] = 0
    payload[tcp & (flags == ACK)] = 0
    payload[proto[flow] == 1] = 56

    # flows start over a minute, packets 0.1-20 ms apart
    start = T0_NS + rng.integers(0, 60 * 10**9, n_flows)
    gaps = rng.integers(100_000, 20_000_000, n)
    gaps[offsets[:-1]] = 0
    elapsed = np.cumsum(gaps)
    ts = start[flow] + elapsed - np.repeat(elapsed[offsets[:-1]], counts)
    ip6 = rng.integers(0, 256, (2, n_flows, 16), dtype=np.uint8)
    ip6[:, :, :4] = (0x20, 0x01, 0x0D, 0xB8)
    n_os = len(OS_PROFILES)
    return FlowBatch(
        proto=proto,
        client_ip=rng.integers(0x0A000000, 0x0AFFFFFF, n_flows, dtype=np.uint32),
        server_ip=rng.integers(0xC0000200, 0xC00002FF, n_flows, dtype=np.uint32),
        client_port=rng.integers(32768, 61000, n_flows).astype(np.uint16),
        server_port=rng.choice(np.array([443, 80, 53, 123], np.uint16), n_flows),
        client_mac=rng.integers(0, 256, (n_flows, 6), dtype=np.uint8) & 0xFE,
        server_mac=rng.integers(0, 256, (n_flows, 6), dtype=np.uint8) & 0xFE,
        client_os=rng.integers(0, n_os, n_flows).astype(np.uint8),
        server_os=rng.integers(0, n_os, n_flows).astype(np.uint8),
        vlan=np.where(rng.random(n_flows) < 0.1, 100, -1).astype(np.int16),
        offsets=offsets,
        ts_ns=ts.astype(np.int64),
        forward=forward,
        tcp_flags=flags,
        payload_len=payload,
        ip_version=np.where(rng.random(n_flows) < 0.2, 6, 4).astype(np.uint8),
        client_ip6=ip6[0],
        server_ip6=ip6[1],
    )


def run_fosrd(lab: Lab, chunks: list[Chunk], n: int, **options: Any) -> float:
    """Emit every chunk on the lab's veth; return packets per second."""
    out = InterfaceOutput("bench", lab.tx, netns=lab.tx_ns, **options)
    try:
        began = time.perf_counter()
        for chunk in chunks:
            out.emit(chunk)
        elapsed = time.perf_counter() - began
    finally:
        out.close()
    if out.stats.packets != n or out.stats.errors:
        print(f"  warning: sent {out.stats.packets}/{n}, errors {out.stats.errors}")
    return out.stats.packets / elapsed


def run_tcpreplay(lab: Lab, pcap: str, n: int, extra: list[str]) -> float:
    """Replay ``pcap`` on the lab's veth; return tcpreplay's packet rate."""
    command = ["ip", "netns", "exec", lab.tx_ns, "tcpreplay", "--topspeed"]
    command += [*extra, "-i", lab.tx, pcap]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    rated = TCPREPLAY_RATED.search(done.stdout)
    sent = TCPREPLAY_SENT.search(done.stdout)
    if done.returncode != 0 or rated is None or sent is None:
        sys.exit(f"tcpreplay failed ({done.returncode}): {done.stderr.strip()}")
    if int(sent.group(1)) != n:
        print(f"  warning: tcpreplay sent {sent.group(1)}/{n}")
    return float(rated.group(1))


def measure(lab: Lab, row: Row, run: Callable[[], float], n: int) -> None:
    """Run one sender once; record its rate, CPU time and what the peer got."""
    before = lab.received()
    cpu_before = _cpu_s()
    row.pps.append(run())
    row.cpu_us.append((_cpu_s() - cpu_before) / n * 1e6)
    row.received.append(lab.received() - before)


def _cpu_s() -> float:
    """Return the CPU seconds of this process and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", default="256,1024")
    parser.add_argument("--chunk", type=int, default=8192)
    parser.add_argument("--max-payload", type=int, default=1400)
    args = parser.parse_args()
    if not 0 <= args.max_payload <= 1400:
        parser.error("--max-payload must be 0 to 1400 (frames must fit the MTU)")
    if os.geteuid() != 0:
        sys.exit("bench_iface needs root: it creates network namespaces")
    if shutil.which("tcpreplay") is None:
        sys.exit(
            "tcpreplay not found; install it with: "
            "apt-get update && apt-get install -y tcpreplay"
        )

    # the same frames for every sender
    batch = make_mix(args.flows, args.max_payload)
    frames: list[Frames] = list(iter_frames(batch, 1, args.chunk))
    chunks = [Chunk(f, FlowTable.empty(), int(f.ts_ns[-1]) + 1) for f in frames]
    n = sum(len(f) for f in frames)
    size = sum(len(f.data) for f in frames)
    tag = uuid.uuid4().hex[:8]
    lab = Lab(f"fosrb-tx-{tag}", f"fosrb-rx-{tag}", f"bt{tag}", f"br{tag}")
    batches = [int(b) for b in args.batch.split(",")]

    rows: dict[str, Row] = {}
    runs: list[tuple[str, Callable[[], float]]] = []
    for b in batches:
        for bypass in (False, True):
            label = f"fosrd iface, sendmmsg {b}, bypass {'on' if bypass else 'off'}"
            options = {"batch_packets": b, "qdisc_bypass": bypass}
            runs.append((label, _fosrd_run(lab, chunks, n, **options)))
    label = "fosrd iface, send() per frame"
    runs.append((label, _fosrd_run(lab, chunks, n, use_sendmmsg=False)))

    with tempfile.TemporaryDirectory(prefix="fosr-bench-") as folder:
        pcap = os.path.join(folder, "mix.pcap")
        with open(pcap, "wb") as out:
            for i, f in enumerate(frames):
                write_pcap(out, f, header=i == 0, nanosecond=False)
        runs.append(("tcpreplay --topspeed", lambda: run_tcpreplay(lab, pcap, n, [])))
        fast = ["--preload-pcap", "--no-flow-stats"]
        runs.append(
            (
                "tcpreplay --topspeed -K --no-flow-stats",
                lambda: run_tcpreplay(lab, pcap, n, fast),
            )
        )
        try:
            lab.open()
            for _ in range(args.repeat):
                for label, run in runs:
                    measure(lab, rows.setdefault(label, Row(label)), run, n)
        finally:
            lab.close()

    report(args, rows, n, size)


def _fosrd_run(
    lab: Lab, chunks: list[Chunk], n: int, **options: Any
) -> Callable[[], float]:
    return lambda: run_fosrd(lab, chunks, n, **options)


def report(args: argparse.Namespace, rows: dict[str, Row], n: int, size: int) -> None:
    """Print the table of rates and ratios."""
    reference = statistics.median(rows["tcpreplay --topspeed"].pps)
    print(
        f"python {platform.python_version()}, kernel {platform.release()}, "
        f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; {args.flows} "
        f"flows, {n} packets, {size / n:.0f} B/frame, chunks of {args.chunk}, "
        f"{args.repeat} rounds"
    )
    print(
        f"{'sender':<42} {'median pps':>11} {'best pps':>11} {'CPU us/pkt':>10} "
        f"{'peer got':>9} {'vs tcpreplay':>12}"
    )
    for row in rows.values():
        median = statistics.median(row.pps)
        got = min(row.received)
        print(
            f"{row.label:<42} {median:>11,.0f} {max(row.pps):>11,.0f} "
            f"{statistics.median(row.cpu_us):>10.2f} "
            f"{got:>9} {median / reference:>11.2f}x"
        )
    print("command: .venv/bin/python bench/bench_iface.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
