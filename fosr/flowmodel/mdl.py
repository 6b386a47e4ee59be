"""Code lengths, in bits, of FlowChronicle's two-part MDL code.

How this works (METHODS.md §1.4): a model M (a set of patterns, each with a
Bayesian network, plus a background network) and the data D given M are
both written in bits, and the search keeps the model that minimises
L(M) + L(D | M).  This module holds the building blocks; the cover and the
search add them up.

Notation: m is the number of mined columns (the timestamp excluded), L_N is
Rissanen's universal code for integers >= 1, C(n, k) the binomial
coefficient, log means log2.

- :func:`universal_code_length`: L_N(x) = log c0 + log x + log log x + ...,
  summing the positive terms only, c0 = 2.865064.
- Model: L(M) = L_N(|P| + 1) + sum over p of L(p) + L(background
  structure), :func:`model_cost`.
- :func:`pattern_cost`: L(p) = L_N(rows) + sum over rows of L(row) +
  L(network structure).  For a row with f FIX, u USE and s SET cells, with
  S placeholders SET in earlier rows (:func:`row_cost`):

  - which FIX cells: log m + log C(m, f), plus log |dom c| per FIX cell
    (a uniform code over the column's observed values);
  - which USE cells, in a row after the first when S > 0 and m - f - s > 0:
    log(m - f - s) + log C(m - f, u) + u log S;
  - which SET cells: log(m - f - u) when positive, + log C(m - f - u, s).

  These are the reference's terms, kept as written so that scores compare
  with it.
- :func:`structure_cost`: sum over nodes of log(max in-degree) +
  log C(nodes - 1, parents of the node); max in-degree 3.
- Data, per window: log(T span + 1) for its first tick and
  L_N(delay + 1) per gap between consecutive rows
  (:func:`window_time_costs`).  The reference uses log(T_max - T_min);
  the + 1 counts the span's ticks and keeps a one-tick table finite.
- Free cells under a network: the prequential Krichevsky-Trofimov code
  (Dirichlet(1/2) prior) of each node given each parent configuration,
  with counts n_1..n_r, N = sum n_j, r = the node's number of states:
  sum_{t<N} log(t + r/2) - sum_j sum_{t<n_j} log(t + 1/2)
  = -log[ G(r/2) / G(N + r/2) * prod_j G(n_j + 1/2) / G(1/2) ]
  (:func:`kt_code_lengths`, :func:`kt_code_length_of`).  States never seen
  in a configuration add nothing, so sparse counts suffice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from fosr.flowmodel.pattern import CellKind, Pattern, RowPattern

__all__ = [
    "MAX_INDEGREE",
    "UNIVERSAL_CONSTANT",
    "kt_code_length_of",
    "kt_code_lengths",
    "log2_binomial",
    "model_cost",
    "pattern_cost",
    "row_cost",
    "structure_cost",
    "universal_code_length",
    "universal_code_lengths",
    "window_time_costs",
]

Array = npt.NDArray[Any]

UNIVERSAL_CONSTANT = 2.865064
"""Rissanen's c0, which makes L_N a complete code (Kraft sum 1)."""

MAX_INDEGREE = 3
"""Most parents per network node (METHODS.md §1.5)."""

_LOG2_C0 = math.log2(UNIVERSAL_CONSTANT)
_LN2 = math.log(2.0)


def universal_code_length(x: int) -> float:
    """Return L_N(x) in bits for an integer ``x >= 1``; ValueError below."""
    if x < 1:
        raise ValueError(f"L_N is defined for integers >= 1, got {x}")
    bits = _LOG2_C0
    term = math.log2(x)
    while term > 0:
        bits += term
        term = math.log2(term)
    return bits


def universal_code_lengths(xs: Array | Sequence[int]) -> Array:
    """Return L_N of each element of ``xs`` (integers >= 1), as float64."""
    values = np.asarray(xs, dtype=np.float64)
    if values.size and values.min() < 1:
        raise ValueError(f"L_N is defined for integers >= 1, got {values.min()}")
    bits = np.full(values.shape, _LOG2_C0)
    term = np.log2(values)
    positive = term > 0
    while positive.any():
        bits[positive] += term[positive]
        term[positive] = np.log2(term[positive])
        positive &= term > 0
    return bits


def log2_binomial(n: int, k: int) -> float:
    """Return log2 C(n, k); ValueError unless ``0 <= k <= n``."""
    if not 0 <= k <= n:
        raise ValueError(f"C({n}, {k}) needs 0 <= k <= n")
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / _LN2


def row_cost(
    row: RowPattern,
    *,
    n_columns: int,
    domain_sizes: Sequence[int],
    n_earlier_placeholders: int,
    is_first: bool,
) -> float:
    """Return L(row) of the module docstring, in bits.

    ``n_columns`` is m; ``domain_sizes[c]`` is the number of observed values
    of column ``c`` (at least 1 for a FIX column);
    ``n_earlier_placeholders`` is S.
    """
    m = n_columns
    fixed = row.of_kind(CellKind.FIX)
    f, u, s = len(fixed), len(row.of_kind(CellKind.USE)), len(row.of_kind(CellKind.SET))
    if f + u + s > m:
        raise ValueError(f"{f + u + s} cells in a row of {m} columns")

    # which columns are FIX, and their values
    bits = math.log2(m) + log2_binomial(m, f)
    bits += sum(math.log2(domain_sizes[c]) for c in fixed)

    # which columns USE which earlier placeholder
    if not is_first and n_earlier_placeholders > 0 and m - f - s > 0:
        bits += math.log2(m - f - s) + log2_binomial(m - f, u)
        bits += u * math.log2(n_earlier_placeholders)

    # which columns SET a new placeholder
    if m - f - u > 0:
        bits += math.log2(m - f - u) + log2_binomial(m - f - u, s)
    return bits


