"""Topology files: the default loads, bad files name their field, and the
host map places model hosts only on declared addresses."""

from __future__ import annotations

import dataclasses
import ipaddress
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fosr.errors import ConfigError
from fosr.flows.table import FlowTable
from fosr.synth import OS_PROFILES, FlowBatch, build_frames, profile_id, write_pcap
from fosr.synth.payloads import PayloadSpec, link_dns, make_payloads
from fosr.topology import (
    BENCHMARK_RANGE,
    IDENTITY_RESOLVER,
    HostMap,
    HostRoles,
    Role,
    Service,
    Topology,
    default_topology,
    describe_hosts,
    load_topology,
    parse_topology,
)

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """
[dns]
resolver = "ns"

[[networks]]
name = "lan"
cidr = "10.1.0.0/24"

[[hosts]]
name = "ns"
role = "resolver"
network = "lan"
ip = "10.1.0.53"
services = ["udp/53"]

[[hosts]]
name = "pc"
role = "workstation"
network = "lan"
ip = "10.1.0.10"

[outside]
ranges = ["192.0.2.0/24"]
"""


def test_default_topology_loads_and_matches_conf_copy() -> None:
    topology = default_topology()
    assert topology.resolver == "resolver"
    assert topology.gateway == "gateway"
    assert {h.role for h in topology.hosts} == set(Role)
    shipped = REPO / "fosr" / "topology" / "default.toml"
    assert (REPO / "conf" / "topology.toml").read_bytes() == shipped.read_bytes()
    conf = load_topology(REPO / "conf" / "topology.toml")
    assert conf == dataclasses.replace(topology, source=conf.source)


def test_generated_macs_carry_the_role_vendor_prefix() -> None:
    topology = default_topology()
    camera = topology.host("camera")
    assert camera.mac[:3] == bytes.fromhex("240ac4")  # Espressif
    assert topology.host("carol-mac").mac == bytes.fromhex("3c22fb123456")
    # the name alone decides a generated MAC: reordering hosts keeps it
    flipped = MINIMAL.replace('name = "pc"', 'name = "pc2"')
    assert (
        parse_topology(MINIMAL).host("ns").mac == parse_topology(flipped).host("ns").mac
    )


