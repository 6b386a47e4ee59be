"""Finding windows of patterns, greedy disjoint choice, candidate scores."""

from __future__ import annotations

from collections.abc import Sequence
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fosr.flowmodel import windows as windows_module
from fosr.flowmodel.index import OccurrenceIndex
from fosr.flowmodel.pattern import Cell, CellKind, Pattern, RowPattern
from fosr.flowmodel.windows import (
    Windows,
    candidate_score,
    find_windows,
    select_disjoint,
    window_scores,
)

PROTO, CLIENT, SERVER = 0, 1, 2
TCP, UDP = 0, 1
H0, H1, H2, H3 = 0, 1, 2, 3
FIX, SET, USE = Cell.fix, Cell.set, Cell.use


def indexed(
    rows: Sequence[tuple[int, int, int]], ticks: Sequence[int] | None = None
) -> OccurrenceIndex:
    """Index (proto, client, server) rows; ticks default to row numbers."""
    codes = np.array(rows, dtype=np.int32).reshape(-1, 3)
    return OccurrenceIndex(codes, (2, 4, 4), None if ticks is None else np.array(ticks))


def windows_of(
    pattern: Pattern, index: OccurrenceIndex, **limits: int | None
) -> list[list[int]]:
    rows: list[list[int]] = find_windows(pattern, index, **limits).rows.tolist()
    return rows


DNS_THEN_TCP = Pattern.of(
    [{PROTO: FIX(UDP), CLIENT: SET(0)}, {PROTO: FIX(TCP), CLIENT: USE(0)}]
)


def test_single_row_pattern_windows_are_its_matching_rows() -> None:
    index = indexed([(UDP, H0, H1), (TCP, H0, H1), (UDP, H2, H1)])
    found = find_windows(Pattern.of([{PROTO: FIX(UDP), SERVER: FIX(H1)}]), index)
    assert found.rows.tolist() == [[0], [2]]
    assert found.spans_ticks.tolist() == [0, 0]
    assert found.skipped.tolist() == [0, 0]


def test_interleaved_windows_complete_left_most() -> None:
    index = indexed(
        [(UDP, H0, H3), (UDP, H1, H3), (TCP, H1, H2), (TCP, H0, H2), (TCP, H0, H2)],
        ticks=[0, 1, 5, 9, 10],
    )
    found = find_windows(DNS_THEN_TCP, index)
    assert found.rows.tolist() == [[0, 3], [1, 2]]
    assert found.spans_ticks.tolist() == [9, 4]
    assert found.skipped.tolist() == [2, 0]


def test_placeholder_binds_client_and_is_used_as_server() -> None:
    # "a host asks, and later someone connects to that host"
    pattern = Pattern.of([{PROTO: FIX(UDP), CLIENT: SET(0)}, {SERVER: USE(0)}])
    index = indexed([(UDP, H0, H3), (TCP, H1, H2), (TCP, H2, H0), (UDP, H1, H3)])
    assert windows_of(pattern, index) == [[0, 2]]


def test_placeholders_chain_over_three_rows() -> None:
    pattern = Pattern.of(
        [
            {CLIENT: SET(0), SERVER: SET(1)},
            {CLIENT: USE(1), SERVER: SET(2)},
            {CLIENT: USE(2), SERVER: USE(0)},
        ]
    )
    index = indexed(
        [(TCP, H0, H1), (TCP, H2, H3), (TCP, H1, H2), (TCP, H2, H1), (TCP, H2, H0)]
    )
    # 0 binds (H0, H1); 2 is H1 -> H2; 4 is H2 -> H0.  Row 1 binds (H2, H3)
    # and needs a flow from H3, which never comes.
    assert windows_of(pattern, index) == [[0, 2, 4]]


def test_no_window_when_a_use_cannot_be_satisfied() -> None:
    index = indexed([(UDP, H0, H3), (TCP, H1, H3), (TCP, H2, H0)])
    assert windows_of(DNS_THEN_TCP, index) == []
    empty = find_windows(DNS_THEN_TCP, index)
    assert empty.rows.shape == (0, 2) and len(empty) == 0
    assert empty.skipped.shape == (0,)


def test_max_gap_cuts_a_window() -> None:
    index = indexed(
        [(UDP, H0, H3), (UDP, H1, H3), (TCP, H1, H2), (TCP, H0, H2)],
        ticks=[0, 400, 600, 700],
    )
    assert windows_of(DNS_THEN_TCP, index) == [[0, 3], [1, 2]]
    assert windows_of(DNS_THEN_TCP, index, max_gap_ticks=500) == [[1, 2]]
    # inclusive: a gap of exactly the limit is kept
    assert windows_of(DNS_THEN_TCP, index, max_gap_ticks=700) == [[0, 3], [1, 2]]
    assert windows_of(DNS_THEN_TCP, index, max_gap_ticks=199) == []


