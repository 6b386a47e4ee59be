"""Membership disclosure: Hamming distances, the F1 sum, and the binning."""

from __future__ import annotations

import numpy as np
import pytest

from fosr.evaluate._membership import (
    THRESHOLDS,
    fit_md_bins,
    md_codes,
    membership_disclosure,
    nearest_hamming,
)


def test_nearest_hamming_counts_differing_columns() -> None:
    real = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    candidate = np.array([[1, 2, 0], [4, 0, 0]])
    assert nearest_hamming(real, candidate).tolist() == [1, 2, 3]


def test_membership_disclosure_of_a_copy() -> None:
    # members are copied, non-members are far from everything: the attacker
    # calls exactly the members at every radius below 1, then everyone
    members = np.arange(20).reshape(10, 2)
    non_members = members + 100
    md = membership_disclosure(members, non_members, members.copy())
    all_called = 2 * 0.5 * 1.0 / 1.5  # precision 1/2, recall 1
    assert md == pytest.approx((len(THRESHOLDS) - 1) * 1.0 + all_called)


def test_membership_disclosure_nothing_close() -> None:
    # nobody is within a radius below 1: only r = 1 calls anyone (everyone)
    members = np.zeros((4, 3), dtype=np.int64)
    non_members = np.ones((4, 3), dtype=np.int64)
    candidate = np.full((5, 3), 7)
    assert membership_disclosure(members, non_members, candidate) == pytest.approx(
        2 / 3
    )


def test_membership_disclosure_precision_and_recall() -> None:
    # 2 of 4 members and 1 of 4 non-members copied: at r = 0 precision 2/3,
    # recall 1/2, F1 = 4/7; others are 2 columns of 2 away (r = 1 only)
    members = np.array([[0, 0], [1, 1], [2, 2], [3, 3]])
    non_members = np.array([[10, 10], [11, 11], [12, 12], [13, 13]])
    candidate = np.array([[0, 0], [1, 1], [10, 10]])
    md = membership_disclosure(members, non_members, candidate)
    # radii below 0.5 call the 3 copies; from 0.5 a row sharing no column
    # is still 1 away, so only r = 1 calls everyone
    below_half = int(np.sum(THRESHOLDS < 0.5))
    between = int(np.sum((THRESHOLDS >= 0.5) & (THRESHOLDS < 1.0)))
    expected = (below_half + between) * (4 / 7) + 2 / 3
    assert md == pytest.approx(expected)


def test_membership_disclosure_needs_members() -> None:
    with pytest.raises(ValueError):
        membership_disclosure(np.zeros((0, 2)), np.zeros((3, 2)), np.zeros((3, 2)))


def test_bins_quantiles_for_many_values_exact_for_few() -> None:
    rng = np.random.default_rng(1)
    real = np.column_stack([rng.random(1000), rng.integers(0, 5, 1000)])
    bins = fit_md_bins(real)
    assert bins.edges[0] is not None and len(bins.edges[0]) == 49
    assert bins.values[1] is not None and bins.values[1].tolist() == [0, 1, 2, 3, 4]
    codes = md_codes(bins, np.array([[0.0, 3.0], [1.0, 9.0]]), np.array([[7], [8]]))
    # 9 was never seen: it gets a code no real value has
    assert codes.tolist() == [[0, 3, 7], [49, 5, 8]]
