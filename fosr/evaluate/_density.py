"""Density and coverage (Naeem et al. 2020) on mixed numeric and categorical rows.

How this works.  Each row is a point: a few numeric coordinates (scaled to
about [0, 1]) and a few categorical values.  As in FlowChronicle's
evaluation (METHODS.md §2), categorical values are one-hot encoded and the
distance is Euclidean, so the squared distance between two rows is

    d² = Σ (numeric differences)² + 2 · (number of categorical mismatches).

Each real row x_i gets a ball B(x_i) whose squared radius r_i² is the
squared distance to its k-th nearest real neighbour.  Then, for M
synthetic rows y_j and N real rows,

    density  = 1 / (k M) · Σ_j Σ_i [d²(x_i, y_j) < r_i²]
    coverage = 1 / N     · Σ_i [some y_j has d²(x_i, y_j) < r_i²]

with strict inequalities as in the ``prdc`` package the paper uses.  When
the real sample was drawn with replacement, copies of one flow are not
each other's neighbours (``real_ids``): otherwise a flow drawn six times
would get a ball of radius 0.

Computing all N x M distances (10⁸ for 10,000 rows) takes seconds on a
small machine, and most of them are not needed: a pair with m mismatches
is at d² ≥ 2m.  So the neighbours within d² ≤ 4 are found by joining rows
on their categorical values with one column left out (five "leave-one-out"
joins; the join on all columns but column c holds the pairs that agree
everywhere except perhaps in c).  The join of column 0 keeps every pair it
finds; the others keep only the pairs that differ in their column, so each
pair with at most one mismatch is seen exactly once.  A real row whose k-th
neighbour is found at d² ≤ 4 has its exact radius from the joins, and its
ball holds only rows with at most one mismatch; the few other real rows are
compared with every row (``_brute_force``).  Work is done in blocks of
``_CHUNK_ROWS`` real rows, so memory stays at a few tens of MB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["density_coverage", "nearest_radii"]

Array = npt.NDArray[Any]

# rows of real data per block of a join; a block is _CHUNK_ROWS x (matching
# rows).  Small blocks waste little on pairs of unequal keys; 128 was the
# fastest of 32-512 on CIDDS-001 and UGR'16 samples of 10,000 rows.
_CHUNK_ROWS = 128
# rows of real data per block when comparing with every row
_BRUTE_CHUNK_ROWS = 256
# categorical columns with at most this many values are one-hot encoded for
# the matrix product; columns where at most this share of all pairs match
# (two random rows have equal values) are corrected pair by pair; the
# others are compared value by value.  Both chosen, not tuned.
_ONE_HOT_MAX_VALUES = 64
_MATCHED_MAX_SHARE = 0.05
# ties: a point exactly on a ball's edge is outside it (strict <); rounding
# must not put it inside, so balls shrink by this much (squared units)
_TIE_D2 = 1e-9
# a pair with one categorical mismatch is at d² >= 2, with two at d² >= 4
_ONE_MISMATCH_D2 = 4.0

# callback(rows, cols, d2): rows index the real side, cols the other side
BlockSink = Callable[[Array, Array, Array], None]


def density_coverage(
    real_x: Array,
    real_codes: Array,
    fake_x: Array,
    fake_codes: Array,
    *,
    k: int = 5,
    real_ids: Array | None = None,
    radii2: Array | None = None,
) -> tuple[float, float]:
    """Return (density, coverage) of the fake rows against the real rows.

    ``*_x`` are float arrays (n, d) of numeric coordinates, ``*_codes``
    int arrays (n, c) of categorical codes (equal codes mean equal values).
    ``real_ids`` marks copies of one real flow (default: all distinct).
    ``radii2``, the real rows' :func:`nearest_radii`, saves computing them
    again when several fake samples are compared with one real sample.
    Density is in [0, N/k] (1 means as dense as real data around real
    data), coverage in [0, 1]; higher is better for both.
    """
    if radii2 is None:
        radii2 = nearest_radii(real_x, real_codes, k=k, ids=real_ids)
    inner2 = radii2 - _TIE_D2
    counts = np.zeros(len(fake_x), dtype=np.int64)
    covered = np.zeros(len(real_x), dtype=bool)

    def sink(rows: Array, cols: Array, d2: Array) -> None:
        inside = d2 < inner2[rows, None]
        counts[cols] += inside.sum(axis=0)
        covered[rows] |= inside.any(axis=1)

    # balls of radius <= one mismatch only hold rows the joins find
    local = radii2 <= _ONE_MISMATCH_D2
    rows = np.flatnonzero(local)
    _join(real_x[rows], real_codes[rows], fake_x, fake_codes, _reindexed(sink, rows))
    far = np.flatnonzero(~local)
    _brute_force(
        real_x[far], real_codes[far], fake_x, fake_codes, _reindexed(sink, far)
    )

    density = float(counts.sum()) / (k * len(fake_x))
    return density, float(covered.mean())


def nearest_radii(x: Array, codes: Array, *, k: int, ids: Array | None = None) -> Array:
    """Return each row's squared distance to its k-th nearest other row.

    Rows with the same ``ids`` value are copies and never neighbours.  A
    row with fewer than k neighbours gets ``inf``.  Raises ValueError if
    k < 1.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    n = len(x)
    ids = np.arange(n) if ids is None else np.asarray(ids)
    best = np.full((n, k), np.inf)

    def sink(rows: Array, cols: Array, d2: Array) -> None:
        d2 = np.where(ids[rows, None] == ids[None, cols], np.inf, d2)
        merged = np.concatenate([best[rows], d2], axis=1)
        if merged.shape[1] > k:
            merged = np.partition(merged, k - 1, axis=1)[:, :k]
        best[rows] = merged

    # neighbours with at most one mismatch first, then all for the rest
    _join(x, codes, x, codes, sink)
    far = np.flatnonzero(np.max(best, axis=1) > _ONE_MISMATCH_D2)
    best[far] = np.inf
    _brute_force(x[far], codes[far], x, codes, _reindexed(sink, far))
    radii2: Array = np.max(best, axis=1)
    return radii2


