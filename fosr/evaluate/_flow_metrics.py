"""Distribution and temporal metrics on encoded columns (METHODS.md §2, §2.2).

Each function compares one real sample with one synthetic sample and
returns a distance: 0 for identical distributions, larger is worse.

- JSD: Jensen-Shannon *distance* (square root of the divergence, natural
  logarithm, so at most sqrt(ln 2) ≈ 0.833) between the value frequencies
  of one discrete column, as ``scipy.spatial.distance.jensenshannon``.
- CMD: Frobenius norm of the difference between the joint relative
  frequency tables of two discrete columns, over the union of their values.
- EMD: the 1-D Wasserstein distance between the two samples themselves.
  The reference implementation computes it between the two sets of ECDF
  *values* on the real histogram's bins, which is not a distance between
  the samples (a shift of every value by the same amount can leave it
  unchanged); we do not reproduce that.  Columns are compared on
  ``sign(v) * log(1 + |v|)`` divided by the range of that in the whole
  real set, so that the five columns weigh alike and a distance of 1 means
  "as far as the whole real range".
- PCD: Frobenius norm of the difference between the Pearson correlation
  matrices of the continuous columns, on the same log values.  The
  reference correlates raw values (its Min-Max scaling does not change a
  correlation), which a handful of very large flows dominate; on log values
  the figure is stabler from sample to sample.  Correlations involving a
  constant column count as 0, as the reference's NaN → 0.
- Temporal: per-second sums of a continuous column, indexed by the offset
  from the set's first flow; the autocorrelation (ACF) of the real series
  at the lags where its Bartlett 95 % interval excludes 0, against the
  synthetic series' ACF at the same lags.  The reference divides the sum of
  absolute differences by the length of the real series, which makes the
  figure shrink with the capture's length (its stored values are 1e-5);
  we divide by the number of lags used, so it is the mean absolute ACF
  difference, in [0, 2].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.fft import irfft, next_fast_len, rfft
from scipy.stats import wasserstein_distance

__all__ = [
    "AcfComparison",
    "autocorrelation",
    "compare_acf",
    "contingency_difference",
    "correlation_matrix",
    "correlation_difference",
    "jensen_shannon",
    "per_second_sums",
    "scaled_wasserstein",
    "significant_lags",
    "MAX_LAG_S",
]

Array = npt.NDArray[Any]

# two-sided 95 % normal quantile, as statsmodels' acf(alpha=0.05)
_Z_95 = 1.959963984540054
# the longest ACF lag compared: one hour of per-second sums.  Chosen, not
# tuned: it covers bursts and sessions, and the diurnal cycle is judged by
# the time of day in density, coverage and MD instead.
MAX_LAG_S = 3600


def jensen_shannon(real_codes: Array, synthetic_codes: Array) -> float:
    """Return the JS distance between the value frequencies of two code arrays.

    Codes are non-negative integers; equal codes mean equal values.  Raises
    ValueError if either array is empty.
    """
    if not len(real_codes) or not len(synthetic_codes):
        raise ValueError("cannot compare an empty sample")
    size = int(max(real_codes.max(), synthetic_codes.max())) + 1
    p = np.bincount(real_codes, minlength=size) / len(real_codes)
    q = np.bincount(synthetic_codes, minlength=size) / len(synthetic_codes)
    return _js_distance(p, q)


def contingency_difference(
    real_a: Array, real_b: Array, synthetic_a: Array, synthetic_b: Array
) -> float:
    """Return the Frobenius norm between the joint frequency tables of (a, b).

    Cells missing on one side count as 0 there, so the norm is the
    Euclidean distance between the two joint distributions over the union
    of observed pairs.
    """
    width = int(max(real_b.max(), synthetic_b.max())) + 1
    real_pairs = real_a.astype(np.int64) * width + real_b
    synthetic_pairs = synthetic_a.astype(np.int64) * width + synthetic_b
    pairs, inverse = np.unique(
        np.concatenate([real_pairs, synthetic_pairs]), return_inverse=True
    )
    inverse = inverse.reshape(-1)
    n = len(real_pairs)
    p = np.bincount(inverse[:n], minlength=len(pairs)) / n
    q = np.bincount(inverse[n:], minlength=len(pairs)) / len(synthetic_pairs)
    return float(np.sqrt(np.sum((p - q) ** 2)))


def scaled_wasserstein(real: Array, synthetic: Array, scale: float) -> float:
    """Return the Wasserstein-1 distance between two samples, divided by scale.

    ``scale`` is usually the real sample's range; 0 is taken as 1 (a
    constant real column is compared in its own units).
    """
    distance = float(wasserstein_distance(real, synthetic))
    return distance / scale if scale > 0 else distance


def correlation_difference(real: Array, synthetic: Array) -> float:
    """Return the Frobenius norm between the two Pearson correlation matrices.

    ``real`` and ``synthetic`` are (n, d) arrays with the same d columns.
    """
    return float(
        np.linalg.norm(correlation_matrix(real) - correlation_matrix(synthetic))
    )


def correlation_matrix(x: Array) -> Array:
    """Return the Pearson correlation matrix of the columns; 0 where undefined."""
    centred = x - x.mean(axis=0)
    norms = np.sqrt(np.sum(centred**2, axis=0))
    defined = norms > 0
    scaled = np.zeros_like(centred)
    scaled[:, defined] = centred[:, defined] / norms[defined]
    correlation: Array = np.clip(scaled.T @ scaled, -1.0, 1.0)
    return correlation


def _js_distance(p: Array, q: Array) -> float:
    """Return the JS distance between two probability vectors (natural log)."""
    m = (p + q) / 2.0
    divergence = 0.5 * (_kl_terms(p, m) + _kl_terms(q, m))
    return float(np.sqrt(max(divergence, 0.0)))


def _kl_terms(p: Array, m: Array) -> float:
    """Return KL(p || m), skipping the zero entries of p."""
    nonzero = p > 0
    return float(np.sum(p[nonzero] * np.log(p[nonzero] / m[nonzero])))


def per_second_sums(start: Array, values: Array) -> Array:
    """Return the sum of ``values`` in each second since the first start."""
    if not len(start):
        return np.zeros(0)
    seconds = np.floor(start - start.min()).astype(np.int64)
    return np.bincount(seconds, weights=values)


def autocorrelation(series: Array, max_lag: int) -> Array:
    """Return the ACF at lags 0..max_lag (biased estimator, as statsmodels).

    A constant series has no defined ACF; it gets 1 at lag 0 and 0 elsewhere.
    """
    n = len(series)
    max_lag = min(max_lag, n - 1)
    centred = series - series.mean()
    variance = float(np.dot(centred, centred))
    acf = np.zeros(max_lag + 1)
    acf[0] = 1.0
    if variance <= 0.0 or max_lag < 1:
        return acf
    # zero padding by max_lag keeps the circular correlation exact up to it
    size = next_fast_len(n + max_lag, real=True)
    spectrum = rfft(centred, size)
    full: Array = irfft(spectrum * np.conj(spectrum), size)[: max_lag + 1]
    return full / variance


def significant_lags(acf: Array, n: int) -> Array:
    """Return the lags ≥ 1 whose Bartlett 95 % interval excludes 0.

    ``n`` is the series length; the variance of the ACF at lag k is
    (1 + 2 Σ_{j<k} acf_j²) / n, as statsmodels' ``acf(alpha=0.05)``.
    """
    squares = acf[1:] ** 2
    cumulative = np.concatenate([[0.0], np.cumsum(squares)[:-1]])
    standard_error = np.sqrt((1.0 + 2.0 * cumulative) / n)
    return np.flatnonzero(np.abs(acf[1:]) > _Z_95 * standard_error) + 1


@dataclass(frozen=True)
class AcfComparison:
    """The ACF of a real and a synthetic series, and their difference.

    ``score`` is the mean absolute difference at the real series'
    significant ``lags`` (0 when there is none); ``real`` and ``synthetic``
    hold the ACF at lags 0..max lag, for plotting.
    """

    score: float
    lags: Array
    real: Array
    synthetic: Array


def compare_acf(
    real: Array,
    synthetic: Array,
    max_lag: int = MAX_LAG_S,
    *,
    real_acf: Array | None = None,
) -> AcfComparison:
    """Compare the ACFs of two per-second series over their common length.

    Both series start at their set's first flow; the seconds compared are
    those present in both (the shorter length), as the reference keeps the
    seconds common to both resampled series.  ``real_acf``, if given, is
    ``autocorrelation(real[:n], max_lag)`` for that common length n.
    """
    n = min(len(real), len(synthetic))
    if real_acf is None:
        real_acf = autocorrelation(real[:n], max_lag)
    synthetic_acf = autocorrelation(synthetic[:n], max_lag)
    lags = significant_lags(real_acf, n) if n > 1 else np.zeros(0, dtype=np.int64)
    score = 0.0
    if len(lags):
        score = float(np.mean(np.abs(real_acf[lags] - synthetic_acf[lags])))
    return AcfComparison(score, lags, real_acf, synthetic_acf)