@pytest.mark.parametrize(
    ("old", "new", "field", "value"),
    [
        ('cidr = "10.1.0.0/24"', 'cidr = "10.1.0.0/33"', "networks[0].cidr", "/33"),
        ('cidr = "10.1.0.0/24"', 'cidr = "10.1.0.5/24"', "networks[0].cidr", "10.1"),
        (
            'ip = "10.1.0.10"',
            'ip = "10.2.0.10"',
            "hosts[1] ('pc').ip",
            "10.2.0.10 is outside network 'lan'",
        ),
        ('ip = "10.1.0.10"', 'ip = "10.1.0.53"', "hosts[1] ('pc').ip", "'ns'"),
        ('ip = "10.1.0.10"', 'ip = "10.1.0.255"', "hosts[1] ('pc').ip", "broadcast"),
        (
            'role = "workstation"',
            'role = "workstation"\nos = "plan9"',
            "hosts[1] ('pc').os",
            "'plan9'",
        ),
        ('role = "workstation"', 'role = "laptop"', "hosts[1] ('pc').role", "laptop"),
        (
            'role = "workstation"',
            'role = "workstation"\nmac = "01:00:5e:00:00:01"',
            "hosts[1] ('pc').mac",
            "multicast",
        ),
        (
            'role = "workstation"',
            'role = "workstation"\nmac = "00:11:22:33:44"',
            "hosts[1] ('pc').mac",
            "00:11:22:33:44",
        ),
        (
            'role = "workstation"',
            'role = "workstation"\nservices = ["tcp/99999"]',
            "hosts[1] ('pc').services[0]",
            "tcp/99999",
        ),
        ('name = "pc"', 'name = "ns"', "hosts[1].name", "declared twice"),
        ('name = "pc"', 'name = "PC_1"', "hosts[1].name", "PC_1"),
        (
            'network = "lan"\nip = "10.1.0.10"',
            'network = "wan"\nip = "10.1.0.10"',
            "hosts[1] ('pc').network",
            "'wan'",
        ),
        ('resolver = "ns"', 'resolver = "pc"', "dns.resolver", "udp/53"),
        ('resolver = "ns"', 'resolver = "nobody"', "dns.resolver", "'nobody'"),
        ('resolver = "ns"', 'resolver = "ns"\nttl = 5', "dns", "'ttl'"),
        (
            'ranges = ["192.0.2.0/24"]',
            'ranges = ["10.0.0.0/8"]',
            "outside.ranges[0]",
            "overlaps inside network 'lan'",
        ),
        ('ranges = ["192.0.2.0/24"]', "ranges = []", "outside.ranges", "at least"),
        (
            'ranges = ["192.0.2.0/24"]',
            'ranges = ["192.0.2.0/24"]\nnames = ["bad name"]',
            "outside.names[0]",
            "'bad name'",
        ),
        (
            'cidr = "10.1.0.0/24"',
            'cidr = "10.1.0.0/24"\nvlan = 5000',
            "networks[0].vlan",
            "5000",
        ),
        (
            'cidr = "10.1.0.0/24"',
            'cidr = "10.1.0.0/24"\nvlan = "ten"',
            "networks[0].vlan",
            "'ten'",
        ),
    ],
)
def test_bad_topology_names_file_field_and_value(
    tmp_path: Path, old: str, new: str, field: str, value: str
) -> None:
    assert old in MINIMAL
    path = tmp_path / "bad.toml"
    path.write_text(MINIMAL.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_topology(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {field}: "), message
    assert value in message
    assert "\n" not in message


def test_duplicate_mac_and_overlapping_networks_are_refused() -> None:
    twice = MINIMAL.replace(
        'ip = "10.1.0.10"', 'ip = "10.1.0.10"\nmac = "00:11:22:33:44:55"'
    ).replace(
        'services = ["udp/53"]', 'services = ["udp/53"]\nmac = "00:11:22:33:44:55"'
    )
    with pytest.raises(ConfigError, match=r"hosts\[1\] \('pc'\)\.mac: .*'ns'"):
        parse_topology(twice, "t.toml")
    overlap = MINIMAL.replace(
        "[[hosts]]", '[[networks]]\nname = "big"\ncidr = "10.0.0.0/8"\n\n[[hosts]]', 1
    )
    with pytest.raises(ConfigError, match=r"networks\[1\]\.cidr: .*overlaps"):
        parse_topology(overlap, "t.toml")


def test_unreadable_or_non_toml_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.toml: cannot read"):
        load_topology(tmp_path / "missing.toml")
    path = tmp_path / "junk.toml"
    path.write_text("[[hosts]\n")
    with pytest.raises(ConfigError, match="junk.toml: not valid TOML"):
        load_topology(path)


# the host map


def model_hosts() -> tuple[np.ndarray, HostRoles]:
    """Return model hosts: 12 inside clients, 3 servers, DNS, 20 outside."""
    clients = [f"192.168.1.{i}" for i in range(100, 112)]
    servers = ["10.0.0.80", "10.0.0.25", "172.16.0.9"]
    outside = [f"{1000 + i}_{i}" for i in range(20)]
    addresses = np.array(clients + servers + ["DNS"] + outside)
    n = len(addresses)
    is_client = np.zeros(n, bool)
    is_client[:12] = True
    is_client[16:] = True  # outside hosts that connect in
    is_server = np.zeros(n, bool)
    is_server[12:16] = True
    is_server[16:26] = True
    services: list[frozenset[Service]] = [frozenset()] * n
    services[12] = frozenset({Service(6, 80), Service(6, 443)})
    services[13] = frozenset({Service(6, 25)})
    services[14] = frozenset({Service(6, 5432)})
    services[15] = frozenset({Service(17, 53)})
    for i in range(16, 26):
        services[i] = frozenset({Service(6, 443)})
    inside = np.zeros(n, bool)
    inside[:16] = True
    return addresses, HostRoles(is_client, is_server, inside, tuple(services))


def declared(topology: Topology) -> tuple[set[int], set[bytes]]:
    ips = {int(h.ip) for h in topology.hosts}
    macs = {h.mac for h in topology.hosts}
    return ips, macs


def test_host_map_places_services_and_never_emits_undeclared_addresses() -> None:
    topology = default_topology()
    addresses, roles = model_hosts()
    host_map = HostMap.build(topology, addresses, roles, seed=3)
    ip, mac, os_id, vlan = host_map.resolve(addresses)

    by_address = dict(zip(host_map.addresses, host_map.host, strict=True))
    assert by_address["10.0.0.80"] == "web"
    assert by_address["10.0.0.25"] == "mail"
    assert by_address["DNS"] == "resolver"
    assert by_address["172.16.0.9"] in {"web", "mail", "files"}
    clients = {by_address[a] for a in addresses[:12]}
    assert {topology.host(c).role for c in clients} <= {Role.WORKSTATION, Role.IOT}
    assert len(clients) == 7  # 12 clients spread over all 7 client hosts

    ips, macs = declared(topology)
    outside = [ipaddress.IPv4Address(int(a)) for a in ip[16:]]
    assert len(set(outside)) == 20  # distinct outside addresses
    assert all(any(a in r for r in topology.outside.ranges) for a in outside)
    assert set(ip[:16].tolist()) <= ips
    assert {bytes(m) for m in mac} <= macs
    assert set(vlan.tolist()) <= {n.vlan for n in topology.networks}
    gateway = topology.host("gateway").mac
    assert all(bytes(m) == gateway for m in mac[16:])
    assert set(os_id.tolist()) <= set(range(len(OS_PROFILES)))

    names = host_map.names(addresses)
    assert names[12] in {"web.lab.home.arpa"}
    assert set(names[16:26]) <= {
        *topology.outside.names,
        *(f"h1-{n}" for n in topology.outside.names),
    }
    assert list(names[26:]) == [None] * 10  # outside clients are not named


def test_host_map_is_deterministic_for_a_seed_and_order_free() -> None:
    topology = default_topology()
    addresses, roles = model_hosts()
    first = HostMap.build(topology, addresses, roles, seed=3)
    again = HostMap.build(topology, addresses, roles, seed=3)
    order = np.random.default_rng(0).permutation(len(addresses))
    shuffled = HostRoles(
        roles.is_client[order],
        roles.is_server[order],
        roles.is_inside[order],
        tuple(roles.services[i] for i in order),
    )
    reordered = HostMap.build(topology, addresses[order], shuffled, seed=3)
    other = HostMap.build(topology, addresses, roles, seed=4)
    for a, b in ((first, again), (first, reordered)):
        np.testing.assert_array_equal(a.resolve(addresses)[0], b.resolve(addresses)[0])
        assert a.host == b.host
    assert other.host != first.host or not np.array_equal(other.ip, first.ip)


def test_resolve_is_vectorised_and_rejects_unknown_addresses() -> None:
    addresses, roles = model_hosts()
    host_map = HostMap.build(default_topology(), addresses, roles)
    many = np.repeat(addresses, 1000)
    ip, mac, _, _ = host_map.resolve(many)
    assert ip.shape == (len(many),) and mac.shape == (len(many), 6)
    np.testing.assert_array_equal(ip[::1000], host_map.resolve(addresses)[0])
    with pytest.raises(KeyError, match="'10.9.9.9'"):
        host_map.resolve(["DNS", "10.9.9.9"])


def test_outside_hosts_need_a_gateway() -> None:
    topology = parse_topology(MINIMAL, "min.toml")
    addresses = np.array(["192.168.1.5", "8.8.4.4"])
    roles = HostRoles(
        np.array([True, False]),
        np.array([False, True]),
        np.array([True, False]),
        (frozenset(), frozenset({Service(6, 443)})),
    )
    with pytest.raises(ConfigError, match="min.toml: hosts: .*gateway"):
        HostMap.build(topology, addresses, roles)


def test_identity_keeps_literals_and_places_tokens_in_benchmark_range() -> None:
    addresses = np.array(["192.168.1.10", "16972_85", "DNS", "EXT_SERVER", "8.8.8.8"])
    host_map = HostMap.identity(addresses)
    ip, mac, os_id, vlan = host_map.resolve(addresses)
    as_text = [str(ipaddress.IPv4Address(int(a))) for a in ip]
    assert as_text[0] == "192.168.1.10" and as_text[4] == "8.8.8.8"
    assert as_text[2] == str(IDENTITY_RESOLVER)
    assert all(ipaddress.IPv4Address(a) in BENCHMARK_RANGE for a in as_text[1:4])
    assert len(set(as_text)) == 5
    assert bytes(mac[0]) == bytes([2, 0, 192, 168, 1, 10])
    assert set(vlan.tolist()) == {-1}
    # stable across calls and across the other addresses present
    alone = HostMap.identity(["16972_85"]).resolve(["16972_85"])
    assert alone[0][0] == ip[1] and alone[2][0] == os_id[1]


def test_describe_hosts_reads_roles_from_flows() -> None:
    flows = FlowTable(
        start=np.array([0.0, 1.0, 2.0]),
        duration=np.zeros(3),
        proto=np.array([17, 6, 6], np.uint8),
        client=np.array(["192.168.1.10", "192.168.1.10", "16972_85"], object),
        client_port=np.array([5000, 5001, 5002], np.int32),
        server=np.array(["DNS", "16972_85", "192.168.1.20"], object),
        server_port=np.array([53, 443, 22], np.int32),
        fwd_packets=np.ones(3, np.int64),
        fwd_bytes=np.ones(3, np.int64),
        bwd_packets=np.ones(3, np.int64),
        bwd_bytes=np.ones(3, np.int64),
        tcp_flags=np.zeros(3, np.uint16),
        state=np.array(["", "", ""], object),
    )
    addresses, roles = describe_hosts(flows)
    assert addresses.tolist() == ["16972_85", "192.168.1.10", "192.168.1.20", "DNS"]
    assert roles.is_client.tolist() == [True, True, False, False]
    assert roles.is_server.tolist() == [True, False, True, True]
    assert roles.is_inside.tolist() == [False, True, True, True]
    assert roles.services[0] == {Service(6, 443)}
    assert roles.services[3] == {Service(17, 53)}
    host_map = HostMap.build(default_topology(), addresses, roles, seed=1)
    assert host_map.host[3] == "resolver" and host_map.host[0] == "outside"
    assert profile_id("linux") == host_map.os_id[3]


def lab_batch(host_map: HostMap, addresses: np.ndarray) -> tuple[FlowBatch, list[str]]:
    """Return flows between model hosts, and their servers' model addresses.

    Each client looks a name up, then opens HTTPS; odd clients talk to the
    inside web server, even ones to outside hosts.
    """
    t0 = 1_700_000_000.0
    dns = [(0.0, True, 0, 40), (0.01, False, 0, 90)]
    https = [
        (0.1, True, 0x02, 0),
        (0.11, False, 0x12, 0),
        (0.12, True, 0x10, 0),
        (0.13, True, 0x18, 517),
        (0.14, False, 0x18, 1400),
        (0.2, True, 0x11, 0),
        (0.21, False, 0x11, 0),
        (0.22, True, 0x10, 0),
    ]
    clients, servers, shapes, protos, ports = [], [], [], [], []
    for i, client in enumerate(addresses[:12]):
        server = addresses[12] if i % 2 else addresses[16 + i]
        for proto, port, peer, shape in ((17, 53, "DNS", dns), (6, 443, server, https)):
            clients.append(client)
            servers.append(peer)
            protos.append(proto)
            ports.append(port)
            shapes.append([(t0 + i + t, *rest) for t, *rest in shape])
    client_ip, client_mac, client_os, vlan = host_map.resolve(clients)
    server_ip, server_mac, server_os, _ = host_map.resolve(servers)
    packets = [p for shape in shapes for p in shape]
    batch = FlowBatch(
        proto=np.array(protos, np.uint8),
        client_ip=client_ip,
        server_ip=server_ip,
        client_port=40000 + np.arange(len(protos), dtype=np.uint16),
        server_port=np.array(ports, np.uint16),
        client_mac=client_mac,
        server_mac=server_mac,
        client_os=client_os.astype(np.uint8),
        server_os=server_os.astype(np.uint8),
        vlan=vlan,
        offsets=np.cumsum([0] + [len(s) for s in shapes]),
        ts_ns=np.array([round(p[0] * 1e9) for p in packets], np.int64),
        forward=np.array([p[1] for p in packets], bool),
        tcp_flags=np.array([p[2] for p in packets], np.uint8),
        payload_len=np.array([p[3] for p in packets], np.uint32),
    )
    return batch, servers


def test_capture_from_host_map_holds_only_declared_addresses(tmp_path: Path) -> None:
    """Frames and DNS answers built through a host map stay in the topology."""
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed (it comes with Wireshark)")
    topology = default_topology()
    addresses, roles = model_hosts()
    host_map = HostMap.build(topology, addresses, roles, seed=5)
    batch, servers = lab_batch(host_map, addresses)
    hostname = host_map.names(servers)
    spec = link_dns(PayloadSpec.from_batch(batch, hostname=hostname))
    payload, offsets, length = make_payloads(spec, np.random.default_rng(5))
    batch = dataclasses.replace(
        batch, payload=payload, payload_offsets=offsets, payload_len=length
    )
    path = tmp_path / "lab.pcap"
    with path.open("wb") as out:
        write_pcap(out, build_frames(batch, 5))

    fields = [
        "ip.src",
        "ip.dst",
        "eth.src",
        "eth.dst",
        "vlan.id",
        "dns.a",
        "dns.qry.name",
        "tls.handshake.extensions_server_name",
        "_ws.malformed",
    ]
    args = [tshark, "-r", str(path), "-T", "fields"]
    for field in fields:
        args += ["-e", field]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    assert len(rows) == batch.n_packets

    # every address, MAC and VLAN on the wire or in an answer is declared
    ips, macs = declared(topology)
    seen = {a for r in rows for a in (r[0], r[1], r[5]) if a}
    outside = {a for a in seen if int(ipaddress.IPv4Address(a)) not in ips}
    ranges = topology.outside.ranges
    assert outside and all(
        any(ipaddress.IPv4Address(a) in net for net in ranges) for a in outside
    )
    assert {bytes.fromhex(m.replace(":", "")) for r in rows for m in r[2:4]} <= macs
    vlans = {int(v) for r in rows for v in r[4].split(",") if v}
    assert vlans and vlans <= {n.vlan for n in topology.networks}

    # the names asked for are the ones the TLS flows then use
    asked = {r[6] for r in rows if r[6]}
    assert asked == {r[7] for r in rows if r[7]}
    assert "web.lab.home.arpa" in asked
    assert not any(r[8] for r in rows)
