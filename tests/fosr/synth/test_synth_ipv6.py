"""IPv6 flows: scapy and tshark read what we built, field by field."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Dot1Q, Ether
from synth_builders import (
    T0,
    Flow,
    clean_flows,
    icmp_echo,
    make_batch,
    rejected_syn,
    tcp_session,
    udp_exchange,
)

from fosr.synth import OS_PROFILES, FlowBatch, build_frames, profile_id, write_pcap

CLIENT6, SERVER6 = "2001:db8::10", "2001:db8:1::443"


def v6_flows() -> list[Flow]:
    """Return one IPv6 flow of each kind, beside the IPv4 clean flows."""
    flows = [
        tcp_session(T0 + 0.1, CLIENT6, SERVER6, 41000, 40443),
        tcp_session(
            T0 + 0.102, "2001:db8::11", SERVER6, 41001, 40443, "windows", "macos"
        ),
        tcp_session(
            T0 + 0.104, "2001:db8::12", SERVER6, 41002, 48080, "iot", "linux", vlan=9
        ),
        rejected_syn(T0 + 0.106),
        udp_exchange(T0 + 0.107),
        icmp_echo(T0 + 0.108),
    ]
    for i, flow in enumerate(flows[3:]):
        flow.client, flow.server = f"2001:db8:2::{i + 1}", f"2001:db8:3::{i + 1}"
    return flows


@pytest.fixture(scope="module")
def batch() -> FlowBatch:
    return make_batch(clean_flows() + v6_flows())


def dissect(batch: FlowBatch) -> tuple[list[Ether], np.ndarray]:
    frames = build_frames(batch, 21)
    return [Ether(frames.frame(i)) for i in range(len(frames))], frames.flow


def _rebuilt_checksum(packet: Ether) -> tuple[int, int]:
    """Return the L4 checksum as built and as scapy computes it."""
    l4 = packet[IPv6].payload
    name = "cksum" if "cksum" in l4.fields else "chksum"  # ICMPv6 or TCP/UDP
    got = getattr(l4, name)
    delattr(l4, name)
    return got, getattr(Ether(bytes(packet))[IPv6].payload, name)


def test_ipv6_headers_follow_flows_and_profiles(batch: FlowBatch) -> None:
    packets, flows = dissect(batch)
    order = np.argsort(batch.ts_ns, kind="stable")
    labels: dict[tuple[int, bool], int] = {}
    n_v6 = 0
    for packet, row, flow in zip(packets, order, flows, strict=True):
        if batch.ip_version[flow] == 4:
            assert IP in packet and IPv6 not in packet
            continue
        n_v6 += 1
        fwd = bool(batch.forward[row])
        ip6 = packet[IPv6]
        sender = OS_PROFILES[(batch.client_os if fwd else batch.server_os)[flow]]
        assert packet[Ether].type == 0x86DD or Dot1Q in packet
        assert (Dot1Q in packet) == (batch.vlan[flow] >= 0)
        assert ip6.version == 6 and ip6.tc == 0
        assert ip6.hlim == sender.ttl
        assert ip6.plen == len(ip6.payload)
        client = bytes(batch.client_ip6[flow])
        server = bytes(batch.server_ip6[flow])
        src, dst = (client, server) if fwd else (server, client)
        assert (ip6.src, ip6.dst) == (_text(src), _text(dst))
        assert 0 < ip6.fl < 2**20
        assert labels.setdefault((int(flow), fwd), ip6.fl) == ip6.fl
        proto = int(batch.proto[flow])
        assert ip6.nh == (58 if proto == 1 else proto)
        if TCP in packet:
            assert len(packet[TCP].payload) == batch.payload_len[row]
        elif UDP in packet:
            assert packet[UDP].len == 8 + batch.payload_len[row]
    assert n_v6 == sum(len(f.packets) for f in v6_flows())


def test_ipv6_transport_checksums_verify_in_scapy(batch: FlowBatch) -> None:
    packets, _ = dissect(batch)
    checked = [_rebuilt_checksum(p) for p in packets if IPv6 in p]
    assert checked and all(got == want for got, want in checked)


def test_ipv6_icmp_echo_is_icmpv6() -> None:
    flow = icmp_echo(T0)
    flow.client, flow.server = CLIENT6, SERVER6
    packets, _ = dissect(make_batch([flow]))
    kinds = [type(p[IPv6].payload) for p in packets]
    assert kinds == [ICMPv6EchoRequest, ICMPv6EchoReply] * 2
    echo = [(p[IPv6].payload.id, p[IPv6].payload.seq) for p in packets]
    assert echo == [(4242, 1), (4242, 1), (4242, 2), (4242, 2)]


def test_ipv6_syn_announces_an_mss_20_bytes_smaller() -> None:
    flows = [tcp_session(T0), tcp_session(T0 + 1, CLIENT6, SERVER6)]
    packets, _ = dissect(make_batch(flows))
    mss = {IPv6 in p: dict(p[TCP].options)["MSS"] for p in packets if p[TCP].flags.S}
    linux = OS_PROFILES[profile_id("linux")]
    assert mss == {False: linux.mss_bytes, True: linux.mss_bytes - 20}


def test_batch_defaults_every_flow_to_ipv4() -> None:
    batch = make_batch(clean_flows())
    assert batch.ip_version.tolist() == [4] * batch.n_flows
    assert batch.client_ip6 is None


def test_batch_rejects_ipv6_flows_without_addresses() -> None:
    batch = make_batch(clean_flows())
    versions = np.full(batch.n_flows, 6, np.uint8)
    with pytest.raises(ValueError, match="client_ip6"):
        _replace(batch, ip_version=versions)
    with pytest.raises(ValueError, match="4 or 6"):
        _replace(batch, ip_version=np.full(batch.n_flows, 5, np.uint8))
    with pytest.raises(ValueError, match="shape"):
        short = np.zeros((batch.n_flows, 4), np.uint8)
        _replace(batch, ip_version=versions, client_ip6=short, server_ip6=short)


def test_tshark_reads_ipv6_without_errors(batch: FlowBatch, tmp_path: Path) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed (it comes with Wireshark)")
    path = tmp_path / "v6.pcap"
    with path.open("wb") as out:
        write_pcap(out, build_frames(batch, 23))
    fields = ["_ws.expert.severity", "_ws.expert.message", "tcp.analysis.flags"]
    fields += ["_ws.malformed", "ipv6.src", "tcp.checksum.status"]
    fields += ["udp.checksum.status", "icmpv6.checksum.status"]
    done = subprocess.run(
        [tshark, "-r", str(path), "-o", "tcp.check_checksum:TRUE"]
        + ["-o", "udp.check_checksum:TRUE", "-T", "fields"]
        + [arg for name in fields for arg in ("-e", name)],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [(line.split("\t") + [""] * 8)[:8] for line in done.stdout.splitlines()]
    assert len(lines) == batch.n_packets
    v6 = [line for line in lines if line[4]]
    assert len(v6) == sum(len(f.packets) for f in v6_flows())
    problems = []
    for severity, message, tcp_flags, malformed, *_ in lines:
        serious = {"8388608", "6291456"} & set(severity.split(","))
        reset = "Connection reset" in message
        if malformed or (tcp_flags and not reset) or (serious and not reset):
            problems.append((severity, message, tcp_flags, malformed))
    assert problems == []
    statuses = {s for line in v6 for s in line[5:] if s}
    assert statuses == {"1"}  # tshark's "Good"


def _replace(batch: FlowBatch, **columns: object) -> FlowBatch:
    fields = {name: getattr(batch, name) for name in batch.__dataclass_fields__}
    fields.update(columns)
    return FlowBatch(**fields)  # type: ignore[arg-type]


def _text(packed: bytes) -> str:
    return str(ipaddress.IPv6Address(packed))
