"""The flow evaluation: metrics on known cases, the report, bad input, real data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from flow_builders import T0, flows, shuffle_columns, toy_flows

from fosr.errors import InputError
from fosr.evaluate.flows import (
    evaluate_flows,
    measure_cmd,
    measure_density_coverage,
    measure_dkc,
    measure_emd,
    measure_jsd,
    measure_md,
    measure_pcd,
    measure_temporal,
    sample_independent_columns,
)
from fosr.flows.readers import read_flow_records
from fosr.flows.table import FlowTable

SMALL = {"repetitions": 2, "sample_size": 300, "plots": False}


@pytest.fixture(scope="module")
def real() -> FlowTable:
    return toy_flows(600, seed=1)


@pytest.fixture(scope="module")
def other() -> FlowTable:
    # another sample of the same toy network, two days later
    return toy_flows(600, seed=2, start=T0 + 2 * 86_400)


# -- each metric on hand-made tables ----------------------------------------


def test_jsd_known_value() -> None:
    # only proto differs, completely: one column of five at sqrt(ln 2)
    tcp = flows({"proto": 6}, {"proto": 6})
    udp = flows({"proto": 17, "tcp_flags": 0}, {"proto": 17, "tcp_flags": 0})
    # flags differ too (0x1B against 0): two columns of five
    assert measure_jsd(tcp, udp) == pytest.approx(2 * math.sqrt(math.log(2)) / 5)


def test_cmd_known_value() -> None:
    # proto and server_port fully dependent in real, crossed in synthetic;
    # the pair (proto, port) alone differs: four cells off by 0.5 -> 1.0,
    # averaged over the ten pairs of discrete columns
    real = flows({"server_port": 80}, {"proto": 17, "server_port": 53})
    crossed = flows({"server_port": 53}, {"proto": 17, "server_port": 80})
    assert measure_cmd(real, crossed) == pytest.approx(1.0 / 10)


def test_emd_known_value() -> None:
    # fwd_bytes 0 and e-1 in real (signed log 0 and 1, range 1); synthetic
    # shifted to e²-1 and e-1: log values 2 and 1 -> Wasserstein 1, one of
    # five columns
    e = math.e
    real = flows({"fwd_bytes": 0, "fwd_packets": 0}, {"fwd_bytes": round(e - 1)})
    assert measure_emd(real, real) == 0.0
    real = flows({"fwd_bytes": 0}, {"fwd_bytes": 1000})
    shifted = flows({"fwd_bytes": 1000}, {"fwd_bytes": 1000})
    # log values {0, ln 1001} against {ln 1001, ln 1001}: distance ln(1001)/2
    # over a range of ln 1001 -> 0.5, one column of five
    assert measure_emd(real, shifted) == pytest.approx(0.5 / 5)


def test_pcd_known_value() -> None:
    # log(1 + bytes) of 1, 3, 7, 15 is 1, 2, 3, 4 times ln 2: fwd and bwd
    # rise together in real and exactly opposite in synthetic; the other
    # columns are constant (correlations 0)
    real = flows(*[{"fwd_bytes": b, "bwd_bytes": b} for b in (1, 3, 7, 15)])
    opposite = flows(
        *[{"fwd_bytes": b, "bwd_bytes": 16 // (b + 1) - 1} for b in (1, 3, 7, 15)]
    )
    # the (fwd, bwd) entry goes from 1 to -1, on both sides of the diagonal
    assert measure_pcd(real, opposite) == pytest.approx(math.sqrt(8))


def test_density_coverage_far_away_synthetic(real: FlowTable) -> None:
    far = flows({"server": "198.51.100.1", "server_port": 9999, "proto": 47,
                 "client": "10.9.9.9", "tcp_flags": 0})  # fmt: skip
    assert measure_density_coverage(real, far) == (0.0, 0.0)


def test_temporal_identical_is_zero(real: FlowTable) -> None:
    assert measure_temporal(real, real) == 0.0


def test_dkc_counts_rules_separately() -> None:
    score, rates = measure_dkc(flows({"proto": 17, "server_port": 22, "tcp_flags": 2}))
    assert rates["udp_to_tcp_service"] == 1.0 and rates["flags_not_tcp"] == 1.0
    assert score == pytest.approx(2 / len(rates))


# -- the three known cases ----------------------------------------------------


def test_sample_against_itself_is_best(real: FlowTable) -> None:
    assert measure_jsd(real, real) == 0.0
    assert measure_cmd(real, real) == 0.0
    assert measure_pcd(real, real) == pytest.approx(0.0, abs=1e-12)
    assert measure_emd(real, real) == 0.0
    assert measure_temporal(real, real) == 0.0
    density, coverage = measure_density_coverage(real, real)
    assert coverage == 1.0
    assert density >= 1.0


def test_evaluate_sample_against_itself_is_best(real: FlowTable) -> None:
    # sample_size = all rows: both samples hold every row once
    report = evaluate_flows(
        real, real, repetitions=1, sample_size=len(real), plots=False
    )
    metrics = report.results["metrics"]["synthetic"]
    for key in ("cmd", "pcd", "emd", "jsd", "acf"):
        assert metrics[key]["mean"] == pytest.approx(0.0, abs=1e-12), key
    assert metrics["coverage"]["mean"] == 1.0


def test_shuffled_columns_worsen_cmd_and_pcd(real: FlowTable, other: FlowTable) -> None:
    shuffled = shuffle_columns(other, seed=3)
    assert measure_cmd(real, shuffled) > 2 * measure_cmd(real, other)
    assert measure_pcd(real, shuffled) > 2 * measure_pcd(real, other)
    # the marginals stay, so JSD barely moves
    assert measure_jsd(real, shuffled) == pytest.approx(measure_jsd(real, other))


def test_copy_of_training_maximises_md(real: FlowTable, other: FlowTable) -> None:
    held_out = toy_flows(600, seed=4, start=T0 + 4 * 86_400)
    copy_md = measure_md(real, held_out, real)
    fresh_md = measure_md(real, held_out, other)
    assert copy_md > fresh_md + 3


def test_evaluate_flags_the_copy(real: FlowTable, other: FlowTable) -> None:
    synthetic = toy_flows(600, seed=5, start=T0 + 4 * 86_400)
    report = evaluate_flows(other, synthetic, train=real, **SMALL)
    results = report.results
    assert results["md_flagged"] == ["copy"]
    md = results["md"]["candidates"]
    assert md["copy"]["distance"] > md["copy"]["margin"]
    assert not md["synthetic"]["flagged"]
    # the copy is perfect on the distribution metrics, so it ranks first
    assert results["ranking"][0] == "copy"


# -- the evaluation and its report --------------------------------------------


def test_evaluate_same_seed_same_numbers(real: FlowTable, other: FlowTable) -> None:
    synthetic = shuffle_columns(other, seed=1)
    first = evaluate_flows(real, synthetic, train=other, seed=7, **SMALL)
    again = evaluate_flows(real, synthetic, train=other, seed=7, **SMALL)
    changed = evaluate_flows(real, synthetic, train=other, seed=8, **SMALL)
    assert first.to_json() == again.to_json()
    assert first.to_json() != changed.to_json()


@pytest.mark.slow  # draws 17 figures: about 8 s on a 2-core machine
def test_evaluate_report_layout(real: FlowTable, other: FlowTable) -> None:
    calls: list[int] = []
    report = evaluate_flows(
        other,
        shuffle_columns(other, seed=2),
        train=real,
        repetitions=3,
        sample_size=200,
        progress=calls.append,
        inputs={
            "real": "eval.csv",
            "synthetic": Path("synth.csv"),
            "train": "train.csv",
        },
    )
    assert calls == [1, 1, 1]
    assert report.kind == "flows"
    assert report.inputs == {
        "real": "eval.csv",
        "synthetic": "synth.csv",
        "train": "train.csv",
    }
    results = json.loads(report.to_json())["results"]
    assert set(results["metrics"]) == {"synthetic", "reference", "independent", "copy"}
    assert set(results["metrics"]["synthetic"]) == {
        "density", "cmd", "pcd", "emd", "jsd", "coverage", "dkc", "md", "acf",
    }  # fmt: skip
    assert results["ranks"]["reference"]["md"] == 1
    assert "unknown_infrastructure_server" in results["dkc_rules"]["synthetic"]
    assert set(results["columns"]["synthetic"]["jsd"]) == {
        "proto", "client", "server", "server_port", "tcp_flags",
    }  # fmt: skip
    ranking = report.sections[0].tables[0]
    assert len(ranking.rows) == 4
    assert [row[0] for row in ranking.rows][0] == "copy of training"
    figures = [f for section in report.sections for f in section.figures]
    # 5 continuous + start, 5 discrete, correlations, 5 ACF curves
    assert len(figures) == 17
    assert all(f.png.startswith(b"\x89PNG") for f in figures)


def test_evaluate_without_training(real: FlowTable, other: FlowTable) -> None:
    report = evaluate_flows(real, other, **SMALL)
    results = report.results
    assert set(results["metrics"]) == {"synthetic"}
    assert "md" not in results["metrics"]["synthetic"]
    assert results["md"] == {} and results["md_flagged"] == []
    assert "unknown_infrastructure_server" not in results["dkc_rules"]["synthetic"]
    assert any("No training set" in note for note in results["notes"])


def test_evaluate_notes_resampling_and_alignment() -> None:
    two_days = toy_flows(400, seed=8, span_s=2 * 86_400)
    small = toy_flows(50, seed=9)
    report = evaluate_flows(two_days, small, **SMALL)
    notes = " ".join(report.results["notes"])
    assert "The synthetic set has 50 flows" in notes
    assert "times of day" in notes
    assert report.results["sets"]["synthetic"]["resampled"] is True
    assert report.results["settings"]["time_alignment"] == "day"
    six_hours = evaluate_flows(small, small, **SMALL).results["settings"]
    assert six_hours["time_alignment"] == "span"


def test_evaluate_notes_columns_with_nothing_in_common(real: FlowTable) -> None:
    # anonymised servers against plain addresses
    tokens = toy_flows(600, seed=6).columns()
    tokens["server"] = np.array([f"{i % 50}_{i % 7}" for i in range(600)], dtype=object)
    report = evaluate_flows(real, FlowTable.from_columns(tokens), **SMALL)
    assert any("No server value" in note for note in report.results["notes"])


def test_sample_independent_columns_keeps_marginals(real: FlowTable) -> None:
    baseline = sample_independent_columns(real, 5_000, seed=1)
    assert len(baseline) == 5_000
    assert np.all(np.diff(baseline.start) >= 0)
    assert set(baseline.server) <= set(real.server)
    assert measure_jsd(real, baseline) < 0.05
    assert measure_cmd(real, baseline) > measure_cmd(real, toy_flows(5_000, seed=3))


# -- bad input ------------------------------------------------------------------


def test_evaluate_empty_file_names_it(real: FlowTable) -> None:
    with pytest.raises(
        InputError, match=r"^synth\.csv: synthetic set has no flows"
    ) as caught:
        evaluate_flows(real, FlowTable.empty(), inputs={"synthetic": "synth.csv"})
    assert caught.value.path == "synth.csv"


def test_evaluate_too_few_rows(real: FlowTable) -> None:
    with pytest.raises(InputError, match=r"train\.csv: train set has only 3 flows"):
        evaluate_flows(
            real, real, train=toy_flows(3, seed=1), inputs={"train": "train.csv"}
        )


def test_evaluate_address_column_all_empty(real: FlowTable) -> None:
    columns = real.columns()
    columns["client"] = np.full(len(real), "", dtype=object)
    with pytest.raises(InputError, match="column 'client' is empty in every row"):
        evaluate_flows(real, FlowTable.from_columns(columns), **SMALL)


@pytest.mark.parametrize(
    ("setting", "value"),
    [("repetitions", 0), ("sample_size", 5), ("k", 0)],
)
def test_evaluate_rejects_bad_settings(
    real: FlowTable, setting: str, value: int
) -> None:
    with pytest.raises(ValueError, match=setting):
        evaluate_flows(real, real, **{setting: value})


def test_evaluate_rejects_unknown_alignment(real: FlowTable) -> None:
    with pytest.raises(ValueError, match="time alignment"):
        evaluate_flows(real, real, time_alignment="week", **SMALL)


# -- real data --------------------------------------------------------------------


@pytest.mark.shared_data
def test_cidds_reference_beats_independent_and_md_flags_copy(shared_data: Path) -> None:
    train = read_flow_records(shared_data / "cidds001-wk3" / "train.csv")
    held_out = read_flow_records(shared_data / "cidds001-wk3" / "eval.csv")
    synthetic = sample_independent_columns(train, len(train), seed=1)
    report = evaluate_flows(
        held_out, synthetic, train=train, repetitions=2, sample_size=2_000, plots=False
    )
    ranks = report.results["ranks"]
    metrics = [key for key in ranks["reference"] if key not in ("average", "md")]
    better = [k for k in metrics if ranks["reference"][k] < ranks["independent"][k]]
    # independent columns keep every marginal, so it wins JSD and EMD; the
    # reference must win most of the rest
    assert len(better) > len(metrics) / 2, better
    assert {"density", "coverage", "cmd", "pcd", "dkc"} <= set(better)
    assert report.results["md_flagged"] == ["copy"]
    assert ranks["reference"]["average"] < ranks["independent"]["average"]
