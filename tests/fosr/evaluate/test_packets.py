"""The packet evaluation: tshark's findings, per-service distances, the report."""

from __future__ import annotations

import json
import shutil
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import PcapWriter

from fosr.capture import PacketTable, read_capture
from fosr.connections import assemble_connections
from fosr.errors import CaptureError, InputError, ToolError
from fosr.evaluate.packets import (
    OTHER,
    TCP_ANALYSIS_FLAGS,
    ServiceSample,
    ValidityCounts,
    bucket_services,
    compare_samples,
    evaluate_packets,
    jensen_shannon,
    service_distributions,
    tshark_validity,
    wasserstein,
)
from fosr.samples import build_lab_capture

needs_tshark = pytest.mark.skipif(
    shutil.which("tshark") is None,
    reason="tshark is not installed (Debian package tshark)",
)

C, S = "10.0.0.2", "10.0.0.9"
T0 = 1_700_000_000.0
REQUEST = b"GET / HTTP/1.0\r\n\r\n"
RESPONSE = b"HTTP/1.0 200 OK\r\n\r\nhello"


# captures ---------------------------------------------------------------------


def frame(layers: Any, at: float) -> Any:
    packet = Ether() / layers
    packet.time = T0 + at
    return packet


def http_session(sport: int, *, retransmit: bool = False) -> list[Any]:
    """Return a whole HTTP/1.0 exchange; with a retransmitted request."""

    def c2s(flags: str, seq: int, ack: int, at: float, data: bytes = b"") -> Any:
        tcp = TCP(sport=sport, dport=80, flags=flags, seq=seq, ack=ack)
        return frame(
            IP(src=C, dst=S) / tcp / Raw(data) if data else IP(src=C, dst=S) / tcp, at
        )

    def s2c(flags: str, seq: int, ack: int, at: float, data: bytes = b"") -> Any:
        tcp = TCP(sport=80, dport=sport, flags=flags, seq=seq, ack=ack)
        return frame(
            IP(src=S, dst=C) / tcp / Raw(data) if data else IP(src=S, dst=C) / tcp, at
        )

    frames = [
        c2s("S", 100, 0, 0.0),
        s2c("SA", 500, 101, 0.01),
        c2s("A", 101, 501, 0.02),
        c2s("PA", 101, 501, 0.03, REQUEST),
    ]
    if retransmit:
        frames.append(c2s("PA", 101, 501, 0.5, REQUEST))
    frames += [
        s2c("PA", 501, 119, 0.6, RESPONSE),
        c2s("FA", 119, 525, 0.61),
        s2c("FA", 525, 120, 0.62),
        c2s("A", 120, 526, 0.63),
    ]
    return frames


def dns_lookup(sport: int, at: float) -> list[Any]:
    query = DNS(id=7, qd=DNSQR(qname="example.org"))
    answer = DNS(
        id=7,
        qr=1,
        qd=DNSQR(qname="example.org"),
        an=DNSRR(rrname="example.org", rdata="192.0.2.1"),
    )
    return [
        frame(IP(src=C, dst=S) / UDP(sport=sport, dport=53) / query, at),
        frame(IP(src=S, dst=C) / UDP(sport=53, dport=sport) / answer, at + 0.01),
    ]


