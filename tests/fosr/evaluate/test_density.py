"""Density and coverage: hand-made cases and agreement with all-pairs distances."""

from __future__ import annotations

import numpy as np
import pytest

from fosr.evaluate._density import _plan_columns, density_coverage, nearest_radii

Array = np.ndarray


def all_pairs_d2(a_x: Array, a_codes: Array, b_x: Array, b_codes: Array) -> Array:
    numeric = ((a_x[:, None, :] - b_x[None, :, :]) ** 2).sum(axis=-1)
    return numeric + 2.0 * (a_codes[:, None, :] != b_codes[None, :, :]).sum(axis=-1)


def all_pairs_density_coverage(
    real_x: Array,
    real_codes: Array,
    fake_x: Array,
    fake_codes: Array,
    k: int,
    ids: Array,
) -> tuple[float, float, Array]:
    d2 = all_pairs_d2(real_x, real_codes, real_x, real_codes)
    d2[ids[:, None] == ids[None, :]] = np.inf
    radii2 = np.sort(d2, axis=1)[:, k - 1]
    inside = all_pairs_d2(real_x, real_codes, fake_x, fake_codes) < radii2[:, None]
    return inside.sum() / (k * len(fake_x)), inside.any(axis=1).mean(), radii2


def mixed_rows(n: int, seed: int, values: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, 3))
    # a skewed categorical column and a wide one, so that some rows need
    # the all-pairs fallback (no 5 neighbours within one mismatch); the
    # last column has 100 values but one in half the rows, so that the
    # fallback compares it value by value
    common = rng.random(n) < 0.5
    codes = np.column_stack(
        [
            rng.choice(3, n, p=[0.8, 0.15, 0.05]),
            rng.integers(0, values, n),
            np.where(common, 0, rng.integers(1, 100, n)),
        ]
    )
    return x, codes


def test_one_dimension_known_values() -> None:
    # real points 0, 1, 2, 3 on a line, k = 1: every radius is 1 (d² = 1)
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [10.0]])
    no_codes = np.zeros((4, 0), dtype=np.int64)
    density, coverage = density_coverage(real, no_codes, fake, no_codes[:2], k=1)
    # 0.5 lies strictly inside the balls of 0 and 1; 10 in none
    assert density == pytest.approx(2 / (1 * 2))
    assert coverage == pytest.approx(2 / 4)


def test_categorical_mismatch_costs_two() -> None:
    real = np.zeros((3, 1))
    real_codes = np.array([[0], [0], [1]])
    radii2 = nearest_radii(real, real_codes, k=2)
    # rows 0 and 1: neighbours at d² 0 and 2; row 2: two neighbours at 2
    assert radii2.tolist() == [2.0, 2.0, 2.0]


def test_nearest_radii_too_few_rows_is_inf() -> None:
    x = np.zeros((2, 1))
    assert np.isinf(nearest_radii(x, np.zeros((2, 1), dtype=np.int64), k=2)).all()


def test_copies_are_not_neighbours() -> None:
    # row 0 drawn three times and row 1 once: with ids, a copy of row 0 has
    # row 1 as its nearest neighbour, not another copy at distance 0
    x = np.array([[0.0], [0.0], [0.0], [1.0]])
    codes = np.zeros((4, 1), dtype=np.int64)
    radii2 = nearest_radii(x, codes, k=1, ids=np.array([0, 0, 0, 1]))
    assert radii2.tolist() == [1.0, 1.0, 1.0, 1.0]
    assert nearest_radii(x, codes, k=1)[:3].tolist() == [0.0, 0.0, 0.0]


def test_fallback_plans_each_kind_of_column() -> None:
    _, a = mixed_rows(600, 1, 400)
    _, b = mixed_rows(500, 2, 400)
    # (one-hot, compared, matched pair by pair)
    assert _plan_columns(a, b) == ([0], [2], [1])


@pytest.mark.parametrize("values", [3, 40, 400])
def test_matches_all_pairs(values: int) -> None:
    real_x, real_codes = mixed_rows(600, 1, values)
    fake_x, fake_codes = mixed_rows(500, 2, values)
    ids = np.arange(600) % 550  # some copies, as after resampling
    expected = all_pairs_density_coverage(
        real_x, real_codes, fake_x, fake_codes, 5, ids
    )
    radii2 = nearest_radii(real_x, real_codes, k=5, ids=ids)
    assert radii2 == pytest.approx(expected[2])
    density, coverage = density_coverage(
        real_x, real_codes, fake_x, fake_codes, k=5, real_ids=ids
    )
    assert density == pytest.approx(expected[0])
    assert coverage == pytest.approx(expected[1])


def test_sample_against_itself_covers_everything() -> None:
    x, codes = mixed_rows(400, 3, 40)
    density, coverage = density_coverage(x, codes, x, codes, k=5)
    assert coverage == 1.0
    # each ball holds its own centre and k - 1 neighbours strictly inside
    # (the k-th sits on the edge), ties aside
    assert density == pytest.approx(1.0, abs=0.05)


def test_precomputed_radii_give_the_same_result() -> None:
    real_x, real_codes = mixed_rows(300, 4, 40)
    fake_x, fake_codes = mixed_rows(300, 5, 40)
    radii2 = nearest_radii(real_x, real_codes, k=5)
    assert density_coverage(
        real_x, real_codes, fake_x, fake_codes, radii2=radii2
    ) == density_coverage(real_x, real_codes, fake_x, fake_codes)
