"""Domain-knowledge checks: each rule on a flow that breaks it, and on good flows."""

from __future__ import annotations

from typing import Any

import pytest
from flow_builders import flows, toy_flows

from fosr.evaluate._domain_rules import RULES, _classify
from fosr.evaluate.flows import measure_dkc

GOOD: list[dict[str, Any]] = [
    {},  # TCP 443, 3 + 2 packets, 300 + 200 bytes
    {"proto": 17, "server_port": 53, "tcp_flags": 0, "fwd_packets": 1,
     "fwd_bytes": 60, "bwd_packets": 1, "bwd_bytes": 120},
    {"proto": 17, "server": "192.168.1.255", "server_port": 138, "tcp_flags": 0,
     "fwd_packets": 1, "fwd_bytes": 229, "bwd_packets": 0, "bwd_bytes": 0,
     "duration": 0.0},
    {"proto": 17, "server_port": 443, "tcp_flags": 0},  # QUIC
    {"proto": 6, "server_port": 53},  # DNS over TCP
    {"proto": 1, "client_port": 8, "server_port": 0, "tcp_flags": 0,
     "fwd_packets": 1, "fwd_bytes": 84, "bwd_packets": 1, "bwd_bytes": 84},
    {"proto": 2, "server": "224.0.0.22", "server_port": 0, "tcp_flags": 0,
     "fwd_packets": 1, "fwd_bytes": 40, "bwd_packets": 0, "bwd_bytes": 0,
     "duration": 0.0},
    {"proto": 17, "server": "239.255.255.250", "server_port": 1900,
     "tcp_flags": 0, "bwd_packets": 0, "bwd_bytes": 0},
]  # fmt: skip

BAD: list[tuple[str, dict[str, Any]]] = [
    ("tcp_to_udp_service", {"server_port": 123}),
    ("udp_to_tcp_service", {"proto": 17, "server_port": 22, "tcp_flags": 0}),
    ("port_zero", {"server_port": 0}),
    ("port_without_ports", {"proto": 47, "server_port": 80, "tcp_flags": 0}),
    ("flags_not_tcp", {"proto": 17, "server_port": 53, "tcp_flags": 0x10}),
    ("tcp_to_group", {"server": "224.0.0.251", "bwd_packets": 0, "bwd_bytes": 0}),
    ("group_answered", {"proto": 17, "server": "255.255.255.255",
                        "server_port": 67, "tcp_flags": 0}),
    ("igmp_answered", {"proto": 2, "server_port": 0, "tcp_flags": 0}),
    ("bytes_below_headers", {"fwd_packets": 3, "fwd_bytes": 100}),
    ("bytes_above_max", {"bwd_packets": 0, "bwd_bytes": 10}),
    ("bytes_above_max", {"fwd_packets": 1, "fwd_bytes": 70_000}),
    ("no_packets", {"fwd_packets": 0, "fwd_bytes": 0, "bwd_packets": 0,
                    "bwd_bytes": 0}),
    ("negative_value", {"duration": -1.0}),
    ("instant_packets", {"duration": 0.0}),
    ("lasting_single_packet", {"fwd_packets": 1, "fwd_bytes": 60,
                               "bwd_packets": 0, "bwd_bytes": 0}),
]  # fmt: skip


def test_good_flows_break_no_rule() -> None:
    score, rates = measure_dkc(flows(*GOOD))
    assert score == 0.0
    assert set(rates.values()) == {0.0}


@pytest.mark.parametrize(
    ("rule", "row"), BAD, ids=[f"{r}-{i}" for i, (r, _) in enumerate(BAD)]
)
def test_each_rule_catches_its_flow(rule: str, row: dict[str, Any]) -> None:
    _, rates = measure_dkc(flows(row, {}))
    assert rates[rule] == 0.5
    # no other rule fires on these flows
    assert sum(rates.values()) == 0.5


def test_negative_count_breaks_the_byte_bounds_too() -> None:
    _, rates = measure_dkc(flows({"bwd_packets": -1, "bwd_bytes": 0}))
    assert rates["negative_value"] == 1.0
    assert rates["bytes_above_max"] == 1.0


def test_dkc_is_the_mean_over_applied_rules() -> None:
    score, rates = measure_dkc(flows({"server_port": 0}))
    untrained = [rule.name for rule in RULES if not rule.needs_training]
    assert list(rates) == untrained
    assert score == pytest.approx(1 / len(untrained))


def test_ports_compared_as_integers_not_text() -> None:
    # the reference compared '80.0' with '80' and never matched
    _, rates = measure_dkc(flows({"proto": 17, "server_port": 80, "tcp_flags": 0}))
    assert rates["udp_to_tcp_service"] == 1.0


def test_learned_rules_need_training() -> None:
    _, rates = measure_dkc(flows({}))
    assert "unknown_infrastructure_server" not in rates


def test_learned_rules_from_training() -> None:
    train = toy_flows(2_000, seed=1)
    bad = flows(
        # DNS to a server training never saw answering DNS
        {"proto": 17, "server": "192.168.1.77", "server_port": 53, "tcp_flags": 0,
         "fwd_packets": 1, "fwd_bytes": 60, "bwd_packets": 1, "bwd_bytes": 120},
        # NetBIOS datagrams, only ever broadcast in training, to one host
        {"proto": 17, "server": "192.168.1.12", "server_port": 138, "tcp_flags": 0,
         "fwd_packets": 1, "fwd_bytes": 229, "bwd_packets": 0, "bwd_bytes": 0,
         "duration": 0.0},
        # HTTPS, only ever to outside servers in training, inside
        {"server": "192.168.1.30"},
    )  # fmt: skip
    _, rates = measure_dkc(bad, train=train)
    # training saw port 138 on one server only: that counts as well
    assert rates["unknown_infrastructure_server"] == pytest.approx(2 / 3)
    assert rates["broadcast_service_to_unicast"] == pytest.approx(1 / 3)
    # the DNS resolver and the NetBIOS host are inside; HTTPS on it is not
    assert rates["service_on_wrong_side"] == pytest.approx(1 / 3)
    _, clean = measure_dkc(toy_flows(500, seed=2), train=train)
    assert set(clean.values()) == {0.0}


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("192.168.1.255", (False, True, True)),
        ("255.255.255.255", (True, True, False)),
        ("239.255.255.250", (True, True, False)),
        ("ff02::fb", (True, True, False)),
        ("fe80::1", (False, False, True)),
        ("fd00::1", (False, False, True)),
        ("2001:db8::1", (False, False, False)),
        ("203.0.113.7", (False, False, False)),  # documentation, not site-local
        ("10077_154", (False, False, False)),
    ],
)
def test_classify_addresses(address: str, expected: tuple[bool, bool, bool]) -> None:
    assert _classify(address) == expected


def test_anonymised_tokens_count_as_outside() -> None:
    train = flows(*[{"server": f"{10000 + i}_1"} for i in range(30)])
    _, rates = measure_dkc(
        flows({"server": "192.168.1.5"}, {"server": "DNS"}), train=train
    )
    assert rates["service_on_wrong_side"] == 0.5