def structure_cost(
    parent_counts: Sequence[int], *, max_indegree: int = MAX_INDEGREE
) -> float:
    """Return the bits of a network structure given each node's parent count.

    An empty network costs 0.  ValueError when a node has more parents than
    ``max_indegree`` or than there are other nodes.
    """
    n_nodes = len(parent_counts)
    bits = 0.0
    for k in parent_counts:
        if k > max_indegree:
            raise ValueError(f"{k} parents exceed the in-degree {max_indegree}")
        bits += math.log2(max_indegree) + log2_binomial(n_nodes - 1, k)
    return bits


def pattern_cost(
    pattern: Pattern,
    *,
    domain_sizes: Sequence[int],
    parent_counts: Sequence[int] = (),
) -> float:
    """Return L(p) in bits: rows, cells and the structure of its network.

    ``domain_sizes`` has one entry per mined column (so m is its length):
    the observed values of each, :attr:`CodedTable.observed_sizes
    <fosr.flowmodel.encoding.CodedTable.observed_sizes>`; ``parent_counts``
    gives the parents of each node of the pattern's network (empty before
    the network is learnt).
    """
    bits = universal_code_length(len(pattern))
    placeholders = 0
    for i, row in enumerate(pattern.rows):
        bits += row_cost(
            row,
            n_columns=len(domain_sizes),
            domain_sizes=domain_sizes,
            n_earlier_placeholders=placeholders,
            is_first=i == 0,
        )
        placeholders += len(row.of_kind(CellKind.SET))
    return bits + structure_cost(parent_counts)


def model_cost(pattern_costs: Sequence[float], background_structure: float) -> float:
    """Return L(M) from each pattern's L(p) and the background structure."""
    return (
        universal_code_length(len(pattern_costs) + 1)
        + float(sum(pattern_costs))
        + background_structure
    )


def window_time_costs(window_ticks: Array, span_ticks: int) -> Array:
    """Return the timing bits of each window.

    ``window_ticks`` holds one window per row, the ticks of its rows in
    order (one column for single rows and background rows); ``span_ticks``
    is T_max - T_min of the table.
    """
    ticks = np.asarray(window_ticks, dtype=np.int64)
    if ticks.ndim != 2:
        raise ValueError(f"window ticks must be 2-D, got shape {ticks.shape}")
    start = math.log2(span_ticks + 1)
    delays = np.diff(ticks, axis=1)
    if delays.size and delays.min() < 0:
        raise ValueError("ticks of a window must not decrease")
    bits: Array = start + universal_code_lengths(delays + 1).sum(axis=1)
    return bits


def kt_code_lengths(counts: Array, n_states: int | None = None) -> Array:
    """Return the KT code length in bits of each parent configuration.

    ``counts`` is a 2-D count table, one row per parent configuration and
    one column per state of the node (or 1-D for a node without parents);
    ``n_states`` (r) defaults to the number of columns.  A configuration
    seen 0 times costs 0.
    """
    table = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    r = table.shape[1] if n_states is None else n_states
    if r < table.shape[1]:
        raise ValueError(f"n_states {r} below the {table.shape[1]} count columns")
    return _kt_bits(table.sum(axis=1), table, r)


def kt_code_length_of(values: Array, parents: Array, n_states: int) -> float:
    """Return the KT bits of a node's ``values`` given its parents' values.

    ``values`` holds the node's state per record (``0..n_states-1``);
    ``parents`` is 2-D, one row per record and one column per parent (zero
    columns for a node without parents), or 1-D with a configuration id per
    record.  Counts are collected sparsely, so large state spaces (hosts)
    cost nothing extra.
    """
    values = np.asarray(values, dtype=np.int64)
    parents = np.asarray(parents, dtype=np.int64)
    if parents.ndim == 1:
        parents = parents[:, None]
    if parents.ndim != 2 or values.ndim != 1 or len(parents) != len(values):
        raise ValueError(
            f"values of shape {values.shape} and parents of shape "
            f"{parents.shape} do not pair up"
        )
    if values.size == 0:
        return 0.0

    # parent configuration of each record, then (configuration, state) counts
    if parents.shape[1] == 0:
        configurations = np.zeros(len(values), dtype=np.int64)
    else:
        _, inverse = np.unique(parents, axis=0, return_inverse=True)
        configurations = inverse.reshape(-1).astype(np.int64)
    _, pair_counts = np.unique(configurations * n_states + values, return_counts=True)
    totals = np.bincount(configurations)

    state_bits = np.sum(gammaln(pair_counts + 0.5) - gammaln(0.5))
    total_bits = np.sum(gammaln(totals + n_states / 2) - gammaln(n_states / 2))
    return float((total_bits - state_bits) / _LN2)


def _kt_bits(totals: Array, table: Array, r: int) -> Array:
    state_terms = np.sum(gammaln(table + 0.5) - gammaln(0.5), axis=1)
    total_terms = gammaln(totals + r / 2) - gammaln(r / 2)
    return np.asarray((total_terms - state_terms) / _LN2)
