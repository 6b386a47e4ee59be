"""Read Zeek's conn.log, in its TSV form or as JSON lines.

conn.log is already bidirectional: the originator (``id.orig_h``) is the
client, ``orig_*`` counts are forward and ``resp_*`` backward.  For ICMP Zeek
puts the type in ``id.orig_p`` and the code in ``id.resp_p``, as the flow
table does, and calls ICMPv6 ``icmp`` too: an ICMP record between IPv6
addresses becomes protocol 58.  ``unknown_transport`` needs the ``ip_proto``
field of newer Zeek versions.

Choices:

- Bytes are IP bytes, ``orig_ip_bytes`` and ``resp_ip_bytes``.  A log
  without them (``use_conn_size_analyzer=F``) falls back to the payload
  counts ``orig_bytes`` and ``resp_bytes``, which leave out every header.
- Unset values (``-``): duration 0 (Zeek leaves it unset for one-packet
  connections), packets and bytes 0, state and flags unknown.
- ``history`` gives the TCP flags approximately, letter by letter
  (``_HISTORY_FLAGS``; upper case is the originator, lower case the
  responder, both count): S is SYN, H is SYN-ACK, A is ACK, F FIN, R RST.
  D, a segment with payload, is counted as ACK and PSH: after the handshake
  every segment carries ACK, and stacks set PSH on the last segment of each
  write, so a flow with payload almost always shows PSH in NetFlow records
  too.  Other letters (retransmission, gap, zero window, ...) add nothing.
- ``conn_state`` is copied as it is.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.errors import InputError, RecordError
from fosr.flows._parse import BLOCK_LINES, RecordBlock, split_lines
from fosr.flows._textfile import (
    ReadReport,
    Source,
    open_text,
    paused_gc,
    read_first_line,
)
from fosr.flows.table import TCP_FLAG_BITS, FlowTable

__all__ = ["ZEEK_FIELDS", "read_zeek_conn"]

logger = logging.getLogger(__name__)

Array = npt.NDArray[Any]

ZEEK_FIELDS = (
    "ts", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto",
    "duration", "conn_state", "history", "orig_pkts", "orig_ip_bytes",
    "resp_pkts", "resp_ip_bytes", "orig_bytes", "resp_bytes", "ip_proto",
)  # fmt: skip
"""The conn.log fields the reader uses; the first six are required."""

_REQUIRED = ZEEK_FIELDS[:6]

_HISTORY_FLAGS: dict[str, int] = {
    "S": TCP_FLAG_BITS["S"],
    "H": TCP_FLAG_BITS["S"] | TCP_FLAG_BITS["A"],
    "A": TCP_FLAG_BITS["A"],
    "D": TCP_FLAG_BITS["A"] | TCP_FLAG_BITS["P"],
    "F": TCP_FLAG_BITS["F"],
    "R": TCP_FLAG_BITS["R"],
}
_ZEEK_PROTOS = {"tcp": 6, "udp": 17, "icmp": 1, "unknown_transport": -1}
_TCP, _ICMP, _ICMPV6 = 6, 1, 58


def read_zeek_conn(
    source: Source, *, skip_bad: bool = False, report: ReadReport | None = None
) -> FlowTable:
    """Read a Zeek conn.log (TSV or JSON lines; a path or binary file, gzip or not).

    Rows keep the log's order.  Raises InputError for an empty file, a log
    that is not conn.log or lacks a required field, or one without records;
    RecordError for a malformed row unless ``skip_bad``, which drops and
    counts it in ``report``.
    """
    report = ReadReport() if report is None else report
    with open_text(source) as (stream, path), paused_gc():
        report.path, report.format = path, "zeek"
        first, number = read_first_line(stream, path)
        lines = itertools.chain(
            [(number, first + "\n")], enumerate(stream, start=number + 1)
        )
        if first.lstrip().startswith("{"):
            blocks = _json_blocks(path, lines)
        elif first.startswith("#"):
            blocks = _TsvLog(path).blocks(lines)
        else:
            raise InputError(
                f"not a Zeek log: first line {first[:80]!r}",
                path=path,
                where=f"line {number}",
            )
        tables = []
        rows = 0
        for block, unset, empty in blocks:
            rows += len(block) + len(block.dropped)
            table = _convert(block, unset, empty)
            tables.append(table.take(block.settle(skip_bad=skip_bad, report=report)))
    if rows == 0:
        raise InputError("no records in the log", path=path)
    flows = FlowTable.concat(tables)
    report.records = len(flows)
    if report.skipped:
        logger.warning("%s", report.summary())
    return flows


@dataclass
class _TsvLog:
    """The header state of a TSV log; a log may hold several header runs."""

    path: str | None
    separator: str = "\t"
    unset: str = "-"
    empty: str = "(empty)"
    fields: list[str] | None = None
    pending: list[str] = field(default_factory=list)
    pending_from: int = 0

    def blocks(
        self, lines: Iterable[tuple[int, str]]
    ) -> Iterator[tuple[RecordBlock, str, str]]:
        """Yield the data lines as blocks, following the header lines."""
        for number, line in lines:
            if line.startswith("#"):
                yield from self._flush()
                self._read_directive(line.rstrip("\r\n"), number)
                continue
            if self.fields is None:
                raise InputError(
                    "a record before the #fields line", path=self.path,
                    where=f"line {number}",
                )  # fmt: skip
            if not self.pending:
                self.pending_from = number
            self.pending.append(line)
            if len(self.pending) >= BLOCK_LINES:
                yield from self._flush()
        yield from self._flush()

    def _flush(self) -> Iterator[tuple[RecordBlock, str, str]]:
        if self.pending and self.fields is not None:
            block = split_lines(
                self.path, self.fields, self.pending, self.pending_from,
                separator=self.separator, quoted=False,
            )  # fmt: skip
            self.pending = []
            yield block, self.unset, self.empty

    def _read_directive(self, line: str, number: int) -> None:
        if line.startswith("#separator "):
            escaped = line[len("#separator ") :]
            self.separator = escaped.encode().decode("unicode_escape")
            return
        key, _, value = line.partition(self.separator)
        if key == "#unset_field":
            self.unset = value
        elif key == "#empty_field":
            self.empty = value
        elif key == "#path" and not value.startswith("conn"):
            raise InputError(
                f"a Zeek {value!r} log, not conn", path=self.path,
                where=f"line {number}",
            )  # fmt: skip
        elif key == "#fields":
            fields = value.split(self.separator)
            _check_fields(fields, self.path, number)
            self.fields = fields


def _check_fields(fields: Sequence[str], path: str | None, number: int) -> None:
    missing = [name for name in _REQUIRED if name not in fields]
    if missing:
        raise InputError(
            f"not a conn.log: no field {missing[0]!r}",
            path=path,
            where=f"line {number}",
        )


def _json_blocks(
    path: str | None, lines: Iterable[tuple[int, str]]
) -> Iterator[tuple[RecordBlock, str, str]]:
    """Yield JSON lines as blocks of ZEEK_FIELDS columns, unset as ``-``."""
    batches = iter(lambda: list(itertools.islice(lines, BLOCK_LINES)), [])
    for batch in batches:
        rows: list[list[str]] = []
        kept: list[int] = []
        dropped: list[RecordError] = []
        for number, line in batch:
            if not line.strip():
                continue
            try:
                rows.append(_json_row(line))
                kept.append(number)
            except RecordError as error:
                dropped.append(
                    RecordError(
                        error.reason, path=path, line=number, column=error.column
                    )
                )
        columns = [list(c) for c in zip(*rows, strict=True)] if rows else None
        block = RecordBlock(
            path, ZEEK_FIELDS, columns or [[] for _ in ZEEK_FIELDS],
            np.array(kept, dtype=np.int64), dropped,
        )  # fmt: skip
        yield block, "-", "(empty)"


def _json_row(line: str) -> list[str]:
    """Return one JSON record's ZEEK_FIELDS as text; RecordError if it is bad."""
    try:
        record = json.loads(line)
    except ValueError as error:
        raise RecordError(f"not JSON: {error}") from None
    if not isinstance(record, dict):
        raise RecordError(f"not a JSON object: {line.strip()[:40]!r}")
    for name in _REQUIRED:
        if record.get(name) is None:
            raise RecordError("missing", column=name)
    return [_json_text(record.get(name)) for name in ZEEK_FIELDS]


