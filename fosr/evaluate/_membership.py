"""Membership disclosure (MD): can an attacker tell training flows by the output?

The attack of FlowChronicle's evaluation (METHODS.md §2, "authenticity"):
take real flows, half from the training set (members) and half from held-out
data (non-members); call a real flow a member when some synthetic flow lies
within Hamming distance r of it (the fraction of columns that differ); score
the guess by F1 for 15 thresholds r evenly spaced in [0, 1], skipping a
threshold where nothing is called a member, and sum the F1 values (0 to 15).
A generator that copies its training data lets the attacker find the
members at r = 0 and scores far above real held-out data; MD is therefore
judged by its distance to the reference row (real held-out data scored the
same way), not by its size.

Columns: the eleven of the evaluation (aligned start time, five continuous,
five discrete).  Numeric columns with more than 50 distinct values are cut
into 50 quantile bins; unlike the reference, the bin edges come from the
real data only (training ∪ held-out), so that every candidate is binned
alike and a candidate cannot move the edges.  A value the real data never
has gets a code no real flow has.

Deviations from the reference:

- precision and recall have their usual names (the reference swaps them;
  F1 is symmetric, so scores are unchanged);
- the attacker compares with the candidate's whole sample (10,000 rows by
  default), not with 500 of its rows: with 500, a copy of a 5,000-row
  training set holds only one member in ten and goes nearly unnoticed,
  while a real attacker sees all the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "MD_ROWS",
    "MdBins",
    "fit_md_bins",
    "md_codes",
    "membership_disclosure",
    "nearest_hamming",
]

Array = npt.NDArray[Any]

MD_ROWS = 500
"""Members and non-members drawn per repetition, as the reference."""
THRESHOLDS = np.linspace(0.0, 1.0, 15)
"""The Hamming radii the attacker tries, as the reference."""
_QUANTILE_BINS = 50
# real rows compared at once with every candidate row
_CHUNK_ROWS = 100


@dataclass(frozen=True, eq=False)
class MdBins:
    """How each numeric column becomes a code.

    Per column, either ``edges`` (inner quantile edges: code = number of
    edges ≤ value) or ``values`` (the exact real values: code = index, or
    ``len(values)`` for a value real data never has).
    """

    edges: tuple[Array | None, ...]
    values: tuple[Array | None, ...]


def fit_md_bins(real_numeric: Array) -> MdBins:
    """Fit the binning of each column of ``real_numeric`` (n, d)."""
    edges: list[Array | None] = []
    values: list[Array | None] = []
    for column in real_numeric.T:
        distinct = np.unique(column)
        if len(distinct) > _QUANTILE_BINS:
            levels = np.arange(1, _QUANTILE_BINS) / _QUANTILE_BINS
            edges.append(np.unique(np.quantile(column, levels)))
            values.append(None)
        else:
            edges.append(None)
            values.append(distinct)
    return MdBins(tuple(edges), tuple(values))


def md_codes(bins: MdBins, numeric: Array, categorical: Array) -> Array:
    """Return int64 codes (n, d + c): binned numeric, then categorical codes."""
    columns = []
    for i, column in enumerate(numeric.T):
        edges, values = bins.edges[i], bins.values[i]
        if edges is not None:
            columns.append(np.searchsorted(edges, column, side="right"))
        else:
            assert values is not None, "a column has either edges or values"
            index = np.minimum(np.searchsorted(values, column), len(values) - 1)
            known = values[index] == column
            columns.append(np.where(known, index, len(values)))
    columns.extend(categorical.T)
    return np.column_stack(columns).astype(np.int64)


def nearest_hamming(real: Array, candidate: Array) -> Array:
    """Return each real row's smallest number of differing columns to a candidate."""
    candidate = np.unique(candidate, axis=0)
    nearest = np.empty(len(real), dtype=np.int64)
    for start in range(0, len(real), _CHUNK_ROWS):
        rows = real[start : start + _CHUNK_ROWS]
        matches = np.zeros((len(rows), len(candidate)), dtype=np.int8)
        for c in range(real.shape[1]):
            matches += rows[:, c, None] == candidate[None, :, c]
        nearest[start : start + len(rows)] = real.shape[1] - matches.max(axis=1)
    return nearest


def membership_disclosure(
    members: Array, non_members: Array, candidate: Array
) -> float:
    """Return MD, the sum of the attacker's F1 over the 15 thresholds.

    All three are code arrays from :func:`md_codes` with the same columns.
    Raises ValueError if there are no members or no candidate rows.
    """
    if not len(members) or not len(candidate):
        raise ValueError("membership disclosure needs members and candidate rows")
    real = np.concatenate([members, non_members])
    is_member = np.arange(len(real)) < len(members)
    distance = nearest_hamming(real, candidate) / real.shape[1]
    total = 0.0
    for radius in THRESHOLDS:
        called = distance <= radius
        if not called.any():
            continue
        hits = int(np.count_nonzero(called & is_member))
        if hits:
            precision = hits / int(np.count_nonzero(called))
            recall = hits / len(members)
            total += 2 * precision * recall / (precision + recall)
    return total
