"""Pairing one-way records into flows (METHODS.md §1.1)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fosr.flows.oneway import OneWayTable
from fosr.flows.pairing import pair_oneway
from fosr.flows.table import format_tcp_flags, parse_tcp_flags

C, S = "10.0.0.1", "10.0.0.2"
TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58

Record = tuple[float, float, int, str, int, str, int, int, int, str]


def records(*rows: Record) -> OneWayTable:
    """Build a table from (start, duration, proto, src, sport, dst, dport,
    packets, bytes, flags) rows."""
    columns = list(zip(*rows, strict=True))
    return OneWayTable.from_columns(
        {
            "start": columns[0],
            "duration": columns[1],
            "proto": columns[2],
            "src": columns[3],
            "src_port": columns[4],
            "dst": columns[5],
            "dst_port": columns[6],
            "packets": columns[7],
            "bytes": columns[8],
            "tcp_flags": [parse_tcp_flags(f) for f in columns[9]],
        }
    )


def test_pair_two_directions_of_one_tcp_connection() -> None:
    flows = pair_oneway(
        records(
            (0.0, 1.0, TCP, C, 40000, S, 80, 5, 500, ".AP.SF"),
            (0.01, 0.99, TCP, S, 80, C, 40000, 4, 3000, ".AP.SF"),
        )
    )
    assert len(flows) == 1
    assert (flows.client[0], flows.client_port[0]) == (C, 40000)
    assert (flows.server[0], flows.server_port[0]) == (S, 80)
    assert (flows.fwd_packets[0], flows.fwd_bytes[0]) == (5, 500)
    assert (flows.bwd_packets[0], flows.bwd_bytes[0]) == (4, 3000)
    assert flows.duration[0] == pytest.approx(1.0)
    assert format_tcp_flags(int(flows.tcp_flags[0])) == ".AP.SF"
    assert flows.state[0] == "SF"


def test_pair_orients_by_lower_port_when_the_reply_comes_first() -> None:
    flows = pair_oneway(
        records(
            (0.0, 0.5, TCP, S, 80, C, 40000, 4, 3000, ".AP.S."),
            (0.1, 0.5, TCP, C, 40000, S, 80, 5, 500, ".AP.S."),
        )
    )
    assert (flows.client[0], flows.server_port[0]) == (C, 80)
    assert (flows.fwd_bytes[0], flows.bwd_bytes[0]) == (500, 3000)
    assert flows.start[0] == 0.0 and flows.duration[0] == pytest.approx(0.6)


def test_pair_reverses_a_lone_record_from_the_lower_port() -> None:
    flows = pair_oneway(records((5.0, 0.0, UDP, S, 53, C, 5000, 1, 120, "......")))
    assert (flows.client[0], flows.client_port[0]) == (C, 5000)
    assert (flows.server[0], flows.server_port[0]) == (S, 53)
    assert (flows.fwd_packets[0], flows.bwd_packets[0]) == (0, 1)
    assert flows.state[0] == "SHR"


def test_pair_keeps_the_first_orientation_on_equal_ports() -> None:
    flows = pair_oneway(
        records(
            (0.0, 0.0, UDP, S, 123, C, 123, 1, 76, "......"),
            (0.0, 0.0, UDP, C, 123, S, 123, 1, 76, "......"),
        )
    )
    assert flows.client[0] == S
    assert flows.state[0] == "SF"


@pytest.mark.parametrize(
    ("second_start", "expected_flows"),
    [(129.999, 1), (130.0, 2), (131.0, 2)],
)
def test_pair_splits_sessions_at_the_gap(
    second_start: float, expected_flows: int
) -> None:
    # the first record ends at 10 s: a gap of exactly 120 s splits
    table = records(
        (0.0, 10.0, UDP, C, 5000, S, 53, 1, 60, "......"),
        (second_start, 0.0, UDP, C, 5000, S, 53, 1, 60, "......"),
    )
    assert len(pair_oneway(table)) == expected_flows


def test_pair_takes_the_session_gap_as_a_parameter() -> None:
    table = records(
        (0.0, 0.0, UDP, C, 5000, S, 53, 1, 60, "......"),
        (6.0, 0.0, UDP, C, 5000, S, 53, 1, 60, "......"),
    )
    assert len(pair_oneway(table, session_gap_s=5.0)) == 2
    assert len(pair_oneway(table, session_gap_s=7.0)) == 1


def test_pair_measures_the_gap_from_the_latest_end() -> None:
    # a long record covers the silence between two short ones
    flows = pair_oneway(
        records(
            (0.0, 1000.0, TCP, C, 40000, S, 443, 100, 9000, ".AP..."),
            (10.0, 1.0, TCP, S, 443, C, 40000, 2, 200, ".AP..."),
            (300.0, 1.0, TCP, S, 443, C, 40000, 2, 200, ".AP..."),
        )
    )
    assert len(flows) == 1
    assert flows.duration[0] == pytest.approx(1000.0)


def test_pair_keeps_other_endpoints_apart() -> None:
    flows = pair_oneway(
        records(
            (0.0, 0.0, TCP, C, 40000, S, 80, 1, 60, "....S."),
            (0.0, 0.0, TCP, C, 40001, S, 80, 1, 60, "....S."),
            (0.0, 0.0, UDP, C, 40000, S, 80, 1, 60, "......"),
        )
    )
    assert len(flows) == 3


def test_pair_trusts_a_bare_syn_over_the_port_rule() -> None:
    # a scan from port 80 to a high port: the SYN sender is the client
    flows = pair_oneway(
        records(
            (0.0, 0.0, TCP, C, 80, S, 5000, 1, 40, "....S."),
            (0.001, 0.0, TCP, S, 5000, C, 80, 1, 40, ".A.R.."),
        )
    )
    assert (flows.client[0], flows.client_port[0], flows.server_port[0]) == (
        C,
        80,
        5000,
    )
    assert flows.state[0] == "REJ"


@pytest.mark.parametrize(
    ("client_flags", "server_flags", "state"),
    [
        ("....S.", None, "S0"),
        ("....S.", ".A.R..", "REJ"),
        (".AP.SF", ".AP.SF", "SF"),
        (".AP.S.", ".AP.S.", "S1"),
        (".AP.SF", ".AP.S.", "S2"),
        (".AP.S.", ".AP.SF", "S3"),
        (".A.RS.", ".A..S.", "RSTO"),
        (".AP.S.", ".A.RS.", "RSTR"),
        ("...RS.", None, "RSTOS0"),
        ("....SF", None, "SH"),
        (".A....", ".A.R..", "RSTRH"),
        (".A....", ".A..SF", "SHR"),
        (".A....", ".A....", "OTH"),
        # the exporter recorded no flags: nothing can be told
        ("......", "......", ""),
    ],
)
def test_pair_derives_the_tcp_state(
    client_flags: str, server_flags: str | None, state: str
) -> None:
    rows = [(0.0, 1.0, TCP, C, 40000, S, 80, 3, 180, client_flags)]
    if server_flags is not None:
        rows.append((0.1, 1.0, TCP, S, 80, C, 40000, 3, 180, server_flags))
    flows = pair_oneway(records(*rows))
    assert flows.client[0] == C
    assert flows.state[0] == state


def test_pair_derives_udp_states_from_directions() -> None:
    flows = pair_oneway(
        records(
            (0.0, 0.0, UDP, C, 5000, S, 53, 1, 60, "......"),
            (0.0, 0.0, UDP, S, 53, C, 5000, 1, 90, "......"),
            (10.0, 0.0, UDP, C, 5001, S, 53, 1, 60, "......"),
        )
    )
    assert flows.state.tolist() == ["SF", "S0"]


def test_pair_drops_tcp_flags_of_other_protocols() -> None:
    # UGR'16 writes .A.... on UDP records
    flows = pair_oneway(records((0.0, 0.0, UDP, C, 5000, S, 53, 1, 60, ".A....")))
    assert flows.tcp_flags[0] == 0


def test_pair_joins_an_icmp_echo_request_and_its_reply() -> None:
    flows = pair_oneway(
        records(
            (0.0, 3.0, ICMP, C, 8, S, 0, 4, 336, "......"),
            (0.001, 3.0, ICMP, S, 0, C, 0, 4, 336, "......"),
        )
    )
    assert len(flows) == 1
    assert (flows.client[0], flows.client_port[0], flows.server_port[0]) == (
        C,
        8,
        0,
    )
    assert (flows.fwd_packets[0], flows.bwd_packets[0]) == (4, 4)
    assert flows.state[0] == "SF"


def test_pair_makes_the_requester_client_of_a_lone_echo_reply() -> None:
    flows = pair_oneway(records((0.0, 0.0, ICMP, S, 0, C, 0, 1, 84, "......")))
    assert (flows.client[0], flows.client_port[0]) == (C, 8)
    assert (flows.fwd_packets[0], flows.bwd_packets[0]) == (0, 1)
    assert flows.state[0] == "SHR"


def test_pair_joins_icmpv6_echo_and_keeps_other_messages_apart() -> None:
    flows = pair_oneway(
        records(
            (0.0, 0.0, ICMPV6, "fe80::1", 128, "fe80::2", 0, 1, 104, "......"),
            (0.0, 0.0, ICMPV6, "fe80::2", 129, "fe80::1", 0, 1, 104, "......"),
            (0.0, 0.0, ICMPV6, "fe80::2", 1, "fe80::1", 4, 1, 104, "......"),
        )
    )
    assert len(flows) == 2
    echo = flows.take(flows.client_port == 128)
    assert echo.client.tolist() == ["fe80::1"]
    assert echo.state.tolist() == ["SF"]
    unreachable = flows.take(flows.client_port == 1)
    assert (unreachable.client[0], unreachable.server_port[0]) == ("fe80::2", 4)
    assert unreachable.state[0] == "S0"


def test_pair_orders_flows_by_start() -> None:
    flows = pair_oneway(
        records(
            (50.0, 0.0, UDP, "10.0.0.9", 5000, S, 53, 1, 60, "......"),
            (10.0, 0.0, UDP, C, 5000, S, 53, 1, 60, "......"),
            (30.0, 0.0, TCP, C, 40000, S, 80, 1, 60, "....S."),
        )
    )
    assert flows.start.tolist() == [10.0, 30.0, 50.0]


def test_pair_of_no_records_is_empty() -> None:
    assert len(pair_oneway(OneWayTable.empty())) == 0


@pytest.mark.parametrize("gap", [-1.0, float("nan")])
def test_pair_rejects_a_bad_session_gap(gap: float) -> None:
    with pytest.raises(ValueError, match="session_gap_s"):
        pair_oneway(OneWayTable.empty(), session_gap_s=gap)


HOSTS = st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3", "DNS"])
PORTS = st.sampled_from([0, 8, 53, 80, 443, 5000, 40000])
ROWS = st.tuples(
    st.floats(0, 1000),
    st.floats(0, 200),
    st.sampled_from([TCP, UDP, ICMP, 47]),
    HOSTS,
    PORTS,
    HOSTS,
    PORTS,
    st.integers(0, 10**6),
    st.integers(0, 10**9),
    st.sampled_from(["......", "....S.", ".A.R..", ".AP.SF", ".A...."]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(ROWS, min_size=1, max_size=40), st.floats(0, 300))
def test_pair_conserves_packets_and_bytes(rows: list[Record], gap: float) -> None:
    table = records(*rows)
    flows = pair_oneway(table, session_gap_s=gap)
    assert 1 <= len(flows) <= len(table)
    assert flows.fwd_packets.sum() + flows.bwd_packets.sum() == table.packets.sum()
    assert flows.fwd_bytes.sum() + flows.bwd_bytes.sum() == table.bytes.sum()
    assert np.all(flows.duration >= 0)
    assert np.all(np.diff(flows.start) >= 0)