def _json_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _convert(block: RecordBlock, unset: str, empty: str) -> FlowTable:
    """Convert one block of conn.log rows into flows."""
    for name, default in _DEFAULTS.items():
        if block.has(name):
            block.replace(name, unset, default)
            block.replace(name, empty, default)
    n = len(block)
    client = block.strings("id.orig_h")
    proto = _protocols(block, client)
    fwd_bytes, bwd_bytes = _bytes(block)
    flags = np.zeros(n, dtype=np.uint16)
    if block.has("history"):
        flags = block.lookup("history", _history_flags, np.uint16)
    duration = np.zeros(n)
    if block.has("duration"):
        duration = block.floats("duration")
    state = np.full(n, "", dtype=object)
    if block.has("conn_state"):
        state = block.strings("conn_state")
    return FlowTable(
        start=block.lookup("ts", _zeek_time, np.float64),
        duration=duration,
        proto=proto,
        client=client,
        client_port=block.ints("id.orig_p", 0, 65535),
        server=block.strings("id.resp_h"),
        server_port=block.ints("id.resp_p", 0, 65535),
        fwd_packets=_count(block, "orig_pkts"),
        fwd_bytes=fwd_bytes,
        bwd_packets=_count(block, "resp_pkts"),
        bwd_bytes=bwd_bytes,
        tcp_flags=np.where(proto == _TCP, flags, 0),
        state=state,
    )


