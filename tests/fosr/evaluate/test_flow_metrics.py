"""JSD, CMD, EMD, PCD and the ACF on tiny arrays with known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from fosr.evaluate._flow_metrics import (
    autocorrelation,
    compare_acf,
    contingency_difference,
    correlation_difference,
    correlation_matrix,
    jensen_shannon,
    per_second_sums,
    scaled_wasserstein,
    significant_lags,
)


def codes(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def test_jensen_shannon_identical_is_zero() -> None:
    assert jensen_shannon(codes(0, 1, 1, 2), codes(2, 1, 0, 1)) == 0.0


def test_jensen_shannon_disjoint_is_sqrt_ln2() -> None:
    assert jensen_shannon(codes(0, 0), codes(1, 1)) == pytest.approx(
        math.sqrt(math.log(2))
    )


def test_jensen_shannon_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    real, synthetic = rng.integers(0, 7, 500), rng.integers(2, 9, 300)
    p = np.bincount(real, minlength=9)
    q = np.bincount(synthetic, minlength=9)
    assert jensen_shannon(real, synthetic) == pytest.approx(jensenshannon(p, q))


def test_jensen_shannon_rejects_empty() -> None:
    with pytest.raises(ValueError):
        jensen_shannon(codes(), codes(1))


def test_contingency_difference_known_value() -> None:
    # real: (0,0) and (1,1) half each; synthetic: (0,1) and (1,0) half each;
    # four cells differ by 0.5 each -> sqrt(4 * 0.25) = 1
    value = contingency_difference(codes(0, 1), codes(0, 1), codes(0, 1), codes(1, 0))
    assert value == pytest.approx(1.0)


def test_contingency_difference_same_joint_is_zero() -> None:
    a, b = codes(0, 1, 1, 2), codes(3, 0, 0, 1)
    order = np.array([3, 1, 0, 2])
    assert contingency_difference(a, b, a[order], b[order]) == 0.0


def test_contingency_difference_sees_broken_pairs() -> None:
    # same marginals; synthetic pairs every a with every b, a quarter each:
    # four cells differ by 0.25 -> sqrt(4 * 0.0625) = 0.5
    a, b = codes(0, 0, 1, 1), codes(0, 0, 1, 1)
    assert contingency_difference(a, b, a, codes(0, 1, 0, 1)) == pytest.approx(0.5)


def test_scaled_wasserstein_is_shift_over_scale() -> None:
    real = np.array([0.0, 1.0, 2.0])
    assert scaled_wasserstein(real, real + 0.5, 2.0) == pytest.approx(0.25)


def test_scaled_wasserstein_matches_scipy_on_samples() -> None:
    # the reference compared ECDF value sets; we compare the samples
    rng = np.random.default_rng(2)
    u, v = rng.normal(0, 1, 200), rng.normal(1, 2, 300)
    assert scaled_wasserstein(u, v, 1.0) == pytest.approx(wasserstein_distance(u, v))


def test_scaled_wasserstein_constant_scale_is_one() -> None:
    assert scaled_wasserstein(np.zeros(3), np.ones(3), 0.0) == pytest.approx(1.0)


def test_correlation_difference_opposite_signs() -> None:
    x = np.arange(10.0)
    real = np.column_stack([x, x])
    synthetic = np.column_stack([x, -x])
    # off-diagonal 1 against -1, twice: sqrt(2 * 2²)
    assert correlation_difference(real, synthetic) == pytest.approx(math.sqrt(8))


def test_correlation_matrix_constant_column_counts_as_zero() -> None:
    x = np.column_stack([np.arange(5.0), np.full(5, 3.0)])
    assert np.array_equal(correlation_matrix(x), np.array([[1.0, 0.0], [0.0, 0.0]]))


def test_per_second_sums_bins_by_offset() -> None:
    start = np.array([100.2, 100.9, 102.5])
    sums = per_second_sums(start, np.array([1.0, 2.0, 4.0]))
    assert sums.tolist() == [3.0, 0.0, 4.0]


def test_autocorrelation_matches_direct_sum() -> None:
    rng = np.random.default_rng(3)
    series = rng.normal(size=50)
    centred = series - series.mean()
    direct = [np.dot(centred[: 50 - k], centred[k:]) / np.dot(centred, centred)
              for k in range(6)]  # fmt: skip
    assert autocorrelation(series, 5) == pytest.approx(direct)


def test_autocorrelation_constant_series() -> None:
    assert autocorrelation(np.ones(10), 3).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_significant_lags_of_periodic_series() -> None:
    series = np.tile([5.0, 0.0, 0.0, 0.0], 50)
    lags = significant_lags(autocorrelation(series, 8), len(series))
    assert 4 in lags and 8 in lags


def test_significant_lags_none_for_noise_at_small_lags() -> None:
    rng = np.random.default_rng(4)
    acf = autocorrelation(rng.normal(size=5000), 3)
    assert len(significant_lags(acf, 5000)) == 0


def test_compare_acf_identical_series_score_zero() -> None:
    series = np.tile([3.0, 0.0, 1.0], 40)
    comparison = compare_acf(series, series.copy(), 10)
    assert comparison.score == 0.0
    assert len(comparison.lags) > 0


def test_compare_acf_uses_common_length_and_mean_difference() -> None:
    real = np.tile([1.0, 0.0], 100)
    synthetic = np.concatenate([np.tile([1.0, 1.0, 0.0, 0.0], 50), np.ones(50)])
    comparison = compare_acf(real, synthetic, 4)
    real_acf = autocorrelation(real, 4)
    synthetic_acf = autocorrelation(synthetic[:200], 4)
    expected = np.mean(
        np.abs(real_acf[comparison.lags] - synthetic_acf[comparison.lags])
    )
    assert comparison.score == pytest.approx(expected)
    assert comparison.score > 0.5
