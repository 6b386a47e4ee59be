"""The rate profile and the delays of a flow stream without end."""

from __future__ import annotations

import numpy as np
import pytest

from fosr.flowmodel.encoding import CodedTable
from fosr.flowmodel.learn import LearnedFlowModel, SearchSettings, learn_flow_model
from fosr.flowmodel.network import learn_network
from fosr.flowmodel.timing import (
    BINS_PER_DAY,
    FlowTiming,
    fit_timing,
    profile_bins,
)
from tests.fosr.flowmodel._planted import coded, planted_table

MONDAY_S = 1_709_510_400.0  # 2024-03-04 00:00 UTC, a Monday
HOUR_S = 3600.0
DAY_S = 86_400.0


def background_model(table: CodedTable) -> LearnedFlowModel:
    """Return a model without patterns: every row is a background row."""
    codes = table.codes.astype(np.int64)
    return LearnedFlowModel(
        patterns=(),
        background=learn_network(codes, [max(s, 1) for s in table.observed_sizes]),
        background_start_ticks=table.ticks.copy(),
        model_bits=0.0,
        data_bits=0.0,
        empty_bits=0.0,
        trace=(),
        n_tested=0,
    )


def office_table(days: int, first_h: float, last_h: float, seed: int = 0) -> CodedTable:
    """Return flows only between ``first_h`` and ``last_h`` UTC each day."""
    rng = np.random.default_rng(seed)
    starts = np.sort(
        np.concatenate(
            [
                MONDAY_S + d * DAY_S + rng.uniform(first_h, last_h, 200) * HOUR_S
                for d in range(days)
            ]
        )
    )
    n = len(starts)
    records = np.column_stack(
        [
            starts,
            rng.integers(0, 2, n),
            rng.integers(0, 20, n),
            rng.integers(20, 30, n),
            rng.integers(0, 4, n),
        ]
    )
    return coded(records)


def test_profile_bins_count_from_monday_in_local_time() -> None:
    times = np.array([MONDAY_S, MONDAY_S + 9.5 * HOUR_S, MONDAY_S + 2 * DAY_S])
    assert profile_bins(times, "UTC").tolist() == [0, 38, 2 * BINS_PER_DAY]
    # Paris is UTC+1 in March (before the last Sunday)
    assert profile_bins(times, "Europe/Paris").tolist() == [4, 42, 196]


def test_rate_profile_follows_the_training_hours() -> None:
    table = office_table(days=3, first_h=9.0, last_h=17.0)
    timing = fit_timing(background_model(table), table)

    assert timing.rates_per_s.shape == (1, BINS_PER_DAY)
    # nights between the days were observed, and empty
    assert not timing.extrapolated.any()
    hours = np.arange(BINS_PER_DAY) / 4
    busy = (hours >= 9) & (hours < 17)
    rates = timing.rates_per_s[0]
    assert np.all(rates[~busy] == 0.0)
    assert np.all(rates[busy] > 0.0)
    # 200 flows in 8 hours each day
    assert rates[busy].mean() == pytest.approx(200 / (8 * HOUR_S), rel=0.2)


def test_rate_profile_extrapolates_hours_never_seen() -> None:
    # one morning, as in UGR'16: other bins get the mean of the observed
    table = office_table(days=1, first_h=8.0, last_h=12.0)
    timing = fit_timing(background_model(table), table)

    hours = np.arange(BINS_PER_DAY) / 4
    seen = (hours >= 8.25) & (hours < 11.75)
    assert not timing.extrapolated[0, seen].any()
    assert timing.extrapolated[0, (hours < 7.5) | (hours >= 12.5)].all()
    rates = timing.rates_per_s[0]
    mean = rates[timing.extrapolated[0]]
    assert np.all(mean == mean[0])
    assert mean[0] == pytest.approx(200 / (4 * HOUR_S), rel=0.1)


def test_rate_profile_is_weekly_on_a_week_of_data() -> None:
    table = office_table(days=8, first_h=0.0, last_h=24.0)
    timing = fit_timing(background_model(table), table)
    assert timing.is_weekly
    assert timing.rates_per_s.shape == (7, BINS_PER_DAY)
    assert timing.rate_at(np.array([MONDAY_S + 3 * DAY_S]))[0] > 0


def test_rate_profile_in_another_time_zone_shifts_the_hours() -> None:
    table = office_table(days=3, first_h=9.0, last_h=17.0)
    timing = fit_timing(background_model(table), table, timezone="Europe/Paris")
    rates = timing.rates_per_s[0]
    # busy from 10:00 to 18:00 in Paris
    assert rates[4 * 10] > 0 and rates[4 * 18] == 0.0 and rates[4 * 9] == 0.0


@pytest.fixture(scope="module")
def planted() -> tuple[CodedTable, LearnedFlowModel, FlowTiming]:
    table = planted_table()
    model = learn_flow_model(table, SearchSettings(max_gap_s=1.0))
    return table, model, fit_timing(model, table, max_gap_s=1.0)


def test_delays_are_never_negative_and_never_past_the_max_gap(
    planted: tuple[CodedTable, LearnedFlowModel, FlowTiming],
) -> None:
    _, model, timing = planted
    rng = np.random.default_rng(0)
    assert 0 < timing.max_gap_s <= 1.0
    for i, fitted in enumerate(model.patterns):
        gaps = len(fitted.pattern) - 1
        delays = timing.sample_delays(i, rng.random((1000, gaps)))
        assert delays.shape == (1000, gaps)
        assert np.all(delays >= 0.0) and np.all(delays <= timing.max_gap_s)
        if gaps:
            assert delays.max() <= fitted.delays_ticks.max() * 0.01 + 1e-9


def test_weights_follow_usage(
    planted: tuple[CodedTable, LearnedFlowModel, FlowTiming],
) -> None:
    _, model, timing = planted
    usage = [len(model.background_start_ticks)] + [f.usage for f in model.patterns]
    assert timing.weights == pytest.approx(np.array(usage) / sum(usage))


def test_timing_round_trips_through_arrays(
    planted: tuple[CodedTable, LearnedFlowModel, FlowTiming],
) -> None:
    _, _, timing = planted
    again = FlowTiming.from_arrays(timing.to_arrays())
    assert again.timezone == timing.timezone
    assert again.max_gap_s == timing.max_gap_s
    np.testing.assert_array_equal(again.rates_per_s, timing.rates_per_s)
    np.testing.assert_array_equal(again.extrapolated, timing.extrapolated)
    np.testing.assert_array_equal(again.weights, timing.weights)
    for a, b in zip(again.delay_quantiles_s, timing.delay_quantiles_s, strict=True):
        np.testing.assert_array_equal(a, b)


def test_timing_refuses_a_bad_profile_shape() -> None:
    with pytest.raises(ValueError, match="rate profile"):
        FlowTiming(
            timezone="UTC",
            rates_per_s=np.zeros((2, BINS_PER_DAY)),
            extrapolated=np.zeros((2, BINS_PER_DAY), dtype=bool),
            weights=np.ones(1),
            delay_quantiles_s=(),
            max_gap_s=1.0,
        )
