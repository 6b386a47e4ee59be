"""The pattern language: cells, placeholder rules, canonical form."""

from __future__ import annotations

import numpy as np
import pytest

from fosr.flowmodel.codebook import Codebook, ColumnKind
from fosr.flowmodel.pattern import Cell, CellKind, Pattern, RowPattern

PROTO, CLIENT, SERVER, PORT = 0, 1, 2, 3
FIX, SET, USE = Cell.fix, Cell.set, Cell.use


def books() -> list[Codebook]:
    hosts = np.array(["10.0.0.1", "10.0.0.2"], dtype=object)

    def book(name: str, values: np.ndarray, is_address: bool = False) -> Codebook:
        return Codebook(
            name=name,
            kind=ColumnKind.CATEGORICAL,
            is_address=is_address,
            values=values,
            edges=np.empty(0),
            is_integer=False,
            counts=np.ones(len(values), dtype=np.int64),
        )

    return [
        book("proto", np.array([6, 17], dtype=np.uint8)),
        book("client", hosts, is_address=True),
        book("server", hosts, is_address=True),
        book("server_port", np.array([53, 443], dtype=np.int32)),
    ]


def test_placeholders_are_renumbered_by_first_set() -> None:
    a = Pattern.of([{CLIENT: SET(7), SERVER: SET(3)}, {SERVER: USE(3), CLIENT: USE(7)}])
    b = Pattern.of([{CLIENT: SET(0), SERVER: SET(1)}, {SERVER: USE(1), CLIENT: USE(0)}])
    assert a == b and hash(a) == hash(b) and a.key == b.key
    assert a.rows[0].get(CLIENT) == SET(0)
    assert a.n_placeholders == 2


def test_key_is_plain_ints_in_column_order() -> None:
    pattern = Pattern.of(
        [{PORT: FIX(0), PROTO: FIX(1), CLIENT: SET(0)}, {SERVER: USE(0)}]
    )
    assert pattern.key == (((0, 0, 1), (1, 1, 0), (3, 0, 0)), ((2, 2, 0),))


def test_cells_count_covered_cells_without_sets() -> None:
    pattern = Pattern.of(
        [{PROTO: FIX(1), CLIENT: SET(0)}, {PROTO: FIX(0), SERVER: USE(0)}]
    )
    assert pattern.n_covered == 3
    assert [row.n_covered for row in pattern.rows] == [1, 2]
    assert pattern.rows[1].of_kind(CellKind.USE) == {SERVER: 0}
    assert pattern.rows[0].get(SERVER) is None


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "at least one row"),
        ([{}], "at least one cell"),
        ([{CLIENT: USE(0)}], "never SET"),
        ([{CLIENT: SET(0), SERVER: USE(0)}], "not after its SET"),
        ([{SERVER: USE(0)}, {CLIENT: SET(0)}], "not after its SET"),
        ([{CLIENT: SET(0)}, {SERVER: SET(0)}], "SET twice"),
        ([{PROTO: FIX(-1)}], "negative"),
    ],
)
def test_pattern_rejects_broken_rules(
    rows: list[dict[int, Cell]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Pattern.of(rows)


def test_row_pattern_rejects_a_column_twice() -> None:
    with pytest.raises(ValueError, match="bad columns"):
        RowPattern(((PROTO, FIX(0)), (PROTO, FIX(1))))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{PROTO: SET(0)}], "not an address column"),
        ([{CLIENT: SET(0)}, {PORT: USE(0)}], "not an address column"),
        ([{PORT: FIX(2)}], "no code 2"),
        ([{9: FIX(0)}], "no column 9"),
    ],
)
def test_check_against_codebooks(rows: list[dict[int, Cell]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Pattern.of(rows).check(books())


def test_check_accepts_placeholders_across_roles() -> None:
    Pattern.of([{CLIENT: SET(0), PROTO: FIX(1)}, {SERVER: USE(0)}]).check(books())


def test_describe_names_columns_and_values() -> None:
    pattern = Pattern.of(
        [{PROTO: FIX(1), PORT: FIX(0), CLIENT: SET(0)}, {PROTO: FIX(0), CLIENT: USE(0)}]
    )
    assert pattern.describe(books()) == (
        "[{proto=UDP, client=SET0, server_port=53}, {proto=TCP, client=USE0}]"
    )


def test_with_cell_adds_a_cell_or_a_row() -> None:
    pattern = Pattern.of([{PROTO: FIX(1), CLIENT: SET(0)}])
    longer = pattern.with_cell(1, SERVER, USE(0))
    assert longer == Pattern.of([{PROTO: FIX(1), CLIENT: SET(0)}, {SERVER: USE(0)}])
    wider = longer.with_cell(1, PROTO, FIX(0))
    assert wider.rows[1] == RowPattern.of({SERVER: USE(0), PROTO: FIX(0)})
    assert pattern.with_cell(0, PROTO, FIX(0)).rows[0].get(PROTO) == FIX(0)


def test_then_keeps_placeholders_apart() -> None:
    first = Pattern.of([{CLIENT: SET(0)}, {SERVER: USE(0)}])
    joined = first.then(first)
    assert joined == Pattern.of(
        [{CLIENT: SET(0)}, {SERVER: USE(0)}, {CLIENT: SET(1)}, {SERVER: USE(1)}]
    )


def test_cells_from_plain_ints_are_normalised() -> None:
    row = RowPattern(((np.int64(2), Cell(0, np.int32(1))),))  # type: ignore[arg-type]
    ((column, cell),) = row.cells
    assert type(column) is int and cell.kind is CellKind.FIX and type(cell.value) is int
