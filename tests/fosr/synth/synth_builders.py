"""Hand-made header sequences for the synthesis tests."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import numpy as np

from fosr.synth import FlowBatch, profile_id

F, S, R, P, A = 0x01, 0x02, 0x04, 0x08, 0x10


@dataclass
class Flow:
    """One flow: endpoints and a list of (time s, forward, flags, bytes)."""

    proto: int
    client: str
    server: str
    client_port: int
    server_port: int
    packets: list[tuple[float, bool, int, int]]
    client_os: str = "linux"
    server_os: str = "linux"
    vlan: int = -1
    payloads: list[bytes] | None = field(default=None)


def make_batch(flows: list[Flow], with_payloads: bool = False) -> FlowBatch:
    """Pack ``flows`` into a FlowBatch."""
    packets = [p for f in flows for p in f.packets]
    offsets = np.cumsum([0] + [len(f.packets) for f in flows])
    payload = payload_offsets = None
    if with_payloads:
        chunks = [
            b for f in flows for b in (f.payloads or [bytes(p[3]) for p in f.packets])
        ]
        payload = np.frombuffer(b"".join(chunks) or b"", np.uint8)
        payload_offsets = np.cumsum([0] + [len(c) for c in chunks])

    def mac(i: int, side: int) -> list[int]:
        return [0x02, side, 0, 0, i >> 8, i & 0xFF]

    def v4(address: str) -> int:
        parsed = ipaddress.ip_address(address)
        return int(parsed) if parsed.version == 4 else 0

    def v6(address: str) -> list[int]:
        parsed = ipaddress.ip_address(address)
        return list(parsed.packed) if parsed.version == 6 else [0] * 16

    versions = [ipaddress.ip_address(f.client).version for f in flows]
    ip6: dict[str, np.ndarray | None] = {"client_ip6": None, "server_ip6": None}
    if 6 in versions:
        for name in ip6:
            side = name.split("_")[0]
            ip6[name] = np.array(
                [v6(getattr(f, side)) for f in flows], np.uint8
            ).reshape(-1, 16)

    return FlowBatch(
        proto=np.array([f.proto for f in flows], np.uint8),
        client_ip=np.array([v4(f.client) for f in flows], np.uint32),
        server_ip=np.array([v4(f.server) for f in flows], np.uint32),
        client_port=np.array([f.client_port for f in flows], np.uint16),
        server_port=np.array([f.server_port for f in flows], np.uint16),
        client_mac=np.array([mac(i, 1) for i in range(len(flows))], np.uint8).reshape(
            -1, 6
        ),
        server_mac=np.array([mac(i, 2) for i in range(len(flows))], np.uint8).reshape(
            -1, 6
        ),
        client_os=np.array([profile_id(f.client_os) for f in flows], np.uint8),
        server_os=np.array([profile_id(f.server_os) for f in flows], np.uint8),
        vlan=np.array([f.vlan for f in flows], np.int16),
        offsets=offsets.astype(np.int64),
        ts_ns=np.array([round(p[0] * 1e9) for p in packets], np.int64),
        forward=np.array([p[1] for p in packets], bool),
        tcp_flags=np.array([p[2] for p in packets], np.uint8),
        payload_len=np.array([p[3] for p in packets], np.uint32),
        payload=payload,
        payload_offsets=payload_offsets,
        ip_version=np.array(versions, np.uint8),
        **ip6,
    )


T0 = 1_700_000_000.0


def tcp_session(
    start: float,
    client: str = "10.0.0.1",
    server: str = "10.0.0.2",
    sport: int = 40000,
    dport: int = 443,
    client_os: str = "linux",
    server_os: str = "linux",
    vlan: int = -1,
) -> Flow:
    """Return a handshake, data both ways and a FIN close."""
    t = start
    pkts = [
        (t, True, S, 0),
        (t + 0.010, False, S | A, 0),
        (t + 0.020, True, A, 0),
        (t + 0.021, True, P | A, 517),
        (t + 0.031, False, A, 0),
        (t + 0.032, False, P | A, 1460),
        (t + 0.033, False, P | A, 1201),
        (t + 0.043, True, A, 0),
        (t + 0.050, True, F | A, 0),
        (t + 0.060, False, F | A, 0),
        (t + 0.070, True, A, 0),
    ]
    return Flow(6, client, server, sport, dport, pkts, client_os, server_os, vlan)


def rejected_syn(start: float) -> Flow:
    """Return a SYN answered by RST+ACK."""
    pkts = [(start, True, S, 0), (start + 0.001, False, R | A, 0)]
    return Flow(6, "10.0.0.3", "10.0.0.4", 50000, 23, pkts, "windows", "linux")


def udp_exchange(start: float) -> Flow:
    """Return a UDP request and its response."""
    pkts = [(start, True, 0, 45), (start + 0.004, False, 0, 131)]
    return Flow(17, "10.0.0.5", "10.0.0.6", 40001, 40002, pkts, "macos", "iot")


def icmp_echo(start: float) -> Flow:
    """Return two ICMP echo requests with their replies."""
    pkts = [
        (start, True, 0, 56),
        (start + 0.002, False, 0, 56),
        (start + 1.0, True, 0, 56),
        (start + 1.002, False, 0, 56),
    ]
    return Flow(1, "10.0.0.7", "10.0.0.8", 4242, 0, pkts, "linux", "windows")


def clean_flows() -> list[Flow]:
    """Return one flow of each clean kind, overlapping in time.

    Server ports are unassigned ones, so that tshark does not dissect the
    random payloads as HTTP or SSH and complain.
    """
    return [
        tcp_session(T0, dport=40443),
        tcp_session(
            T0 + 0.005, "10.0.1.1", "10.0.1.2", 50123, 40080, "windows", "windows"
        ),
        tcp_session(
            T0 + 0.007, "10.0.2.1", "10.0.2.2", 50500, 48080, "macos", "iot", vlan=12
        ),
        tcp_session(T0 + 0.009, "10.0.3.1", "10.0.3.2", 50600, 40022, "iot", "macos"),
        rejected_syn(T0 + 0.011),
        udp_exchange(T0 + 0.012),
        icmp_echo(T0 + 0.013),
    ]