def _reindexed(sink: BlockSink, rows_of: Array) -> BlockSink:
    """Wrap ``sink`` so that block rows are mapped through ``rows_of``."""

    def mapped(rows: Array, cols: Array, d2: Array) -> None:
        sink(rows_of[rows], cols, d2)

    return mapped


def _join(
    a_x: Array, a_codes: Array, b_x: Array, b_codes: Array, sink: BlockSink
) -> None:
    """Feed ``sink`` every pair (a, b) with at most one mismatch, once each."""
    n_columns = a_codes.shape[1]
    if not n_columns:
        # without categorical columns every pair has zero mismatches
        _brute_force(a_x, a_codes, b_x, b_codes, sink)
        return
    b_norms = np.einsum("ij,ij->i", b_x, b_x)
    for c in range(n_columns):
        kept = [i for i in range(n_columns) if i != c]
        a_key, b_key = _join_keys(a_codes[:, kept], b_codes[:, kept])
        for rows, cols in _matching_blocks(a_key, b_key):
            d2 = _numeric_d2(a_x[rows], b_x[cols], b_norms[cols])
            differs = a_codes[rows, c, None] != b_codes[None, cols, c]
            d2 += 2.0 * differs
            same = a_key[rows, None] == b_key[None, cols]
            # the join of column 0 also keeps the pairs that agree on all
            wanted = same if c == 0 else same & differs
            sink(rows, cols, np.where(wanted, d2, np.inf))


def _brute_force(
    a_x: Array, a_codes: Array, b_x: Array, b_codes: Array, sink: BlockSink
) -> None:
    """Feed ``sink`` every pair (a, b), block by block.

    Categorical columns are handled in the cheapest of three ways: one-hot
    coordinates in the matrix product (few values), value-by-value
    comparison (values shared by many rows), or counting every pair as a
    mismatch and then correcting only the pairs that match (many rare
    values, such as addresses: the matching pairs are few).
    """
    if not len(a_x):
        return
    one_hot, compared, matched = _plan_columns(a_codes, b_codes)
    a_x, b_x = _with_one_hot(a_x, a_codes, b_x, b_codes, one_hot)
    b_norms = np.einsum("ij,ij->i", b_x, b_x)
    indexes = [_CodeIndex(b_codes[:, c]) for c in matched]
    cols = np.arange(len(b_x))
    for start in range(0, len(a_x), _BRUTE_CHUNK_ROWS):
        rows = np.arange(start, min(start + _BRUTE_CHUNK_ROWS, len(a_x)))
        d2 = _numeric_d2(a_x[rows], b_x, b_norms)
        for c in compared:
            differs = a_codes[rows, c, None] != b_codes[None, :, c]
            np.add(d2, 2.0, out=d2, where=differs)
        if matched:
            d2 += 2.0 * len(matched)
        for c, index in zip(matched, indexes, strict=True):
            block_rows, block_cols = index.matches(a_codes[rows, c])
            d2[block_rows, block_cols] -= 2.0
        sink(rows, cols, d2)


