"""Reduce the flow evaluation's scores: means, ranks and MD's verdicts.

``summarise`` turns the per-repetition scores into a mean and a standard
deviation (ddof = 1; 0 for a single repetition and for the ACF, which is
computed once).  ``rank_candidates`` ranks per metric as the paper's table
does; ``judge_md`` says which candidates give their training flows away.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

from fosr.evaluate._flow_metrics import AcfComparison

__all__ = [
    "CANDIDATE_LABELS",
    "METRICS",
    "Stat",
    "Summary",
    "judge_md",
    "rank_candidates",
    "summarise",
]

CANDIDATE_LABELS = {
    "synthetic": "synthetic",
    "reference": "reference (real held-out)",
    "independent": "independent columns",
    "copy": "copy of training",
}
# (key, heading, direction): "higher" or "lower" is better, "reference"
# means closest to the reference's value
METRICS: tuple[tuple[str, str, str], ...] = (
    ("density", "Density ↑", "higher"),
    ("cmd", "CMD ↓", "lower"),
    ("pcd", "PCD ↓", "lower"),
    ("emd", "EMD ↓", "lower"),
    ("jsd", "JSD ↓", "lower"),
    ("coverage", "Coverage ↑", "higher"),
    ("dkc", "DKC ↓", "lower"),
    ("md", "MD → ref", "reference"),
    ("acf", "ACF ↓", "lower"),
)
# MD flags a candidate whose MD exceeds the reference's by more than this
# (a sum of 15 F1 values), or by 3 combined standard deviations if more.
# Chosen, not tuned: real held-out data varies by about 0.1 between runs.
_MD_MARGIN = 1.0
_MD_SIGMAS = 3.0


@dataclass(frozen=True)
class Stat:
    """Mean and standard deviation of one score over the repetitions."""

    mean: float
    std: float


Summary = dict[str, dict[str, Stat]]


def summarise(
    per_repetition: Sequence[Mapping[str, Mapping[str, float]]],
    temporal: Mapping[str, Mapping[str, AcfComparison]],
) -> Summary:
    """Reduce per-repetition scores to mean and std; add the ACF scores."""
    summary: Summary = {}
    for name in per_repetition[0]:
        stats = {}
        for key in per_repetition[0][name]:
            values = np.array([scores[name][key] for scores in per_repetition])
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            stats[key] = Stat(float(values.mean()), std)
        acf = {column: c.score for column, c in temporal[name].items()}
        stats.update({f"acf:{column}": Stat(v, 0.0) for column, v in acf.items()})
        if acf:
            stats["acf"] = Stat(float(np.mean(list(acf.values()))), 0.0)
        summary[name] = stats
    return summary


def rank_candidates(summary: Summary) -> dict[str, dict[str, float]]:
    """Rank the candidates per metric (1 is best, ties share the best rank)."""
    names = list(summary)
    ranks: dict[str, dict[str, float]] = {name: {} for name in names}
    for key, _, direction in METRICS:
        present = [n for n in names if key in summary[n]]
        if not present or (direction == "reference" and "reference" not in summary):
            continue
        means = np.array([summary[n][key].mean for n in present])
        if direction == "higher":
            means = -means
        elif direction == "reference":
            means = np.abs(means - summary["reference"][key].mean)
        for name, rank in zip(present, rankdata(means, method="min"), strict=True):
            ranks[name][key] = int(rank)
    for name in names:
        ranks[name]["average"] = float(np.mean(list(ranks[name].values())))
    return ranks


def judge_md(summary: Summary) -> dict[str, Any]:
    """Return MD's distances to the reference and which candidates it flags."""
    if "reference" not in summary or "md" not in summary["reference"]:
        return {}
    reference = summary["reference"]["md"]
    verdicts = {}
    for name, stats in summary.items():
        if name == "reference":
            continue
        md = stats["md"]
        margin = max(_MD_MARGIN, _MD_SIGMAS * float(np.hypot(md.std, reference.std)))
        verdicts[name] = {
            "distance": abs(md.mean - reference.mean),
            "margin": margin,
            "flagged": md.mean - reference.mean > margin,
        }
    return {"reference_mean": reference.mean, "candidates": verdicts}