def write(path: Path, frames: list[Any]) -> Path:
    writer = PcapWriter(str(path), linktype=1)
    for item in frames:
        writer.write(item)
    writer.close()
    return path


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A clean HTTP session and DNS lookup; a broken copy; two lab captures.

    The broken one adds a retransmitted request, a DNS query cut inside its
    question (malformed) and a DNS query with a wrong UDP checksum.
    """
    root = tmp_path_factory.mktemp("captures")
    truncated_query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07exam"
    broken = [
        *http_session(40001, retransmit=True),
        *dns_lookup(5354, 2.0),
        frame(IP(src=C, dst=S) / UDP(sport=5355, dport=53) / Raw(truncated_query), 3.0),
        frame(
            IP(src=C, dst=S)
            / UDP(sport=5356, dport=53, chksum=0x1234)
            / DNS(id=9, qd=DNSQR(qname="example.org")),
            4.0,
        ),
    ]
    paths = {
        "clean": write(
            root / "clean.pcap", [*http_session(40000), *dns_lookup(5354, 2.0)]
        ),
        "broken": write(root / "broken.pcap", broken),
        "lab1": root / "lab1.pcap",
        "lab2": root / "lab2.pcap",
    }
    build_lab_capture(paths["lab1"], seed=1, sessions=8)
    build_lab_capture(paths["lab2"], seed=2, sessions=8)
    return paths


@pytest.fixture(scope="module")
def validity(captures: dict[str, Path]) -> dict[str, ValidityCounts]:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (Debian package tshark)")
    return {name: tshark_validity([captures[name]]) for name in ("clean", "broken")}


def fake_tshark(tmp_path: Path, script: str) -> str:
    """Write an executable that stands in for tshark; return its path."""
    path = tmp_path / "fake-tshark"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


# validity by tshark -----------------------------------------------------------


@needs_tshark
def test_tshark_validity_clean_session_has_no_faults(
    validity: dict[str, ValidityCounts],
) -> None:
    clean = validity["clean"]
    assert clean.packets == 10
    assert clean.captures == 1
    assert clean.malformed == 0
    assert clean.expert["error"] == 0
    assert clean.expert["warning"] == 0
    assert sum(clean.tcp_analysis.values()) == 0
    # SYN, SYN-ACK, the HTTP request and response and the FINs are "chat"
    assert clean.expert["chat"] > 0


@needs_tshark
def test_tshark_validity_counts_broken_session(
    validity: dict[str, ValidityCounts],
) -> None:
    broken = validity["broken"]
    assert broken.packets == 13
    assert broken.malformed == 1
    assert broken.expert["error"] == 1  # the malformed query
    assert broken.tcp_analysis["retransmission"] == 1
    assert broken.bad_checksum == 0  # not checked by default
    rates = broken.per_1000()
    assert rates["malformed"] == pytest.approx(1000 / 13)
    assert rates["tcp_retransmission"] == pytest.approx(1000 / 13)
    assert set(rates) == set(broken.counts())
    assert [k for k in rates if k.startswith("tcp_")] == [
        f"tcp_{flag}" for flag in TCP_ANALYSIS_FLAGS
    ]


@needs_tshark
def test_tshark_validity_checks_checksums_on_request(captures: dict[str, Path]) -> None:
    counts = tshark_validity([captures["broken"]], check_checksums=True)
    assert counts.bad_checksum == 1
    assert counts.expert["error"] == 2  # the malformed query and the checksum


@needs_tshark
def test_tshark_validity_adds_up_captures(
    captures: dict[str, Path], validity: dict[str, ValidityCounts]
) -> None:
    both = tshark_validity([captures["clean"], captures["broken"]], workers=2)
    assert both == validity["clean"] + validity["broken"]
    assert both.captures == 2


def test_tshark_validity_reads_fields_of_each_frame(tmp_path: Path) -> None:
    # frame 1: a warning and a note, in the sequence group, retransmission
    # and duplicate ACK (which tshark prints twice); frame 2: two errors,
    # one malformed, one a checksum; frame 3: nothing
    flags = len(TCP_ANALYSIS_FLAGS)
    cells = [""] * flags
    cells[TCP_ANALYSIS_FLAGS.index("retransmission")] = "1"
    cells[TCP_ANALYSIS_FLAGS.index("duplicate_ack")] = "1,1"
    lines = [
        "\t".join(["1", "6291456,4194304", "33554432,33554432", *cells]),
        "\t".join(["2", "8388608,8388608", "117440512,16777216", *[""] * flags]),
        "\t".join(["3", "", "", *[""] * flags]),
    ]
    (tmp_path / "out.txt").write_text("\n".join(lines) + "\n")
    tshark = fake_tshark(tmp_path, f"cat '{tmp_path / 'out.txt'}'")
    capture = write(tmp_path / "one.pcap", dns_lookup(5354, 0.0))

    counts = tshark_validity([capture], tshark=tshark)
    assert counts.packets == 3
    assert counts.expert == {"error": 1, "warning": 1, "note": 1, "chat": 0}
    assert (counts.malformed, counts.bad_checksum) == (1, 1)
    assert counts.tcp_analysis["retransmission"] == 1
    assert counts.tcp_analysis["duplicate_ack"] == 1
    assert sum(counts.tcp_analysis.values()) == 2


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("echo 'tshark: boom' >&2; exit 1", "boom"),
        ("echo 'not a field line'", "unexpected output line 1"),
        ("exec sleep 5", "took longer than 0.2 s"),
    ],
    ids=["fails", "garbage", "hangs"],
)
def test_tshark_validity_reports_tool_failure(
    tmp_path: Path, script: str, message: str
) -> None:
    capture = write(tmp_path / "one.pcap", dns_lookup(5354, 0.0))
    tshark = fake_tshark(tmp_path, script)
    with pytest.raises(ToolError, match=message) as caught:
        tshark_validity([capture], tshark=tshark, timeout_s=0.2)
    assert caught.value.path == str(capture)
    assert caught.value.tool == tshark


def test_tshark_validity_missing_tshark(tmp_path: Path) -> None:
    capture = write(tmp_path / "one.pcap", dns_lookup(5354, 0.0))
    with pytest.raises(ToolError, match="not found"):
        tshark_validity([capture], tshark=str(tmp_path / "no-such-tshark"))


@pytest.mark.parametrize(
    "content", [b"", b"hello\n", b"\x00" * 64], ids=["empty", "text", "zeros"]
)
def test_tshark_validity_rejects_what_is_no_capture(
    tmp_path: Path, content: bytes
) -> None:
    # tshark itself reads "hello" as a capture of one packet
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match="not a pcap or pcapng file"):
        tshark_validity([path])


def test_tshark_validity_takes_a_sequence(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        tshark_validity(str(tmp_path / "x.pcap"))  # type: ignore[arg-type]


# distances --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "q", "expected"),
    [
        ({"a": 1, "b": 3}, {"a": 2, "b": 6}, 0.0),
        ({"a": 5}, {"b": 5}, 1.0),
        ({"a": 1, "b": 1}, {"a": 1}, 0.5579230452841438),
        ({}, {"a": 1}, None),
    ],
    ids=["same-shares", "disjoint", "half", "empty"],
)
def test_jensen_shannon(
    p: dict[str, int], q: dict[str, int], expected: float | None
) -> None:
    result = jensen_shannon(Counter(p), Counter(q))
    assert result == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("u", "v", "expected"),
    [
        ([1.0, 2.0, 3.0], [3.0, 1.0, 2.0], 0.0),
        ([0.0], [5.0], 5.0),
        ([0.0, 1.0], [10.0, 11.0], 10.0),
        ([0.0, 0.0, 1.0, 1.0], [0.0, 1.0], 0.0),
        ([1.0, 2.0], [], None),
    ],
    ids=["same", "point", "shift", "same-shares", "empty"],
)
def test_wasserstein(u: list[float], v: list[float], expected: float | None) -> None:
    result = wasserstein(np.array(u), np.array(v))
    assert result == (None if expected is None else pytest.approx(expected))


# per-service samples ----------------------------------------------------------


def test_service_distributions_of_clean_capture(captures: dict[str, Path]) -> None:
    connections = assemble_connections(read_capture(captures["clean"]))
    samples = service_distributions(connections)
    assert list(samples) == ["TCP/80", "UDP/53"]

    http = samples["TCP/80"]
    assert http.flows == 1
    assert http.packets_per_flow.tolist() == [8]
    assert len(http.packet_sizes_bytes) == 8
    assert len(http.gaps_s) == 7  # none before the first packet
    assert http.gaps_s[0] == pytest.approx(0.01)
    assert http.flag_sequences == Counter({">S <SA >A >PA <PA": 1})
    assert http.states == Counter({"SF": 1})

    dns = samples["UDP/53"]
    assert dns.flag_sequences == Counter()
    assert dns.states == Counter({"SF": 1})


def test_service_distributions_names_icmp_by_type(tmp_path: Path) -> None:
    frames = [
        frame(IP(src=C, dst=S) / ICMP(type=8, id=1, seq=1), 0.0),
        frame(IP(src=S, dst=C) / ICMP(type=0, id=1, seq=1), 0.01),
    ]
    connections = assemble_connections(read_capture(write(tmp_path / "p.pcap", frames)))
    assert list(service_distributions(connections)) == ["ICMP/8"]


def test_service_distributions_of_nothing() -> None:
    connections = assemble_connections(PacketTable.empty())
    assert service_distributions(connections) == {}


def test_bucket_services_pools_the_rest() -> None:
    a = ServiceSample(flows=3, packets_per_flow=np.array([1, 2, 3]))
    b = ServiceSample(flows=1, packets_per_flow=np.array([7]), states=Counter(S0=1))
    c = ServiceSample(flows=2, packets_per_flow=np.array([4, 5]), states=Counter(SF=2))
    buckets = bucket_services({"A": a, "B": b, "C": c}, ["A", "Z"])
    assert list(buckets) == ["A", "Z", OTHER]
    assert buckets["A"] is a
    assert buckets["Z"].flows == 0
    assert buckets[OTHER].flows == 3
    assert sorted(buckets[OTHER].packets_per_flow.tolist()) == [4, 5, 7]
    assert buckets[OTHER].states == Counter(S0=1, SF=2)


def test_compare_samples_of_a_service_with_itself_is_zero(
    captures: dict[str, Path],
) -> None:
    samples = service_distributions(
        assemble_connections(read_capture(captures["lab1"]))
    )
    for sample in samples.values():
        distances = compare_samples(sample, sample)
        assert all(d in (0.0, None) for d in distances.values()), distances


def test_compare_samples_sees_the_retransmission(captures: dict[str, Path]) -> None:
    clean, broken = (
        service_distributions(assemble_connections(read_capture(captures[name])))
        for name in ("clean", "broken")
    )
    distances = compare_samples(clean["TCP/80"], broken["TCP/80"])
    assert distances["packets_per_flow_w1"] == pytest.approx(1.0)  # 8 and 9
    assert distances["flag_sequence_js"] == pytest.approx(1.0)  # >PA then <PA or >PA
    assert distances["state_js"] == 0.0
    assert distances["gap_w1_decades"] > 0


# the whole evaluation -------------------------------------------------------


@needs_tshark
def test_evaluate_packets_capture_against_itself(
    tmp_path: Path, captures: dict[str, Path]
) -> None:
    # a copy, so that tshark runs on each side rather than once for both
    copy = tmp_path / "copy.pcap"
    shutil.copyfile(captures["lab1"], copy)
    report = evaluate_packets(captures["lab1"], [copy], plots=False)
    results = report.results
    real, synthetic = (results["validity"][side] for side in ("real", "synthetic"))
    assert real == synthetic
    assert results["services"]["service_mix_js"] == 0.0
    for row in results["services"]["rows"]:
        assert all(d in (0.0, None) for d in row["distances"].values()), row
    assert report.kind == "packets"
    assert report.inputs == {"real": str(captures["lab1"]), "synthetic": str(copy)}


@needs_tshark
def test_evaluate_packets_different_captures(captures: dict[str, Path]) -> None:
    report = evaluate_packets(
        [captures["lab1"], captures["clean"]],
        [captures["lab2"], captures["broken"]],
        top_services=2,
        plots=False,
    )
    results = json.loads(report.to_json())["results"]
    rows = {row["service"]: row for row in results["services"]["rows"]}
    assert list(rows) == ["all", "UDP/53", "TCP/443", OTHER]
    assert results["services"]["service_mix_js"] > 0
    everything = rows["all"]["distances"]
    for key in ("packet_size_w1_bytes", "gap_w1_decades", "flag_sequence_js"):
        assert everything[key] > 0, key
    assert results["validity"]["synthetic"]["counts"]["malformed"] == 1
    assert results["validity"]["real"]["counts"]["malformed"] == 0
    assert results["totals"]["real"]["frames"] == results["validity"]["real"]["packets"]
    assert report.inputs["real"].startswith("2 captures under ")


def test_evaluate_packets_rejects_empty_capture(
    tmp_path: Path, captures: dict[str, Path]
) -> None:
    empty = write(tmp_path / "empty.pcap", [])
    with pytest.raises(InputError, match="holds no packets"):
        evaluate_packets(captures["clean"], empty, plots=False)


def test_evaluate_packets_rejects_what_is_no_capture(
    tmp_path: Path, captures: dict[str, Path]
) -> None:
    text = tmp_path / "notes.pcap"
    text.write_text("hello\n")
    with pytest.raises(CaptureError):
        evaluate_packets(text, captures["clean"], plots=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"top_services": -1}, "top_services"), ({"real": []}, "no real captures")],
)
def test_evaluate_packets_rejects_misuse(
    captures: dict[str, Path], kwargs: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {
        "real": captures["clean"],
        "synthetic": captures["clean"],
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        evaluate_packets(**arguments, plots=False)


@pytest.mark.shared_data
@needs_tshark
def test_evaluate_packets_iot_sentinel_halves(shared_data: Path) -> None:
    # a few captures of two devices: later (eval) set-ups against earlier
    # (train) ones, which should be close but not equal
    root = shared_data / "iot-sentinel"
    rows = [
        line.split(",") for line in (root / "splits.csv").read_text().splitlines()[1:]
    ]
    devices = ("Aria", "HueBridge")
    pick = {
        split: [
            root / "pcaps" / r[0] for r in rows if r[1] in devices and r[5] == split
        ][:2]
        for split in ("train", "eval")
    }
    report = evaluate_packets(pick["eval"], pick["train"], top_services=5, plots=False)
    results = json.loads(report.to_json())["results"]

    for side in ("real", "synthetic"):
        assert results["totals"][side]["frames"] == results["validity"][side]["packets"]
        assert results["validity"][side]["counts"]["malformed"] == 0
    rows_out = results["services"]["rows"]
    assert rows_out[0]["service"] == "all"
    for row in rows_out:
        for key, value in row["distances"].items():
            if value is not None and key.endswith("_js"):
                assert 0.0 <= value <= 1.0
    assert 0.0 <= results["services"]["service_mix_js"] < 0.5
    assert "<table" in report.to_html()
