"""Sorted row lists per column value, to find pattern occurrences fast.

How this works: for every column ``c`` and code ``v`` the index keeps the
ascending ids of the rows whose column ``c`` holds ``v``.  All lists live in
one flat array in CSR layout: a *slot* numbers each (column, code) pair
(``slot = base[c] + v``), ``offsets[slot]:offsets[slot + 1]`` delimits its
list in ``rows``.  One stable argsort per column builds it.

Beside ``rows`` the index keeps ``keys = slot * n_rows + row``, which is
ascending over the whole flat array.  One ``np.searchsorted`` on ``keys``
then answers "first row after ``r`` holding ``v`` in ``c``" for many
(column, code, row) triples at once, each in its own list: this is how
window completion runs vectorised over all start rows (METHODS.md §6: per
(column, value) sorted index lists and binary search instead of the
reference's full scan per step).

Rows matching several cells at once are found by walking the rarest cell's
list and checking the other cells in ``codes`` directly, which costs the
length of the rarest list rather than a merge of all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.flowmodel._search import search_many
from fosr.flowmodel.encoding import CodedTable

__all__ = ["NO_ROW", "OccurrenceIndex"]

Array = npt.NDArray[Any]

NO_ROW = -1
"""Row id returned when no row qualifies."""


class OccurrenceIndex:
    """Sorted row ids per (column, code) of a coded table.

    Attributes, all read-only by convention:

    - ``codes`` (int32, rows x columns) and ``ticks`` (int64, ascending):
      the table, kept by reference, so do not modify them afterwards;
    - ``sizes``: number of codes per column; ``n_rows``, ``n_columns``;
    - ``base``: int64, first slot of each column (plus the total at the end);
    - ``offsets``: int64, ``offsets[slot]:offsets[slot + 1]`` is the slot's
      list in ``rows`` and ``keys``;
    - ``rows``: int64 row ids, ascending within each list;
    - ``keys``: int64, ``slot * n_rows + row``, ascending overall.

    Memory: 16 bytes per cell of the table (rows and keys).
    """

    def __init__(
        self, codes: Array, sizes: Sequence[int], ticks: Array | None = None
    ) -> None:
        """Index a 2-D int array of codes, column ``c`` holding ``0..sizes[c]-1``.

        ``ticks`` (int64, one per row, ascending) defaults to the row
        numbers.  Raises ValueError when the shapes disagree, a code lies
        outside its column's range or the ticks decrease.
        """
        codes = np.ascontiguousarray(codes, dtype=np.int32)
        if codes.ndim != 2 or codes.shape[1] != len(sizes):
            raise ValueError(f"codes of shape {codes.shape} for {len(sizes)} sizes")
        if ticks is None:
            ticks = np.arange(codes.shape[0], dtype=np.int64)
        if len(ticks) != codes.shape[0]:
            raise ValueError(f"{len(ticks)} ticks for {codes.shape[0]} rows")
        if np.any(np.diff(ticks) < 0):
            raise ValueError("ticks must not decrease: rows are in time order")
        if codes.size:
            low, high = codes.min(axis=0), codes.max(axis=0)
            if np.any(low < 0) or np.any(high >= np.asarray(sizes)):
                raise ValueError(f"codes outside 0..size-1 (sizes {tuple(sizes)})")

        # table
        self.codes = codes
        self.ticks = np.asarray(ticks, dtype=np.int64)
        self.sizes = tuple(int(s) for s in sizes)
        self.n_rows, self.n_columns = codes.shape

        # lists: CSR offsets per slot, rows and ascending keys
        self.base = np.zeros(self.n_columns + 1, dtype=np.int64)
        self.base[1:] = np.cumsum(self.sizes)
        self.offsets = np.zeros(int(self.base[-1]) + 1, dtype=np.int64)
        self.rows = np.empty(self.n_rows * self.n_columns, dtype=np.int64)
        self.keys = np.empty(self.n_rows * self.n_columns, dtype=np.int64)
        self._fill()

    @classmethod
    def from_table(cls, table: CodedTable) -> OccurrenceIndex:
        """Index a coded table (its codes, sizes and ticks)."""
        return cls(table.codes, table.sizes, table.ticks)

    def slot(self, column: int, code: int) -> int:
        """Return the slot number of (column, code)."""
        return int(self.base[column]) + code

    def rows_with(self, column: int, code: int) -> Array:
        """Return the ascending ids of the rows holding ``code`` in ``column``.

        The result is a read-only view into the index.
        """
        slot = self.slot(column, code)
        return self.rows[self.offsets[slot] : self.offsets[slot + 1]]

    def support(self, column: int, code: int) -> int:
        """Return how many rows hold ``code`` in ``column``."""
        slot = self.slot(column, code)
        return int(self.offsets[slot + 1] - self.offsets[slot])

    def supports(self, column: int) -> Array:
        """Return the support of every code of ``column``, as int64."""
        begin, end = self.base[column], self.base[column + 1]
        return np.diff(self.offsets[begin : end + 1])

    def next_row_with(
        self, column: int, code: int, after_row: int, max_row: int | None = None
    ) -> int:
        """Return the first row after ``after_row`` holding ``code``.

        Only rows up to ``max_row`` (inclusive; default: the last row) are
        considered; returns :data:`NO_ROW` when none qualifies.
        """
        rows = self.rows_with(column, code)
        at = int(np.searchsorted(rows, after_row, side="right"))
        if at == len(rows):
            return NO_ROW
        row = int(rows[at])
        return row if max_row is None or row <= max_row else NO_ROW

    def next_positions(self, slots: Array, after_rows: Array) -> tuple[Array, Array]:
        """Locate, per pair, the first entry of a slot's list past a row.

        For each ``slots[i]`` and ``after_rows[i]`` return the position in
        :attr:`rows` of the first row ``> after_rows[i]`` of that slot's list,
        and the end position of that list (equal when there is none).  Walk
        a list by incrementing the position.
        """
        slots = np.asarray(slots, dtype=np.int64)
        after = np.asarray(after_rows, dtype=np.int64)
        positions = search_many(self.keys, slots * self.n_rows + after + 1)
        return positions, self.offsets[slots + 1]

    def rows_matching(self, cells: Mapping[int, int]) -> Array:
        """Return the ascending ids of the rows holding every (column, code).

        An empty mapping matches every row.
        """
        if not cells:
            return np.arange(self.n_rows, dtype=np.int64)
        items = sorted(cells.items(), key=lambda item: self.support(*item))
        rows = self.rows_with(*items[0])
        if len(items) == 1 or len(rows) == 0:
            return rows
        columns = np.array([c for c, _ in items[1:]], dtype=np.int64)
        wanted = np.array([v for _, v in items[1:]], dtype=np.int32)
        keep = np.all(self.codes[rows[:, None], columns] == wanted, axis=1)
        return rows[keep]

    def count_matching(self, cells: Mapping[int, int]) -> int:
        """Return how many rows hold every (column, code) of ``cells``."""
        if len(cells) == 1:
            return self.support(*next(iter(cells.items())))
        return len(self.rows_matching(cells))

    def _fill(self) -> None:
        n = self.n_rows
        for c in range(self.n_columns):
            column = self.codes[:, c]
            # numpy radix-sorts 16-bit integers: several times faster
            narrow = self.sizes[c] <= 1 << 16
            order = np.argsort(
                column.astype(np.uint16) if narrow else column, kind="stable"
            )
            begin = c * n
            slots = self.base[c] + column[order].astype(np.int64)
            self.rows[begin : begin + n] = order
            self.keys[begin : begin + n] = slots * n + order
            counts = np.bincount(column, minlength=self.sizes[c])
            first = int(self.base[c])
            self.offsets[first + 1 : first + 1 + self.sizes[c]] = begin + np.cumsum(
                counts
            )
        self.rows.flags.writeable = False
        self.keys.flags.writeable = False
