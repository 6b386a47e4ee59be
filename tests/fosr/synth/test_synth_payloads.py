"""Payloads that tshark dissects as DNS, HTTP, TLS, NTP and SMTP.

Each test builds flows by hand, writes payloads with make_payloads, puts
them in frames with build_frames and a pcap with write_pcap, then reads the
capture back with tshark and checks the protocol fields.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from synth_builders import T0, A, F, Flow, P, S, make_batch

from fosr.synth import FlowBatch, build_frames, write_pcap
from fosr.synth.payloads import Kind, PayloadSpec, classify, link_dns, make_payloads
from fosr.synth.payloads._dns import DnsDialogue
from fosr.synth.payloads._http import fit_content_length
from fosr.synth.payloads._smtp import smtp_reply
from fosr.synth.payloads._tls import application_records


def tcp_flow(
    start: float,
    client: str,
    server: str,
    sport: int,
    dport: int,
    turns: list[tuple[bool, list[int]]],
) -> Flow:
    """Return a TCP flow: handshake, the data turns each ACKed, FIN close."""
    t = start
    packets = [(t, True, S, 0), (t + 0.001, False, S | A, 0), (t + 0.002, True, A, 0)]
    t += 0.003
    for forward, sizes in turns:
        for size in sizes:
            packets.append((t, forward, P | A, size))
            t += 0.0005
        packets.append((t, not forward, A, 0))
        t += 0.001
    packets += [(t, True, F | A, 0), (t + 0.001, False, F | A, 0)]
    packets.append((t + 0.002, True, A, 0))
    return Flow(6, client, server, sport, dport, packets)


def udp_flow(
    start: float, client: str, server: str, sport: int, dport: int, sizes: list[int]
) -> Flow:
    """Return a UDP flow alternating client and server datagrams."""
    packets = [(start + 0.001 * i, i % 2 == 0, 0, s) for i, s in enumerate(sizes)]
    return Flow(17, client, server, sport, dport, packets)


CLIENT_A, CLIENT_B, RESOLVER = "192.168.1.10", "192.168.1.11", "192.168.1.53"
WEB, MAIL, NTP_SERVER = "203.0.113.7", "198.51.100.25", "192.168.1.1"

FLOWS = [
    # client A: two queries, then TLS to WEB; client B: DNS over TCP, then HTTP
    udp_flow(T0, CLIENT_A, RESOLVER, 41000, 53, [40, 250]),
    udp_flow(T0 + 0.01, CLIENT_A, RESOLVER, 41001, 53, [30, 20]),
    tcp_flow(
        T0 + 0.1,
        CLIENT_A,
        WEB,
        42000,
        443,
        [
            (True, [517]),
            (False, [1460, 1460, 1200]),
            (True, [80]),
            (False, [1460] * 14),  # 20440 bytes: two application records
            (True, [40]),
        ],
    ),
    tcp_flow(T0 + 0.2, CLIENT_B, RESOLVER, 43000, 53, [(True, [60]), (False, [180])]),
    tcp_flow(
        T0 + 0.3,
        CLIENT_B,
        "198.51.100.80",
        43001,
        80,
        [
            (True, [420]),
            (False, [1460, 1460, 700]),
            (True, [1400]),  # large enough for a POST
            (False, [150]),
            (True, [100]),  # smaller than the request head
            (False, [12]),  # smaller than the response head
        ],
    ),
    udp_flow(T0 + 0.4, CLIENT_B, NTP_SERVER, 123, 123, [48, 48, 76, 48]),
    tcp_flow(
        T0 + 0.5,
        CLIENT_A,
        MAIL,
        44000,
        25,
        [
            (False, [40]),
            (True, [20]),
            (False, [700]),  # EHLO reply padded past one 512-byte line
            (True, [35]),
            (False, [20]),
            (True, [30]),
            (False, [20]),
            (True, [6]),
            (False, [40]),
            (True, [1460, 1460, 300]),  # the message
            (False, [30]),
            (True, [6]),
            (False, [15]),
        ],
    ),
    tcp_flow(T0 + 0.6, CLIENT_A, "192.168.1.20", 45000, 40444, [(True, [300])]),
    Flow(1, CLIENT_B, "192.168.1.1", 7, 0, [(T0 + 0.7, True, 0, 56)]),
]
HOSTNAMES = [None, None, "www.example.com", None, None, None, None, None, None]
TLS_FLOW, HTTP_FLOW, NTP_FLOW, SMTP_FLOW, RANDOM_FLOW = 2, 4, 5, 6, 7


@pytest.fixture(scope="module")
def spec() -> PayloadSpec:
    batch = make_batch(FLOWS)
    return link_dns(
        PayloadSpec.from_batch(batch, hostname=np.array(HOSTNAMES, dtype=object))
    )


@pytest.fixture(scope="module")
def batch(spec: PayloadSpec) -> FlowBatch:
    payload, offsets, length = make_payloads(spec, np.random.default_rng(7))
    return dataclasses.replace(
        make_batch(FLOWS),
        payload=payload,
        payload_offsets=offsets,
        payload_len=length,
    )


@pytest.fixture(scope="module")
def capture(batch: FlowBatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("payloads") / "payloads.pcap"
    with path.open("wb") as out:
        write_pcap(out, build_frames(batch, 5))
    return path


FIELDS = (
    "frame.number",
    "ip.src",
    "_ws.expert.severity",
    "_ws.expert.message",
    "_ws.malformed",
    "tcp.analysis.flags",
    "dns.flags.response",
    "dns.qry.name",
    "dns.a",
    "tls.handshake.extensions_server_name",
    "tls.record.content_type",
    "tls.record.opaque_type",  # TLS 1.3 encrypted records
    "tls.record.length",
    "tls.handshake.type",
    "http.host",
    "http.request.method",
    "http.response.code",
    "http.content_length",
    "data.len",
    "http.file_data",
    "ntp.flags.mode",
    "ntp.org",
    "ntp.xmt",
    "smtp.req.command",
    "smtp.response.code",
    "imf.subject",
    "frame.protocols",
)


def run_tshark(*args: str) -> str:
    program = shutil.which("tshark")
    if program is None:
        pytest.skip("tshark is not installed (it comes with Wireshark)")
    done = subprocess.run([program, *args], capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def dissected(capture: Path) -> list[dict[str, str]]:
    """Return, per packet, the FIELDS tshark dissected (one run for all).

    Values of a field seen several times in a packet are joined by commas.
    """
    args = ["-r", str(capture), "-T", "json"]
    for check in ("ip", "tcp", "udp"):
        args += ["-o", f"{check}.check_checksum:TRUE"]
    for field in FIELDS:
        args += ["-e", field]
    packets = json.loads(run_tshark(*args))
    rows = []
    for packet in packets:
        layers = packet["_source"]["layers"]
        rows.append({f: ",".join(layers.get(f, [])) for f in FIELDS})
    return rows


def having(rows: list[dict[str, str]], protocol: str) -> list[dict[str, str]]:
    """Return the rows whose protocol stack includes ``protocol``."""
    return [r for r in rows if protocol in r["frame.protocols"].split(":")]


def flow_bytes(batch: FlowBatch, flow: int, forward: bool) -> bytes:
    """Return the payload stream of one direction of ``flow``, in order."""
    assert batch.payload is not None and batch.payload_offsets is not None
    lo, hi = batch.offsets[flow], batch.offsets[flow + 1]
    rows = [i for i in range(lo, hi) if batch.forward[i] == forward]
    po = batch.payload_offsets
    return b"".join(bytes(batch.payload[po[i] : po[i + 1]]) for i in rows)


# checks on the bytes, without tshark


def test_payload_lengths_match_offsets_and_random_flows_keep_sizes(
    spec: PayloadSpec, batch: FlowBatch
) -> None:
    assert batch.payload_offsets is not None
    np.testing.assert_array_equal(np.diff(batch.payload_offsets), batch.payload_len)
    for flow in (RANDOM_FLOW, len(FLOWS) - 1):  # random TCP, ICMP echo
        lo, hi = spec.offsets[flow], spec.offsets[flow + 1]
        np.testing.assert_array_equal(batch.payload_len[lo:hi], spec.payload_len[lo:hi])


@pytest.mark.parametrize("flow", [TLS_FLOW, HTTP_FLOW, SMTP_FLOW])
def test_padded_services_keep_the_wished_size_of_large_turns(
    spec: PayloadSpec, batch: FlowBatch, flow: int
) -> None:
    lo, hi = spec.offsets[flow], spec.offsets[flow + 1]
    wished = spec.payload_len[lo:hi]
    written = batch.payload_len[lo:hi]
    # the server's large turns are padded exactly in all three protocols
    server = ~spec.forward[lo:hi]
    assert written[server].sum() >= wished[server].sum()
    big = (wished >= 700) & server
    np.testing.assert_array_equal(written[big], wished[big])


def test_http_short_turns_keep_their_real_size(
    spec: PayloadSpec, batch: FlowBatch
) -> None:
    server = flow_bytes(batch, HTTP_FLOW, False)
    # the last response was wished 12 bytes: it is a whole head instead
    assert server.endswith(b"Content-Length: 0\r\nConnection: keep-alive\r\n\r\n")
    client = flow_bytes(batch, HTTP_FLOW, True)
    assert client.count(b" HTTP/1.1\r\n") == 3
    assert b"POST /upload" in client


def test_link_dns_targets_the_next_flow_of_the_same_client(spec: PayloadSpec) -> None:
    web = int(ipaddress.IPv4Address(WEB))
    http_server = int(ipaddress.IPv4Address("198.51.100.80"))
    assert list(spec.hostname[:2]) == ["www.example.com"] * 2
    assert list(spec.dns_answer[:2]) == [web, web]
    # client B's DNS over TCP resolves its HTTP server, under a made-up name
    assert spec.dns_answer[3] == http_server
    assert spec.hostname[3] == "ip-198-51-100-80.example.net"
    assert spec.hostname[HTTP_FLOW] == spec.hostname[3]
    assert spec.dns_answer[TLS_FLOW] == 0  # only DNS flows get answers


def test_link_dns_without_a_following_flow_answers_nxdomain() -> None:
    batch = make_batch(
        [
            tcp_flow(T0, CLIENT_A, WEB, 40000, 443, [(True, [300])]),
            udp_flow(T0 + 1, CLIENT_A, RESOLVER, 40001, 53, [40, 40]),
            udp_flow(T0 + 2, CLIENT_B, WEB, 40002, 40443, [10]),
        ]
    )
    spec = link_dns(PayloadSpec.from_batch(batch))
    assert spec.dns_answer[1] == 0
    assert spec.hostname[1] == "nx1.invalid"
    payload, offsets, _ = make_payloads(spec, np.random.default_rng(0))
    row = spec.offsets[1] + 1  # the resolver's datagram
    answer = bytes(payload[offsets[row] : offsets[row + 1]])
    assert struct.unpack_from("!H", answer, 2)[0] & 0xF == 3  # RCODE NXDOMAIN


def test_classify_maps_services_and_falls_back_to_random() -> None:
    kinds = classify(
        np.array([17, 6, 6, 6, 17, 6, 1]), np.array([53, 53, 443, 25, 123, 81, 0])
    )
    expected = [Kind.DNS, Kind.DNS_TCP, Kind.TLS, Kind.SMTP, Kind.NTP, 0, 0]
    assert kinds.tolist() == expected


@pytest.mark.parametrize("total", [11 + 34, 50, 144, 145, 146, 1000, 10_050])
def test_fit_content_length_fills_exactly(total: int) -> None:
    head = 34
    fit = fit_content_length(total, head)
    assert fit is not None
    body, extra = fit
    assert head + len(str(body)) + extra + body == total


def test_application_records_split_large_turns() -> None:
    data = application_records(40_000, bytes(40_000))
    assert len(data) == 40_000
    at, sizes = 0, []
    while at < len(data):
        kind, version, length = struct.unpack_from("!BHH", data, at)
        assert (kind, version) == (23, 0x0303)
        sizes.append(length)
        at += 5 + length
    assert at == len(data) and max(sizes) <= (1 << 14) + 17 and len(sizes) == 3


@pytest.mark.parametrize("wished", [0, 20, 40, 300, 520, 1030, 1500])
def test_smtp_reply_is_well_formed_and_sized(wished: int) -> None:
    reply = smtp_reply(250, ["mail.example.net", "PIPELINING", "8BITMIME"], wished)
    lines = reply.split(b"\r\n")[:-1]
    assert all(len(line) + 2 <= 512 for line in lines)
    assert all(line.startswith(b"250-") for line in lines[:-1])
    assert lines[-1].startswith(b"250 ")
    if wished >= 60:  # larger than the bare reply
        assert len(reply) == wished


def test_dns_padding_reaches_the_wished_size() -> None:
    assert len(DnsDialogue.pad(bytes(12) + b"\x00" * 30, 100)) == 100
    assert len(DnsDialogue.pad(bytes(12) + b"\x00" * 30, 50)) == 42  # no room
    assert len(DnsDialogue.pad(bytes(12) + b"\x00" * 30, 5000)) == 1232


# what tshark sees


def test_tshark_sees_no_malformed_packets_or_expert_warnings(
    capture: Path, dissected: list[dict[str, str]]
) -> None:
    problems = []
    for row in dissected:
        # tshark severities: 8388608 error, 6291456 warning
        serious = {"8388608", "6291456"} & set(row["_ws.expert.severity"].split(","))
        if row["_ws.malformed"] or row["tcp.analysis.flags"] or serious:
            problems.append((row["frame.number"], row["_ws.expert.message"]))
    assert len(dissected) == len(make_batch(FLOWS).ts_ns)
    assert problems == []

    # the expert summary agrees: notes and chats only
    summary = run_tshark("-r", str(capture), "-q", "-z", "expert")
    assert "Errors (" not in summary and "Warns (" not in summary
    assert "Notes (" in summary


def test_tshark_dissects_every_service_as_its_protocol(
    dissected: list[dict[str, str]],
) -> None:
    seen = {p for r in dissected for p in r["frame.protocols"].split(":")}
    assert {"dns", "tls", "http", "ntp", "smtp", "imf"} <= seen
    # the random TCP payload on an unassigned port stays plain data
    assert any(r["frame.protocols"].endswith("tcp:data") for r in dissected)


def test_tshark_dns_names_and_answers_agree_with_later_flows(
    dissected: list[dict[str, str]],
) -> None:
    rows = having(dissected, "dns")
    answers = {
        (r["dns.qry.name"], r["dns.a"]) for r in rows if r["dns.flags.response"] == "1"
    }
    assert answers == {
        ("www.example.com", WEB),
        ("ip-198-51-100-80.example.net", "198.51.100.80"),
    }
    queries = [r for r in rows if r["dns.flags.response"] == "0"]
    assert len(queries) == 3  # two over UDP, one over TCP
    sni = {r["tls.handshake.extensions_server_name"] for r in dissected} - {""}
    assert sni == {"www.example.com"}
    hosts = {r["http.host"] for r in dissected} - {""}
    assert hosts == {"ip-198-51-100-80.example.net"}


def test_tshark_http_content_length_equals_body(
    dissected: list[dict[str, str]],
) -> None:
    rows = having(dissected, "http")
    methods = [r["http.request.method"] for r in rows if r["http.request.method"]]
    assert methods == ["GET", "POST", "GET"]
    with_body = [r for r in rows if r["http.content_length"]]
    assert len(with_body) == 4  # one POST and three responses
    for row in with_body:
        body = row["data.len"] or str(len(row["http.file_data"]))
        assert row["http.content_length"] == body
    codes = [r["http.response.code"] for r in rows if r["http.response.code"]]
    assert codes == ["200"] * 3


def test_tshark_tls_records_fill_the_tcp_stream(
    dissected: list[dict[str, str]], batch: FlowBatch
) -> None:
    sent: dict[str, int] = {}
    types: dict[str, list[str]] = {}
    for row in having(dissected, "tls"):
        lengths = row["tls.record.length"]
        if not lengths:  # a middle segment of a reassembled record
            continue
        src = row["ip.src"]
        sent[src] = sent.get(src, 0) + sum(5 + int(n) for n in lengths.split(","))
        kinds = row["tls.record.content_type"] + "," + row["tls.record.opaque_type"]
        types.setdefault(src, []).extend(k for k in kinds.split(",") if k)
    assert sent[CLIENT_A] == len(flow_bytes(batch, TLS_FLOW, True))
    assert sent[WEB] == len(flow_bytes(batch, TLS_FLOW, False))
    assert types[CLIENT_A] == ["22", "20", "23", "23"]
    assert types[WEB] == ["22", "20", "23", "23", "23"]
    handshakes = [r["tls.handshake.type"] for r in dissected]
    assert [h for h in handshakes if h] == ["1", "2"]  # ClientHello, ServerHello


def test_tshark_ntp_modes_and_origin_timestamps(
    dissected: list[dict[str, str]],
) -> None:
    rows = having(dissected, "ntp")
    assert [r["ntp.flags.mode"] for r in rows] == ["3", "4", "3", "4"]
    assert rows[1]["ntp.org"] == rows[0]["ntp.xmt"]
    assert rows[3]["ntp.org"] == rows[2]["ntp.xmt"]


def test_tshark_smtp_dialogue(dissected: list[dict[str, str]]) -> None:
    rows = having(dissected, "smtp")
    commands = [r["smtp.req.command"] for r in rows if r["smtp.req.command"]]
    codes = [
        r["smtp.response.code"].split(",")[0] for r in rows if r["smtp.response.code"]
    ]
    assert commands == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
    assert codes == ["220", "250", "250", "250", "354", "250", "221"]
    assert [r["imf.subject"] for r in rows if r["imf.subject"]] == ["report"]


def random_dialogues(seed: int) -> tuple[list[Flow], list[str | None]]:
    """Return 60 flows of every service with random turns and sizes."""
    rng = np.random.default_rng(seed)
    services = [(6, 443), (6, 80), (6, 25), (6, 53), (17, 53), (17, 123)]
    flows, names = [], []
    for i in range(60):
        proto, port = services[i % len(services)]
        client, server = f"10.0.0.{i % 200 + 1}", f"192.0.2.{i % 250 + 1}"
        start = T0 + i * 0.05
        if proto == 6:
            forward = port != 25 and rng.random() < 0.9  # SMTP servers speak first
            turns = []
            for _ in range(int(rng.integers(1, 8))):
                sizes = rng.choice([1, 3, 10, 40, 100, 300, 600, 1460], 3)
                turns.append((forward, sizes[: rng.integers(1, 4)].tolist()))
                forward = not forward
            flows.append(tcp_flow(start, client, server, 40000 + i, port, turns))
        else:
            sizes = rng.integers(0, 600, int(rng.integers(1, 6))).tolist()
            flows.append(udp_flow(start, client, server, 40000 + i, port, sizes))
        names.append(None if rng.random() < 0.3 else f"h{i}.example.com")
    return flows, names


@pytest.mark.parametrize("seed", [1, 3])
def test_tshark_accepts_random_dialogues(tmp_path: Path, seed: int) -> None:
    flows, names = random_dialogues(seed)
    batch = make_batch(flows)
    spec = link_dns(
        PayloadSpec.from_batch(batch, hostname=np.array(names, dtype=object))
    )
    payload, offsets, length = make_payloads(spec, np.random.default_rng(seed))
    batch = dataclasses.replace(
        batch, payload=payload, payload_offsets=offsets, payload_len=length
    )
    path = tmp_path / "random.pcap"
    with path.open("wb") as out:
        write_pcap(out, build_frames(batch, seed))
    fields = run_tshark(
        "-r",
        str(path),
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "_ws.expert.severity",
        "-e",
        "_ws.expert.message",
        "-e",
        "_ws.malformed",
    )
    problems = []
    for line in fields.splitlines():
        number, severity, message, malformed = (line.split("\t") + [""] * 4)[:4]
        if malformed or {"8388608", "6291456"} & set(severity.split(",")):
            problems.append((number, message))
    assert problems == []


def test_tshark_ipv6_flows_get_aaaa_answers_and_literals(tmp_path: Path) -> None:
    if "ip_version" not in {f.name for f in dataclasses.fields(FlowBatch)}:
        pytest.skip("FlowBatch cannot carry IPv6 flows")
    flows = [
        udp_flow(T0, "2001:db8::10", "2001:db8::53", 41000, 53, [40, 300]),
        tcp_flow(
            T0 + 0.1,
            "2001:db8::10",
            "2001:db8:1::7",
            42000,
            443,
            [(True, [517]), (False, [1460, 900])],
        ),
        tcp_flow(
            T0 + 0.2,
            "2001:db8::11",
            "2001:db8:1::8",
            42001,
            80,
            [(True, [300]), (False, [1460, 900])],
        ),
        tcp_flow(
            T0 + 0.3,
            "2001:db8::11",
            "2001:db8:1::25",
            42002,
            25,
            [(False, [40]), (True, [30]), (False, [200])],
        ),
    ]
    batch = make_batch(flows)
    spec = link_dns(PayloadSpec.from_batch(batch))
    payload, offsets, length = make_payloads(spec, np.random.default_rng(0))
    batch = dataclasses.replace(
        batch, payload=payload, payload_offsets=offsets, payload_len=length
    )
    path = tmp_path / "v6.pcap"
    with path.open("wb") as out:
        write_pcap(out, build_frames(batch, 1))
    fields = (
        "dns.qry.type",
        "dns.qry.name",
        "dns.aaaa",
        "tls.handshake.extensions_server_name",
        "http.host",
        "smtp.req.parameter",
        "_ws.malformed",
        "_ws.expert.severity",
    )
    args = ["-r", str(path), "-T", "fields"]
    for field in fields:
        args += ["-e", field]
    rows = [line.split("\t") for line in run_tshark(*args).splitlines()]
    name = "ip-2001-db8-1--7.example.net"
    assert ["28", name, "2001:db8:1::7"] in [r[:3] for r in rows]
    assert name in {r[3] for r in rows}  # the SNI agrees with the answer
    assert "[2001:db8:1::8]" in {r[4] for r in rows}
    assert "[IPv6:2001:db8::11]" in {r[5] for r in rows}
    assert not any(r[6] or {"8388608", "6291456"} & set(r[7].split(",")) for r in rows)


def test_payload_spec_rejects_columns_of_the_wrong_length(spec: PayloadSpec) -> None:
    with pytest.raises(ValueError, match="hostname must have"):
        dataclasses.replace(spec, hostname=spec.hostname[:-1])
    with pytest.raises(ValueError, match="forward must have"):
        dataclasses.replace(spec, forward=spec.forward[:-1])
    with pytest.raises(ValueError, match="IPv6 flows need"):
        dataclasses.replace(spec, ip_version=np.full(spec.n_flows, 6, np.uint8))


def test_make_payloads_on_an_empty_spec() -> None:
    empty = PayloadSpec.from_batch(make_batch([]))
    payload, offsets, length = make_payloads(link_dns(empty), np.random.default_rng())
    assert len(payload) == 0 and offsets.tolist() == [0] and len(length) == 0
