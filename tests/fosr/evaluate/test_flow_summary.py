"""Summaries, ranks and MD verdicts of the flow report."""

from __future__ import annotations

import numpy as np
import pytest

from fosr.evaluate._flow_metrics import AcfComparison
from fosr.evaluate._flow_summary import Stat, judge_md, rank_candidates, summarise


def acf(score: float) -> AcfComparison:
    empty = np.zeros(0)
    return AcfComparison(score, empty.astype(np.int64), empty, empty)


def test_summarise_mean_std_and_acf() -> None:
    per_repetition = [{"synthetic": {"jsd": 0.1}}, {"synthetic": {"jsd": 0.3}}]
    temporal = {"synthetic": {"duration": acf(0.2), "fwd_bytes": acf(0.4)}}
    summary = summarise(per_repetition, temporal)["synthetic"]
    assert summary["jsd"].mean == pytest.approx(0.2)
    assert summary["jsd"].std == pytest.approx(np.std([0.1, 0.3], ddof=1))
    assert summary["acf"] == Stat(pytest.approx(0.3), 0.0)
    assert summary["acf:fwd_bytes"].mean == 0.4


def test_summarise_single_repetition_has_no_spread() -> None:
    summary = summarise([{"synthetic": {"cmd": 0.5}}], {"synthetic": {}})
    assert summary["synthetic"]["cmd"] == Stat(0.5, 0.0)


def summary_of(**metrics: dict[str, float]) -> dict[str, dict[str, Stat]]:
    return {
        name: {key: Stat(value, 0.1) for key, value in values.items()}
        for name, values in metrics.items()
    }


def test_rank_directions_ties_and_md_distance() -> None:
    summary = summary_of(
        synthetic={"density": 0.5, "cmd": 0.2, "md": 7.0},
        reference={"density": 0.9, "cmd": 0.05, "md": 6.0},
        copy={"density": 1.2, "cmd": 0.05, "md": 10.0},
    )
    ranks = rank_candidates(summary)
    assert ranks["copy"]["density"] == 1  # higher is better
    assert ranks["reference"]["cmd"] == ranks["copy"]["cmd"] == 1  # a tie
    assert ranks["synthetic"]["cmd"] == 3
    # MD: distance to the reference's 6.0
    assert [ranks[n]["md"] for n in ("reference", "synthetic", "copy")] == [1, 2, 3]
    assert ranks["synthetic"]["average"] == pytest.approx((3 + 3 + 2) / 3)


def test_rank_without_reference_skips_md() -> None:
    ranks = rank_candidates(summary_of(synthetic={"jsd": 0.1}))
    assert ranks == {"synthetic": {"jsd": 1, "average": 1.0}}


def test_md_verdicts_flag_only_far_above_reference() -> None:
    summary = {
        "reference": {"md": Stat(6.0, 0.1)},
        "copy": {"md": Stat(9.0, 0.1)},
        "below": {"md": Stat(3.0, 0.1)},
        "near": {"md": Stat(6.8, 0.1)},
        "noisy": {"md": Stat(7.5, 0.6)},
    }
    verdicts = judge_md(summary)
    assert verdicts["reference_mean"] == 6.0
    flagged = {name: v["flagged"] for name, v in verdicts["candidates"].items()}
    # noisy: margin 3 * hypot(0.6, 0.1) = 1.82 > 1.5
    assert flagged == {"copy": True, "below": False, "near": False, "noisy": False}
    assert verdicts["candidates"]["noisy"]["margin"] == pytest.approx(
        3 * np.hypot(0.6, 0.1)
    )
