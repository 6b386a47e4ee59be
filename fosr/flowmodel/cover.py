"""Cover a coded table with the windows of a set of patterns.

How this works (METHODS.md §1.6, "Cover algorithm"):

- Gather the windows of every pattern (:class:`WindowCache` finds them once
  per :attr:`Pattern.key <fosr.flowmodel.pattern.Pattern.key>` and limits).
- Order all windows by window score (covered cells minus the skip
  penalty), highest first; ties keep pattern order, then window order.
- Accept a window iff none of its rows belongs to an already accepted
  window (:func:`~fosr.flowmodel.windows.select_disjoint`): each row is in
  at most one occurrence, and the pattern's network draws that row's free
  cells.
- Rows in no accepted window are background rows, coded by the background
  network.

The cover depends only on the patterns and the table, not on the
networks, so the search can build it before learning a candidate's
network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.flowmodel.index import OccurrenceIndex
from fosr.flowmodel.pattern import Pattern
from fosr.flowmodel.windows import (
    Windows,
    find_windows,
    select_disjoint,
    window_scores,
)

__all__ = ["Cover", "WindowCache", "build_cover"]

Array = npt.NDArray[Any]


@dataclass(frozen=True, eq=False)
class Cover:
    """Which windows of each pattern a cover uses, and the background rows.

    - ``windows``: per pattern, int64 (used windows x pattern rows) row
      ids, windows ordered by first row;
    - ``background``: int64 ascending ids of the rows in no window.
    """

    windows: tuple[Array, ...]
    background: Array

    @property
    def usage(self) -> tuple[int, ...]:
        """Return the number of used windows of each pattern."""
        return tuple(len(w) for w in self.windows)


class WindowCache:
    """Find and keep the windows of patterns in one indexed table.

    ``max_gap_ticks`` and ``max_span_ticks`` are passed to
    :func:`~fosr.flowmodel.windows.find_windows` (None: unlimited).
    """

    def __init__(
        self,
        index: OccurrenceIndex,
        *,
        max_gap_ticks: int | None = None,
        max_span_ticks: int | None = None,
    ) -> None:
        self.index = index
        self.max_gap_ticks = max_gap_ticks
        self.max_span_ticks = max_span_ticks
        self._windows: dict[object, Windows] = {}

    def __len__(self) -> int:
        return len(self._windows)

    def windows(self, pattern: Pattern) -> Windows:
        """Return every window of ``pattern``, found once per pattern key."""
        found = self._windows.get(pattern.key)
        if found is None:
            found = find_windows(
                pattern,
                self.index,
                max_gap_ticks=self.max_gap_ticks,
                max_span_ticks=self.max_span_ticks,
            )
            self._windows[pattern.key] = found
        return found


def build_cover(patterns: Sequence[Pattern], cache: WindowCache) -> Cover:
    """Return the greedy cover of the cached table by ``patterns``."""
    n_rows = cache.index.n_rows
    if not patterns:
        return Cover(windows=(), background=np.arange(n_rows, dtype=np.int64))

    # all windows, padded with -1 to the longest pattern
    found = [cache.windows(p) for p in patterns]
    width = max(len(p) for p in patterns)
    padded = [
        np.pad(w.rows, ((0, 0), (0, width - w.rows.shape[1])), constant_values=-1)
        for w in found
    ]
    rows = np.concatenate(padded) if padded else np.zeros((0, width), np.int64)
    scores = np.concatenate(
        [window_scores(w, p.n_covered) for p, w in zip(patterns, found, strict=True)]
    )
    owner = np.repeat(np.arange(len(patterns)), [len(w) for w in found])

    # greedy disjoint choice, then split back per pattern
    chosen = select_disjoint(rows, scores) if len(rows) else np.zeros(0, np.int64)
    windows = []
    for i, p in enumerate(patterns):
        mine = chosen[owner[chosen] == i]
        windows.append(rows[mine, : len(p)])
    used = np.zeros(n_rows, dtype=bool)
    for w in windows:
        used[w.ravel()] = True
    return Cover(windows=tuple(windows), background=np.flatnonzero(~used))
