"""Connection assembly on hand-made packet sequences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import PcapWriter

from fosr.capture import read_capture, read_captures
from fosr.connections import Connections, Timeouts, assemble_connections

C, S = "10.0.0.2", "10.0.0.9"
T0 = 1_700_000_000.0


def tcp(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    flags: str,
    at: float,
    seq: int = 1000,
    payload: bytes = b"",
) -> Any:
    frame = (
        Ether()
        / IP(src=src, dst=dst)
        / TCP(sport=sport, dport=dport, flags=flags, seq=seq)
    )
    if payload:
        frame = frame / payload
    frame.time = T0 + at
    return frame


def udp(
    src: str, dst: str, sport: int, dport: int, at: float, payload: bytes = b"x" * 20
) -> Any:
    frame = Ether() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / payload
    frame.time = T0 + at
    return frame


def write(path: Path, frames: list[Any]) -> Path:
    writer = PcapWriter(str(path), linktype=1)
    for frame in frames:
        writer.write(frame)
    writer.close()
    return path


def assemble(
    tmp_path: Path, frames: list[Any], timeouts: Timeouts | None = None
) -> Connections:
    return assemble_connections(
        read_capture(write(tmp_path / "t.pcap", frames)), timeouts
    )


def handshake_and_close(at: float, sport: int = 40000, isn: int = 1000) -> list[Any]:
    return [
        tcp(C, S, sport, 443, "S", at, seq=isn),
        tcp(S, C, 443, sport, "SA", at + 0.01, seq=5000),
        tcp(C, S, sport, 443, "A", at + 0.02, seq=isn + 1),
        tcp(C, S, sport, 443, "PA", at + 0.03, seq=isn + 1, payload=b"q" * 100),
        tcp(S, C, 443, sport, "PA", at + 0.05, seq=5001, payload=b"r" * 700),
        tcp(C, S, sport, 443, "FA", at + 0.06, seq=isn + 101),
        tcp(S, C, 443, sport, "FA", at + 0.07, seq=5701),
        tcp(C, S, sport, 443, "A", at + 0.08, seq=isn + 102),
    ]


def test_tcp_session_is_one_flow_from_the_syn_sender(tmp_path: Path) -> None:
    conns = assemble(tmp_path, handshake_and_close(0.0))
    assert len(conns) == 1
    flow = conns.flows
    assert (flow.client[0], flow.client_port[0]) == (C, 40000)
    assert (flow.server[0], flow.server_port[0]) == (S, 443)
    assert (flow.fwd_packets[0], flow.bwd_packets[0]) == (5, 3)
    # IP bytes: 20 (IP) + 20 (TCP) per packet plus payloads
    assert flow.fwd_bytes[0] == 5 * 40 + 100
    assert flow.bwd_bytes[0] == 3 * 40 + 700
    assert flow.state[0] == "SF"
    assert flow.duration[0] == pytest.approx(0.08, abs=1e-6)
    assert flow.start[0] == pytest.approx(T0, abs=1e-6)


def test_sequence_keeps_order_and_direction(tmp_path: Path) -> None:
    conns = assemble(tmp_path, handshake_and_close(0.0))
    seq = conns.sequence(0)
    assert seq.forward.tolist() == [True, False, True, True, False, True, False, True]
    assert seq.payload_len.tolist() == [0, 0, 0, 100, 700, 0, 0, 0]
    assert np.all(np.diff(seq.ts_ns) > 0)
    assert seq.payloads is None


def test_sequence_payloads_when_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "t.pcap", handshake_and_close(0.0))
    conns = assemble_connections(read_capture(path, keep_payload=True))
    payloads = conns.sequence(0).payloads
    assert payloads is not None
    assert payloads[3] == b"q" * 100 and payloads[4] == b"r" * 700


@pytest.mark.parametrize(
    ("frames", "state"),
    [
        ([tcp(C, S, 40000, 80, "S", 0)], "S0"),
        ([tcp(C, S, 40000, 80, "S", 0), tcp(S, C, 80, 40000, "RA", 0.001)], "REJ"),
        ([tcp(C, S, 40000, 80, "S", 0), tcp(C, S, 40000, 80, "R", 0.5)], "RSTOS0"),
        (
            [
                tcp(C, S, 40000, 80, "S", 0),
                tcp(S, C, 80, 40000, "SA", 0.01),
                tcp(C, S, 40000, 80, "A", 0.02),
            ],
            "S1",
        ),
        (
            [
                tcp(C, S, 40000, 80, "S", 0),
                tcp(S, C, 80, 40000, "SA", 0.01),
                tcp(C, S, 40000, 80, "A", 0.02),
                tcp(C, S, 40000, 80, "R", 0.03),
            ],
            "RSTO",
        ),
        (
            [
                tcp(C, S, 40000, 80, "S", 0),
                tcp(S, C, 80, 40000, "SA", 0.01),
                tcp(C, S, 40000, 80, "A", 0.02),
                tcp(S, C, 80, 40000, "R", 0.03),
            ],
            "RSTR",
        ),
        (
            [
                tcp(C, S, 40000, 80, "S", 0),
                tcp(S, C, 80, 40000, "SA", 0.01),
                tcp(C, S, 40000, 80, "FA", 0.02),
            ],
            "S2",
        ),
        (
            [
                tcp(C, S, 40000, 80, "S", 0),
                tcp(S, C, 80, 40000, "SA", 0.01),
                tcp(S, C, 80, 40000, "FA", 0.02),
            ],
            "S3",
        ),
        ([tcp(C, S, 40000, 80, "A", 0), tcp(S, C, 80, 40000, "A", 0.01)], "OTH"),
        ([tcp(S, C, 80, 40000, "SA", 0), tcp(S, C, 80, 40000, "R", 0.01)], "RSTRH"),
    ],
)
def test_tcp_states_follow_zeek(tmp_path: Path, frames: list[Any], state: str) -> None:
    conns = assemble(tmp_path, frames)
    assert conns.flows.state.tolist() == [state]


def test_syn_ack_receiver_is_client_without_syn(tmp_path: Path) -> None:
    conns = assemble(
        tmp_path, [tcp(S, C, 80, 40000, "SA", 0), tcp(C, S, 40000, 80, "A", 0.01)]
    )
    assert (conns.flows.client[0], conns.flows.server_port[0]) == (C, 80)


def test_midstream_client_is_the_ephemeral_side(tmp_path: Path) -> None:
    conns = assemble(
        tmp_path,
        [tcp(S, C, 80, 40000, "PA", 0, payload=b"x"), tcp(C, S, 40000, 80, "A", 0.01)],
    )
    assert (conns.flows.client[0], conns.flows.server_port[0]) == (C, 80)


def test_port_reuse_after_close_starts_a_new_connection(tmp_path: Path) -> None:
    frames = handshake_and_close(0.0) + handshake_and_close(1.0, isn=90000)
    conns = assemble(tmp_path, frames)
    assert len(conns) == 2
    assert conns.flows.state.tolist() == ["SF", "SF"]


def test_retransmitted_syn_stays_in_its_connection(tmp_path: Path) -> None:
    conns = assemble(
        tmp_path,
        [
            tcp(C, S, 40000, 80, "S", 0, seq=7),
            tcp(C, S, 40000, 80, "S", 1, seq=7),
            tcp(C, S, 40000, 80, "S", 3, seq=7),
        ],
    )
    assert len(conns) == 1 and conns.flows.fwd_packets[0] == 3


def test_new_syn_with_other_sequence_number_splits(tmp_path: Path) -> None:
    conns = assemble(
        tmp_path,
        [tcp(C, S, 40000, 80, "S", 0, seq=7), tcp(C, S, 40000, 80, "S", 1, seq=99)],
    )
    assert len(conns) == 2


def test_udp_idle_timeout_splits(tmp_path: Path) -> None:
    frames = [
        udp(C, S, 50000, 161, 0),
        udp(S, C, 161, 50000, 0.01),
        udp(C, S, 50000, 161, 61.0),
    ]
    assert len(assemble(tmp_path, frames)) == 2
    assert len(assemble(tmp_path, frames, Timeouts.uniform(120.0, None))) == 1


def test_active_timeout_cuts_long_connections(tmp_path: Path) -> None:
    frames = [udp(C, S, 50000, 123, float(t)) for t in range(0, 100, 10)]
    conns = assemble(tmp_path, frames, Timeouts.uniform(15.0, 45.0))
    assert conns.flows.fwd_packets.tolist() == [5, 5]


def test_udp_reply_first_is_oriented_to_the_ephemeral_side(tmp_path: Path) -> None:
    conns = assemble(tmp_path, [udp(S, C, 161, 50000, 0), udp(C, S, 50000, 161, 0.1)])
    flow = conns.flows
    assert (flow.client[0], flow.server_port[0]) == (C, 161)
    assert (flow.fwd_packets[0], flow.bwd_packets[0]) == (1, 1)


def test_udp_same_ports_client_is_first_sender(tmp_path: Path) -> None:
    conns = assemble(tmp_path, [udp(S, C, 5353, 5353, 0), udp(C, S, 5353, 5353, 0.1)])
    assert conns.flows.client[0] == S
    assert conns.flows.state[0] == "SF"


def test_icmp_echo_pairs_request_and_reply(tmp_path: Path) -> None:
    frames = []
    for i in range(3):
        request = Ether() / IP(src=C, dst=S) / ICMP(type=8, id=77, seq=i) / (b"p" * 56)
        reply = Ether() / IP(src=S, dst=C) / ICMP(type=0, id=77, seq=i) / (b"p" * 56)
        request.time, reply.time = T0 + i, T0 + i + 0.02
        frames += [request, reply]
    conns = assemble(tmp_path, frames)
    flow = conns.flows
    assert len(conns) == 1
    assert flow.client[0] == C
    assert (flow.client_port[0], flow.server_port[0]) == (8, 0)
    assert (flow.fwd_packets[0], flow.bwd_packets[0]) == (3, 3)
    assert flow.fwd_bytes[0] == 3 * (20 + 8 + 56)


def test_connections_never_span_files(tmp_path: Path) -> None:
    first = write(tmp_path / "a.pcap", handshake_and_close(0.0)[:4])
    second = write(tmp_path / "b.pcap", handshake_and_close(0.0)[4:])
    conns = assemble_connections(read_captures([first, second]))
    assert len(conns) == 2
    assert sorted(conns.file_index.tolist()) == [0, 1]


def test_flows_are_ordered_by_start(tmp_path: Path) -> None:
    frames = handshake_and_close(5.0, sport=41000) + handshake_and_close(0.0)
    frames += [udp(C, S, 50000, 53, 2.0)]
    conns = assemble(tmp_path, sorted(frames, key=lambda f: float(f.time)))
    assert np.all(np.diff(conns.flows.start) >= 0)
    assert conns.flows.proto.tolist() == [6, 17, 6]
    # every packet belongs to exactly one connection
    assert sorted(conns.order.tolist()) == list(range(len(frames)))


def test_empty_capture_gives_no_connections(tmp_path: Path) -> None:
    conns = assemble(tmp_path, [])
    assert len(conns) == 0 and len(conns.flows) == 0


def test_each_dns_lookup_is_its_own_connection(tmp_path: Path) -> None:
    # a device reusing one source port for three lookups in a row
    frames = []
    for i in range(2):
        frames += [udp(C, S, 3076, 53, i * 0.5), udp(S, C, 53, 3076, i * 0.5 + 0.01)]
    # the third lookup is retried before its answer comes
    frames += [
        udp(C, S, 3076, 53, 1.0),
        udp(C, S, 3076, 53, 1.3),
        udp(S, C, 53, 3076, 1.31),
    ]
    conns = assemble(tmp_path, frames)
    assert conns.flows.fwd_packets.tolist() == [1, 1, 2]
    assert conns.flows.bwd_packets.tolist() == [1, 1, 1]
