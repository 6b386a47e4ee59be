"""Score one candidate sample against one target sample on every flow metric.

The pieces the public functions in :mod:`fosr.evaluate.flows` share: the
scaling of numeric columns (fitted once on the whole target set, so that
every candidate and every repetition is measured with the same ruler), the
distribution metrics of one pair of samples, and the temporal comparison of
two whole sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.evaluate._density import density_coverage
from fosr.evaluate._flow_columns import (
    CONTINUOUS_COLUMNS,
    DISCRETE_COLUMNS,
    EncodedFlows,
)
from fosr.evaluate._flow_metrics import (
    MAX_LAG_S,
    AcfComparison,
    autocorrelation,
    compare_acf,
    contingency_difference,
    correlation_difference,
    jensen_shannon,
    per_second_sums,
    scaled_wasserstein,
)

__all__ = [
    "Scaling",
    "compare_temporal",
    "fit_scaling",
    "score_density",
    "score_divergences",
]

Array = npt.NDArray[Any]


@dataclass(frozen=True, eq=False)
class Scaling:
    """Min-Max scaling of the signed-log continuous columns, from the target.

    ``low`` and ``span`` are per column; a constant column gets span 1.
    Candidates may fall outside [0, 1], which distances then penalise.
    """

    low: Array
    span: Array

    def features(self, flows: EncodedFlows) -> Array:
        """Return the numeric coordinates of density and coverage (n, 6).

        The aligned start time, then the five scaled continuous columns.
        """
        scaled = (flows.logs - self.low) / self.span
        return np.column_stack([flows.time, scaled])


def fit_scaling(target: EncodedFlows) -> Scaling:
    """Fit the scaling on every row of the target set."""
    low = target.logs.min(axis=0)
    span = target.logs.max(axis=0) - low
    return Scaling(low=low, span=np.where(span > 0, span, 1.0))


def score_density(
    target: EncodedFlows,
    candidate: EncodedFlows,
    scaling: Scaling,
    *,
    k: int,
    radii2: Array | None = None,
) -> dict[str, float]:
    """Return density and coverage (keys ``density``, ``coverage``).

    ``radii2`` are the target sample's k-NN radii if already known.
    """
    density, coverage = density_coverage(
        scaling.features(target),
        target.codes,
        scaling.features(candidate),
        candidate.codes,
        k=k,
        real_ids=target.ids,
        radii2=radii2,
    )
    return {"density": density, "coverage": coverage}


def score_divergences(
    target: EncodedFlows, candidate: EncodedFlows, scaling: Scaling
) -> dict[str, float]:
    """Return CMD, PCD, EMD, JSD, then ``jsd:<column>`` and ``emd:<column>``."""
    scores: dict[str, float] = {}

    # discrete columns: one JSD per column, one CMD per pair
    n_discrete = len(DISCRETE_COLUMNS)
    jsd = {
        name: jensen_shannon(target.codes[:, c], candidate.codes[:, c])
        for c, name in enumerate(DISCRETE_COLUMNS)
    }
    pairs = [(a, b) for a in range(n_discrete) for b in range(a + 1, n_discrete)]
    cmd = [
        contingency_difference(
            target.codes[:, a],
            target.codes[:, b],
            candidate.codes[:, a],
            candidate.codes[:, b],
        )
        for a, b in pairs
    ]

    # continuous columns, on the signed-log scale
    emd = {
        name: scaled_wasserstein(
            target.logs[:, c], candidate.logs[:, c], float(scaling.span[c])
        )
        for c, name in enumerate(CONTINUOUS_COLUMNS)
    }
    scores["cmd"] = float(np.mean(cmd))
    scores["pcd"] = correlation_difference(target.logs, candidate.logs)
    scores["emd"] = float(np.mean(list(emd.values())))
    scores["jsd"] = float(np.mean(list(jsd.values())))
    scores.update({f"jsd:{name}": value for name, value in jsd.items()})
    scores.update({f"emd:{name}": value for name, value in emd.items()})
    return scores


def compare_temporal(
    target: EncodedFlows, candidates: Mapping[str, EncodedFlows]
) -> dict[str, dict[str, AcfComparison]]:
    """Compare the per-second ACF of each continuous column of whole sets.

    Returns, per candidate, per column, the comparison with the target.
    """
    comparisons: dict[str, dict[str, AcfComparison]] = {n: {} for n in candidates}
    for c, name in enumerate(CONTINUOUS_COLUMNS):
        real = per_second_sums(target.start, target.values[:, c])
        # the real ACF depends on the common length only: compute it once each
        real_acfs: dict[int, Array] = {}
        for candidate, flows in candidates.items():
            synthetic = per_second_sums(flows.start, flows.values[:, c])
            n = min(len(real), len(synthetic))
            if n not in real_acfs:
                real_acfs[n] = autocorrelation(real[:n], MAX_LAG_S)
            comparisons[candidate][name] = compare_acf(
                real, synthetic, real_acf=real_acfs[n]
            )
    return comparisons
