"""The one-way record table."""

from __future__ import annotations

import numpy as np
import pytest

from fosr.flows.oneway import ONEWAY_COLUMNS, OneWayTable


def two_rows() -> OneWayTable:
    return OneWayTable.from_columns(
        {
            "start": [2.0, 1.0],
            "duration": [0.5, 0.0],
            "proto": [6, 17],
            "src": ["a", "b"],
            "src_port": [40000, 53],
            "dst": ["b", "a"],
            "dst_port": [80, 5000],
            "packets": [3, 1],
            "bytes": [180, 60],
            "tcp_flags": [0x12, 0],
        }
    )


def test_oneway_from_columns_casts_and_defaults_tos() -> None:
    table = two_rows()
    assert len(table) == 2
    assert table.tos.tolist() == [0, 0]
    assert table.proto.dtype == np.uint8 and table.src.dtype == object
    assert table.src_port.dtype == np.int32 and table.bytes.dtype == np.int64
    assert list(table.columns()) == list(ONEWAY_COLUMNS)


def test_oneway_sorted_take_and_concat() -> None:
    table = two_rows()
    assert table.sorted_by_start().src.tolist() == ["b", "a"]
    assert table.take(np.array([False, True])).proto.tolist() == [17]
    both = OneWayTable.concat([table, OneWayTable.empty(), table])
    assert len(both) == 4
    assert len(OneWayTable.concat([])) == 0


def test_oneway_refuses_ragged_or_unknown_columns() -> None:
    columns = two_rows().columns()
    with pytest.raises(ValueError, match="has 1 rows"):
        OneWayTable(**{**columns, "bytes": np.array([1])})
    with pytest.raises(ValueError, match="unknown"):
        OneWayTable.from_columns({**columns, "label": ["x", "y"]})
