"""The fosr flow record format: writing and reading back."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fosr.errors import InputError, RecordError
from fosr.flows.flowcsv import read_flows_csv, write_flows_csv
from fosr.flows.table import FLOW_COLUMNS, FlowTable

HEADER = ",".join(FLOW_COLUMNS) + "\n"


def example() -> FlowTable:
    return FlowTable.from_columns(
        {
            "start": [1465478143.74381, 1465478150.0],
            "duration": [0.5, 12.000001],
            "proto": [6, 58],
            "client": ["10.0.0.1", "fe80::1"],
            "client_port": [40000, 128],
            "server": ["10.0.0.2", "fe80::2"],
            "server_port": [80, 0],
            "fwd_packets": [5, 1],
            "fwd_bytes": [500, 104],
            "bwd_packets": [4, 1],
            "bwd_bytes": [3000, 104],
            "tcp_flags": [0x1B, 0],
            "state": ["SF", "SF"],
        }
    )


def assert_same(left: FlowTable, right: FlowTable) -> None:
    for name in FLOW_COLUMNS:
        a, b = left.columns()[name], right.columns()[name]
        assert a.dtype == b.dtype, name
        assert a.tolist() == b.tolist(), name


def test_write_flows_csv_text() -> None:
    stream = io.StringIO(newline="")
    write_flows_csv(example(), stream)
    lines = stream.getvalue().splitlines()
    assert lines[0] == ",".join(FLOW_COLUMNS)
    assert lines[1] == (
        "2016-06-09T13:15:43.743810Z,0.500000,TCP,10.0.0.1,40000,10.0.0.2,80,"
        "5,500,4,3000,.AP.SF,SF"
    )
    assert lines[2].startswith("2016-06-09T13:15:50.000000Z,12.000001,ICMPv6,")


def test_flows_csv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "flows.csv"
    write_flows_csv(example(), path)
    assert_same(read_flows_csv(path), example())


def test_flows_csv_round_trip_gzip(tmp_path: Path) -> None:
    path = tmp_path / "flows.csv.gz"
    write_flows_csv(example(), path)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert_same(read_flows_csv(path), example())


def test_flows_csv_round_trip_of_an_empty_table(tmp_path: Path) -> None:
    # a header alone is a valid empty table in our own format
    path = tmp_path / "flows.csv"
    write_flows_csv(FlowTable.empty(), path)
    assert path.read_text() == HEADER
    assert len(read_flows_csv(path)) == 0


def test_read_flows_csv_names_protocol_numbers_and_names(tmp_path: Path) -> None:
    path = tmp_path / "flows.csv"
    text = HEADER
    for proto in ("tcp", "47", "ICMP", "icmp6", "200"):
        text += f"2016-06-09T13:15:43Z,0,{proto},a,0,b,0,1,1,0,0,......,\n"
    path.write_text(text)
    assert read_flows_csv(path).proto.tolist() == [6, 47, 1, 58, 200]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("start", "2016-06-09 13:15:43+02:00"),
        ("duration", "-0.5"),
        ("proto", "TCPX"),
        ("client_port", "65536"),
        ("fwd_bytes", "1.5"),
        ("tcp_flags", "SYN"),
    ],
)
def test_read_flows_csv_names_line_and_column(
    tmp_path: Path, column: str, value: str
) -> None:
    stream = io.StringIO(newline="")
    write_flows_csv(example(), stream)
    lines = stream.getvalue().splitlines(keepends=True)
    fields = lines[2].rstrip("\n").split(",")
    fields[FLOW_COLUMNS.index(column)] = value
    lines[2] = ",".join(fields) + "\n"
    path = tmp_path / "flows.csv"
    path.write_text("".join(lines))
    with pytest.raises(RecordError) as caught:
        read_flows_csv(path)
    assert (caught.value.line, caught.value.column) == (3, column)
    assert value in str(caught.value)


def test_read_flows_csv_rejects_another_header(tmp_path: Path) -> None:
    path = tmp_path / "flows.csv"
    path.write_text(HEADER.replace("state", "conn_state"))
    with pytest.raises(InputError, match="not a fosr flow record header"):
        read_flows_csv(path)


def test_write_flows_csv_refuses_what_it_cannot_write() -> None:
    table = example()
    with pytest.raises(ValueError, match="finite"):
        write_flows_csv(
            FlowTable(**{**table.columns(), "start": np.array([np.nan, 1.0])}),
            io.StringIO(),
        )
    with pytest.raises(ValueError, match="eight TCP flags"):
        write_flows_csv(
            FlowTable(**{**table.columns(), "tcp_flags": np.array([0x100, 0])}),
            io.StringIO(),
        )
    with pytest.raises(ValueError, match="line break"):
        write_flows_csv(
            FlowTable(**{**table.columns(), "state": np.array(["S\nF", "SF"])}),
            io.StringIO(),
        )


TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
    max_size=12,
)
FLOWS = st.integers(0, 30).flatmap(
    lambda n: st.fixed_dictionaries(
        {
            # whole microseconds: the format's precision
            "start": st.lists(st.integers(0, 4 * 10**15), min_size=n, max_size=n),
            "duration": st.lists(st.integers(0, 10**12), min_size=n, max_size=n),
            "proto": st.lists(st.integers(0, 255), min_size=n, max_size=n),
            "client": st.lists(TEXT, min_size=n, max_size=n),
            "client_port": st.lists(st.integers(0, 65535), min_size=n, max_size=n),
            "server": st.lists(TEXT, min_size=n, max_size=n),
            "server_port": st.lists(st.integers(0, 65535), min_size=n, max_size=n),
            "fwd_packets": st.lists(st.integers(0, 2**62), min_size=n, max_size=n),
            "fwd_bytes": st.lists(st.integers(0, 2**62), min_size=n, max_size=n),
            "bwd_packets": st.lists(st.integers(0, 2**62), min_size=n, max_size=n),
            "bwd_bytes": st.lists(st.integers(0, 2**62), min_size=n, max_size=n),
            "tcp_flags": st.lists(st.integers(0, 255), min_size=n, max_size=n),
            "state": st.lists(TEXT, min_size=n, max_size=n),
        }
    )
)


@settings(max_examples=150, deadline=None)
@given(FLOWS)
def test_flows_csv_round_trip_is_identity(columns: dict[str, list[Any]]) -> None:
    columns["start"] = [us / 1e6 for us in columns["start"]]
    columns["duration"] = [us / 1e6 for us in columns["duration"]]
    table = FlowTable.from_columns(columns)
    stream = io.StringIO(newline="")
    write_flows_csv(table, stream)
    again = read_flows_csv(io.BytesIO(stream.getvalue().encode()))
    assert_same(again, table)
