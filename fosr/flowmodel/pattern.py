"""The pattern language: row patterns of FIX, SET and USE cells.

How this works (METHODS.md §1.3):

- A :class:`Pattern` is a sequence of one or more :class:`RowPattern`, each
  describing one flow of an occurrence, in time order.
- A row pattern gives some columns (by index into the coded table) a
  :class:`Cell`:

  - ``FIX(v)``: the flow's column holds code ``v``;
  - ``SET(k)``: the column is free, and its value is bound to placeholder
    ``k`` (the pattern's Bayesian network draws it when sampling);
  - ``USE(k)``: the column holds the value bound to ``k`` in an earlier
    row; client -> client, client -> server and the reverse are all
    allowed, since address columns share host codes.

  Columns without a cell are free: the pattern's network models them.
- Invariants, checked on construction: no row is empty; each placeholder
  has exactly one SET; every USE(k) sits in a row strictly after the row of
  SET(k) (a USE in the same row would only say client == server).
  Placeholders are renumbered ``0, 1, ...`` in order of their SET (rows in
  order, columns ascending within a row), so two patterns that differ only
  in placeholder names are equal, hash alike and share :attr:`Pattern.key`.
- What depends on the table, :meth:`Pattern.check` verifies: columns exist,
  FIX codes are in range, SET and USE only on address columns.

Timing is not part of a pattern: delays between its rows are paid in the
data cost and sampled per gap.  Occurrence search is in
:mod:`fosr.flowmodel.windows`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from fosr.flowmodel.codebook import Codebook

__all__ = ["Cell", "CellKind", "Pattern", "RowPattern"]


class CellKind(enum.IntEnum):
    """What a cell of a row pattern says about its column."""

    FIX = 0
    SET = 1
    USE = 2


class Cell(NamedTuple):
    """One cell: a kind and its argument (a code for FIX, a placeholder
    number for SET and USE)."""

    kind: CellKind
    value: int

    @classmethod
    def fix(cls, code: int) -> Cell:
        """Return the cell "this column holds ``code``"."""
        return cls(CellKind.FIX, code)

    @classmethod
    def set(cls, placeholder: int) -> Cell:
        """Return the cell "bind this column's value to ``placeholder``"."""
        return cls(CellKind.SET, placeholder)

    @classmethod
    def use(cls, placeholder: int) -> Cell:
        """Return the cell "this column holds ``placeholder``'s value"."""
        return cls(CellKind.USE, placeholder)

    def __str__(self) -> str:
        return f"{self.kind.name}{self.value}"


@dataclass(frozen=True)
class RowPattern:
    """The cells of one row, as (column index, cell) pairs by column.

    Build it with :meth:`of`.  Raises ValueError when empty, when a column
    appears twice or is negative, or a FIX code or placeholder is negative.
    """

    cells: tuple[tuple[int, Cell], ...]

    def __post_init__(self) -> None:
        cells = tuple(
            sorted(
                (int(c), Cell(CellKind(kind), int(value)))
                for c, (kind, value) in self.cells
            )
        )
        columns = [c for c, _ in cells]
        if not cells:
            raise ValueError("a row pattern needs at least one cell")
        if len(set(columns)) != len(columns) or columns[0] < 0:
            raise ValueError(f"bad columns {columns} in a row pattern")
        if any(cell.value < 0 for _, cell in cells):
            raise ValueError(f"negative code or placeholder in {cells}")
        object.__setattr__(self, "cells", cells)

    @classmethod
    def of(cls, cells: Mapping[int, Cell]) -> RowPattern:
        """Return the row pattern with ``cells`` (column index -> cell)."""
        return cls(tuple(cells.items()))

    def __len__(self) -> int:
        return len(self.cells)

    def get(self, column: int) -> Cell | None:
        """Return the cell of ``column``, or None when it is free."""
        for c, cell in self.cells:
            if c == column:
                return cell
        return None

    def of_kind(self, kind: CellKind) -> dict[int, int]:
        """Return column -> argument for the cells of ``kind``."""
        return {c: cell.value for c, cell in self.cells if cell.kind is kind}

    @property
    def n_covered(self) -> int:
        """Return the FIX and USE cells: the ones an occurrence pays nothing for."""
        return sum(cell.kind is not CellKind.SET for _, cell in self.cells)

    def with_cell(self, column: int, cell: Cell) -> RowPattern:
        """Return a copy with ``column`` given ``cell`` (replacing any)."""
        cells = dict(self.cells)
        cells[column] = cell
        return RowPattern.of(cells)


@dataclass(frozen=True)
class Pattern:
    """A sequence of row patterns, placeholders in canonical numbering.

    Build it with :meth:`of`.  Raises ValueError when it has no row or
    breaks a placeholder rule (see the module docstring).
    """

    rows: tuple[RowPattern, ...]

    def __post_init__(self) -> None:
        if not self.rows:
            raise ValueError("a pattern needs at least one row")
        object.__setattr__(self, "rows", _renumbered(self.rows))

    @classmethod
    def of(cls, rows: Iterable[Mapping[int, Cell] | RowPattern]) -> Pattern:
        """Return the pattern of ``rows``, each a row pattern or a mapping."""
        return cls(
            tuple(r if isinstance(r, RowPattern) else RowPattern.of(r) for r in rows)
        )

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def key(self) -> tuple[tuple[tuple[int, int, int], ...], ...]:
        """Return a canonical key of plain ints, the same in every process."""
        return tuple(
            tuple((c, int(cell.kind), cell.value) for c, cell in row.cells)
            for row in self.rows
        )

    @property
    def n_placeholders(self) -> int:
        """Return the number of placeholders (SET cells)."""
        return sum(len(row.of_kind(CellKind.SET)) for row in self.rows)

    @property
    def n_covered(self) -> int:
        """Return the FIX and USE cells over all rows."""
        return sum(row.n_covered for row in self.rows)

    def with_cell(self, row: int, column: int, cell: Cell) -> Pattern:
        """Return a copy with ``cell`` at (``row``, ``column``).

        ``row == len(self)`` appends a new row holding only that cell.
        """
        if row == len(self.rows):
            return Pattern(self.rows + (RowPattern.of({column: cell}),))
        changed = self.rows[row].with_cell(column, cell)
        return Pattern(self.rows[:row] + (changed,) + self.rows[row + 1 :])

    def then(self, other: Pattern) -> Pattern:
        """Return this pattern followed by ``other``, placeholders kept apart."""
        shift = self.n_placeholders
        shifted = [
            RowPattern.of(
                {
                    c: cell
                    if cell.kind is CellKind.FIX
                    else cell._replace(value=cell.value + shift)
                    for c, cell in row.cells
                }
            )
            for row in other.rows
        ]
        return Pattern(self.rows + tuple(shifted))

    def check(self, codebooks: Sequence[Codebook]) -> None:
        """Check the pattern against a table's codebooks.

        Raises ValueError naming the row and column of the first cell on a
        missing column, with a FIX code out of range, or with a placeholder
        on a column that is no address column.
        """
        for i, row in enumerate(self.rows):
            for column, cell in row.cells:
                if column >= len(codebooks):
                    raise ValueError(f"row {i}: no column {column}")
                book = codebooks[column]
                if cell.kind is CellKind.FIX and cell.value >= book.size:
                    raise ValueError(
                        f"row {i}: column {book.name!r} has no code {cell.value}"
                    )
                if cell.kind is not CellKind.FIX and not book.is_address:
                    raise ValueError(
                        f"row {i}: {cell} on {book.name!r}, not an address column"
                    )

    def describe(self, codebooks: Sequence[Codebook]) -> str:
        """Return a readable form, e.g. ``[{proto=UDP, client=SET0}, ...]``."""
        parts = []
        for row in self.rows:
            cells = []
            for column, cell in row.cells:
                book = codebooks[column]
                text = (
                    book.describe(cell.value)
                    if cell.kind is CellKind.FIX
                    else str(cell)
                )
                cells.append(f"{book.name}={text}")
            parts.append("{" + ", ".join(cells) + "}")
        return "[" + ", ".join(parts) + "]"


def _renumbered(rows: tuple[RowPattern, ...]) -> tuple[RowPattern, ...]:
    """Check the placeholder rules and number placeholders by first SET."""
    numbers: dict[int, int] = {}
    set_in_row: dict[int, int] = {}
    for i, row in enumerate(rows):
        for _, cell in row.cells:
            if cell.kind is not CellKind.SET:
                continue
            if cell.value in numbers:
                raise ValueError(f"placeholder {cell.value} is SET twice")
            numbers[cell.value] = len(numbers)
            set_in_row[cell.value] = i
    for i, row in enumerate(rows):
        for _, cell in row.cells:
            if cell.kind is not CellKind.USE:
                continue
            if cell.value not in numbers:
                raise ValueError(f"placeholder {cell.value} is USEd but never SET")
            if set_in_row[cell.value] >= i:
                raise ValueError(
                    f"placeholder {cell.value} is USEd in row {i}, "
                    f"not after its SET in row {set_in_row[cell.value]}"
                )
    if all(k == v for k, v in numbers.items()):
        return rows
    return tuple(
        RowPattern(
            tuple(
                (
                    c,
                    cell
                    if cell.kind is CellKind.FIX
                    else Cell(cell.kind, numbers[cell.value]),
                )
                for c, cell in row.cells
            )
        )
        for row in rows
    )
