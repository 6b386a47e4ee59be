"""Read flow record files: nfdump / CIDDS-001, UGR'16, Zeek, fosr.

:func:`read_flow_records` recognises the format by the first line and
returns bidirectional flows, pairing one-way formats with
:func:`~fosr.flows.pairing.pair_oneway`.  The readers of each format are
public too.  All of them take a path or a binary file object, gzip or not,
and report what they skipped in an optional :class:`ReadReport`.

Choices common to the one-way formats:

- Timestamps carry no zone: nfdump prints the exporter's local time.  They
  are read as UTC unless ``tz`` names the zone they were written in (a
  ``datetime.tzinfo`` such as ``zoneinfo.ZoneInfo("Europe/Berlin")``).  UTC
  keeps CIDDS-001 and UGR'16 times as published, which is what their
  papers' time-of-day figures show.
- ICMP has no ports: the table holds the message type in ``src_port`` and the
  code in ``dst_port``.  nfdump writes the pair in the destination port as
  ``type.code`` (``3.1``) or as ``type * 256 + code`` (``771``); both are
  decoded, and a plain number below 256 is taken as a type with code 0
  (FlowChronicle's CIDDS sample writes ``3`` for ``3.3``; as an encoded pair
  it would mean the impossible "echo reply, code 3").
- Records that aggregate several flows (nfdump's ``Flows`` column above 1)
  are kept as they are.
- ``keep_labels``: with a set of labels, only rows whose label column
  (CIDDS-001's ``class``, UGR'16's ``lable``) holds one of them are kept,
  e.g. ``{"normal"}`` for CIDDS-001 or ``{"background"}`` for UGR'16; the
  others are counted in the report.  None, the default, keeps every row.
  A file without a label column is an InputError when labels are asked for.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Collection, Sequence
from datetime import tzinfo
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.errors import InputError
from fosr.flows._parse import RecordBlock, iter_blocks, parse_proto
from fosr.flows._textfile import (
    ReadReport,
    Source,
    open_text,
    paused_gc,
    read_first_line,
    source_name,
)
from fosr.flows.flowcsv import read_flows_csv, write_flows_csv
from fosr.flows.oneway import OneWayTable
from fosr.flows.pairing import DEFAULT_SESSION_GAP_S, pair_oneway
from fosr.flows.table import FLOW_COLUMNS, FlowTable, parse_tcp_flags
from fosr.flows.zeek import read_zeek_conn

__all__ = [
    "FORMATS",
    "NFDUMP_COLUMNS",
    "UGR16_COLUMNS",
    "ReadReport",
    "read_flow_records",
    "read_flows_csv",
    "read_nfdump_csv",
    "read_ugr16_csv",
    "read_zeek_conn",
    "sniff_format",
    "write_flows_csv",
]

logger = logging.getLogger(__name__)

Array = npt.NDArray[Any]

FORMATS = ("nfdump", "ugr16", "zeek", "flows")
"""Record formats :func:`read_flow_records` knows, by their short name."""

NFDUMP_COLUMNS = (
    "Date first seen", "Duration", "Proto", "Src IP Addr", "Src Pt",
    "Dst IP Addr", "Dst Pt", "Packets", "Bytes", "Flows", "Flags",
)  # fmt: skip
"""CIDDS-001's columns, nfdump's default output; ``Tos`` and labels may follow."""

UGR16_COLUMNS = (
    "te", "td", "sa", "da", "sp", "dp", "pr", "flg", "fwd", "stos", "pkt",
    "byt", "lable",
)  # fmt: skip
"""UGR'16's columns, in the order of its headerless files (``lable`` sic)."""

_NFDUMP_OPTIONAL = {"Flows"}
_UGR16_OPTIONAL = {"fwd", "stos", "lable"}
_ICMP, _ICMPV6 = 1, 58
_MAX_DURATION_S = 1e9  # about 31 years

Layout = Callable[[str, str | None, int], tuple[list[str], bool]]
Converter = Callable[[RecordBlock, tzinfo | None], OneWayTable]


def read_flow_records(
    source: Source,
    *,
    format: str = "auto",
    session_gap_s: float = DEFAULT_SESSION_GAP_S,
    skip_bad: bool = False,
    keep_labels: Collection[str] | None = None,
    tz: tzinfo | None = None,
    report: ReadReport | None = None,
) -> FlowTable:
    """Read a flow record file of any known format as bidirectional flows.

    ``format`` is ``"auto"`` (recognise it by the first line, see
    :func:`sniff_format`) or one of :data:`FORMATS`.  One-way records are
    paired with a session gap of ``session_gap_s`` seconds.  ``skip_bad``,
    ``keep_labels`` and ``tz`` are passed to the format's reader; ``report``
    counts records read (before pairing), skipped and filtered.

    Raises InputError if the format is not recognised or the file is bad,
    RecordError for a malformed row unless ``skip_bad``, ValueError for an
    unknown ``format`` name.
    """
    if format != "auto" and format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; known: auto, {FORMATS}")
    if format == "auto":
        format = sniff_format(source)
    report = ReadReport() if report is None else report
    if format in ("zeek", "flows") and keep_labels is not None:
        raise InputError(
            f"cannot keep labels: {format} records carry none",
            path=source_name(source),
        )
    if format == "zeek":
        return read_zeek_conn(source, skip_bad=skip_bad, report=report)
    if format == "flows":
        return read_flows_csv(source, skip_bad=skip_bad, report=report)
    reader = read_nfdump_csv if format == "nfdump" else read_ugr16_csv
    records = reader(
        source, skip_bad=skip_bad, keep_labels=keep_labels, tz=tz, report=report
    )
    return pair_oneway(records, session_gap_s=session_gap_s)


def sniff_format(source: Source) -> str:
    """Return the format of a flow record file, one of :data:`FORMATS`.

    Reads the first non-blank line only; a file object is put back where it
    was, so it must be seekable (ValueError otherwise).  Raises InputError if
    the file is empty or the line fits no known format.
    """
    if isinstance(source, str | os.PathLike):
        line, path = _first_line(source)
    else:
        if not source.seekable():
            raise ValueError("cannot sniff an unseekable file; name its format")
        position = source.tell()
        line, path = _first_line(source)
        source.seek(position)
    found = _format_of(line)
    if found is None:
        raise InputError(
            f"not a known flow record format (nfdump, UGR'16, Zeek conn.log, "
            f"fosr): first line {line[:80]!r}",
            path=path,
        )
    return found


def _first_line(source: Source) -> tuple[str, str | None]:
    with open_text(source) as (stream, path):
        line, _ = read_first_line(stream, path)
    return line, path


def _format_of(line: str) -> str | None:
    if line.startswith(("#separator", "#fields")) or line.lstrip().startswith("{"):
        return "zeek"
    names = _split_header(line)
    if "Date first seen" in names:
        return "nfdump"
    if tuple(names) == FLOW_COLUMNS:
        return "flows"
    if names[0] == "te":
        return "ugr16"
    if len(names) == len(UGR16_COLUMNS) and _looks_like_time(names[0]):
        return "ugr16"
    return None


def read_nfdump_csv(
    source: Source,
    *,
    skip_bad: bool = False,
    keep_labels: Collection[str] | None = None,
    tz: tzinfo | None = None,
    report: ReadReport | None = None,
) -> OneWayTable:
    """Read nfdump / CIDDS-001 CSV records (a path or binary file, gzip or not).

    The header names the columns (:data:`NFDUMP_COLUMNS`, any order; ``Tos``,
    ``class`` and other extra columns are allowed, ``Flows`` may be left
    out).  See the module docstring for times, ICMP and ``keep_labels``.

    Raises InputError for an empty file, a header that lacks a column, or
    no rows after it; RecordError for a malformed row unless ``skip_bad``,
    which drops and counts it in ``report``.
    """
    return _read_oneway(
        source, "nfdump", _nfdump_layout, _convert_nfdump,
        skip_bad=skip_bad, keep_labels=keep_labels, tz=tz, report=report,
    )  # fmt: skip


def read_ugr16_csv(
    source: Source,
    *,
    skip_bad: bool = False,
    keep_labels: Collection[str] | None = None,
    tz: tzinfo | None = None,
    report: ReadReport | None = None,
) -> OneWayTable:
    """Read UGR'16 CSV records (a path or binary file, gzip or not).

    With a header (``te,td,sa,...``, :data:`UGR16_COLUMNS`; ``label`` is
    accepted for ``lable``) or without one, as UGR'16 publishes its files.
    ``te`` is the time of the flow's *last* packet, to the second: the start
    is ``te - td``.  See the module docstring for times, ICMP and
    ``keep_labels``.

    Raises InputError for an empty file, a first line that is neither the
    header nor a record, or no rows; RecordError for a malformed row unless
    ``skip_bad``, which drops and counts it in ``report``.
    """
    return _read_oneway(
        source, "ugr16", _ugr16_layout, _convert_ugr16,
        skip_bad=skip_bad, keep_labels=keep_labels, tz=tz, report=report,
    )  # fmt: skip


def _read_oneway(
    source: Source,
    format: str,
    layout: Layout,
    convert: Converter,
    *,
    skip_bad: bool,
    keep_labels: Collection[str] | None,
    tz: tzinfo | None,
    report: ReadReport | None,
) -> OneWayTable:
    """Read a one-way CSV format: header, blocks, labels, report."""
    report = ReadReport() if report is None else report
    wanted = None if keep_labels is None else frozenset(keep_labels)
    tables: list[OneWayTable] = []
    rows = 0
    with open_text(source) as (stream, path), paused_gc():
        report.path, report.format = path, format
        first, number = read_first_line(stream, path)
        names, first_is_data = layout(first, path, number)
        if wanted is not None and _label_column(names) is None:
            raise InputError("cannot keep labels: no label column", path=path)
        head = [first + "\n"] if first_is_data else []
        start = number if first_is_data else number + 1
        for block in iter_blocks(stream, path, names, start, head=head):
            rows += len(block) + len(block.dropped)
            table = convert(block, tz)
            keep = block.settle(skip_bad=skip_bad, report=report)
            if wanted is not None:
                labels = _labels(block)
                is_wanted = np.fromiter(
                    (label in wanted for label in labels), dtype=bool, count=len(labels)
                )
                report.filtered += int(np.count_nonzero(keep & ~is_wanted))
                keep &= is_wanted
            tables.append(table.take(keep))
    if rows == 0:
        raise InputError("no records after the header", path=path)
    records = OneWayTable.concat(tables)
    report.records = len(records)
    if report.skipped:
        logger.warning("%s", report.summary())
    return records


def _nfdump_layout(line: str, path: str | None, number: int) -> tuple[list[str], bool]:
    names = _split_header(line)
    required = [name for name in NFDUMP_COLUMNS if name not in _NFDUMP_OPTIONAL]
    _check_header(names, required, "nfdump", path, number)
    return names, False


def _ugr16_layout(line: str, path: str | None, number: int) -> tuple[list[str], bool]:
    names = _split_header(line)
    if names[0] != "te":
        if len(names) == len(UGR16_COLUMNS) and _looks_like_time(names[0]):
            return list(UGR16_COLUMNS), True
        raise InputError(
            f"not a UGR'16 header or record: {line[:80]!r}",
            path=path,
            where=f"line {number}",
        )
    names = ["lable" if name == "label" else name for name in names]
    required = [name for name in UGR16_COLUMNS if name not in _UGR16_OPTIONAL]
    _check_header(names, required, "UGR'16", path, number)
    return names, False


def _split_header(line: str) -> list[str]:
    try:
        names = next(csv.reader([line]))
    except csv.Error:  # a field past csv's size limit: no header of a known format
        names = line.split(",")
    return [name.strip() for name in names] or [""]


def _check_header(
    names: Sequence[str],
    required: Sequence[str],
    format: str,
    path: str | None,
    number: int,
) -> None:
    missing = [name for name in required if name not in names]
    if missing:
        raise InputError(
            f"not an {format} CSV header: no column {missing[0]!r} "
            f"in {','.join(names)[:80]!r}",
            path=path,
            where=f"line {number}",
        )
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise InputError(
            f"column {doubled[0]!r} appears twice in the header",
            path=path,
            where=f"line {number}",
        )


def _label_column(names: Sequence[str]) -> str | None:
    for name in ("class", "lable"):
        if name in names:
            return name
    return None


def _looks_like_time(text: str) -> bool:
    head = text.strip()
    return len(head) >= 19 and head[4] == "-" and head[7] == "-" and head[13] == ":"


def _convert_nfdump(block: RecordBlock, tz: tzinfo | None) -> OneWayTable:
    proto = block.lookup("Proto", parse_proto, np.uint8)
    src_port, dst_port = _decode_ports(block, proto, "Src Pt", "Dst Pt")
    return OneWayTable(
        start=block.timestamps_us("Date first seen", tz) / 1e6,
        duration=block.floats("Duration"),
        proto=proto,
        src=block.strings("Src IP Addr"),
        src_port=src_port,
        dst=block.strings("Dst IP Addr"),
        dst_port=dst_port,
        packets=block.counts("Packets"),
        bytes=block.counts("Bytes"),
        tcp_flags=block.lookup("Flags", parse_tcp_flags, np.uint16),
        tos=_tos(block, "Tos"),
    )


def _convert_ugr16(block: RecordBlock, tz: tzinfo | None) -> OneWayTable:
    proto = block.lookup("pr", parse_proto, np.uint8)
    src_port, dst_port = _decode_ports(block, proto, "sp", "dp")
    end_us = block.timestamps_us("te", tz)
    duration = block.floats("td")
    # a longer one would not fit the int64 microseconds below
    too_long = duration > _MAX_DURATION_S
    block.reject_rows(too_long, "td", f"a duration up to {_MAX_DURATION_S:.0e} s")
    kept = np.isfinite(duration) & ~too_long
    duration_us = np.round(np.where(kept, duration, 0) * 1e6)
    return OneWayTable(
        start=(end_us - duration_us.astype(np.int64)) / 1e6,
        duration=duration,
        proto=proto,
        src=block.strings("sa"),
        src_port=src_port,
        dst=block.strings("da"),
        dst_port=dst_port,
        packets=block.counts("pkt"),
        bytes=block.counts("byt"),
        tcp_flags=block.lookup("flg", parse_tcp_flags, np.uint16),
        tos=_tos(block, "stos"),
    )


def _decode_ports(
    block: RecordBlock, proto: Array, src_name: str, dst_name: str
) -> tuple[Array, Array]:
    """Return (source port, destination port), or (type, code) for ICMP."""
    is_icmp = (proto == _ICMP) | (proto == _ICMPV6)
    src_port, _ = _ports(block, src_name)
    dst_port, all_integers = _ports(block, dst_name)
    if all_integers:
        # an ICMP pair is type * 256 + code, or a bare type below 256
        icmp = np.where(dst_port < 256, dst_port * 256, dst_port)
    else:
        icmp = block.lookup(dst_name, _icmp_type_code, np.int32)
    block.reject_rows(~is_icmp & (src_port < 0), src_name, "a port number")
    block.reject_rows(~is_icmp & (dst_port < 0), dst_name, "a port number")
    block.reject_rows(is_icmp & (icmp < 0), dst_name, "an ICMP type.code")
    return (
        np.where(is_icmp, icmp >> 8, src_port),
        np.where(is_icmp, icmp & 0xFF, dst_port),
    )


def _ports(block: RecordBlock, name: str) -> tuple[Array, bool]:
    """Return a port column, -1 where a value is no port number, and whether
    every value was written as a plain integer."""
    values = block.text(name)
    try:
        ports = np.fromiter(map(int, values), dtype=np.int64, count=len(values))
    except (ValueError, OverflowError):
        return block.lookup(name, _port_number, np.int32), False
    in_range = (ports >= 0) & (ports <= 65535)
    return np.where(in_range, ports, -1).astype(np.int32), True


def _port_number(text: str) -> int:
    """Return a port 0..65535, written as an integer or as ``443.0``; else -1."""
    head, dot, tail = text.strip().partition(".")
    if dot and tail.strip("0"):
        return -1
    if not head.isdigit() or int(head) > 65535:
        return -1
    return int(head)


def _icmp_type_code(text: str) -> int:
    """Return ``type * 256 + code`` from ``3.1``, ``771`` or ``3``; else -1."""
    head, dot, tail = text.strip().partition(".")
    if not head.isdigit() or (dot and not tail.isdigit()):
        return -1
    number = int(head)
    if dot:
        code = int(tail)
        return number * 256 + code if number <= 255 and code <= 255 else -1
    if number <= 255:
        return number * 256
    return number if number <= 65535 else -1


def _tos(block: RecordBlock, name: str) -> Array:
    if block.has(name):
        return block.ints(name, 0, 255)
    return np.zeros(len(block), dtype=np.uint8)


def _labels(block: RecordBlock) -> Array:
    name = _label_column(block.names)
    assert name is not None, "the header was checked for a label column"
    return block.lookup(name, str.strip, object, fill="")
