"""Tests of fosr.synth._build: scapy dissects what we built, field by field."""

from __future__ import annotations

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from synth_builders import (
    T0,
    A,
    F,
    Flow,
    S,
    clean_flows,
    icmp_echo,
    make_batch,
    rejected_syn,
    tcp_session,
)

from fosr.synth import OS_PROFILES, FlowBatch, build_frames, iter_frames, profile_id

SCAPY_OPTION = {
    "mss": "MSS",
    "nop": "NOP",
    "ws": "WScale",
    "sok": "SAckOK",
    "ts": "Timestamp",
    "eol": "EOL",
}


def random_batch(n_flows: int, seed: int) -> FlowBatch:
    """Return TCP sessions, UDP and ICMP flows with random sizes and OSes."""
    rng = np.random.default_rng(seed)
    names = [p.name for p in OS_PROFILES]
    flows: list[Flow] = []
    for i in range(n_flows):
        start = T0 + rng.uniform(0, 5)
        flow = tcp_session(
            start,
            f"10.1.{i // 250}.{i % 250 + 1}",
            "192.0.2.9",
            30000 + i,
            443,
            str(rng.choice(names)),
            str(rng.choice(names)),
            int(rng.choice([-1, 7])),
        )
        flow.packets = [
            (t, fwd, fl, int(rng.integers(0, 1461)) if n else 0)
            for t, fwd, fl, n in flow.packets
        ]
        flows.append(flow)
    flows += [rejected_syn(T0 + 1), icmp_echo(T0 + 2)]
    flows.append(
        Flow(
            17,
            "10.9.0.1",
            "10.9.0.2",
            4000,
            4001,
            [(T0 + 3, True, 0, 0), (T0 + 3.1, False, 0, 1473)],
        )
    )
    return make_batch(flows)


def dissect(batch: FlowBatch, seed: int = 3) -> tuple[list[Ether], np.ndarray]:
    """Build ``batch`` and return the dissected frames and their flows."""
    frames = build_frames(batch, seed)
    return [Ether(frames.frame(i)) for i in range(len(frames))], frames.flow


def test_build_checksums_verify_in_scapy() -> None:
    packets, _ = dissect(random_batch(30, 1))
    for packet in packets:
        ip = packet[IP]
        l4 = ip.payload
        got = (ip.chksum, l4.chksum)
        del ip.chksum, l4.chksum
        rebuilt = Ether(bytes(packet))
        assert got == (rebuilt[IP].chksum, rebuilt[IP].payload.chksum)


def test_build_fields_match_the_sequence() -> None:
    batch = random_batch(30, 2)
    packets, flows = dissect(batch)
    order = np.argsort(batch.ts_ns, kind="stable")
    for packet, row, flow in zip(packets, order, flows, strict=True):
        fwd = bool(batch.forward[row])
        ip = packet[IP]
        sender = OS_PROFILES[(batch.client_os if fwd else batch.server_os)[flow]]
        assert ip.ttl == sender.ttl
        assert bool(ip.flags.DF) == sender.df
        assert ip.len == 20 + len(ip.payload)
        client, server = batch.client_ip[flow], batch.server_ip[flow]
        src, dst = (client, server) if fwd else (server, client)
        assert (ip.src, ip.dst) == (_dotted(src), _dotted(dst))
        payload_len = int(batch.payload_len[row])
        if TCP in packet:
            tcp = packet[TCP]
            assert int(tcp.flags) == batch.tcp_flags[row]
            assert len(tcp.payload) == payload_len
            ports = (batch.client_port[flow], batch.server_port[flow])
            assert (tcp.sport, tcp.dport) == (ports if fwd else ports[::-1])
        elif UDP in packet:
            assert packet[UDP].len == 8 + payload_len
        else:
            assert len(packet[ICMP].payload) == payload_len
        assert (Dot1Q in packet) == (batch.vlan[flow] >= 0)


