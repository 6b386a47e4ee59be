"""Column-wise parsing of flow record files, shared by the readers.

How this works: a reader opens its input with
:func:`~fosr.flows._textfile.open_text`, reads the header line itself, then
hands runs of data lines to :func:`split_lines`.  That cuts a run
into columns in one ``str.split`` when every line has the right number of
fields and no quotes, the common case, and line by line otherwise.  The
resulting :class:`RecordBlock` converts one column at a time (integers,
numbers, timestamps, values looked up once per distinct string), so the
per-value work stays in C or in one dict lookup.

A value that does not convert marks its row bad, with the column and the
offending text.  :meth:`RecordBlock.settle` then raises the first problem of
the block (the lowest line, and in it the leftmost column) as a
:class:`~fosr.errors.RecordError`, or, with ``skip_bad``, drops the bad rows
and counts them in a :class:`ReadReport`.  Blocks are a few ten thousand
lines, which bounds the memory spent on Python strings.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import IO, Any, TypeAlias

import numpy as np
import numpy.typing as npt

from fosr.errors import RecordError
from fosr.flows._textfile import ReadReport
from fosr.flows.table import PROTO_NUMBERS

__all__ = ["BLOCK_LINES", "RecordBlock", "iter_blocks", "parse_proto", "split_lines"]

Array: TypeAlias = npt.NDArray[Any]

BLOCK_LINES = 65536
"""Data lines parsed at a time: large enough to amortise numpy calls, small
enough that the Python strings of one block stay in the tens of megabytes."""


class RecordBlock:
    """A run of data lines of one file, cut into columns, converted one by one.

    ``names`` are the column names in file order, ``columns`` their values
    (one sequence of str per column, one entry per row), ``lines`` the line
    number of each row, and ``dropped`` the errors of lines that could not
    even be cut into the right number of fields.
    """

    def __init__(
        self,
        path: str | None,
        names: Sequence[str],
        columns: Sequence[Sequence[str]],
        lines: Array,
        dropped: Sequence[RecordError] = (),
    ) -> None:
        self.path = path
        self.names = list(names)
        self.lines = lines
        self.dropped = list(dropped)
        self._columns = list(columns)
        self._position = {name: i for i, name in enumerate(self.names)}
        # row index -> (column position, error), leftmost column kept
        self._problems: dict[int, tuple[int, RecordError]] = {}

    def __len__(self) -> int:
        return len(self.lines)

    def has(self, name: str) -> bool:
        """Return whether the block has a column called ``name``."""
        return name in self._position

    def text(self, name: str) -> Sequence[str]:
        """Return the raw values of a column."""
        return self._columns[self._position[name]]

    def replace(self, name: str, old: str, new: str) -> None:
        """Replace every value ``old`` of a column by ``new`` (unset markers)."""
        values = self.text(name)
        if old in values:
            self._columns[self._position[name]] = [
                new if v == old else v for v in values
            ]

    def reject(self, index: int, name: str, message: str) -> None:
        """Mark row ``index`` bad because of the value in column ``name``."""
        position = self._position.get(name, len(self.names))
        kept = self._problems.get(index)
        if kept is not None and kept[0] <= position:
            return
        error = RecordError(
            message, path=self.path, line=int(self.lines[index]), column=name
        )
        self._problems[index] = (position, error)

    def reject_rows(self, mask: Array, name: str, what: str) -> None:
        """Mark the rows where ``mask`` holds bad: the value is not ``what``."""
        values = self.text(name)
        for index in map(int, np.flatnonzero(mask)):
            self.reject(index, name, f"not {what}: {values[index]!r}")

    def strings(self, name: str) -> Array:
        """Return a column as an object array of str, values as written."""
        column = np.empty(len(self), dtype=object)
        column[:] = self.text(name)
        return column

    def ints(self, name: str, low: int, high: int) -> Array:
        """Return a column of integers in ``low..high`` as int64."""
        values = self.text(name)
        try:
            column = np.fromiter(map(int, values), dtype=np.int64, count=len(values))
        except (ValueError, OverflowError):
            column = self._convert_each(name, values, _to_int, "an integer")
        self._check_range(name, column, low, high)
        return column

    def floats(self, name: str, low: float = 0.0) -> Array:
        """Return a column of finite numbers not below ``low`` as float64."""
        values = self.text(name)
        try:
            column = np.fromiter(
                map(float, values), dtype=np.float64, count=len(values)
            )
        except ValueError:
            column = self._convert_each(name, values, float, "a number")
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(column) & (column >= low))
        for index in map(int, np.flatnonzero(bad)):
            self.reject(
                index, name, f"not a finite number >= {low:g}: {values[index]!r}"
            )
        return column

    def counts(self, name: str) -> Array:
        """Return a column of counts as int64, accepting nfdump's ``1.2 M``.

        nfdump scales large counts for display with the decimal suffixes
        k, M, G and T (x1e3 ... x1e12); the value is rounded to an integer.
        """
        values = self.text(name)
        try:
            column = np.fromiter(map(int, values), dtype=np.int64, count=len(values))
        except (ValueError, OverflowError):
            column = self._convert_each(name, values, _to_scaled_count, "a count")
        self._check_range(name, column, 0, 2**62)
        return column

    def lookup(
        self,
        name: str,
        convert: Callable[[str], Any],
        dtype: npt.DTypeLike,
        fill: Any = 0,
    ) -> Array:
        """Convert each distinct value of a column once with ``convert``.

        For columns with few distinct values (protocols, flags, ports).  A
        ValueError from ``convert`` marks the rows with that value bad, its
        message becoming theirs; ``fill`` stands in for them.
        """
        values = self.text(name)
        index: dict[str, int] = {}
        results: list[Any] = []
        failed: dict[str, str] = {}
        for value in dict.fromkeys(values):
            try:
                results.append(convert(value))
            except ValueError as error:
                results.append(fill)
                failed[value] = str(error)
            index[value] = len(results) - 1
        positions = np.fromiter(
            map(index.__getitem__, values), dtype=np.intp, count=len(values)
        )
        if failed:
            for row, value in enumerate(values):
                if value in failed:
                    self.reject(row, name, failed[value])
        table = np.empty(len(results), dtype=dtype)
        table[:] = results
        return table[positions]

    def timestamps_us(self, name: str, tz: tzinfo | None = None) -> Array:
        """Return a column of ``YYYY-MM-DD hh:mm:ss[.ffffff][Z]`` as int64 µs.

        ``T`` may replace the space.  Times without ``Z`` are wall-clock time
        in ``tz``, UTC when ``tz`` is None; digits beyond the microsecond
        are cut off.
        """
        values = self.text(name)
        distinct = list(dict.fromkeys(values))
        micros = _parse_timestamps(distinct, tz)
        index = {value: i for i, value in enumerate(distinct)}
        positions = np.fromiter(
            map(index.__getitem__, values), dtype=np.intp, count=len(values)
        )
        failed = np.array([us is None for us in micros], dtype=bool)
        for row in map(int, np.flatnonzero(failed[positions])):
            self.reject(
                row,
                name,
                f"not a timestamp YYYY-MM-DD hh:mm:ss[.ffffff]: {values[row]!r}",
            )
        table = np.array([0 if us is None else us for us in micros], dtype=np.int64)
        return table[positions]

    def settle(self, *, skip_bad: bool, report: ReadReport) -> Array:
        """Return a boolean mask of the good rows, or raise the first problem.

        Without ``skip_bad`` the problem on the lowest line (the leftmost
        column within that line) is raised as RecordError.  With it, the bad
        rows are counted in ``report`` and left out of the mask.
        """
        errors = self.dropped + [error for _, error in self._problems.values()]
        errors.sort(key=lambda error: error.line or 0)
        if errors and not skip_bad:
            raise errors[0]
        report.add_skipped(errors)
        keep = np.ones(len(self), dtype=bool)
        keep[list(self._problems)] = False
        return keep

    def _convert_each(
        self,
        name: str,
        values: Sequence[str],
        convert: Callable[[str], int | float],
        what: str,
    ) -> Array:
        """Convert value by value, marking the rows that fail; slow path."""
        results: list[int | float] = []
        for row, value in enumerate(values):
            try:
                number = convert(value)
                if isinstance(number, int) and not -(2**63) <= number < 2**63:
                    raise OverflowError(value)  # past int64, the column's type
                results.append(number)
            except (ValueError, OverflowError):
                self.reject(row, name, f"not {what}: {value!r}")
                results.append(0)
        return np.array(results, dtype=np.float64 if convert is float else np.int64)

    def _check_range(self, name: str, column: Array, low: int, high: int) -> None:
        values = self.text(name)
        for index in map(int, np.flatnonzero((column < low) | (column > high))):
            self.reject(index, name, f"out of range {low}..{high}: {values[index]!r}")


def split_lines(
    path: str | None,
    names: Sequence[str],
    lines: Sequence[str],
    first_line: int,
    *,
    separator: str = ",",
    quoted: bool = True,
) -> RecordBlock:
    """Cut consecutive data lines into the columns ``names``.

    ``lines`` keep their line endings, as file iteration gives them; the
    first is line number ``first_line``.  Blank lines are skipped.  With
    ``quoted``, fields may be quoted as the csv module writes them, but a
    record may not span lines.  A line with the wrong number of fields is
    kept in the block's ``dropped`` errors.
    """
    width = len(names)
    text = "".join(lines)
    if text.endswith("\n"):
        text = text[:-1]
    if "\r" in text:
        text = text.replace("\r\n", "\n")

    # fast path: one split for the whole run
    fields = width - 1
    if (
        "\r" not in text
        and (not quoted or '"' not in text)
        and all(line.count(separator) == fields for line in lines)
    ):
        flat = text.replace("\n", separator).split(separator)
        columns = [flat[i::width] for i in range(width)]
        numbers = np.arange(first_line, first_line + len(lines), dtype=np.int64)
        return RecordBlock(path, names, columns, numbers)

    # slow path: line by line, to skip blanks and find the broken lines
    rows: list[list[str]] = []
    kept: list[int] = []
    dropped: list[RecordError] = []
    for number, line in enumerate(lines, start=first_line):
        body = line.rstrip("\r\n")
        if not body.strip():
            continue
        try:
            row = _split_line(body, separator, quoted)
        except csv.Error as error:
            dropped.append(RecordError(f"bad quoting: {error}", path=path, line=number))
            continue
        if len(row) == width:
            rows.append(row)
            kept.append(number)
            continue
        column = names[len(row)] if len(row) < width else None
        dropped.append(
            RecordError(
                f"expected {width} fields, found {len(row)}",
                path=path,
                line=number,
                column=column,
            )
        )
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[]] * width
    return RecordBlock(path, names, columns, np.array(kept, dtype=np.int64), dropped)


def iter_blocks(
    stream: IO[str],
    path: str | None,
    names: Sequence[str],
    first_line: int,
    *,
    head: Sequence[str] = (),
    separator: str = ",",
) -> Iterator[RecordBlock]:
    """Yield the rest of ``stream`` as blocks of at most BLOCK_LINES lines.

    ``head`` holds lines already read that belong to the data (a headerless
    file's first line); ``first_line`` is the number of the first of them,
    or of the next line of the stream when ``head`` is empty.
    """
    pending = list(head)
    number = first_line
    while True:
        lines = pending + list(itertools.islice(stream, BLOCK_LINES - len(pending)))
        pending = []
        if not lines:
            return
        yield split_lines(path, names, lines, number, separator=separator)
        number += len(lines)


# protocol names nfdump and UGR'16 print that PROTO_NAMES lacks
_MORE_PROTO_NUMBERS = {"HOPOPT": 0, "IPIP": 4, "IPV4": 4, "IPV6": 41, "ICMP6": 58}
_PROTO_NUMBERS = {**PROTO_NUMBERS, **_MORE_PROTO_NUMBERS}


def parse_proto(text: str) -> int:
    """Return the protocol number of a name (any case) or a number 0..255.

    Raises ValueError for anything else.
    """
    name = text.strip().upper()
    number = _PROTO_NUMBERS.get(name)
    if number is not None:
        return number
    if name.isdigit() and int(name) <= 255:
        return int(name)
    raise ValueError(f"unknown protocol: {text!r}")


def _split_line(body: str, separator: str, quoted: bool) -> list[str]:
    if quoted and '"' in body:
        return next(csv.reader([body], delimiter=separator, strict=True))
    return body.split(separator)


def _to_int(text: str) -> int:
    return int(text)


_SCALES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_SCALED = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([kKmMgGtT]?)\s*")


def _to_scaled_count(text: str) -> int:
    match = _SCALED.fullmatch(text)
    if match is None:
        raise ValueError(text)
    number, suffix = match.groups()
    return round(float(number) * _SCALES[suffix.upper()])


_TIMESTAMP = re.compile(r"\s*(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?(Z?)\s*")


def _parse_timestamps(values: Sequence[str], tz: tzinfo | None) -> list[int | None]:
    """Return µs since the epoch for each value, None where it is no time."""
    normal: list[str] = []
    where: list[int] = []
    is_utc: list[bool] = []
    for i, value in enumerate(values):
        match = _TIMESTAMP.fullmatch(value)
        if match is not None:
            date, clock, fraction, zulu = match.groups()
            # digits beyond the microsecond are cut off, not rounded
            normal.append(f"{date}T{clock}{(fraction or '')[:7]}")
            where.append(i)
            is_utc.append(bool(zulu) or tz is None)
    results: list[int | None] = [None] * len(values)
    parsed: list[int | None]
    try:
        parsed = [
            int(x) for x in np.array(normal).astype("datetime64[us]").view(np.int64)
        ]
    except ValueError:
        parsed = [_parse_one(text) for text in normal]
    for i, us, utc in zip(where, parsed, is_utc, strict=True):
        if us is not None and not utc:
            us -= _utc_offset_us(us, tz)
        results[i] = us
    return results


def _parse_one(text: str) -> int | None:
    try:
        return int(np.datetime64(text, "us").astype(np.int64))
    except ValueError:
        return None


def _utc_offset_us(wall_us: int, tz: tzinfo | None) -> int:
    """Return the UTC offset of ``tz`` at a wall-clock time, in µs.

    An ambiguous or skipped time at a daylight saving change takes the
    offset of ``fold=0``, the earlier of the two, as zoneinfo does.
    """
    wall = _EPOCH + timedelta(microseconds=wall_us)
    offset = tz.utcoffset(wall) if tz is not None else None
    if offset is None:
        return 0
    return offset // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1)