_DEFAULTS = {
    "duration": "0",
    "orig_pkts": "0",
    "resp_pkts": "0",
    "orig_ip_bytes": "0",
    "resp_ip_bytes": "0",
    "orig_bytes": "0",
    "resp_bytes": "0",
    "history": "",
    "conn_state": "",
    "ip_proto": "-1",
}


def _protocols(block: RecordBlock, client: Array) -> Array:
    by_name = block.lookup("proto", _zeek_proto, np.int16)
    if block.has("ip_proto"):
        number = block.ints("ip_proto", -1, 255)
        by_name = np.where(number >= 0, number, by_name)
    is_v6 = np.fromiter((":" in a for a in client), dtype=bool, count=len(client))
    by_name = np.where((by_name == _ICMP) & is_v6, _ICMPV6, by_name)
    block.reject_rows(by_name < 0, "proto", "a protocol known without ip_proto")
    return np.where(by_name < 0, 0, by_name).astype(np.uint8)


def _bytes(block: RecordBlock) -> tuple[Array, Array]:
    for forward, backward in (
        ("orig_ip_bytes", "resp_ip_bytes"),
        ("orig_bytes", "resp_bytes"),
    ):
        if block.has(forward) and block.has(backward):
            return _count(block, forward), _count(block, backward)
    zeros = np.zeros(len(block), dtype=np.int64)
    return zeros, zeros


def _count(block: RecordBlock, name: str) -> Array:
    """Return a count column, zeros if the log lacks it."""
    if not block.has(name):
        return np.zeros(len(block), dtype=np.int64)
    return block.ints(name, 0, 2**62)


def _zeek_proto(text: str) -> int:
    try:
        return _ZEEK_PROTOS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown protocol: {text!r}") from None


def _zeek_time(text: str) -> float:
    """Return Unix seconds from Zeek's epoch float or from ISO 8601 text."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"not a time: {text!r}")
        return seconds
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a time: {text!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"a time without zone: {text!r}")
    return moment.timestamp()


def _history_flags(text: str) -> int:
    bits = 0
    for letter in text.upper():
        bits |= _HISTORY_FLAGS.get(letter, 0)
    return bits
