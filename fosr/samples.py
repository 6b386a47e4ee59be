"""Build a small, realistic lab capture without any recorded traffic.

The README's first command, the demos and some tests need a capture on a
machine that has none.  This module synthesises one with scapy from a few
hand-written scenarios of a small office network: DNS lookups followed by
HTTPS or HTTP to the answer, NTP, ping, and a connection refused.  Payloads
are random bytes or short plain-text HTTP; nothing is copied from a real
capture.

Run ``python -m fosr.samples OUT.pcap [--seed N] [--sessions N]``.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_lab_capture"]

# Addresses from the documentation ranges (RFC 5737) and a private lab net.
_CLIENTS = ["10.20.0.11", "10.20.0.12", "10.20.0.13", "10.20.0.14"]
_RESOLVER = "10.20.0.1"
_SITES = {
    "intranet.example.org": "192.0.2.80",
    "updates.example.com": "198.51.100.7",
    "mail.example.net": "203.0.113.25",
    "cdn.example.com": "198.51.100.44",
}
_NTP = "192.0.2.123"
_MAC = {
    ip: f"02:00:00:00:00:{i + 1:02x}" for i, ip in enumerate([*_CLIENTS, _RESOLVER])
}
_GATEWAY_MAC = "02:00:00:00:00:fe"


def build_lab_capture(
    path: str | Path,
    *,
    seed: int = 1,
    sessions: int = 40,
    start_s: float = 1_767_225_600.0,
) -> int:
    """Write a pcap of ``sessions`` user sessions to ``path``.

    ``start_s`` is the Unix time of the first packet (default 2026-01-01
    00:00 UTC).  Returns the number of packets written.
    """
    from scapy.utils import PcapWriter

    rng = random.Random(seed)
    packets: list[Any] = []
    now = start_s
    for _ in range(sessions):
        now += rng.expovariate(1 / 8.0)
        client = rng.choice(_CLIENTS)
        kind = rng.choices(
            ["https", "http", "ntp", "ping", "refused"], weights=[6, 2, 1, 1, 1]
        )[0]
        if kind in ("https", "http"):
            name, server = rng.choice(list(_SITES.items()))
            now = _dns(packets, rng, now, client, name, server)
            port = 443 if kind == "https" else 80
            now = _tcp_session(packets, rng, now, client, server, port)
        elif kind == "ntp":
            now = _ntp(packets, rng, now, client)
        elif kind == "ping":
            now = _ping(packets, rng, now, client, rng.choice(list(_SITES.values())))
        else:
            now = _refused(packets, rng, now, client, _RESOLVER)

    packets.sort(key=lambda p: float(p.time))
    writer = PcapWriter(str(path), linktype=1, sync=False)
    try:
        for packet in packets:
            writer.write(packet)
    finally:
        writer.close()
    return len(packets)


def _frame(
    src: str, dst: str, l4: Any, at: float, ttl: int = 64, ident: int = 0
) -> Any:
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether

    frame = (
        Ether(src=_MAC.get(src, _GATEWAY_MAC), dst=_MAC.get(dst, _GATEWAY_MAC))
        / IP(src=src, dst=dst, ttl=ttl, id=ident)
        / l4
    )
    frame.time = at
    if not ident:
        frame[IP].id = int(at * 1e6) & 0xFFFF
    return frame


def _dns(
    packets: list[Any],
    rng: random.Random,
    now: float,
    client: str,
    name: str,
    answer: str,
) -> float:
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import UDP

    sport, qid = rng.randint(32768, 60999), rng.getrandbits(16)
    query = DNS(id=qid, rd=1, qd=DNSQR(qname=name))
    reply = DNS(
        id=qid,
        qr=1,
        rd=1,
        ra=1,
        qd=DNSQR(qname=name),
        an=DNSRR(rrname=name, rdata=answer, ttl=300),
    )
    packets.append(_frame(client, _RESOLVER, UDP(sport=sport, dport=53) / query, now))
    now += rng.uniform(0.002, 0.03)
    packets.append(_frame(_RESOLVER, client, UDP(sport=53, dport=sport) / reply, now))
    return now + rng.uniform(0.001, 0.02)


def _tcp_session(
    packets: list[Any],
    rng: random.Random,
    now: float,
    client: str,
    server: str,
    port: int,
) -> float:
    from scapy.layers.inet import TCP

    sport = rng.randint(32768, 60999)
    cseq, sseq = rng.getrandbits(32), rng.getrandbits(32)
    rtt = rng.uniform(0.01, 0.08)
    options = [
        ("MSS", 1460),
        ("SAckOK", b""),
        ("Timestamp", (rng.getrandbits(32), 0)),
        ("NOP", None),
        ("WScale", 7),
    ]

    def send(
        src: str,
        dst: str,
        flags: str,
        seq: int,
        ack: int,
        payload: bytes = b"",
        opts: Sequence[Any] = (),
    ) -> None:
        a, b = (sport, port) if src == client else (port, sport)
        segment = TCP(
            sport=a,
            dport=b,
            flags=flags,
            seq=seq % 2**32,
            ack=ack % 2**32,
            window=64240,
            options=list(opts),
        )
        packets.append(
            _frame(
                src,
                dst,
                segment / payload if payload else segment,
                now,
                ttl=64 if src == client else 52,
            )
        )

    # handshake
    send(client, server, "S", cseq, 0, opts=options)
    now += rtt
    send(server, client, "SA", sseq, cseq + 1, opts=options[:2])
    now += 0.0005
    send(client, server, "A", cseq + 1, sseq + 1)
    cseq, sseq = cseq + 1, sseq + 1

    # requests and responses
    for _ in range(rng.randint(1, 4)):
        if port == 80:
            request = (
                f"GET /{rng.getrandbits(24):x}.html HTTP/1.1\r\nHost: "
                f"{server}\r\nUser-Agent: lab-client\r\n\r\n"
            ).encode()
        else:
            request = rng.randbytes(rng.randint(80, 600))
        now += rng.uniform(0.001, 0.3)
        send(client, server, "PA", cseq, sseq, request)
        cseq += len(request)
        size = rng.randint(200, 6000)
        now += rtt
        body_sent = 0
        while body_sent < size:
            chunk = min(1448, size - body_sent)
            if port == 80 and body_sent == 0:
                head = (f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n").encode()
                data = head + rng.randbytes(max(0, chunk - len(head)))
            else:
                data = rng.randbytes(chunk)
            send(
                server,
                client,
                "PA" if body_sent + chunk >= size else "A",
                sseq,
                cseq,
                data,
            )
            sseq += len(data)
            body_sent += chunk
            now += 0.0003
        send(client, server, "A", cseq, sseq)

    # orderly close from the client
    now += rng.uniform(0.05, 2.0)
    send(client, server, "FA", cseq, sseq)
    now += rtt
    send(server, client, "FA", sseq, cseq + 1)
    now += 0.0004
    send(client, server, "A", cseq + 1, sseq + 1)
    return now


def _ntp(packets: list[Any], rng: random.Random, now: float, client: str) -> float:
    from scapy.layers.inet import UDP

    sport = rng.randint(32768, 60999)
    packets.append(
        _frame(
            client,
            _NTP,
            UDP(sport=sport, dport=123) / (b"\x23" + rng.randbytes(47)),
            now,
        )
    )
    now += rng.uniform(0.01, 0.05)
    packets.append(
        _frame(
            _NTP,
            client,
            UDP(sport=123, dport=sport) / (b"\x24" + rng.randbytes(47)),
            now,
        )
    )
    return now


def _ping(
    packets: list[Any], rng: random.Random, now: float, client: str, target: str
) -> float:
    from scapy.layers.inet import ICMP

    ident = rng.getrandbits(16)
    for seq in range(rng.randint(1, 4)):
        payload = rng.randbytes(56)
        packets.append(
            _frame(client, target, ICMP(type=8, id=ident, seq=seq) / payload, now)
        )
        packets.append(
            _frame(
                target, client, ICMP(type=0, id=ident, seq=seq) / payload, now + 0.02
            )
        )
        now += 1.0
    return now


def _refused(
    packets: list[Any], rng: random.Random, now: float, client: str, server: str
) -> float:
    from scapy.layers.inet import TCP

    sport, seq = rng.randint(32768, 60999), rng.getrandbits(32)
    packets.append(
        _frame(client, server, TCP(sport=sport, dport=8080, flags="S", seq=seq), now)
    )
    packets.append(
        _frame(
            server,
            client,
            TCP(sport=8080, dport=sport, flags="RA", seq=0, ack=seq + 1),
            now + 0.0004,
        )
    )
    return now + 0.001


def main(argv: Sequence[str] | None = None) -> int:
    """Write a lab capture to the path given on the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m fosr.samples",
        description="Write a small synthetic lab capture (pcap).",
    )
    parser.add_argument("output", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sessions", type=int, default=40)
    args = parser.parse_args(argv)
    count = build_lab_capture(args.output, seed=args.seed, sessions=args.sessions)
    print(f"wrote {count} packets to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