def test_max_gap_does_not_look_past_the_first_match() -> None:
    # the first TCP flow of H0 is too late; a window never skips it for a
    # later one (there is none earlier), so there is no window at all
    index = indexed(
        [(UDP, H0, H3), (TCP, H0, H2), (UDP, H0, H3), (TCP, H0, H2)],
        ticks=[0, 50, 60, 61],
    )
    assert windows_of(DNS_THEN_TCP, index, max_gap_ticks=10) == [[2, 3]]


def test_max_span_bounds_the_whole_window() -> None:
    pattern = Pattern.of([{CLIENT: SET(0)}, {CLIENT: USE(0)}, {CLIENT: USE(0)}])
    index = indexed([(TCP, H0, H1)] * 4, ticks=[0, 10, 20, 30])
    assert windows_of(pattern, index, max_gap_ticks=10) == [[0, 1, 2], [1, 2, 3]]
    assert windows_of(pattern, index, max_span_ticks=19) == []
    assert windows_of(pattern, index, max_span_ticks=20) == [[0, 1, 2], [1, 2, 3]]


def test_row_with_only_sets_takes_the_next_row() -> None:
    pattern = Pattern.of([{PROTO: FIX(UDP)}, {CLIENT: SET(0)}, {SERVER: USE(0)}])
    index = indexed([(UDP, H0, H3), (TCP, H1, H2), (TCP, H2, H1), (UDP, H0, H0)])
    assert windows_of(pattern, index) == [[0, 1, 2]]


def test_negative_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="limits"):
        find_windows(DNS_THEN_TCP, indexed([(UDP, H0, H1)]), max_gap_ticks=-1)


def test_select_disjoint_prefers_fewer_skipped_rows() -> None:
    # windows (0, 3) skips two rows, (1, 3) one: the second wins row 3
    found = Windows(rows=np.array([[0, 3], [1, 3], [2, 4]]), spans_ticks=np.zeros(3))
    scores = window_scores(found, n_covered=3)
    assert scores.tolist() == pytest.approx([2.98, 2.99, 2.99])
    assert select_disjoint(found.rows, scores).tolist() == [1, 2]


def test_select_disjoint_handles_padded_windows_of_several_patterns() -> None:
    rows = np.array([[0, 1, -1], [1, 2, 3], [2, -1, -1], [4, -1, -1]])
    scores = np.array([1.0, 3.0, 2.0, 1.0])
    assert select_disjoint(rows, scores).tolist() == [1, 3]
    assert select_disjoint(rows[:0], scores[:0]).tolist() == []


def test_candidate_score_counts_disjoint_windows_times_covered_cells() -> None:
    pattern = Pattern.of(
        [{PROTO: FIX(TCP), CLIENT: SET(0)}, {PROTO: FIX(TCP), CLIENT: USE(0)}]
    )
    index = indexed([(TCP, H0, H1)] * 3)
    found = find_windows(pattern, index)
    assert found.rows.tolist() == [[0, 1], [1, 2]]
    assert candidate_score(pattern, found) == 1 * 3
    single = Pattern.of([{PROTO: FIX(TCP), SERVER: FIX(H1)}])
    assert candidate_score(single, find_windows(single, index)) == 3 * 2


# -- against the definition, on random tables --------------------------------


def brute_windows(
    pattern: Pattern,
    codes: np.ndarray,
    ticks: np.ndarray,
    max_gap: int | None,
    max_span: int | None,
) -> list[list[int]]:
    """Find windows by the definition of METHODS.md §1.3, row by row."""

    def matches(row: RowPattern, values: np.ndarray, bound: dict[int, int]) -> bool:
        for column, cell in row.cells:
            if cell.kind is CellKind.FIX and values[column] != cell.value:
                return False
            if cell.kind is CellKind.USE and values[column] != bound[cell.value]:
                return False
        return True

    def bind(row: RowPattern, values: np.ndarray, bound: dict[int, int]) -> None:
        for column, placeholder in row.of_kind(CellKind.SET).items():
            bound[placeholder] = int(values[column])

    found = []
    for start in range(len(codes)):
        bound: dict[int, int] = {}
        if not matches(pattern.rows[0], codes[start], bound):
            continue
        bind(pattern.rows[0], codes[start], bound)
        window = [start]
        for row in pattern.rows[1:]:
            nxt = next(
                (
                    r
                    for r in range(window[-1] + 1, len(codes))
                    if matches(row, codes[r], bound)
                ),
                None,
            )
            if nxt is None:
                break
            if max_gap is not None and ticks[nxt] - ticks[window[-1]] > max_gap:
                break
            if max_span is not None and ticks[nxt] - ticks[start] > max_span:
                break
            bind(row, codes[nxt], bound)
            window.append(nxt)
        if len(window) == len(pattern):
            found.append(window)
    return found