def test_build_tcp_seq_and_ack_bookkeeping() -> None:
    batch = random_batch(20, 4)
    packets, flows = dissect(batch)
    next_seq: dict[tuple[int, bool], int] = {}
    for packet, flow in zip(packets, flows, strict=True):
        if TCP not in packet:
            continue
        tcp = packet[TCP]
        fwd = packet[IP].src == _dotted(batch.client_ip[flow])
        if tcp.flags.R and (int(flow), fwd) not in next_seq:
            assert tcp.seq == 0  # a reset answering a SYN
        elif (int(flow), fwd) in next_seq:
            assert tcp.seq == next_seq[int(flow), fwd]
        used = len(tcp.payload) + bool(tcp.flags.S) + bool(tcp.flags.F)
        next_seq[int(flow), fwd] = (tcp.seq + used) % 2**32
        if tcp.flags.A:
            assert tcp.ack == next_seq[int(flow), not fwd]
        else:
            assert tcp.ack == 0


@pytest.mark.parametrize("client_os", [p.name for p in OS_PROFILES])
@pytest.mark.parametrize("server_os", [p.name for p in OS_PROFILES])
def test_build_tcp_options_by_profile(client_os: str, server_os: str) -> None:
    flow = tcp_session(T0, client_os=client_os, server_os=server_os)
    packets, _ = dissect(make_batch([flow]))
    client, server = (
        OS_PROFILES[profile_id(client_os)],
        OS_PROFILES[profile_id(server_os)],
    )
    syn, syn_ack, *rest = (p[TCP] for p in packets)
    assert [o[0] for o in syn.options] == [SCAPY_OPTION[t] for t in client.syn_options]
    assert dict(syn.options)["MSS"] == client.mss_bytes
    assert syn.window == client.syn_window
    offered = {o[0] for o in syn.options}
    assert {o[0] for o in syn_ack.options} - {"NOP", "EOL"} <= offered
    timestamps = client.has_timestamps and server.has_timestamps
    assert ("Timestamp" in dict(syn_ack.options)) == timestamps
    for segment in rest:
        kinds = [o[0] for o in segment.options]
        assert kinds == (["NOP", "NOP", "Timestamp"] if timestamps else [])


def test_build_timestamps_advance_and_echo() -> None:
    batch = make_batch([tcp_session(T0)])
    packets, _ = dissect(batch)
    tcp = [p[TCP] for p in packets]
    ts = [dict(t.options)["Timestamp"] for t in tcp]
    assert ts[0][1] == 0  # a SYN echoes nothing
    assert ts[1][1] == ts[0][0]  # the SYN+ACK echoes the SYN
    assert ts[2][1] == ts[1][0]
    # the clock ticks once per millisecond of capture time
    ms = batch.ts_ns // 1_000_000
    assert (ts[3][0] - ts[0][0]) % 2**32 == ms[3] - ms[0]


def test_build_window_scaled_after_handshake() -> None:
    packets, _ = dissect(
        make_batch([tcp_session(T0, client_os="windows", server_os="windows")])
    )
    windows = OS_PROFILES[profile_id("windows")]
    assert packets[0][TCP].window == windows.syn_window
    assert packets[2][TCP].window == windows.window_bytes >> windows.wscale


def test_build_rejected_syn_gets_rst_ack_without_options() -> None:
    packets, _ = dissect(make_batch([rejected_syn(T0)]))
    syn, rst = packets[0][TCP], packets[1][TCP]
    assert rst.flags == "RA"
    assert rst.options == []
    assert (rst.seq, rst.ack) == (0, syn.seq + 1)


def test_build_icmp_echo_ids_and_sequence_numbers() -> None:
    packets, _ = dissect(make_batch([icmp_echo(T0)]))
    echo = [(p[ICMP].type, p[ICMP].id, p[ICMP].seq) for p in packets]
    assert echo == [(8, 4242, 1), (0, 4242, 1), (8, 4242, 2), (0, 4242, 2)]


