"""The occurrence index against a brute-force scan of the table."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fosr.flowmodel.index import NO_ROW, OccurrenceIndex


@st.composite
def coded_tables(draw: st.DrawFn) -> tuple[np.ndarray, tuple[int, ...]]:
    """Draw a small table of codes and the size of each column."""
    n_columns = draw(st.integers(1, 4))
    sizes = tuple(
        draw(st.lists(st.integers(1, 5), min_size=n_columns, max_size=n_columns))
    )
    n_rows = draw(st.integers(0, 40))
    codes = np.array(
        [[draw(st.integers(0, s - 1)) for s in sizes] for _ in range(n_rows)],
        dtype=np.int32,
    ).reshape(n_rows, n_columns)
    return codes, sizes


@settings(max_examples=150, deadline=None)
@given(coded_tables())
def test_rows_with_and_supports_match_a_scan(
    table: tuple[np.ndarray, tuple[int, ...]],
) -> None:
    codes, sizes = table
    index = OccurrenceIndex(codes, sizes)
    for column, size in enumerate(sizes):
        expected = [np.flatnonzero(codes[:, column] == v) for v in range(size)]
        for code in range(size):
            assert np.array_equal(index.rows_with(column, code), expected[code])
            assert index.support(column, code) == len(expected[code])
        assert list(index.supports(column)) == [len(rows) for rows in expected]


@settings(max_examples=150, deadline=None)
@given(coded_tables(), st.data())
def test_next_row_with_matches_a_scan(
    table: tuple[np.ndarray, tuple[int, ...]], data: st.DataObject
) -> None:
    codes, sizes = table
    index = OccurrenceIndex(codes, sizes)
    n = len(codes)
    column = data.draw(st.integers(0, len(sizes) - 1))
    code = data.draw(st.integers(0, sizes[column] - 1))
    after = data.draw(st.integers(-1, n))
    max_row = data.draw(st.one_of(st.none(), st.integers(0, n)))
    later = [r for r in range(after + 1, n) if codes[r, column] == code]
    expected = (
        later[0] if later and (max_row is None or later[0] <= max_row) else NO_ROW
    )
    assert index.next_row_with(column, code, after, max_row) == expected

    # the vectorised form walks the same list
    slot = index.slot(column, code)
    positions, ends = index.next_positions(np.array([slot]), np.array([after]))
    assert list(index.rows[positions[0] : ends[0]]) == later


@settings(max_examples=150, deadline=None)
@given(coded_tables(), st.data())
def test_rows_matching_several_cells_matches_a_scan(
    table: tuple[np.ndarray, tuple[int, ...]], data: st.DataObject
) -> None:
    codes, sizes = table
    index = OccurrenceIndex(codes, sizes)
    columns = data.draw(st.sets(st.integers(0, len(sizes) - 1)))
    cells = {c: data.draw(st.integers(0, sizes[c] - 1)) for c in columns}
    keep = np.ones(len(codes), dtype=bool)
    for column, code in cells.items():
        keep &= codes[:, column] == code
    assert np.array_equal(index.rows_matching(cells), np.flatnonzero(keep))
    assert index.count_matching(cells) == int(keep.sum())


def test_index_defaults_ticks_to_row_numbers() -> None:
    index = OccurrenceIndex(np.array([[0], [1], [0]]), (2,))
    assert list(index.ticks) == [0, 1, 2]
    assert index.rows.dtype == np.int64 and not index.rows.flags.writeable


@pytest.mark.parametrize(
    ("codes", "sizes", "ticks", "message"),
    [
        (np.array([[0, 2]]), (2, 2), None, "outside"),
        (np.array([[0, -1]]), (2, 2), None, "outside"),
        (np.array([[0, 0]]), (2,), None, "shape"),
        (np.array([[0, 0]]), (2, 2), np.array([0, 1]), "ticks"),
        (np.array([[0], [0]]), (2,), np.array([5, 4]), "decrease"),
    ],
)
def test_index_rejects_bad_tables(
    codes: np.ndarray, sizes: tuple[int, ...], ticks: np.ndarray | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        OccurrenceIndex(codes, sizes, ticks)


def test_index_of_a_column_wider_than_sixteen_bits() -> None:
    # columns of more than 65536 codes are sorted without the radix shortcut
    codes = np.array([[70_000], [3], [70_000], [65_536]])
    index = OccurrenceIndex(codes, (70_001,))
    assert index.rows_with(0, 70_000).tolist() == [0, 2]
    assert index.rows_with(0, 65_536).tolist() == [3]
    assert index.next_row_with(0, 70_000, 0) == 2
