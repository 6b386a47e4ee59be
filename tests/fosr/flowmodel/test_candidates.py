"""Candidate patterns: seeds, extensions, merges."""

from __future__ import annotations

import numpy as np

from fosr.flowmodel.candidates import (
    concatenations,
    extensions,
    merges,
    seed_patterns,
    with_cells,
)
from fosr.flowmodel.pattern import Cell, CellKind, Pattern

PROTO, CLIENT, SERVER, PORT = 0, 1, 2, 3
FIX, SET, USE = Cell.fix, Cell.set, Cell.use


def test_seeds_pair_non_address_values_by_support() -> None:
    codes = np.array([[0, 5, 6, 1]] * 6 + [[1, 5, 6, 2]] * 3 + [[0, 1, 2, 2]] * 2)
    seeds = seed_patterns(codes, (CLIENT, SERVER), min_support=3, max_seeds=10)
    assert seeds == [
        Pattern.of([{PROTO: FIX(0), PORT: FIX(1)}]),
        Pattern.of([{PROTO: FIX(1), PORT: FIX(2)}]),
    ]
    assert len(seed_patterns(codes, (CLIENT, SERVER), min_support=3, max_seeds=1)) == 1


def test_extensions_add_fix_cells_and_placeholders() -> None:
    pattern = Pattern.of([{PROTO: FIX(1), PORT: FIX(0)}])
    codes = np.array([[1, 4, 9, 0]] * 5 + [[0, 4, 9, 2]])
    windows = np.arange(5)[:, None]
    found = set(
        p.key
        for p in extensions(
            pattern, windows, codes, (CLIENT, SERVER), min_support=5, max_rows=2
        )
    )
    # no FIX on addresses; a placeholder row appended on either column
    assert (
        Pattern.of(
            [{PROTO: FIX(1), PORT: FIX(0), CLIENT: SET(0)}, {CLIENT: USE(0)}]
        ).key
        in found
    )
    assert (
        Pattern.of(
            [{PROTO: FIX(1), PORT: FIX(0), SERVER: SET(0)}, {CLIENT: USE(0)}]
        ).key
        in found
    )
    assert all(
        kind != CellKind.FIX
        for key in found
        for row in key
        for c, kind, _ in row
        if c in (CLIENT, SERVER)
    )


def test_extensions_stop_appending_at_max_rows() -> None:
    pattern = Pattern.of([{PROTO: FIX(1), CLIENT: SET(0)}, {CLIENT: USE(0)}])
    codes = np.array([[1, 4, 9, 0]] * 4)
    windows = np.array([[0, 1], [2, 3]])
    found = list(
        extensions(pattern, windows, codes, (CLIENT, SERVER), min_support=2, max_rows=2)
    )
    assert found and all(len(p) == 2 for p in found)
    # the placeholder may also be used on the free server cell of row 1
    assert (
        Pattern.of([{PROTO: FIX(1), CLIENT: SET(0)}, {CLIENT: USE(0), SERVER: USE(0)}])
        in found
    )


def test_merges_join_agreeing_single_rows() -> None:
    a = Pattern.of([{PROTO: FIX(1), PORT: FIX(0)}])
    b = Pattern.of([{PROTO: FIX(1), SERVER: FIX(3)}])
    c = Pattern.of([{PROTO: FIX(0), SERVER: FIX(3)}])
    merged = list(merges([a, b, c]))
    assert merged == [
        Pattern.of([{PROTO: FIX(1), PORT: FIX(0), SERVER: FIX(3)}]),
    ]


def test_with_cells_renumbers_after_all_cells() -> None:
    pattern = Pattern.of([{PROTO: FIX(1)}, {CLIENT: SET(0)}, {SERVER: USE(0)}])
    grown = with_cells(pattern, [(0, CLIENT, SET(1)), (1, SERVER, USE(1))])
    assert grown == Pattern.of(
        [
            {PROTO: FIX(1), CLIENT: SET(0)},
            {CLIENT: SET(1), SERVER: USE(0)},
            {SERVER: USE(1)},
        ]
    )


def test_concatenations_link_the_first_host_or_share_placeholders() -> None:
    a = Pattern.of([{PROTO: FIX(1), PORT: FIX(0)}])
    b = Pattern.of([{PROTO: FIX(0), CLIENT: SET(0)}, {SERVER: USE(0)}])
    found = list(concatenations([a, b], (CLIENT, SERVER), max_rows=3))
    # a then a: the same client twice
    assert (
        Pattern.of(
            [
                {PROTO: FIX(1), PORT: FIX(0), CLIENT: SET(0)},
                {PROTO: FIX(1), PORT: FIX(0), CLIENT: USE(0)},
            ]
        )
        in found
    )
    # b then a: linked through b's own placeholder on the client
    assert (
        Pattern.of(
            [
                {PROTO: FIX(0), CLIENT: SET(0)},
                {SERVER: USE(0)},
                {PROTO: FIX(1), PORT: FIX(0), CLIENT: USE(0)},
            ]
        )
        in found
    )
    # a then b cannot link (b's client is taken), b then b is too long
    assert all(len(p) <= 3 for p in found)
    assert len(found) == 2
    assert not list(concatenations([a], (), max_rows=3))