def test_build_windows_ip_id_is_one_counter_per_host() -> None:
    flows = [tcp_session(T0 + i * 0.001, client_os="windows") for i in range(3)]
    for i, flow in enumerate(flows):
        flow.client_port += i
    packets, _ = dissect(make_batch(flows))
    ids = [p[IP].id for p in packets if p[IP].src == "10.0.0.1"]
    assert np.all(np.diff(ids) % 2**16 == 1)


def test_build_given_payloads_are_copied() -> None:
    flow = Flow(
        17,
        "10.0.0.1",
        "10.0.0.2",
        1000,
        2000,
        [(T0, True, 0, 3), (T0 + 1, False, 0, 5)],
        payloads=[b"abc", b"hello"],
    )
    packets, _ = dissect(make_batch([flow], with_payloads=True))
    assert [bytes(p[UDP].payload) for p in packets] == [b"abc", b"hello"]


def test_build_same_seed_same_bytes() -> None:
    batch = make_batch(clean_flows())
    one, two = build_frames(batch, 7), build_frames(batch, 7)
    assert np.array_equal(one.data, two.data)
    assert not np.array_equal(one.data, build_frames(batch, 8).data)


def test_build_merges_in_time_order() -> None:
    frames = build_frames(make_batch(clean_flows()))
    assert np.all(np.diff(frames.ts_ns) >= 0)


def test_batch_rejects_mismatched_payload_lengths() -> None:
    flow = Flow(17, "10.0.0.1", "10.0.0.2", 1, 2, [(T0, True, 0, 4)], payloads=[b"abc"])
    with pytest.raises(ValueError, match="payload_len"):
        make_batch([flow], with_payloads=True)


def test_batch_rejects_unknown_protocol() -> None:
    flow = Flow(47, "10.0.0.1", "10.0.0.2", 1, 2, [(T0, True, F | S | A, 0)])
    with pytest.raises(ValueError, match="proto"):
        make_batch([flow])


def _dotted(address: int) -> str:
    a = int(address)
    return ".".join(str(a >> s & 0xFF) for s in (24, 16, 8, 0))


def _checksums_verify(packet: Ether) -> bool:
    ip = packet[IP]
    got = (ip.chksum, ip.payload.chksum)
    del ip.chksum, ip.payload.chksum
    rebuilt = Ether(bytes(packet))
    return got == (rebuilt[IP].chksum, rebuilt[IP].payload.chksum)


def test_build_given_payload_checksums_verify() -> None:
    flows = clean_flows()
    pattern = bytes(range(256)) * 6
    for flow in flows:
        flow.payloads = [pattern[p[3] % 7 : p[3] % 7 + p[3]] for p in flow.packets]
    packets, _ = dissect(make_batch(flows, with_payloads=True))
    assert all(_checksums_verify(p) for p in packets)


@pytest.mark.parametrize("chunk_packets", [1, 3, 64])
def test_iter_frames_chunks_carry_the_same_headers(chunk_packets: int) -> None:
    batch = random_batch(10, 6)
    whole = build_frames(batch, 9)
    chunks = list(iter_frames(batch, 9, chunk_packets))
    assert sum(len(c) for c in chunks) == len(whole)
    assert all(len(c) <= chunk_packets for c in chunks)
    parts = [Ether(c.frame(i)) for c in chunks for i in range(len(c))]
    for i, packet in enumerate(parts):
        expected = Ether(whole.frame(i))
        assert _checksums_verify(packet)
        assert packet[IP].id == expected[IP].id
        if TCP in packet:
            assert (packet[TCP].seq, packet[TCP].ack) == (
                expected[TCP].seq,
                expected[TCP].ack,
            )
            assert packet[TCP].options == expected[TCP].options


def test_iter_frames_rejects_empty_chunks() -> None:
    with pytest.raises(ValueError, match="chunk_packets"):
        next(iter_frames(make_batch(clean_flows()), 0, 0))


def test_build_empty_batch_gives_no_frames() -> None:
    frames = build_frames(make_batch([]))
    assert len(frames) == 0
    assert list(frames.offsets) == [0]
