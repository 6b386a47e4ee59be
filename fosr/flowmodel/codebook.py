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
least one observed value.

Integer columns (packets, bytes) put their edges half-way between whole
numbers, so that a bin is a run of whole numbers and a frequent value can
have a bin of its own: a one-packet DNS answer must come back with one
packet, not with anything from 1 to 4.  A value is *exact* when it holds
at least one ``bins``-th of the non-zero rows (it would fill a quantile
bin on its own), or when the column has at most ``bins`` distinct
non-zero values (then every value is exact); an exact value ``v`` is the
bin ``(v - 0.5, v + 0.5]``.  The other values share equal-frequency bins
cut at ``q + 0.5`` for quantiles ``q``, with ``bins`` minus the number of
exact values as budget; a quantile bin that an exact value cuts through
becomes up to three bins, so an integer column has at most about
``2 * bins`` bins.  A bin holds at least one observed value, except the
whole numbers strictly between two exact values that are not neighbours
(1 and 3 with no 2 seen): they form a bin no training row holds, which
the networks never draw.  A column with a non-integer value falls back to
the plain quantile edges.  Decoding draws a whole number inside the bin,
so it always encodes back to the same code, and an exact bin decodes to
its value.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.flows.table import PROTO_NAMES, format_tcp_flags

__all__ = ["UNSEEN", "Codebook", "ColumnKind", "log_uniform"]

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
        draws log-uniformly inside its interval (:func:`log_uniform`): a
        float for durations, a whole number within the interval for integer
        columns (so that it encodes back to ``c``); code 0 gives 0.  Raises
        ValueError on a code outside ``0..size-1``.
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
        """Return a short readable form of a code, for logs and debugging.

        A bin of an integer column reads as the whole numbers it holds
        ("1", "3-7"), a bin of durations as its interval.
        """
        if self.kind is ColumnKind.CONTINUOUS:
            low, high = self.interval(code)
            if code == 0:
                return "0"
            if self.is_integer:
                first = math.ceil(low) if code == 1 else math.floor(low) + 1
                last = max(math.floor(high), first)
                return str(first) if first == last else f"{first}-{last}"
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


def quantile_edges(values: Array, bins: int, *, integer: bool = False) -> Array:
    """Return the edges of about ``bins`` equal-frequency bins of non-zeros.

    Zeros are left out (they are bin 0); duplicate edges are dropped, so
    heavily tied columns get fewer bins.  Empty when every value is zero.
    With ``integer``, frequent whole numbers get bins of their own and
    edges sit half-way between whole numbers (see the module docstring).
    """
    nonzero = values[values != 0]
    if len(nonzero) == 0:
        return np.empty(0, dtype=np.float64)
    if integer and np.all(nonzero == np.floor(nonzero)):
        return _integer_edges(nonzero, bins)
    quantiles = np.linspace(0.0, 1.0, bins + 1)
    edges = np.unique(np.quantile(nonzero, quantiles, method="inverted_cdf"))
    if len(edges) == 1:
        edges = np.repeat(edges, 2)
    return edges.astype(np.float64)


def _integer_edges(nonzero: Array, bins: int) -> Array:
    """Return half-integer edges: exact bins for frequent values, quantiles else."""
    distinct, counts = np.unique(nonzero, return_counts=True)
    if len(distinct) <= bins:
        exact = distinct
    else:
        exact = distinct[counts * bins >= len(nonzero)]
    rest = nonzero[~np.isin(nonzero, exact)]
    cuts = [exact - 0.5, exact + 0.5]
    if len(rest):
        budget = max(bins - len(exact), 1)
        quantiles = np.quantile(
            rest, np.linspace(0.0, 1.0, budget + 1), method="inverted_cdf"
        )
        cuts += [quantiles[:1] - 0.5, quantiles[1:] + 0.5]
    candidates = np.unique(np.concatenate(cuts))
    protected = np.isin(candidates, cuts[0]) | np.isin(candidates, cuts[1])
    return _drop_empty_bins(candidates, protected, distinct)


def _drop_empty_bins(cuts: Array, protected: Array, observed: Array) -> Array:
    """Merge away bins holding no observed value, keeping the exact bins.

    A quantile cut that leaves an empty bin beside it is dropped, so the
    empty run of whole numbers joins a neighbouring quantile bin; between
    two exact bins an empty run stays a bin of its own.
    """
    held = np.searchsorted(observed, cuts, side="right")  # observed values <= cut
    kept, kept_held, kept_protected = [cuts[0]], [held[0]], [bool(protected[0])]
    for cut, below, guard in zip(cuts[1:], held[1:], protected[1:], strict=True):
        if below > kept_held[-1]:
            kept.append(cut)
            kept_held.append(below)
            kept_protected.append(bool(guard))
        elif not guard:
            continue  # the empty run joins the next bin
        elif len(kept) > 1 and not kept_protected[-1]:
            kept[-1], kept_protected[-1] = cut, True  # it joins the previous one
        else:
            kept.append(cut)
            kept_held.append(below)
            kept_protected.append(True)
    return np.asarray(kept, dtype=np.float64)


def bin_codes(values: Array, edges: Array) -> Array:
    """Return the int32 bin code of each value given ``edges``."""
    if len(edges) == 0:
        return np.zeros(len(values), dtype=np.int32)
    codes = np.searchsorted(edges, values, side="left")
    codes = np.clip(codes, 1, len(edges) - 1).astype(np.int32)
    codes[values == 0] = 0
    return codes


def log_uniform(low: Array, high: Array, u: Array, *, integer: bool) -> Array:
    """Map uniforms ``u`` in [0, 1) to log-uniform values in ``[low, high]``.

    ``low`` must be positive.  With ``integer``, whole numbers ``low..high``
    (the log-uniform law on ``[low, high + 1)``, rounded down).  Inside a
    wide bin of bytes or durations, real values thin out towards the top;
    a uniform draw put most of a last bin like (6,000, 5,000,000] bytes near
    its top, a log-uniform one spreads it over the decades.
    """
    top = high + 1 if integer else high
    values = low * np.exp(u * np.log(top / low))
    if integer:
        values = np.clip(np.floor(values), low, high)
    return np.asarray(values)


def _draw_in_bins(
    codes: Array, edges: Array, is_integer: bool, rng: np.random.Generator
) -> Array:
    """Draw one value log-uniformly inside each code's interval."""
    out = np.zeros(len(codes), dtype=np.int64 if is_integer else np.float64)
    binned = codes > 0
    if not binned.any():
        return out
    upper = edges[codes[binned]]
    lower = edges[codes[binned] - 1]
    u = rng.random(int(binned.sum()))
    if not is_integer:
        out[binned] = log_uniform(lower, upper, u, integer=False)
        return out

    # whole numbers in (lower, upper], or in [lower, upper] for bin 1
    first = codes[binned] == 1
    low = np.where(first, np.ceil(lower), np.floor(lower) + 1)
    high = np.maximum(np.floor(upper), low)
    out[binned] = log_uniform(low, high, u, integer=True).astype(np.int64)
    return out
