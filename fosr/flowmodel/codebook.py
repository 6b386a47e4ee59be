"""Codebooks: how one flow column maps to integer codes and back.

FlowChronicle mines a table of small integers (METHODS.md §1.1): every
column is categorical.  A :class:`Codebook` holds what is needed to go from
a column of a :class:`~fosr.flows.FlowTable` to codes and back again.

- Categorical columns (protocol, ports, TCP flags, state, addresses): code
  ``i`` stands for ``values[i]``.  Values are sorted, so codes do not depend
  on the order of the rows, and keep their type (``int`` for numbers,
  ``str`` for addresses and states).
- Continuous columns (duration, packets, bytes), METHODS.md §1.2 "v2": a
  zero is code 0; non-zero values fall into equal-frequency bins, codes
  ``1..k``.  ``edges`` holds ``e_0 < e_1 < ... < e_k``; code 1 is the closed
  interval ``[e_0, e_1]`` and code ``c > 1`` the half-open ``(e_{c-1}, e_c]``,
  the intervals of pandas' ``qcut``.  With a single distinct non-zero value
  ``v`` the edges are ``[v, v]``; with no non-zero value at all they are
  empty and only code 0 exists.

The edges are quantiles taken at observed values (numpy's "inverted_cdf"),
not interpolated between them as ``qcut`` does: every bin then holds at
least one observed value, and every bin of an integer column holds an
integer, so decoding can always draw an integer that encodes back to the
same code.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.flows.table import PROTO_NAMES, format_tcp_flags

__all__ = ["UNSEEN", "Codebook", "ColumnKind"]

Array = npt.NDArray[Any]

UNSEEN = -1
"""Code :meth:`Codebook.encode` gives a categorical value not in the book."""


class ColumnKind(enum.Enum):
    """How a column is coded."""

    CATEGORICAL = "categorical"
    CONTINUOUS = "continuous"


@dataclass(frozen=True, eq=False)
class Codebook:
    """The code table of one mined column.

    - ``name``: the :class:`~fosr.flows.FlowTable` column;
    - ``kind``: categorical or continuous (binned);
    - ``is_address``: an address column, which may carry SET/USE
      placeholders; all address columns of a table share one ``values``
      array (the hosts), so their codes compare across columns;
    - ``values``: categorical only, the value of each code (empty otherwise);
    - ``edges``: continuous only, the bin edges (see the module docstring);
    - ``is_integer``: continuous only, values are whole numbers (packets,
      bytes) and decode to integers;
    - ``counts``: int64, how many training rows hold each code.
    """

    name: str
    kind: ColumnKind
    is_address: bool
    values: Array
    edges: Array
    is_integer: bool
    counts: Array

    @property
    def size(self) -> int:
        """Return the number of codes, ``0..size-1``, observed or not."""
        if self.kind is ColumnKind.CATEGORICAL:
            return len(self.values)
        return max(len(self.edges), 1)

    @property
    def n_observed(self) -> int:
        """Return the number of codes held by at least one training row."""
        return int(np.count_nonzero(self.counts))

    @property
    def is_continuous(self) -> bool:
        """Say whether the column is binned."""
        return self.kind is ColumnKind.CONTINUOUS

    def encode(self, values: Array | Sequence[Any]) -> Array:
        """Return the int32 codes of ``values`` (new data, same column).

        Categorical values missing from the book get :data:`UNSEEN`.
        Continuous values below the first edge go to bin 1, above the last
        edge to the last bin, zeros to bin 0.
        """
        column = np.asarray(values, dtype=object if self._is_text else None)
        if self.kind is ColumnKind.CATEGORICAL:
            lookup = {v: i for i, v in enumerate(self.values.tolist())}
            return np.fromiter(
                (lookup.get(v, UNSEEN) for v in column.tolist()),
                dtype=np.int32,
                count=len(column),
            )
        return bin_codes(np.asarray(column, dtype=np.float64), self.edges)

    def decode(self, codes: Array, rng: np.random.Generator) -> Array:
        """Return one value per code.

        Categorical codes give their value.  A continuous code ``c > 0``
        draws uniformly inside its interval: a float for durations, a whole
        number within the interval for integer columns (so that it encodes
        back to ``c``); code 0 gives 0.  Raises ValueError on a code outside
        ``0..size-1``.
        """
        codes = np.asarray(codes, dtype=np.int64)
        if codes.size and (codes.min() < 0 or codes.max() >= self.size):
            raise ValueError(
                f"column {self.name!r}: codes must lie in 0..{self.size - 1}, "
                f"got {codes.min()}..{codes.max()}"
            )
        if self.kind is ColumnKind.CATEGORICAL:
            return self.values[codes]
        return _draw_in_bins(codes, self.edges, self.is_integer, rng)

    def interval(self, code: int) -> tuple[float, float]:
        """Return the closed hull ``(low, high)`` of a continuous code."""
        if self.kind is not ColumnKind.CONTINUOUS:
            raise ValueError(f"column {self.name!r} is not binned")
        if not 0 <= code < self.size:
            raise ValueError(f"column {self.name!r} has no code {code}")
        if code == 0:
            return (0.0, 0.0)
        return (float(self.edges[code - 1]), float(self.edges[code]))

    def describe(self, code: int) -> str:
        """Return a short readable form of a code, for logs and debugging."""
        if self.kind is ColumnKind.CONTINUOUS:
            low, high = self.interval(code)
            if code == 0:
                return "0"
            opening = "[" if code == 1 else "("
            return f"{opening}{low:g}, {high:g}]"
        value = self.values[code]
        if self.name == "proto":
            return PROTO_NAMES.get(int(value), str(value))
        if self.name == "tcp_flags":
            return format_tcp_flags(int(value))
        return str(value)

    @property
    def _is_text(self) -> bool:
        return self.kind is ColumnKind.CATEGORICAL and self.values.dtype == object


def quantile_edges(values: Array, bins: int) -> Array:
    """Return the edges of up to ``bins`` equal-frequency bins of non-zeros.

    Zeros are left out (they are bin 0); duplicate edges are dropped, so
    heavily tied columns get fewer bins.  Empty when every value is zero.
    """
    nonzero = values[values != 0]
    if len(nonzero) == 0:
        return np.empty(0, dtype=np.float64)
    quantiles = np.linspace(0.0, 1.0, bins + 1)
    edges = np.unique(np.quantile(nonzero, quantiles, method="inverted_cdf"))
    if len(edges) == 1:
        edges = np.repeat(edges, 2)
    return edges.astype(np.float64)


def bin_codes(values: Array, edges: Array) -> Array:
    """Return the int32 bin code of each value given ``edges``."""
    if len(edges) == 0:
        return np.zeros(len(values), dtype=np.int32)
    codes = np.searchsorted(edges, values, side="left")
    codes = np.clip(codes, 1, len(edges) - 1).astype(np.int32)
    codes[values == 0] = 0
    return codes


def _draw_in_bins(
    codes: Array, edges: Array, is_integer: bool, rng: np.random.Generator
) -> Array:
    """Draw one value uniformly inside each code's interval."""
    out = np.zeros(len(codes), dtype=np.int64 if is_integer else np.float64)
    binned = codes > 0
    if not binned.any():
        return out
    upper = edges[codes[binned]]
    lower = edges[codes[binned] - 1]
    if not is_integer:
        out[binned] = rng.uniform(lower, upper)
        return out

    # whole numbers in (lower, upper], or in [lower, upper] for bin 1
    first = codes[binned] == 1
    low = np.where(first, np.ceil(lower), np.floor(lower) + 1).astype(np.int64)
    high = np.floor(upper).astype(np.int64)
    high = np.maximum(high, low)
    out[binned] = rng.integers(low, high, endpoint=True)
    return out
