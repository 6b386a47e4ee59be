"""Encoding flows for the evaluation: vocabularies, time alignment, checks."""

from __future__ import annotations

import numpy as np
import pytest
from flow_builders import T0, flows

from fosr.errors import InputError
from fosr.evaluate._flow_columns import (
    PORT,
    SERVER,
    align_start,
    check_flows,
    choose_time_alignment,
    draw_rows,
    encode_flows,
    signed_log,
)


def test_encode_shares_codes_between_sets() -> None:
    a = flows({"server": "10.0.0.1"}, {"server": "10.0.0.2", "server_port": 80})
    b = flows({"server": "10.0.0.2"}, {"server": "10.0.0.3"})
    (ea, eb), vocabulary = encode_flows([a, b], "span")
    assert vocabulary.values[SERVER].tolist() == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert ea.codes[:, SERVER].tolist() == [0, 1]
    assert eb.codes[:, SERVER].tolist() == [1, 2]
    assert vocabulary.values[PORT].tolist() == [80, 443]
    assert ea.ids.tolist() == [0, 1]


def test_encode_keeps_values_and_logs() -> None:
    (encoded,), _ = encode_flows([flows({"fwd_bytes": 999, "duration": 2.0})], "day")
    assert encoded.values[0].tolist() == [2.0, 999.0, 200.0, 3.0, 2.0]
    assert encoded.logs[0, 1] == pytest.approx(np.log(1000.0))


def test_signed_log_is_odd() -> None:
    assert signed_log(np.array([-3.0, 0.0, 3.0])).tolist() == pytest.approx(
        [-np.log(4.0), 0.0, np.log(4.0)]
    )


def test_align_day_and_span() -> None:
    start = np.array([T0 + 6 * 3600, T0 + 86_400 + 18 * 3600])
    assert align_start(start, "day").tolist() == pytest.approx([0.25, 0.75])
    span = align_start(start, "span")
    assert span[0] == 0.0 and 0.999 < span[1] < 1.0
    assert align_start(np.array([5.0, 5.0]), "span").tolist() == [0.0, 0.0]


def test_auto_alignment_by_real_spans() -> None:
    day = flows({"start": T0}, {"start": T0 + 86_400})
    hours = flows({"start": T0}, {"start": T0 + 4 * 3600})
    assert choose_time_alignment("auto", [day]) == "day"
    assert choose_time_alignment("auto", [day, hours]) == "span"
    assert choose_time_alignment("span", [day]) == "span"
    with pytest.raises(ValueError):
        choose_time_alignment("week", [day])


def test_check_flows_too_few_rows_names_file() -> None:
    with pytest.raises(InputError, match=r"synth\.csv: synthetic set has only 2 flows"):
        check_flows(flows({}, {}), "synthetic", min_rows=6, path="synth.csv")


def test_check_flows_empty() -> None:
    with pytest.raises(InputError, match="real set has no flows") as caught:
        check_flows(flows(), "real", min_rows=1, path="real.csv")
    assert caught.value.path == "real.csv"


def test_check_flows_column_all_empty() -> None:
    with pytest.raises(InputError, match="column 'server' is empty in every row"):
        check_flows(flows({"server": ""}, {"server": ""}), "train", min_rows=1)


def test_check_flows_not_finite() -> None:
    with pytest.raises(
        InputError, match="'duration' holds 1 values that are not finite"
    ):
        check_flows(flows({"duration": float("nan")}, {}), "real", min_rows=1)


def test_draw_rows_with_and_without_replacement() -> None:
    rng = np.random.default_rng(0)
    assert len(np.unique(draw_rows(100, 50, rng))) == 50
    drawn = draw_rows(10, 50, rng)
    assert len(drawn) == 50 and drawn.max() < 10
    with pytest.raises(ValueError):
        draw_rows(0, 5, rng)
