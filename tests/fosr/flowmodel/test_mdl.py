"""Code lengths of the MDL score (METHODS.md §1.4) against hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fosr.flowmodel.mdl import (
    UNIVERSAL_CONSTANT,
    kt_code_length_of,
    kt_code_lengths,
    log2_binomial,
    model_cost,
    pattern_cost,
    row_cost,
    structure_cost,
    universal_code_length,
    universal_code_lengths,
    window_time_costs,
)
from fosr.flowmodel.pattern import Cell, Pattern, RowPattern

C0 = math.log2(UNIVERSAL_CONSTANT)
LOG3 = math.log2(3)


@pytest.mark.parametrize(
    ("x", "bits"),
    [
        (1, C0),
        (2, C0 + 1),
        (4, C0 + 2 + 1),
        (16, C0 + 4 + 2 + 1),
        (65536, C0 + 16 + 4 + 2 + 1),
        # log2 3 = 1.585, log2 1.585 = 0.6644, then negative: stop
        (3, C0 + LOG3 + math.log2(LOG3)),
    ],
)
def test_universal_code_length_hand_values(x: int, bits: float) -> None:
    assert universal_code_length(x) == pytest.approx(bits)
    assert universal_code_lengths([x])[0] == pytest.approx(bits)


def test_universal_code_lengths_agree_with_the_scalar_form() -> None:
    xs = np.arange(1, 5001)
    expected = [universal_code_length(int(x)) for x in xs]
    assert universal_code_lengths(xs) == pytest.approx(expected)
    assert universal_code_lengths(np.array([[1, 2], [4, 16]])).shape == (2, 2)


def test_universal_code_satisfies_kraft() -> None:
    total = float(np.sum(2.0 ** -universal_code_lengths(np.arange(1, 1_000_001))))
    # the full sum is 1; the tail beyond a million is still large
    assert 0.5 < total < 1.0


@pytest.mark.parametrize("bad", [0, -3])
def test_universal_code_rejects_integers_below_one(bad: int) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        universal_code_length(bad)
    with pytest.raises(ValueError, match=">= 1"):
        universal_code_lengths([1, bad])


@pytest.mark.parametrize(("n", "k"), [(0, 0), (5, 2), (11, 0), (11, 11), (40, 13)])
def test_log2_binomial(n: int, k: int) -> None:
    assert log2_binomial(n, k) == pytest.approx(math.log2(math.comb(n, k)), abs=1e-9)


def test_log2_binomial_rejects_k_out_of_range() -> None:
    with pytest.raises(ValueError):
        log2_binomial(3, 4)


def sequential_kt_bits(sequence: list[int], n_states: int) -> float:
    """Code a sequence symbol by symbol with the KT estimator."""
    counts = [0] * n_states
    bits = 0.0
    for t, symbol in enumerate(sequence):
        bits -= math.log2((counts[symbol] + 0.5) / (t + n_states / 2))
        counts[symbol] += 1
    return bits


@pytest.mark.parametrize(
    ("counts", "bits"),
    [
        ([0, 0], 0.0),
        ([1, 0], 1.0),  # first symbol: 1/2
        ([1, 1], 3.0),  # then (0 + 1/2) / (1 + 1) = 1/4
        ([2, 0], 1.0 + math.log2(4 / 3)),  # then (1 + 1/2) / 2
    ],
)
def test_kt_hand_values(counts: list[int], bits: float) -> None:
    assert kt_code_lengths(np.array(counts))[0] == pytest.approx(bits)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda r: st.tuples(st.just(r), st.lists(st.integers(0, r - 1), max_size=60))
    )
)
def test_kt_equals_the_sum_of_sequential_code_lengths(
    case: tuple[int, list[int]],
) -> None:
    n_states, sequence = case
    counts = np.bincount(np.array(sequence, dtype=np.int64), minlength=n_states)
    expected = sequential_kt_bits(sequence, n_states)
    assert kt_code_lengths(counts)[0] == pytest.approx(expected, abs=1e-9)
    no_parents = np.zeros((len(sequence), 0), dtype=np.int64)
    assert kt_code_length_of(np.array(sequence), no_parents, n_states) == pytest.approx(
        expected, abs=1e-9
    )


def test_kt_with_parents_sums_over_configurations() -> None:
    rng = np.random.default_rng(4)
    values = rng.integers(0, 3, 500)
    parents = np.stack([rng.integers(0, 2, 500), rng.integers(0, 3, 500)], axis=1)
    expected = sum(
        sequential_kt_bits(
            values[(parents[:, 0] == a) & (parents[:, 1] == b)].tolist(), 3
        )
        for a in range(2)
        for b in range(3)
    )
    assert kt_code_length_of(values, parents, 3) == pytest.approx(expected)
    # the same from a dense count table, one row per configuration
    table = np.zeros((6, 3))
    np.add.at(table, (parents[:, 0] * 3 + parents[:, 1], values), 1)
    assert kt_code_lengths(table).sum() == pytest.approx(expected)
    # states unseen in the table still count in r
    assert kt_code_lengths(table, n_states=5).sum() == pytest.approx(
        kt_code_length_of(values, parents, 5)
    )


def test_kt_of_no_records_is_free() -> None:
    assert kt_code_length_of(np.zeros(0), np.zeros((0, 2)), 4) == 0.0


def test_structure_cost_hand_value() -> None:
    # nodes with 0, 1 and 2 parents: 3 log 3 + log C(2,0) + log C(2,1) + log C(2,2)
    assert structure_cost([0, 1, 2]) == pytest.approx(3 * LOG3 + 1.0)
    assert structure_cost([]) == 0.0
    with pytest.raises(ValueError, match="in-degree"):
        structure_cost([4, 0, 0, 0, 0])


def test_pattern_cost_hand_value() -> None:
    # m = 4 columns with 4, 8, 8 and 2 observed values
    sizes = [4, 8, 8, 2]
    pattern = Pattern.of(
        [
            {0: Cell.fix(1), 1: Cell.set(0)},
            {0: Cell.fix(2), 2: Cell.use(0)},
        ]
    )
    # row 1: log 4 + log C(4,1) + log 4 = 6; sets: log 3 + log C(3,1)
    first = 6 + 2 * LOG3
    # row 2: 6 for the FIX; uses: log 3 + log C(3,1) + 1 log 1; sets: log 2 + log C(2,0)
    second = 6 + 2 * LOG3 + 1
    assert row_cost(
        pattern.rows[0],
        n_columns=4,
        domain_sizes=sizes,
        n_earlier_placeholders=0,
        is_first=True,
    ) == pytest.approx(first)
    assert row_cost(
        pattern.rows[1],
        n_columns=4,
        domain_sizes=sizes,
        n_earlier_placeholders=1,
        is_first=False,
    ) == pytest.approx(second)
    expected = universal_code_length(2) + first + second
    assert pattern_cost(pattern, domain_sizes=sizes) == pytest.approx(expected)
    assert pattern_cost(
        pattern, domain_sizes=sizes, parent_counts=[0, 1, 2]
    ) == pytest.approx(expected + 3 * LOG3 + 1.0)


def test_row_cost_of_a_full_fix_row_has_no_placeholder_terms() -> None:
    row = RowPattern.of({0: Cell.fix(0), 1: Cell.fix(0)})
    bits = row_cost(
        row, n_columns=2, domain_sizes=[2, 4], n_earlier_placeholders=3, is_first=False
    )
    assert bits == pytest.approx(1 + 0 + 1 + 2)


def test_model_cost_adds_the_pattern_count() -> None:
    assert model_cost([10.0, 5.5], 7.0) == pytest.approx(
        universal_code_length(3) + 22.5
    )
    assert model_cost([], 0.0) == pytest.approx(C0)


def test_window_time_costs_hand_values() -> None:
    ticks = np.array([[0, 3, 3], [10, 11, 26]])
    bits = window_time_costs(ticks, span_ticks=99)
    assert bits[0] == pytest.approx(math.log2(100) + universal_code_length(4) + C0)
    assert bits[1] == pytest.approx(
        math.log2(100) + universal_code_length(2) + universal_code_length(16)
    )
    single = window_time_costs(np.array([[5], [7]]), span_ticks=0)
    assert single.tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="decrease"):
        window_time_costs(np.array([[3, 2]]), span_ticks=9)
