"""Codes of sampled instances: filling pattern cells, drawing in bins.

:class:`Template` says where each cell of a kind's rows comes from (FIX
code, network variable, or the SET cell a USE copies); :class:`BinDecoder`
turns codes of a continuous column into values from given uniforms, so the
sampler can draw them for every row and decode only a shard's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.flowmodel.codebook import Codebook
from fosr.flowmodel.learn import FittedPattern
from fosr.flowmodel.pattern import CellKind, Pattern

__all__ = ["BinDecoder", "Template", "fill_codes"]

Array = npt.NDArray[Any]


def fill_codes(fitted: FittedPattern, records: Array, n_columns: int) -> Array:
    """Return the int32 codes of ``n`` instances of a pattern, (n, rows, columns).

    ``records`` (n, variables) are network samples, one column per entry
    of ``fitted.variables``.  FIX cells get their code, free and SET cells
    the record's value, USE cells the value of their SET cell.
    """
    return Template.of(fitted.pattern, fitted.variables, n_columns).fill(records)


@dataclass(frozen=True)
class Template:
    """Where each cell of a kind's rows comes from.

    - ``fixed``: (row, column, code) of the FIX cells;
    - ``variables``: (row, column) of each network variable, in order;
    - ``uses``: (row, column, SET row, SET column) of the USE cells.
    """

    n_rows: int
    n_columns: int
    fixed: tuple[tuple[int, int, int], ...]
    variables: tuple[tuple[int, int], ...]
    uses: tuple[tuple[int, int, int, int], ...]

    @classmethod
    def of(
        cls,
        pattern: Pattern,
        variables: Sequence[tuple[int, int]],
        n_columns: int,
    ) -> Template:
        """Return the template of ``pattern`` whose free cells are ``variables``.

        Raises ValueError when the cells do not fill every row exactly.
        """
        setters = {
            cell.value: (i, c)
            for i, row in enumerate(pattern.rows)
            for c, cell in row.cells
            if cell.kind is CellKind.SET
        }
        fixed: list[tuple[int, int, int]] = []
        uses: list[tuple[int, int, int, int]] = []
        for i, row in enumerate(pattern.rows):
            for c, cell in row.cells:
                if cell.kind is CellKind.FIX:
                    fixed.append((i, c, cell.value))
                elif cell.kind is CellKind.USE:
                    uses.append((i, c, *setters[cell.value]))
        template = cls(
            len(pattern), n_columns, tuple(fixed), tuple(variables), tuple(uses)
        )
        filled = len(fixed) + len(variables) + len(uses)
        if filled != len(pattern) * n_columns:
            raise ValueError(f"pattern fills {filled} of {len(pattern)} rows' cells")
        return template

    @classmethod
    def background(cls, n_columns: int) -> Template:
        """Return the template of a background row: every column a variable."""
        return cls(1, n_columns, (), tuple((0, c) for c in range(n_columns)), ())

    def fill(self, records: Array) -> Array:
        """Return the codes (n, rows, columns) of ``records`` (n, variables)."""
        n = len(records)
        if records.shape != (n, len(self.variables)):
            raise ValueError(
                f"records of shape {records.shape} for {len(self.variables)} variables"
            )
        out = np.empty((n, self.n_rows, self.n_columns), dtype=np.int32)
        for i, c, code in self.fixed:
            out[:, i, c] = code
        for v, (i, c) in enumerate(self.variables):
            out[:, i, c] = records[:, v]
        for i, c, si, sc in self.uses:
            out[:, i, c] = out[:, si, sc]
        return out


@dataclass(frozen=True)
class BinDecoder:
    """Draws inside the bins of a continuous column, from given uniforms.

    The same distribution as :meth:`Codebook.decode` (log-uniform inside a
    bin, see :func:`~fosr.flowmodel.codebook.log_uniform`), as a lookup, an
    exponential and a multiply: ``Generator.integers`` with an array of
    bounds costs about ten times more per draw, and decoding is most of the
    sampler's time.  ``low`` and ``high`` are each code's bounds (whole
    numbers for an integer column; code 0 is 0), ``log_ratio`` the log of
    the ratio the draw spans.
    """

    low: Array
    high: Array
    log_ratio: Array
    is_integer: bool
    dtype: np.dtype[Any]

    @classmethod
    def of(cls, book: Codebook, dtype: np.dtype[Any]) -> BinDecoder:
        edges = book.edges
        if len(edges) == 0:  # only code 0: draws 0
            zero = np.zeros(1)
            return cls(zero, zero, zero, book.is_integer, dtype)
        lower, upper = np.append(0.0, edges[:-1]), np.append(0.0, edges[1:])
        if book.is_integer:
            # whole numbers in (lower, upper], or in [lower, upper] for bin 1
            lower = np.floor(lower) + 1
            lower[1] = np.ceil(edges[0])
            lower[0] = 0.0
            upper = np.maximum(np.floor(upper), lower)
        log_ratio = np.zeros(len(lower))
        top = upper[1:] + 1 if book.is_integer else upper[1:]
        log_ratio[1:] = np.log(top / lower[1:])
        return cls(lower, upper, log_ratio, book.is_integer, dtype)

    def decode(self, codes: Array, u: Array) -> Array:
        """Return the value of each code given one uniform in [0, 1) each."""
        low = self.low[codes]
        values = low * np.exp(u * self.log_ratio[codes])  # code 0: low 0
        if self.is_integer:
            values = np.minimum(np.floor(values), self.high[codes])
        decoded: Array = values.astype(self.dtype)
        return decoded
