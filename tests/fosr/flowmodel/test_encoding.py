"""Coding flow tables for mining (METHODS.md §1.2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fosr.errors import InputError
from fosr.flowmodel.codebook import ColumnKind
from fosr.flowmodel.encoding import DEFAULT_COLUMNS, CodedTable, encode_flows
from fosr.flows.readers import read_flow_records
from fosr.flows.table import FlowTable

A, B, C = "10.0.0.1", "10.0.0.2", "192.0.2.7"


def flows(**overrides: Any) -> FlowTable:
    """Build five flows; keyword arguments replace whole columns."""
    columns: dict[str, Any] = {
        "start": [100.0, 100.004, 100.016, 101.5, 160.0],
        "duration": [0.0, 0.5, 1.25, 0.0, 30.0],
        "proto": [17, 6, 6, 1, 17],
        "client": [A, A, B, C, B],
        "client_port": [5353, 40000, 40001, 8, 123],
        "server": [C, C, A, A, C],
        "server_port": [53, 443, 22, 0, 123],
        "fwd_packets": [1, 10, 3, 1, 2],
        "fwd_bytes": [60, 1500, 180, 84, 152],
        "bwd_packets": [1, 12, 0, 0, 2],
        "bwd_bytes": [120, 20000, 0, 0, 152],
        "tcp_flags": [0, 0x1B, 0x02, 0, 0],
        "state": ["SF", "SF", "S0", "S0", "SF"],
    }
    columns.update(overrides)
    return FlowTable.from_columns(columns)


def test_encode_keeps_the_default_columns_in_order() -> None:
    table = encode_flows(flows())
    assert table.columns == DEFAULT_COLUMNS
    assert table.codes.shape == (5, len(DEFAULT_COLUMNS))
    assert table.codes.dtype == np.int32 and table.codes.flags.c_contiguous
    assert [b.name for b in table.codebooks] == list(DEFAULT_COLUMNS)


def test_encode_shares_host_codes_between_client_and_server() -> None:
    table = encode_flows(flows())
    client, server = table.column_index("client"), table.column_index("server")
    hosts = table.codebooks[client].values
    assert table.codebooks[server].values is hosts
    assert list(hosts) == [A, B, C]
    assert list(table.codes[:, client]) == [0, 0, 1, 2, 1]
    assert list(table.codes[:, server]) == [2, 2, 0, 0, 2]
    # frequencies are per role
    assert list(table.codebooks[client].counts) == [2, 2, 1]
    assert list(table.codebooks[server].counts) == [2, 0, 3]
    assert table.observed_sizes[client] == 3 and table.observed_sizes[server] == 2
    assert table.address_columns == (client, server)


def test_encode_categorical_values_sorted_with_their_type() -> None:
    table = encode_flows(flows())
    proto = table.codebooks[table.column_index("proto")]
    state = table.codebooks[table.column_index("state")]
    assert proto.kind is ColumnKind.CATEGORICAL
    assert list(proto.values) == [1, 6, 17] and proto.values.dtype == np.uint8
    assert list(state.values) == ["S0", "SF"]
    assert list(table.codes[:, table.column_index("proto")]) == [2, 1, 1, 0, 2]


def test_encode_puts_zero_in_bin_zero() -> None:
    table = encode_flows(flows())
    duration = table.column_index("duration")
    bwd_bytes = table.column_index("bwd_bytes")
    assert list(table.codes[:, duration] == 0) == [True, False, False, True, False]
    assert list(table.codes[:, bwd_bytes] == 0) == [False, False, True, True, False]
    assert table.codebooks[duration].is_continuous


def test_encode_ticks_count_from_the_first_flow() -> None:
    table = encode_flows(flows())
    assert table.origin_s == 100.0 and table.tick_s == 0.01
    assert list(table.ticks) == [0, 0, 2, 150, 6000]
    assert table.span_ticks == 6000
    assert table.seconds(150) == pytest.approx(101.5)


def test_encode_with_a_coarser_tick_and_chosen_columns() -> None:
    table = encode_flows(flows(), columns=("server_port", "client"), tick_s=1.0)
    assert table.columns == ("server_port", "client")
    assert list(table.ticks) == [0, 0, 0, 2, 60]
    assert table.codebooks[1].is_address and table.address_columns == (1,)


def test_decode_rows_give_back_categorical_values_and_bin_intervals() -> None:
    original = flows()
    table = encode_flows(original)
    decoded = table.decode_rows(table.codes, np.random.default_rng(0))
    for name in ("proto", "client", "server", "server_port", "tcp_flags", "state"):
        assert list(decoded[name]) == list(getattr(original, name)), name
        assert decoded[name].dtype == getattr(original, name).dtype
    for name in ("duration", "fwd_bytes", "bwd_bytes", "fwd_packets", "bwd_packets"):
        column = table.column_index(name)
        book = table.codebooks[column]
        for code, value in zip(table.codes[:, column], decoded[name], strict=True):
            low, high = book.interval(int(code))
            assert low <= value <= high, (name, code, value)
        assert np.array_equal(book.encode(decoded[name]), table.codes[:, column])


def test_decode_rows_rejects_a_wrong_shape() -> None:
    table = encode_flows(flows())
    with pytest.raises(ValueError, match="expected"):
        table.decode_rows(table.codes[:, :3], np.random.default_rng(0))


def test_encode_an_empty_table() -> None:
    table = encode_flows(FlowTable.empty())
    assert len(table) == 0 and table.span_ticks == 0
    assert table.codes.shape == (0, len(DEFAULT_COLUMNS))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"columns": ("start",)}, "cannot mine"),
        ({"columns": ("proto", "proto")}, "distinct"),
        ({"columns": ()}, "distinct"),
        ({"bins": 0}, "bins"),
        ({"tick_s": 0.0}, "tick_s"),
    ],
)
def test_encode_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_flows(flows(), **kwargs)


def test_encode_rejects_unsorted_flows() -> None:
    with pytest.raises(ValueError, match="sorted"):
        encode_flows(flows(start=[5.0, 4.0, 6.0, 7.0, 8.0]))


def test_encode_rejects_a_negative_duration() -> None:
    with pytest.raises(InputError, match="row 2"):
        encode_flows(flows(duration=[0.0, 1.0, -1.0, 0.0, 0.0]))


def test_coded_table_checks_its_shapes() -> None:
    table = encode_flows(flows())
    with pytest.raises(ValueError, match="shape"):
        CodedTable(
            codes=table.codes[:4],
            ticks=table.ticks,
            columns=table.columns,
            codebooks=table.codebooks,
            tick_s=table.tick_s,
            origin_s=table.origin_s,
        )


@pytest.mark.shared_data
def test_encode_cidds_round_trip(shared_data: Path) -> None:
    original = read_flow_records(shared_data / "cidds001-wk3" / "train.csv")
    table = encode_flows(original)
    decoded = table.decode_rows(table.codes, np.random.default_rng(3))
    for name in ("proto", "client", "server", "server_port", "tcp_flags", "state"):
        assert np.array_equal(decoded[name], getattr(original, name)), name
    for name in ("duration", "fwd_bytes", "bwd_packets"):
        book = table.codebooks[table.column_index(name)]
        # frequent whole numbers split quantile bins: up to about twice 40
        assert 1 < book.size <= 81
        assert np.array_equal(
            book.encode(decoded[name]), book.encode(getattr(original, name))
        )
    assert np.all(np.abs(table.seconds(table.ticks) - original.start) <= 0.005 + 1e-6)
    # one-packet requests are one bin of their own and decode to one packet
    packets = table.codebooks[table.column_index("fwd_packets")]
    one = int(packets.encode([1])[0])
    assert packets.describe(one) == "1"
    assert np.all(
        decoded["fwd_packets"][table.codes[:, table.column_index("fwd_packets")] == one]
        == 1
    )
