"""Time payload synthesis per service: packets per second of make_payloads.

Usage: ``.venv/bin/python bench/bench_payloads.py [--packets N]
[--repetitions N]``

For each service (random bytes, DNS over UDP, HTTP, TLS, NTP, SMTP) builds
a PayloadSpec of about N packets in flows of a typical shape (a TCP flow:
handshake, a request, a three-segment response, a close; a UDP flow: a
query and its answer) and times make_payloads, best of the repetitions,
on this process's CPU clock.  Prints packets/s and payload MB/s.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from fosr.synth.payloads import PayloadSpec, link_dns, make_payloads

S, A, P, F = 0x02, 0x10, 0x08, 0x01
# (forward, flags, wished bytes) of one flow of each shape
TCP_SHAPE = [
    (True, S, 0),
    (False, S | A, 0),
    (True, A, 0),
    (True, P | A, 517),
    (False, A, 0),
    (False, P | A, 1460),
    (False, P | A, 1460),
    (False, P | A, 900),
    (True, A, 0),
    (True, F | A, 0),
    (False, F | A, 0),
    (True, A, 0),
]
UDP_SHAPE = [(True, 0, 40), (False, 0, 120)]
SERVICES = {
    "random tcp": (6, 40443, TCP_SHAPE),
    "random udp": (17, 40053, UDP_SHAPE),
    "dns": (17, 53, UDP_SHAPE),
    "ntp": (17, 123, [(True, 0, 48), (False, 0, 48)]),
    "http": (6, 80, TCP_SHAPE),
    "tls": (6, 443, TCP_SHAPE),
    "smtp": (6, 25, TCP_SHAPE),
}


def make_spec(
    proto: int, port: int, shape: list[tuple[bool, int, int]], packets: int
) -> PayloadSpec:
    """Return a spec of flows of ``shape`` totalling about ``packets``."""
    flows = max(packets // len(shape), 1)
    forward, flags, wished = (np.array(c) for c in zip(*shape, strict=True))
    n = flows * len(shape)
    return PayloadSpec(
        proto=np.full(flows, proto, np.uint8),
        server_port=np.full(flows, port, np.uint16),
        client_ip=(0x0A000000 + np.arange(flows) % 5000).astype(np.uint32),
        server_ip=np.full(flows, 0xC0000207, np.uint32),
        offsets=np.arange(flows + 1, dtype=np.int64) * len(shape),
        ts_ns=np.arange(n, dtype=np.int64) * 1_000_000,
        forward=np.tile(forward.astype(bool), flows),
        tcp_flags=np.tile(flags.astype(np.uint8), flows),
        payload_len=np.tile(wished.astype(np.uint32), flows),
        hostname=np.full(flows, "www.example.com", object),
        dns_answer=np.full(flows, 0xC0000207, np.uint32),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args()

    print(f"command: {' '.join(sys.argv)}")
    print(f"{'service':<12} {'packets':>9} {'Mpkt/s':>8} {'MB/s':>8}")
    for name, (proto, port, shape) in SERVICES.items():
        spec = make_spec(proto, port, shape, args.packets)
        best = float("inf")
        for rep in range(args.repetitions):
            rng = np.random.default_rng(rep)
            started = time.process_time()
            payload, _, _ = make_payloads(spec, rng)
            best = min(best, time.process_time() - started)
        n = len(spec.ts_ns)
        print(
            f"{name:<12} {n:>9} {n / best / 1e6:>8.3f} "
            f"{len(payload) / best / 1e6:>8.0f}"
        )

    # link_dns on a mixed batch: one DNS flow before each TLS flow
    spec = make_spec(17, 53, UDP_SHAPE, args.packets)
    started = time.process_time()
    link_dns(spec)
    spent = time.process_time() - started
    print(f"link_dns: {spec.n_flows} flows in {spent:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
