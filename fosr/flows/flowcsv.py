"""Read and write the fosr flow record format: one CSV row per flow.

The header is :data:`~fosr.flows.table.FLOW_COLUMNS` in order.  ``start`` is
ISO 8601 UTC with microseconds and a ``Z`` (``2016-06-09T13:15:43.743810Z``),
``duration`` has six decimals, ``proto`` is a name (``TCP``, ``UDP``,
``ICMP``, ``ICMPv6``, ...) or the protocol number, ``tcp_flags`` is nfdump's
positional style (``.AP.SF``).  See docs/flows.md.

Writing rounds times to the microsecond, so a table whose start times and
durations are already whole microseconds reads back identical, column by
column.
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import numpy as np

from fosr.errors import InputError
from fosr.flows._parse import RecordBlock, iter_blocks, parse_proto
from fosr.flows._textfile import (
    ReadReport,
    Source,
    open_text,
    paused_gc,
    read_first_line,
)
from fosr.flows.table import (
    FLOW_COLUMNS,
    PROTO_NAMES,
    FlowTable,
    format_tcp_flags,
    parse_tcp_flags,
)

__all__ = ["read_flows_csv", "write_flows_csv"]

logger = logging.getLogger(__name__)


def read_flows_csv(
    source: Source, *, skip_bad: bool = False, report: ReadReport | None = None
) -> FlowTable:
    """Read a fosr flow record file (a path or binary file, gzip or not).

    A file with a header and no rows gives an empty table, so that an empty
    table survives a round trip.  Raises InputError if the file is empty or
    the header is not FLOW_COLUMNS, and RecordError for a malformed row
    unless ``skip_bad``, which drops and counts it in ``report``.
    """
    report = ReadReport() if report is None else report
    with open_text(source) as (stream, path), paused_gc():
        report.path, report.format = path, "flows"
        header, number = read_first_line(stream, path)
        names = [name.strip() for name in next(csv.reader([header]))]
        if tuple(names) != FLOW_COLUMNS:
            raise InputError(
                f"not a fosr flow record header: {header[:80]!r}, "
                f"expected {','.join(FLOW_COLUMNS)!r}",
                path=path,
                where=f"line {number}",
            )
        tables = [
            _convert(block, skip_bad, report)
            for block in iter_blocks(stream, path, names, number + 1)
        ]
    table = FlowTable.concat(tables)
    report.records = len(table)
    if report.skipped:
        logger.warning("%s", report.summary())
    return table


def _convert(block: RecordBlock, skip_bad: bool, report: ReadReport) -> FlowTable:
    table = FlowTable(
        start=block.timestamps_us("start") / 1e6,
        duration=block.floats("duration"),
        proto=block.lookup("proto", parse_proto, np.uint8),
        client=block.strings("client"),
        client_port=block.ints("client_port", 0, 65535),
        server=block.strings("server"),
        server_port=block.ints("server_port", 0, 65535),
        fwd_packets=block.ints("fwd_packets", 0, 2**62),
        fwd_bytes=block.ints("fwd_bytes", 0, 2**62),
        bwd_packets=block.ints("bwd_packets", 0, 2**62),
        bwd_bytes=block.ints("bwd_bytes", 0, 2**62),
        tcp_flags=block.lookup("tcp_flags", parse_tcp_flags, np.uint16),
        state=block.strings("state"),
    )
    return table.take(block.settle(skip_bad=skip_bad, report=report))


def write_flows_csv(
    table: FlowTable, destination: str | os.PathLike[str] | IO[str]
) -> None:
    """Write ``table`` in the fosr flow record format, rows in table order.

    ``destination`` is a path (gzip-compressed if it ends in ``.gz``) or a
    text file opened with ``newline=""``, which is left open.  Raises
    ValueError if a start or duration is not finite, a flag mask does not
    fit the eight TCP flag bits, or an address or state holds a line break;
    OSError from the file passes through.
    """
    columns = _format_columns(table)
    with _open_for_writing(destination) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(FLOW_COLUMNS)
        writer.writerows(zip(*columns, strict=True))


def _format_columns(table: FlowTable) -> list[list[str]]:
    """Render every column as a list of str, in FLOW_COLUMNS order."""
    if not (np.isfinite(table.start).all() and np.isfinite(table.duration).all()):
        raise ValueError("start and duration must be finite")
    if (table.tcp_flags > 0xFF).any():
        raise ValueError("tcp_flags holds bits beyond the eight TCP flags")
    for name in ("client", "server", "state"):
        if any("\n" in text or "\r" in text for text in getattr(table, name)):
            # the readers take one line per record
            raise ValueError(f"a value of {name!r} holds a line break")
    micros = np.round(table.start * 1e6).astype(np.int64).astype("datetime64[us]")
    starts = [text + "Z" for text in np.datetime_as_string(micros, unit="us")]
    protos = {int(p): PROTO_NAMES.get(int(p), str(int(p))) for p in set(table.proto)}
    flags = {int(f): format_tcp_flags(int(f)) for f in set(table.tcp_flags)}
    return [
        starts,
        [f"{d:.6f}" for d in table.duration.tolist()],
        [protos[p] for p in table.proto.tolist()],
        [str(a) for a in table.client],
        table.client_port.astype(str).tolist(),
        [str(a) for a in table.server],
        table.server_port.astype(str).tolist(),
        table.fwd_packets.astype(str).tolist(),
        table.fwd_bytes.astype(str).tolist(),
        table.bwd_packets.astype(str).tolist(),
        table.bwd_bytes.astype(str).tolist(),
        [flags[f] for f in table.tcp_flags.tolist()],
        [str(s) for s in table.state],
    ]


@contextmanager
def _open_for_writing(
    destination: str | os.PathLike[str] | IO[str],
) -> Iterator[IO[str]]:
    if not isinstance(destination, str | os.PathLike):
        yield destination
        return
    if os.fspath(destination).endswith(".gz"):
        with gzip.open(destination, "wt", encoding="utf-8", newline="") as zipped:
            yield zipped
        return
    with open(destination, "w", encoding="utf-8", newline="") as stream:
        yield stream