def _plan_columns(
    a_codes: Array, b_codes: Array
) -> tuple[list[int], list[int], list[int]]:
    """Split categorical columns into (one-hot, compared, matched) ones."""
    one_hot, compared, matched = [], [], []
    for c in range(a_codes.shape[1]):
        size = int(max(a_codes[:, c].max(), b_codes[:, c].max())) + 1
        a_share = np.bincount(a_codes[:, c], minlength=size) / len(a_codes)
        b_share = np.bincount(b_codes[:, c], minlength=size) / len(b_codes)
        if np.count_nonzero(a_share + b_share) <= _ONE_HOT_MAX_VALUES:
            one_hot.append(c)
        elif float(np.dot(a_share, b_share)) <= _MATCHED_MAX_SHARE:
            matched.append(c)
        else:
            compared.append(c)
    return one_hot, compared, matched


class _CodeIndex:
    """The rows of one categorical column, grouped by code, for lookups."""

    def __init__(self, codes: Array) -> None:
        self.order = np.argsort(codes, kind="stable")
        self.sorted = codes[self.order]

    def matches(self, codes: Array) -> tuple[Array, Array]:
        """Return (i, j) for every pair with ``codes[i]`` equal to row j's code."""
        low = np.searchsorted(self.sorted, codes, side="left")
        counts = np.searchsorted(self.sorted, codes, side="right") - low
        rows = np.repeat(np.arange(len(codes)), counts)
        # position of each pair within its row's run of equal codes
        firsts = np.repeat(np.cumsum(counts) - counts, counts)
        offsets = np.arange(len(rows)) - firsts
        return rows, self.order[np.repeat(low, counts) + offsets]


def _with_one_hot(
    a_x: Array, a_codes: Array, b_x: Array, b_codes: Array, columns: list[int]
) -> tuple[Array, Array]:
    """Append one-hot coordinates for the given categorical columns.

    |e_u - e_v|² is 2 for two different one-hot vectors, so these columns'
    mismatches come out of the matrix product.
    """
    a_parts, b_parts = [a_x], [b_x]
    for c in columns:
        both = np.concatenate([a_codes[:, c], b_codes[:, c]])
        values, inverse = np.unique(both, return_inverse=True)
        one_hot = np.eye(len(values))[inverse.reshape(-1)]
        a_parts.append(one_hot[: len(a_codes)])
        b_parts.append(one_hot[len(a_codes) :])
    return np.hstack(a_parts), np.hstack(b_parts)


def _numeric_d2(a: Array, b: Array, b_norms: Array) -> Array:
    """Return squared Euclidean distances between the rows of a and b."""
    d2: Array = a @ b.T
    d2 *= -2.0
    d2 += np.einsum("ij,ij->i", a, a)[:, None]
    d2 += b_norms[None, :]
    # rounding can leave -1e-16 where the true distance is 0
    np.maximum(d2, 0.0, out=d2)
    return d2


def _join_keys(a_codes: Array, b_codes: Array) -> tuple[Array, Array]:
    """Return one integer key per row; rows get equal keys iff codes are equal."""
    both = np.concatenate([a_codes, b_codes])
    key = np.zeros(len(both), dtype=np.int64)
    for c in range(both.shape[1]):
        # renumber after each column so that the key never overflows
        _, key = np.unique(
            key * (int(both[:, c].max()) + 1) + both[:, c], return_inverse=True
        )
        key = key.reshape(-1).astype(np.int64)
    return key[: len(a_codes)], key[len(a_codes) :]


def _matching_blocks(a_key: Array, b_key: Array) -> Iterator[tuple[Array, Array]]:
    """Yield (rows of a, rows of b) blocks covering every pair of equal keys.

    Rows of a are taken in key order, ``_CHUNK_ROWS`` at a time, with the rows
    of b whose keys fall in the chunk's key range; a block also holds pairs
    of unequal keys, which the caller masks out.
    """
    a_order = np.argsort(a_key, kind="stable")
    b_order = np.argsort(b_key, kind="stable")
    a_sorted, b_sorted = a_key[a_order], b_key[b_order]
    for start in range(0, len(a_order), _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, len(a_order))
        lo = np.searchsorted(b_sorted, a_sorted[start], side="left")
        hi = np.searchsorted(b_sorted, a_sorted[stop - 1], side="right")
        if hi > lo:
            yield a_order[start:stop], b_order[lo:hi]
