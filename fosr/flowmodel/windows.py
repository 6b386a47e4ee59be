"""Find the occurrences (windows) of a pattern, and score candidates.

How this works (METHODS.md §1.3, with the max gap of §1.6 and §6):

- Every row matching the first row pattern's FIX cells starts a window;
  its SET cells bind their placeholders to that row's values.
- Row pattern ``j > 1`` is completed greedily left-most: by the first row
  after the window's previous row that holds the FIX values and the bound
  values of the USE cells of row pattern ``j``; its SET cells then bind.
  Other flows may interleave.  Once the placeholders are bound, FIX and USE
  cells are both plain equalities, so each step is a lookup in the
  :class:`~fosr.flowmodel.index.OccurrenceIndex`: take the rarest of the
  row's (column, code) lists for this window, binary-search the first
  entry after the previous row, and walk that list, checking the other
  cells in the coded table, until a row matches.
- Limits, both inclusive and in ticks: ``max_gap_ticks`` bounds the delay
  between consecutive rows of a window and ``max_span_ticks`` the delay from
  its first row to its last.  Rows are in time order, so the walk stops at
  the first row beyond a limit and that start row has no window.  The
  reference has no limit (``None`` here); a generator that streams needs
  one, else a pattern may wait hours for its next row.
- All start rows advance together: each walking step is a handful of
  numpy operations over the windows still open.  A window still looking
  after ``_WALK_STEPS`` steps (a busy host whose next TCP flow is far, or
  never comes) jumps instead: the rows holding the FIX cells are sorted
  once by their USE codes, and one binary search per window finds its
  match.  Both give the same row; the walk is cheaper when it is near.

Candidate score (METHODS.md §1.6 step 3): the number of windows kept when
choosing non-overlapping windows greedily by window score, times the cells
an occurrence covers (FIX and USE).  Window score = covered cells minus
0.01 per row skipped inside the window.  :func:`select_disjoint` makes that
choice (the cover will use it over all patterns' windows at once) in
vectorised rounds: a window ranked first among all live windows sharing a
row with it is surely chosen by the one-at-a-time pass, and those rivals
surely are not; when a round settles too few windows (long chains of
overlapping windows), the rest go one at a time in Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.flowmodel._search import search_many
from fosr.flowmodel.index import NO_ROW, OccurrenceIndex
from fosr.flowmodel.pattern import CellKind, Pattern, RowPattern

__all__ = [
    "SKIP_PENALTY",
    "Windows",
    "candidate_score",
    "find_windows",
    "select_disjoint",
    "window_scores",
]

Array = npt.NDArray[Any]

SKIP_PENALTY = 0.01
"""Window score lost per row skipped inside a window (the reference's value)."""

_NO_LIMIT = np.iinfo(np.int64).max // 4

# Share of the live windows a round of select_disjoint must settle, else the
# rest goes one at a time.  Chosen on the benchmark's chains, not tuned.
_MIN_ROUND_GAIN = 0.05

# Steps a window walks its rarest list before jumping to its match through a
# sorted copy of the rows holding the FIX cells.  Walking is cheaper when
# the match is near; the jump bounds the cost of a far or missing one.
# Chosen on the benchmark, not tuned.
_WALK_STEPS = 8


@dataclass(frozen=True, eq=False)
class Windows:
    """The windows of one pattern.

    - ``rows``: int64, one row per window and one column per row pattern,
      ascending along each window; windows ordered by their first row;
    - ``spans_ticks``: int64, last row's tick minus first row's tick.
    """

    rows: Array
    spans_ticks: Array

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def skipped(self) -> Array:
        """Return the rows inside each window that are not part of it."""
        if len(self.rows) == 0:
            return np.zeros(0, dtype=np.int64)
        skipped: Array = self.rows[:, -1] - self.rows[:, 0] + 1 - self.rows.shape[1]
        return skipped


def find_windows(
    pattern: Pattern,
    index: OccurrenceIndex,
    *,
    max_gap_ticks: int | None = None,
    max_span_ticks: int | None = None,
) -> Windows:
    """Return every window of ``pattern`` in the indexed table.

    ``max_gap_ticks`` and ``max_span_ticks`` (None: unlimited, 0: same
    tick only) limit the windows as the module docstring says.
    """
    gap = _NO_LIMIT if max_gap_ticks is None else int(max_gap_ticks)
    span = _NO_LIMIT if max_span_ticks is None else int(max_span_ticks)
    if gap < 0 or span < 0:
        raise ValueError(f"limits must be >= 0, got {max_gap_ticks}, {max_span_ticks}")

    # start rows, and the placeholders they bind
    first = pattern.rows[0]
    starts = index.rows_matching(first.of_kind(CellKind.FIX))
    bound = np.zeros((len(starts), pattern.n_placeholders), dtype=np.int32)
    _bind(index, first, starts, bound)
    matched = [starts]

    # complete each row pattern in turn, dropping windows that cannot
    for row_pattern in pattern.rows[1:]:
        previous = matched[-1]
        limits = np.minimum(index.ticks[previous] + gap, index.ticks[matched[0]] + span)
        found = _next_matches(index, row_pattern, previous, limits, bound)
        alive = found != NO_ROW
        matched = [rows[alive] for rows in matched]
        matched.append(found[alive])
        bound = bound[alive]
        _bind(index, row_pattern, matched[-1], bound)

    rows = np.stack(matched, axis=1) if matched[0].size else _empty(len(pattern))
    spans = index.ticks[rows[:, -1]] - index.ticks[rows[:, 0]]
    return Windows(rows=rows, spans_ticks=spans.astype(np.int64))


def window_scores(windows: Windows, n_covered: int) -> Array:
    """Return each window's score: covered cells minus the skip penalty."""
    return n_covered - SKIP_PENALTY * windows.skipped.astype(np.float64)


def select_disjoint(rows: Array, scores: Array) -> Array:
    """Choose windows greedily by descending score, rows used at most once.

    ``rows`` is a 2-D int array, one window per row; ragged windows (from
    several patterns) are padded with a negative id.  Ties keep the given
    order.  Returns the ascending indices of the chosen windows: exactly
    those the one-at-a-time greedy pass would choose.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(len(rows))

    # rounds: a window ranked first among the live windows it shares a row
    # with is chosen by the greedy pass too, and its rivals are not
    chosen = []
    live = np.arange(len(rows))
    while live.size:
        winners, live_after = _settle_round(rows, rank, live)
        chosen.append(winners)
        if len(live) - len(live_after) < _MIN_ROUND_GAIN * len(live):
            # long chains of rivals: finish one window at a time
            order = live_after[np.argsort(rank[live_after])]
            chosen.append(_select_one_by_one(rows, order))
            break
        live = live_after
    return np.sort(np.concatenate(chosen))


def _settle_round(rows: Array, rank: Array, live: Array) -> tuple[Array, Array]:
    """Return the live windows ranked first on all their rows, and the live
    windows left once those and their rivals are gone."""
    n_ids = int(rows.max()) + 1
    live_rows = rows[live]
    real = live_rows >= 0
    live_rank = np.broadcast_to(rank[live, None], real.shape)

    # best rank holding each row, then windows holding the best on all rows
    best = np.full(n_ids, len(rows), dtype=np.int64)
    np.minimum.at(best, live_rows[real], live_rank[real])
    first = np.all(~real | (best[np.where(real, live_rows, 0)] == live_rank), 1)

    # rivals share a row with a winner
    taken = np.zeros(n_ids + 1, dtype=bool)
    taken[live_rows[first][real[first]]] = True
    lost = np.any(taken[np.where(real, live_rows, n_ids)], axis=1)
    return live[first], live[~first & ~lost]


def _select_one_by_one(rows: Array, order: Array) -> Array:
    """Run the greedy pass over windows ``order``, best first."""
    used = bytearray(int(rows.max()) + 2)
    picked = []
    for w, window in zip(order.tolist(), rows[order].tolist(), strict=True):
        if any(used[r] for r in window if r >= 0):
            continue
        for r in window:
            used[r] = 1
        picked.append(w)
    return np.array(picked, dtype=np.int64)


def candidate_score(pattern: Pattern, windows: Windows) -> float:
    """Return the candidate score of ``pattern`` given its windows."""
    n_covered = pattern.n_covered
    if len(pattern) == 1:
        # single-row windows never overlap
        return float(len(windows) * n_covered)
    chosen = select_disjoint(windows.rows, window_scores(windows, n_covered))
    return float(len(chosen) * n_covered)


def _bind(
    index: OccurrenceIndex, row_pattern: RowPattern, rows: Array, bound: Array
) -> None:
    """Bind the SET placeholders of ``row_pattern`` to the values of ``rows``."""
    for column, placeholder in row_pattern.of_kind(CellKind.SET).items():
        bound[:, placeholder] = index.codes[rows, column]


def _next_matches(
    index: OccurrenceIndex,
    row_pattern: RowPattern,
    previous: Array,
    limits: Array,
    bound: Array,
) -> Array:
    """Return, per window, the first row after ``previous`` matching the row
    pattern under the bindings and at a tick ``<= limits``, or NO_ROW."""
    n = len(previous)
    columns, wanted, is_use = _constraints(row_pattern, bound, n)
    if not columns.size:
        # no constraint: the very next row
        return _within(index, previous + 1, limits)

    # per window, the rarest (column, code) list and where to enter it
    slots = index.base[columns][None, :] + wanted
    lengths = index.offsets[slots + 1] - index.offsets[slots]
    rarest = slots[np.arange(n), np.argmin(lengths, axis=1)]
    positions, ends = index.next_positions(rarest, previous)

    # walk the lists a few steps, then jump the windows still looking
    found = np.full(n, NO_ROW, dtype=np.int64)
    pending = np.arange(n)
    pending = _walk(
        index, columns, wanted, limits, positions, ends, pending, found, _WALK_STEPS
    )
    if not pending.size:
        return found
    fixed = row_pattern.of_kind(CellKind.FIX)
    use_codes = wanted[pending][:, is_use]
    nearest = _jump(index, fixed, columns[is_use], use_codes, previous[pending])
    if nearest is None:
        _walk(index, columns, wanted, limits, positions, ends, pending, found, None)
    else:
        found[pending] = _within(index, nearest, limits[pending])
    return found


def _walk(
    index: OccurrenceIndex,
    columns: Array,
    wanted: Array,
    limits: Array,
    positions: Array,
    ends: Array,
    pending: Array,
    found: Array,
    max_steps: int | None,
) -> Array:
    """Advance the ``pending`` windows along their lists, checking the other
    cells in the table; record matches in ``found``.

    Stops after ``max_steps`` steps (None: until every window is settled)
    and returns the windows still pending.
    """
    steps = 0
    while pending.size and (max_steps is None or steps < max_steps):
        at = positions[pending]
        inside = at < ends[pending]
        pending, at = pending[inside], at[inside]
        candidates = index.rows[at]
        in_time = index.ticks[candidates] <= limits[pending]
        pending, candidates = pending[in_time], candidates[in_time]
        hit = np.all(index.codes[candidates[:, None], columns] == wanted[pending], 1)
        found[pending[hit]] = candidates[hit]
        pending = pending[~hit]
        positions[pending] += 1
        steps += 1
    return pending


def _jump(
    index: OccurrenceIndex,
    fixed: dict[int, int],
    use_columns: Array,
    use_codes: Array,
    previous: Array,
) -> Array | None:
    """Return, per window, the first row after ``previous`` holding the FIX
    cells and its ``use_codes`` in ``use_columns`` (NO_ROW if none).

    Sorts the rows holding the FIX cells by their USE codes once; each
    window then costs one binary search, however far its match lies.
    Returns None when the composite key would overflow int64.
    """
    sizes = [index.sizes[int(c)] for c in use_columns]
    if math.prod(sizes) * (index.n_rows + 1) >= 2**62:
        return None
    strides = np.ones(len(sizes), dtype=np.int64)
    for i in range(len(sizes) - 2, -1, -1):
        strides[i] = strides[i + 1] * sizes[i + 1]

    # composite keys: USE codes, then the row id, ascending
    rows = index.rows_matching(fixed)
    if not len(rows):
        return np.full(len(previous), NO_ROW, dtype=np.int64)
    groups = index.codes[rows[:, None], use_columns] @ strides
    keys = np.sort(groups * (index.n_rows + 1) + rows)
    targets = (use_codes @ strides) * (index.n_rows + 1)

    # a key past the window's group means no match
    at = search_many(keys, targets + previous + 1)
    row = keys[np.minimum(at, len(keys) - 1)] - targets
    ok = (at < len(keys)) & (row < index.n_rows)
    return np.where(ok, row, NO_ROW)


def _within(index: OccurrenceIndex, rows: Array, limits: Array) -> Array:
    """Return ``rows`` where they exist and lie within ``limits``, else NO_ROW."""
    ok = (rows >= 0) & (rows < index.n_rows)
    ok[ok] &= index.ticks[rows[ok]] <= limits[ok]
    return np.where(ok, rows, NO_ROW)


def _constraints(
    row_pattern: RowPattern, bound: Array, n: int
) -> tuple[Array, Array, Array]:
    """Return the constrained columns, the codes each window needs in them,
    and which of them are USE cells."""
    columns = []
    wanted = []
    is_use = []
    for column, cell in row_pattern.cells:
        if cell.kind is CellKind.FIX:
            wanted.append(np.full(n, cell.value, dtype=np.int64))
        elif cell.kind is CellKind.USE:
            wanted.append(bound[:, cell.value].astype(np.int64))
        else:
            continue
        columns.append(column)
        is_use.append(cell.kind is CellKind.USE)
    if not columns:
        return np.zeros(0, np.int64), np.zeros((n, 0), np.int64), np.zeros(0, bool)
    return (
        np.array(columns, dtype=np.int64),
        np.stack(wanted, axis=1),
        np.array(is_use, dtype=bool),
    )


def _empty(length: int) -> Array:
    return np.zeros((0, length), dtype=np.int64)
