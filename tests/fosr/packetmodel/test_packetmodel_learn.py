"""Learning the packet model from captures, and its bad inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import PcapWriter

from fosr.capture import read_captures
from fosr.connections import Connections, Timeouts, assemble_connections
from fosr.packetmodel import (
    EMPTY,
    RANDOM,
    TEXT,
    PacketModel,
    learn_packet_model,
)
from fosr.packetmodel._symbols import words_of

C, S = "10.0.0.2", "10.0.0.9"
T0 = 1_700_000_000.0
SYN, ACK, FIN, PSH = 0x02, 0x10, 0x01, 0x08


def frame(src: str, dst: str, layer: Any, at: float, payload: bytes = b"") -> Any:
    packet = Ether() / IP(src=src, dst=dst) / layer
    if payload:
        packet = packet / payload
    packet.time = T0 + at
    return packet


def http_session(at: float, sport: int, rng: np.random.Generator) -> list[Any]:
    """Return one HTTP exchange with a handshake and a FIN close."""
    body = bytes(rng.integers(0, 256, int(rng.integers(300, 600))).astype(np.uint8))
    steps = [
        (True, "S", b""),
        (False, "SA", b""),
        (True, "A", b""),
        (True, "PA", b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"),
        (False, "A", b""),
        (False, "PA", b"HTTP/1.1 200 OK\r\n\r\n" + b"a" * int(rng.integers(50, 90))),
        (False, "PA", body),
        (True, "FA", b""),
        (False, "FA", b""),
        (True, "A", b""),
    ]
    frames = []
    t = at
    for forward, flags, payload in steps:
        t += float(rng.exponential(0.01))
        src, dst = (C, S) if forward else (S, C)
        sp, dp = (sport, 80) if forward else (80, sport)
        frames.append(frame(src, dst, TCP(sport=sp, dport=dp, flags=flags), t, payload))
    return frames


def write(path: Path, frames: list[Any]) -> Path:
    writer = PcapWriter(str(path), linktype=1)
    for packet in sorted(frames, key=lambda p: float(p.time)):
        writer.write(packet)
    writer.close()
    return path


@pytest.fixture(scope="module")
def connections(tmp_path_factory: pytest.TempPathFactory) -> Connections:
    rng = np.random.default_rng(1)
    frames: list[Any] = []
    for i in range(30):
        frames += http_session(i * 10.0, 40000 + i, rng)
    # a rare service: three connections on port 8080
    for i in range(3):
        session = http_session(500 + i * 10.0, 41000 + i, rng)
        for packet in session:
            if packet[TCP].dport == 80:
                packet[TCP].dport = 8080
            else:
                packet[TCP].sport = 8080
        frames += session
    # one-way traffic only: syslog-like datagrams to UDP 514
    for i in range(25):
        frames.append(
            frame(C, S, UDP(sport=50000 + i, dport=514), 700 + i, b"<13>hello" * 3)
        )
    path = write(tmp_path_factory.mktemp("pm") / "t.pcap", frames)
    return assemble_connections(read_captures([path], keep_payload=True))


@pytest.fixture(scope="module")
def model(connections: Connections) -> PacketModel:
    return learn_packet_model(connections)


def test_symbols_name_direction_flags_and_payload_class(
    connections: Connections,
) -> None:
    http = np.flatnonzero(connections.flows.server_port == 80)
    words = words_of(connections, http)
    names = {s.name(6) for s in words.symbols}
    assert {"S_>_Empty", "SA_<_Empty", "PA_>_Text:GET", "PA_<_Text:HTTP/1.1"} <= names
    assert "PA_<_Random" in names
    classes = {s.payload_class for s in words.symbols}
    assert {EMPTY, TEXT, RANDOM} <= classes
    # the values: first gap 0, sizes are payload bytes
    assert words.gap[words.offsets[:-1]].tolist() == [0.0] * len(http)
    assert words.size.max() <= 600


def test_learning_gives_services_fallbacks_and_notes(model: PacketModel) -> None:
    assert set(model.services) == {(6, 80), (17, 514)}
    assert set(model.fallbacks) == {6, 17}
    lines = "\n".join(model.summary())
    assert "TCP/80" in lines and "UDP/514" in lines
    assert "fewer than 20 connections use the protocol's fallback: 8080 (3)" in lines
    assert "UDP/514: one-way traffic only" in lines
    http = model.services[(6, 80)]
    # a handshake is deterministic: few states, every word accepted
    assert 2 <= http.n_states <= 12
    assert http.n_examples == 30


def test_sampled_tcp_flows_open_and_close_as_learnt(model: PacketModel) -> None:
    from packetmodel_helpers import flows

    rows = [
        {
            "proto": 6,
            "server_port": 80,
            "fwd_packets": 5,
            "bwd_packets": 5,
            "fwd_bytes": 5 * 40 + 40,
            "bwd_bytes": 5 * 40 + 600,
            "duration": 0.2,
        }
    ] * 200
    headers = model.sample(flows(rows), np.random.default_rng(0))
    assert not headers.adjusted.any()
    starts = headers.offsets[:-1]
    assert (headers.tcp_flags[starts] == SYN).all()
    assert (headers.tcp_flags[starts + 1] == SYN | ACK).all()
    assert headers.forward[starts].all() and not headers.forward[starts + 1].any()
    # the client's last packet closes, as in every training word
    last = headers.offsets[1:] - 1
    assert (headers.tcp_flags[last] & ACK).all()
    assert (
        (headers.tcp_flags[headers.offsets[0] : headers.offsets[-1]] & FIN) > 0
    ).any()
    text = headers.payload_class == TEXT
    tokens = {headers.tokens[t] for t in headers.payload_token[text].tolist()}
    assert tokens <= {"GET", "HTTP/1.1"} and "GET" in tokens


def test_no_connections_give_an_empty_model_that_still_samples(tmp_path: Path) -> None:
    from packetmodel_helpers import flows

    empty = assemble_connections(read_captures([write(tmp_path / "e.pcap", [])]))
    model = learn_packet_model(empty)
    assert model.services == {} and model.fallbacks == {}
    headers = model.sample(
        flows([{"fwd_packets": 2, "bwd_packets": 1, "fwd_bytes": 200}]),
        np.random.default_rng(0),
    )
    assert np.diff(headers.offsets).tolist() == [3]


def test_connections_without_packets_are_skipped_with_a_note(
    connections: Connections,
) -> None:
    # a connection record whose packet range is empty
    offsets = np.insert(connections.offsets, 1, connections.offsets[0])
    flows = connections.flows.take(np.r_[0, np.arange(len(connections.flows))])
    broken = Connections(
        flows,
        np.r_[connections.file_index[:1], connections.file_index],
        connections.packets,
        connections.order,
        offsets,
        connections.forward,
    )
    model = learn_packet_model(broken)
    assert "1 connections without packets skipped" in "\n".join(model.summary())
    assert (6, 80) in model.services


def test_absurd_gaps_are_cut_with_a_note(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    frames: list[Any] = []
    for i in range(20):
        session = http_session(i * 10.0, 42000 + i, rng)
        if i == 0:
            # the last packet of the first session comes three days later
            session[-1].time = float(session[-1].time) + 3 * 86400
        frames += session
    path = write(tmp_path / "g.pcap", frames)
    timeouts = Timeouts.uniform(idle_s=10 * 86400.0, active_s=None)
    connections = assemble_connections(read_captures([path]), timeouts)
    model = learn_packet_model(connections)
    lines = "\n".join(model.summary())
    assert "TCP/80: 1 gaps longer than a day cut to a day" in lines
    assert np.isfinite(model.services[(6, 80)].mean).all()
