"""The greedy cover of a table by the windows of several patterns."""

from __future__ import annotations

import numpy as np

from fosr.flowmodel.cover import WindowCache, build_cover
from fosr.flowmodel.index import OccurrenceIndex
from fosr.flowmodel.pattern import Cell, Pattern

PROTO, CLIENT, SERVER = 0, 1, 2
TCP, UDP = 0, 1
FIX, SET, USE = Cell.fix, Cell.set, Cell.use

DNS_THEN_TCP = Pattern.of(
    [{PROTO: FIX(UDP), CLIENT: SET(0)}, {PROTO: FIX(TCP), CLIENT: USE(0)}]
)
UDP_ONLY = Pattern.of([{PROTO: FIX(UDP)}])


def cache_of(rows: list[tuple[int, int, int]], **limits: int) -> WindowCache:
    codes = np.array(rows, dtype=np.int32)
    return WindowCache(OccurrenceIndex(codes, (2, 4, 4)), **limits)


def test_no_pattern_leaves_every_row_to_the_background() -> None:
    cover = build_cover([], cache_of([(UDP, 0, 1), (TCP, 0, 1)]))
    assert cover.usage == ()
    assert cover.background.tolist() == [0, 1]


def test_higher_scoring_windows_win_shared_rows() -> None:
    # rows: UDP h0, UDP h1, TCP h1, TCP h0, UDP h2
    cache = cache_of([(UDP, 0, 3), (UDP, 1, 3), (TCP, 1, 2), (TCP, 0, 2), (UDP, 2, 3)])
    cover = build_cover([UDP_ONLY, DNS_THEN_TCP], cache)
    # the two-row windows cover 4 cells each (1 - skips), the single rows 1
    assert cover.windows[1].tolist() == [[0, 3], [1, 2]]
    assert cover.windows[0].tolist() == [[4]]
    assert cover.usage == (1, 2)
    assert cover.background.tolist() == []


def test_rows_belong_to_one_window_at_most() -> None:
    cache = cache_of([(UDP, 0, 3), (UDP, 0, 3), (TCP, 0, 2), (TCP, 1, 2)])
    cover = build_cover([DNS_THEN_TCP], cache)
    # both queries complete on row 2; the window skipping no row wins it
    assert cover.windows[0].tolist() == [[1, 2]]
    assert cover.background.tolist() == [0, 3]


def test_windows_are_found_once_per_pattern() -> None:
    cache = cache_of([(UDP, 0, 3), (TCP, 0, 2)], max_gap_ticks=5)
    first = cache.windows(DNS_THEN_TCP)
    again = cache.windows(Pattern.of(list(DNS_THEN_TCP.rows)))
    assert first is again
    assert len(cache) == 1
