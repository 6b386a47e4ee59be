"""Captures we build read cleanly in tshark, capinfos and our own reader.

The ground-truth check of packet synthesis: reading a built capture back
and assembling connections gives the flows we asked for, with the same
packet and byte counts.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from synth_builders import clean_flows, make_batch

from fosr.capture import read_capture
from fosr.connections import assemble_connections
from fosr.synth import FlowBatch, build_frames, write_pcap


@pytest.fixture(scope="module")
def batch() -> FlowBatch:
    return make_batch(clean_flows())


@pytest.fixture(scope="module")
def capture(batch: FlowBatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synth") / "clean.pcap"
    with path.open("wb") as out:
        write_pcap(out, build_frames(batch, 11))
    return path


def needs(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (it comes with Wireshark)")
    return path


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return done.stdout


def test_tshark_finds_no_malformed_packets_or_tcp_analysis_flags(
    capture: Path,
) -> None:
    tshark = needs("tshark")
    fields = run(
        tshark,
        "-r",
        str(capture),
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-T",
        "fields",
        "-e",
        "_ws.expert.severity",
        "-e",
        "_ws.expert.message",
        "-e",
        "tcp.analysis.flags",
        "-e",
        "_ws.malformed",
    )
    problems = []
    for line in fields.splitlines():
        severity, message, tcp_flags, malformed = (line.split("\t") + [""] * 4)[:4]
        bad = malformed or tcp_flags and "Connection reset" not in message
        # tshark severities: 8388608 error, 6291456 warning
        serious = {"8388608", "6291456"} & set(severity.split(","))
        if bad or (serious and "Connection reset" not in message):
            problems.append(line)
    assert problems == []


def test_tshark_checksums_all_good(capture: Path) -> None:
    tshark = needs("tshark")
    statuses = run(
        tshark,
        "-r",
        str(capture),
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-T",
        "fields",
        "-e",
        "ip.checksum.status",
        "-e",
        "tcp.checksum.status",
        "-e",
        "udp.checksum.status",
        "-e",
        "icmp.checksum.status",
    )
    values = {v for line in statuses.splitlines() for v in line.split("\t") if v}
    assert values == {"1"}  # 1 is "Good" in tshark's checksum status


def test_capinfos_counts_the_packets(capture: Path, batch: FlowBatch) -> None:
    capinfos = needs("capinfos")
    report = run(capinfos, "-M", "-c", "-E", str(capture))
    assert f"{batch.n_packets}" in report.split("Number of packets:")[1].split()[0]
    assert "ether" in report.split("File encapsulation:")[1].split()[0]


def test_read_back_recovers_the_ground_truth_flows(
    capture: Path, batch: FlowBatch
) -> None:
    connections = assemble_connections(read_capture(capture, strict=True))
    flows = connections.flows
    assert len(flows) == batch.n_flows

    # expected per flow: packets and IP bytes each way, ordered by start
    counts = np.diff(batch.offsets)
    flow = np.repeat(np.arange(batch.n_flows), counts)
    header = np.select([batch.proto == 6, batch.proto == 17], [20, 8], 8)
    ip_bytes = batch.payload_len.astype(np.int64) + 20
    ip_bytes += header[flow] + _tcp_option_bytes(capture, batch)
    fwd = batch.forward
    starts = batch.ts_ns[batch.offsets[:-1]]
    order = np.argsort(starts, kind="stable")
    np.testing.assert_array_equal(flows.proto, batch.proto[order])
    ported = batch.proto[order] != 1  # ICMP flows key on type and code
    np.testing.assert_array_equal(
        flows.client_port[ported], batch.client_port[order][ported]
    )
    np.testing.assert_array_equal(
        flows.server_port[ported], batch.server_port[order][ported]
    )
    np.testing.assert_array_equal(
        flows.fwd_packets, np.bincount(flow, fwd, batch.n_flows)[order]
    )
    np.testing.assert_array_equal(
        flows.bwd_packets, np.bincount(flow, ~fwd, batch.n_flows)[order]
    )
    np.testing.assert_array_equal(
        flows.fwd_bytes, np.bincount(flow, ip_bytes * fwd, batch.n_flows)[order]
    )
    np.testing.assert_array_equal(
        flows.bwd_bytes, np.bincount(flow, ip_bytes * ~fwd, batch.n_flows)[order]
    )


def _tcp_option_bytes(capture: Path, batch: FlowBatch) -> np.ndarray:
    """Return the TCP option bytes per packet, in batch order."""
    frames = build_frames(batch, 11)
    order = np.argsort(batch.ts_ns, kind="stable")
    lengths = np.diff(frames.offsets)
    options = np.zeros(batch.n_packets, np.int64)
    for i, row in enumerate(order):
        frame = frames.frame(i)
        eth = 18 if frame[12:14] == b"\x81\x00" else 14
        if frame[eth + 9] == 6:
            options[row] = (frame[eth + 32] >> 4) * 4 - 20
        assert lengths[i] == len(frame)
    return options
