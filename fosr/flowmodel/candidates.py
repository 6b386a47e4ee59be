"""Candidate patterns for the greedy search.

How this works (METHODS.md §1.6 step 2, without mode 1's concatenations):

- Seeds, built once: every single-row pattern of two FIX cells on two
  non-address columns, keeping the value pairs held by at least
  ``min_support`` rows, at most ``max_seeds`` of them by support (their
  candidate score is support x 2, single-row windows never overlap).  The
  reference enumerates all value pairs; the support floor and the cap are
  METHODS.md §6's advice for port-sized domains.
- Extensions of a pattern in the model, from the windows the cover gives it:

  - one more FIX cell on a non-address column of one row, for every value
    held there by at least ``min_support`` of those windows;
  - a USE of an existing placeholder on a free address cell of a later row;
  - a fresh SET on a free address cell of row i with a USE on a free
    address cell of a later row;
  - a SET (fresh, or an existing placeholder) on row i and a new last row
    holding only a USE of it, while the pattern has fewer than
    ``max_rows`` rows: how multi-row patterns appear.

- Merges: the union of two single-row patterns whose shared columns hold
  the same cells.
- Concatenations (the search's mode 1): A then B for every ordered pair of
  the model's patterns, A and B possibly the same, at most ``max_rows``
  rows in all.  The reference keeps the pairs that share an address (a FIX
  host in both, or a placeholder in both) and leaves them unlinked; we
  keep those and add the linked form: the first address column of A's
  first row gets a SET (unless it has one) and B's first row a USE of it
  on the same column, "the same host then does B".  The reference also
  pairs with every single-attribute pattern; we do not, to bound the
  candidates at |P|^2 x 2.

Address columns never get FIX cells here (the reference's ``never_fix``);
they may still become FIX when constant in a pattern's network.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.flowmodel.pattern import Cell, CellKind, Pattern

__all__ = [
    "concatenations",
    "extensions",
    "merges",
    "seed_patterns",
    "with_cells",
]

Array = npt.NDArray[Any]


def seed_patterns(
    codes: Array,
    address_columns: Sequence[int],
    *,
    min_support: int,
    max_seeds: int,
) -> list[Pattern]:
    """Return the two-FIX single-row seeds, most supported first."""
    columns = [c for c in range(codes.shape[1]) if c not in set(address_columns)]
    found: list[tuple[int, tuple[int, int, int, int]]] = []
    for i, a in enumerate(columns):
        for b in columns[i + 1 :]:
            size_b = int(codes[:, b].max(initial=0)) + 1
            keys, counts = np.unique(
                codes[:, a].astype(np.int64) * size_b + codes[:, b],
                return_counts=True,
            )
            keep = counts >= min_support
            for key, count in zip(keys[keep], counts[keep], strict=True):
                va, vb = divmod(int(key), size_b)
                found.append((int(count), (a, va, b, vb)))
    found.sort(key=lambda item: (-item[0], item[1]))
    return [
        Pattern.of([{a: Cell.fix(va), b: Cell.fix(vb)}])
        for _, (a, va, b, vb) in found[:max_seeds]
    ]


def extensions(
    pattern: Pattern,
    windows: Array,
    codes: Array,
    address_columns: Sequence[int],
    *,
    min_support: int,
    max_rows: int,
) -> Iterator[Pattern]:
    """Yield the extensions of ``pattern`` given its used ``windows``."""
    addresses = set(address_columns)
    n_columns = codes.shape[1]

    # one more FIX cell, on values the windows hold often enough
    for i, row in enumerate(pattern.rows):
        for c in range(n_columns):
            if c in addresses or row.get(c) is not None or not len(windows):
                continue
            values, counts = np.unique(codes[windows[:, i], c], return_counts=True)
            for v in values[counts >= min_support]:
                yield pattern.with_cell(i, c, Cell.fix(int(v)))

    # placeholders: existing SETs used later, fresh SET + USE pairs
    fresh = pattern.n_placeholders
    free = [
        (i, c)
        for i, row in enumerate(pattern.rows)
        for c in sorted(addresses)
        if row.get(c) is None
    ]
    sets = [
        (i, c, cell.value)
        for i, row in enumerate(pattern.rows)
        for c, cell in row.cells
        if cell.kind is CellKind.SET
    ]
    for i, _, k in sets:
        for j, c in free:
            if j > i:
                yield with_cells(pattern, [(j, c, Cell.use(k))])
    for i, c in free:
        for j, d in free:
            if j > i:
                yield with_cells(
                    pattern, [(i, c, Cell.set(fresh)), (j, d, Cell.use(fresh))]
                )

    # a new last row that uses a placeholder
    if len(pattern) >= max_rows:
        return
    last = len(pattern)
    for d in sorted(addresses):
        for _, _, k in sets:
            yield with_cells(pattern, [(last, d, Cell.use(k))])
        for i, c in free:
            yield with_cells(
                pattern, [(i, c, Cell.set(fresh)), (last, d, Cell.use(fresh))]
            )


def merges(patterns: Sequence[Pattern]) -> Iterator[Pattern]:
    """Yield the unions of two single-row patterns that agree where they meet."""
    singles = [p for p in patterns if len(p) == 1]
    for i, a in enumerate(singles):
        for b in singles[i + 1 :]:
            cells_a, cells_b = dict(a.rows[0].cells), dict(b.rows[0].cells)
            shared = cells_a.keys() & cells_b.keys()
            if any(cells_a[c] != cells_b[c] for c in shared):
                continue
            if any(
                cell.kind is not CellKind.FIX for cell in (cells_a | cells_b).values()
            ):
                continue
            merged = Pattern.of([cells_a | cells_b])
            if merged.key not in (a.key, b.key):
                yield merged


def concatenations(
    patterns: Sequence[Pattern], address_columns: Sequence[int], *, max_rows: int
) -> Iterator[Pattern]:
    """Yield A then B for ordered pairs of ``patterns`` (module docstring)."""
    if not address_columns:
        return
    column = min(address_columns)
    for a in patterns:
        for b in patterns:
            if len(a) + len(b) > max_rows:
                continue
            if _shares_address(a, b, address_columns):
                yield a.then(b)
            linked = _linked(a, b, column)
            if linked is not None:
                yield linked


def _shares_address(a: Pattern, b: Pattern, address_columns: Sequence[int]) -> bool:
    """Say whether both patterns hold a placeholder or a common FIX host."""
    if a.n_placeholders and b.n_placeholders:
        return True
    hosts = [
        {
            cell.value
            for row in p.rows
            for c, cell in row.cells
            if c in address_columns and cell.kind is CellKind.FIX
        }
        for p in (a, b)
    ]
    return bool(hosts[0] & hosts[1])


def _linked(a: Pattern, b: Pattern, column: int) -> Pattern | None:
    """Return A then B with B's first row using A's first-row host, or None
    when either cell is taken by something else."""
    joined = a.then(b)
    start = joined.rows[0].get(column)
    target = joined.rows[len(a)].get(column)
    if target is not None:
        return None
    if start is None:
        placeholder = joined.n_placeholders
        return with_cells(
            joined,
            [
                (0, column, Cell.set(placeholder)),
                (len(a), column, Cell.use(placeholder)),
            ],
        )
    if start.kind is CellKind.SET:
        return with_cells(joined, [(len(a), column, Cell.use(start.value))])
    return None


def with_cells(pattern: Pattern, cells: Sequence[tuple[int, int, Cell]]) -> Pattern:
    """Return ``pattern`` with each (row, column, cell) set at once.

    A row equal to the pattern's length appends a new row.  Placeholder
    numbers refer to the pattern's current numbering; the result is
    renumbered only after all cells are in.
    """
    rows = [dict(row.cells) for row in pattern.rows]
    for row, column, cell in cells:
        while row >= len(rows):
            rows.append({})
        rows[row][column] = cell
    return Pattern.of(rows)
