"""Column-wise parsing helpers of the flow record readers."""

from __future__ import annotations

from datetime import timedelta, timezone

import numpy as np
import pytest

from fosr.errors import RecordError
from fosr.flows._parse import RecordBlock, parse_proto, split_lines
from fosr.flows._textfile import ReadReport

NAMES = ["a", "b", "c"]


def block_of(*values: str, names: list[str] | None = None) -> RecordBlock:
    """A one-column block holding ``values``, on lines 2, 3, ..."""
    names = names or ["x"]
    lines = [v + "\n" for v in values]
    return split_lines("f.csv", names, lines, 2)


def settle(block: RecordBlock) -> list[tuple[int | None, str | None]]:
    report = ReadReport()
    block.settle(skip_bad=True, report=report)
    return [(e.line, e.column) for e in report.errors]


@pytest.mark.parametrize(
    "lines",
    [
        ["1,2,3\n", "4,5,6\n"],  # fast path
        ["1,2,3\r\n", "\n", '"4","5",6\n'],  # slow path: CRLF, blank, quotes
    ],
)
def test_split_lines_fast_and_slow_paths_agree(lines: list[str]) -> None:
    block = split_lines("f.csv", NAMES, lines, 2)
    assert [list(block.text(n)) for n in NAMES] == [["1", "4"], ["2", "5"], ["3", "6"]]
    assert block.lines[0] == 2 and block.dropped == []


def test_split_lines_drops_lines_of_the_wrong_width() -> None:
    block = split_lines("f.csv", NAMES, ["1,2,3\n", "1,2\n", "1,2,3,4\n"], 7)
    assert block.lines.tolist() == [7]
    assert [(e.line, e.column) for e in block.dropped] == [(8, "c"), (9, None)]
    assert "expected 3 fields, found 2" in str(block.dropped[0])


def test_split_lines_keeps_separators_in_unquoted_tsv() -> None:
    block = split_lines(None, NAMES, ['"x\t,y\tz\n'], 1, separator="\t", quoted=False)
    assert list(block.text("a")) == ['"x']


def test_split_lines_reports_an_open_quote() -> None:
    block = split_lines("f.csv", NAMES, ['1,"2,3\n'], 4)
    assert block.dropped[0].line == 4 and "quoting" in str(block.dropped[0])


def test_block_ints_checks_range() -> None:
    block = block_of("1", " 2 ", "x", "99")
    assert block.ints("x", 0, 10).tolist()[:2] == [1, 2]
    assert settle(block) == [(4, "x"), (5, "x")]


def test_block_floats_refuse_what_is_not_finite() -> None:
    block = block_of("0.5", "1e3", "inf", "-0.1", "")
    assert block.floats("x").tolist()[:2] == [0.5, 1000.0]
    assert [line for line, _ in settle(block)] == [4, 5, 6]


@pytest.mark.parametrize(
    ("text", "value"),
    [("12", 12), ("1.2 M", 1_200_000), ("3k", 3000), ("2.5 G", 2_500_000_000)],
)
def test_block_counts_accept_nfdump_suffixes(text: str, value: int) -> None:
    assert block_of("1", text).counts("x").tolist() == [1, value]


def test_block_timestamps() -> None:
    block = block_of(
        "1970-01-01 00:00:01",
        "1970-01-01T00:00:01.5Z",
        "1970-01-01 00:00:01.1234567",
        "1970-01-01",
        "1970-13-01 00:00:00",
    )
    micros = block.timestamps_us("x")
    assert micros.tolist()[:3] == [1_000_000, 1_500_000, 1_123_456]
    assert [line for line, _ in settle(block)] == [5, 6]


def test_block_timestamps_in_a_zone() -> None:
    # Z marks UTC whatever the zone
    block = block_of("1970-01-01 02:00:00", "1970-01-01 02:00:00Z")
    micros = block.timestamps_us("x", timezone(timedelta(hours=2)))
    assert micros.tolist() == [0, 7_200_000_000]


def test_block_lookup_marks_failed_values() -> None:
    block = block_of("tcp", "UDP", "bogus", "tcp")
    assert block.lookup("x", parse_proto, np.uint8).tolist() == [6, 17, 0, 6]
    report = ReadReport()
    block.settle(skip_bad=True, report=report)
    assert "unknown protocol: 'bogus'" in str(report.errors[0])


def test_block_settle_raises_the_first_line_leftmost_column() -> None:
    block = split_lines("f.csv", NAMES, ["1,2,3\n", "1,x,y\n", "z,2,3\n"], 2)
    block.ints("c", 0, 9)
    block.ints("b", 0, 9)
    block.ints("a", 0, 9)
    with pytest.raises(RecordError) as caught:
        block.settle(skip_bad=False, report=ReadReport())
    assert (caught.value.line, caught.value.column) == (3, "b")
    assert str(caught.value) == "f.csv: line 3, column 'b': not an integer: 'x'"


def test_block_settle_keeps_good_rows() -> None:
    block = block_of("1", "x", "3")
    block.ints("x", 0, 9)
    report = ReadReport()
    assert block.settle(skip_bad=True, report=report).tolist() == [True, False, True]
    assert report.skipped == 1


@pytest.mark.parametrize(
    ("text", "number"),
    [("TCP", 6), ("udp ", 17), ("ICMP6", 58), ("IPIP", 4), ("IPv6", 41), ("0", 0)],
)
def test_parse_proto(text: str, number: int) -> None:
    assert parse_proto(text) == number


@pytest.mark.parametrize("text", ["256", "-1", "", "TCPX"])
def test_parse_proto_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="unknown protocol"):
        parse_proto(text)