@st.composite
def patterns(draw: st.DrawFn, sizes: tuple[int, ...]) -> Pattern:
    """Draw a valid pattern of 1 to 3 rows; columns 1 and 2 are addresses."""
    rows = []
    placeholders = 0
    for _ in range(draw(st.integers(1, 3))):
        cells: dict[int, Cell] = {}
        earlier = placeholders
        for column, size in enumerate(sizes):
            kinds = ["free", "fix"]
            if column in (CLIENT, SERVER):
                kinds += ["set"] + (["use"] if earlier else [])
            kind = draw(st.sampled_from(kinds))
            if kind == "fix":
                cells[column] = FIX(draw(st.integers(0, size - 1)))
            elif kind == "set":
                cells[column] = SET(placeholders)
                placeholders += 1
            elif kind == "use":
                cells[column] = USE(draw(st.integers(0, earlier - 1)))
        if not cells:
            cells[PROTO] = FIX(draw(st.integers(0, sizes[PROTO] - 1)))
        rows.append(cells)
    return Pattern.of(rows)


@st.composite
def tables(draw: st.DrawFn, max_rows: int) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(0, max_rows))
    hosts = draw(st.integers(1, 4))
    codes = np.array(
        [
            [
                draw(st.integers(0, 1)),
                draw(st.integers(0, hosts - 1)),
                draw(st.integers(0, hosts - 1)),
            ]
            for _ in range(n)
        ],
        dtype=np.int32,
    ).reshape(n, 3)
    ticks = np.cumsum(
        np.array(
            draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.int64
        )
    )
    return codes, ticks


@pytest.mark.parametrize("walk_steps", [1, 8])
@settings(max_examples=120, deadline=None)
@given(
    table=tables(max_rows=60),
    pattern=patterns((2, 4, 4)),
    max_gap=st.one_of(st.none(), st.integers(0, 6)),
    max_span=st.one_of(st.none(), st.integers(0, 12)),
)
def test_find_windows_matches_the_definition(
    walk_steps: int,
    table: tuple[np.ndarray, np.ndarray],
    pattern: Pattern,
    max_gap: int | None,
    max_span: int | None,
) -> None:
    # walk_steps=1 sends almost every window through the sorted-jump path
    codes, ticks = table
    index = OccurrenceIndex(codes, (2, 4, 4), ticks)
    with mock.patch.object(windows_module, "_WALK_STEPS", walk_steps):
        found = find_windows(
            pattern, index, max_gap_ticks=max_gap, max_span_ticks=max_span
        )
    assert found.rows.tolist() == brute_windows(
        pattern, codes, ticks, max_gap, max_span
    )
    if len(found):
        assert (
            found.spans_ticks.tolist()
            == (ticks[found.rows[:, -1]] - ticks[found.rows[:, 0]]).tolist()
        )


def greedy_one_by_one(rows: np.ndarray, scores: np.ndarray) -> list[int]:
    used: set[int] = set()
    chosen = []
    for w in sorted(range(len(rows)), key=lambda w: -scores[w]):
        ids = {int(r) for r in rows[w] if r >= 0}
        if ids & used:
            continue
        used |= ids
        chosen.append(w)
    return sorted(chosen)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_select_disjoint_matches_the_one_by_one_greedy(data: st.DataObject) -> None:
    n_windows = data.draw(st.integers(0, 60))
    width = data.draw(st.integers(1, 3))
    ids = st.lists(st.integers(0, 29), min_size=1, max_size=width, unique=True)
    rows = np.full((n_windows, width), -1, dtype=np.int64)
    for w in range(n_windows):
        window = sorted(data.draw(ids))
        rows[w, : len(window)] = window
    scores = np.array(
        data.draw(
            st.lists(
                st.sampled_from([1.0, 1.5, 2.0]),
                min_size=n_windows,
                max_size=n_windows,
            )
        )
    )
    assert select_disjoint(rows, scores).tolist() == greedy_one_by_one(rows, scores)


def test_find_windows_keeps_walking_when_the_jump_cannot_be_built() -> None:
    # the jump gives up when its composite key would overflow int64
    rng = np.random.default_rng(5)
    codes = np.stack(
        [rng.integers(0, 2, 200), rng.integers(0, 4, 200), rng.integers(0, 4, 200)],
        axis=1,
    ).astype(np.int32)
    ticks = np.arange(200, dtype=np.int64)
    index = OccurrenceIndex(codes, (2, 4, 4), ticks)
    pattern = Pattern.of(
        [{PROTO: FIX(UDP), CLIENT: SET(0)}, {PROTO: FIX(TCP), SERVER: USE(0)}]
    )
    with (
        mock.patch.object(windows_module, "_WALK_STEPS", 1),
        mock.patch.object(windows_module, "_jump", return_value=None),
    ):
        found = find_windows(pattern, index)
    assert found.rows.tolist() == brute_windows(pattern, codes, ticks, None, None)
