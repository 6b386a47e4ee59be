"""Sampling flows from a learnt model: determinism, shards, time order."""

from __future__ import annotations

import numpy as np
import pytest

from fosr.flowmodel._codes import BinDecoder
from fosr.flowmodel.codebook import Codebook, ColumnKind, quantile_edges
from fosr.flowmodel.encoding import CodedTable, encode_flows
from fosr.flowmodel.learn import (
    FittedPattern,
    LearnedFlowModel,
    SearchSettings,
    free_cells,
    learn_flow_model,
)
from fosr.flowmodel.network import learn_network
from fosr.flowmodel.pattern import Cell, Pattern
from fosr.flowmodel.sampler import EPHEMERAL_PORTS, FlowSampler, fill_codes
from fosr.flowmodel.timing import FlowTiming, fit_timing
from fosr.flows.table import FLOW_COLUMNS, FlowTable
from tests.fosr.flowmodel._planted import (
    CLIENT,
    PROTO,
    SERVER,
    TCP,
    UDP,
    planted_table,
)
from tests.fosr.flowmodel.test_timing import (
    DAY_S,
    HOUR_S,
    MONDAY_S,
    background_model,
    office_table,
)

FIX, SET, USE = Cell.fix, Cell.set, Cell.use
Planted = tuple[CodedTable, LearnedFlowModel, FlowTiming]


@pytest.fixture(scope="module")
def planted() -> Planted:
    table = planted_table()
    model = learn_flow_model(table, SearchSettings(max_gap_s=1.0))
    return table, model, fit_timing(model, table, max_gap_s=1.0)


def sampler(planted: Planted, **kwargs: object) -> FlowSampler:
    table, model, timing = planted
    options: dict[str, object] = {"seed": 7, "rate_scale": 5.0, **kwargs}
    return FlowSampler(
        model,
        timing,
        table.columns,
        table.codebooks,
        **options,  # type: ignore[arg-type]
    )


def assert_same(a: FlowTable, b: FlowTable) -> None:
    assert len(a) == len(b)
    for name in FLOW_COLUMNS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), name)


def by_start_and_port(table: FlowTable) -> FlowTable:
    return table.take(np.lexsort((table.client_port, table.start)))


START_S = MONDAY_S + 10 * HOUR_S


def test_fill_codes_puts_fix_set_and_use_cells_in_place() -> None:
    pattern = Pattern.of(
        [{PROTO: FIX(UDP), CLIENT: SET(0)}, {PROTO: FIX(TCP), SERVER: USE(0)}]
    )
    variables = free_cells(pattern, 4)
    # row 0: client, server, port; row 1: client, port
    assert variables == ((0, 1), (0, 2), (0, 3), (1, 1), (1, 3))
    network = learn_network(np.zeros((2, len(variables)), dtype=np.int64), [1] * 5)
    fitted = FittedPattern(
        pattern=pattern,
        variables=variables,
        network=network,
        start_ticks=np.zeros(0, dtype=np.int64),
        delays_ticks=np.zeros((0, 1), dtype=np.int64),
    )
    records = np.array([[11, 12, 13, 14, 15], [21, 22, 23, 24, 25]])
    codes = fill_codes(fitted, records, 4)
    assert codes.tolist() == [
        [[UDP, 11, 12, 13], [TCP, 14, 11, 15]],
        [[UDP, 21, 22, 23], [TCP, 24, 21, 25]],
    ]


def test_same_seed_and_start_give_the_same_flows(planted: Planted) -> None:
    a = sampler(planted).sample(START_S, START_S + HOUR_S)
    b = sampler(planted).sample(START_S, START_S + HOUR_S)
    assert len(a) > 1000
    assert_same(a, b)
    other = sampler(planted, seed=8).sample(START_S, START_S + HOUR_S)
    assert len(other) != len(a) or not np.array_equal(other.start, a.start)


@pytest.mark.parametrize("batch_s", [600.0, 112.5, 3600.0])
def test_batches_concatenate_to_the_range(planted: Planted, batch_s: float) -> None:
    whole = sampler(planted).sample(START_S, START_S + HOUR_S)
    stream = sampler(planted).batches(START_S, batch_s)
    parts = [next(stream) for _ in range(round(HOUR_S / batch_s))]
    for k, part in enumerate(parts):
        assert np.all(part.start >= START_S + k * batch_s)
        assert np.all(part.start < START_S + (k + 1) * batch_s)
    assert_same(FlowTable.concat(parts), whole)


def test_adjacent_ranges_concatenate_to_their_union(planted: Planted) -> None:
    s = sampler(planted)
    middle = START_S + 1234.5
    parts = [s.sample(START_S, middle), s.sample(middle, START_S + HOUR_S)]
    assert_same(FlowTable.concat(parts), s.sample(START_S, START_S + HOUR_S))


def test_flows_come_in_time_order_inside_the_range(planted: Planted) -> None:
    flows = sampler(planted).sample(START_S, START_S + HOUR_S)
    assert np.all(np.diff(flows.start) >= 0)
    assert flows.start.min() >= START_S and flows.start.max() < START_S + HOUR_S


def test_shards_are_disjoint_and_add_up_to_the_stream(planted: Planted) -> None:
    whole = sampler(planted).sample(START_S, START_S + HOUR_S)
    parts = [
        sampler(planted, shard=i, shards=3).sample(START_S, START_S + HOUR_S)
        for i in range(3)
    ]
    assert all(len(p) > len(whole) // 5 for p in parts)
    keys = [
        set(zip(p.start.tolist(), p.client_port.tolist(), strict=True)) for p in parts
    ]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    assert_same(by_start_and_port(FlowTable.concat(parts)), by_start_and_port(whole))


def test_sampled_flows_keep_the_planted_pattern(planted: Planted) -> None:
    # every DNS query of the training data is followed within 0.1 s by a
    # TCP/443 flow from the same client; noise flows never use port 53
    table, _, timing = planted
    flows = sampler(planted).sample(START_S, START_S + HOUR_S)
    dns = np.flatnonzero(flows.server_port == 53)
    assert len(dns) > 100
    followed = 0
    for i in dns:
        after = (flows.start > flows.start[i]) & (
            flows.start <= flows.start[i] + timing.max_gap_s
        )
        after &= (flows.client == flows.client[i]) & (flows.server_port == 443)
        after &= flows.proto == 6
        followed += bool(after.any())
    assert followed >= 0.9 * len(dns)


def test_sampled_flows_follow_the_training_hours() -> None:
    table = office_table(days=3, first_h=9.0, last_h=17.0)
    model = background_model(table)
    timing = fit_timing(model, table)
    s = FlowSampler(model, timing, table.columns, table.codebooks, seed=1)
    day = s.sample(MONDAY_S + 7 * DAY_S, MONDAY_S + 8 * DAY_S)
    hours = (day.start - MONDAY_S - 7 * DAY_S) / HOUR_S
    assert len(day) == pytest.approx(200, rel=0.3)
    assert np.all((hours >= 9) & (hours < 17))


def test_client_ports_are_ephemeral(planted: Planted) -> None:
    flows = sampler(planted).sample(START_S, START_S + 600)
    low, high = EPHEMERAL_PORTS
    assert np.all((flows.client_port >= low) & (flows.client_port <= high))
    assert set(flows.proto.tolist()) <= {6, 17}


@pytest.mark.parametrize("is_integer", [True, False])
def test_bin_draws_encode_back_to_their_code(is_integer: bool) -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate([np.zeros(50), rng.lognormal(5, 2, 2000)])
    if is_integer:
        values = np.floor(values)
    edges = quantile_edges(values, 40)
    book = Codebook(
        name="fwd_bytes" if is_integer else "duration",
        kind=ColumnKind.CONTINUOUS,
        is_address=False,
        values=np.empty(0, dtype=object),
        edges=edges,
        is_integer=is_integer,
        counts=np.ones(len(edges), dtype=np.int64),
    )
    dtype = np.dtype(np.int64 if is_integer else np.float64)
    codes = np.tile(np.arange(book.size), 200)
    decoded = BinDecoder.of(book, dtype).decode(codes, rng.random(len(codes)))
    assert decoded.dtype == dtype
    np.testing.assert_array_equal(book.encode(decoded), codes)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shard": 3, "shards": 3}, "shard"),
        ({"seed": -1}, "seed"),
        ({"window_s": 0.0}, "window_s"),
        ({"rate_scale": -1.0}, "rate_scale"),
    ],
)
def test_sampler_refuses_bad_settings(
    planted: Planted, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        sampler(planted, **kwargs)


def test_sample_refuses_times_before_the_epoch(planted: Planted) -> None:
    with pytest.raises(ValueError, match="epoch"):
        sampler(planted).sample(-10.0, 10.0)
    with pytest.raises(ValueError, match="reversed"):
        sampler(planted).sample(20.0, 10.0)


def test_bytes_fit_the_headers_of_their_packets() -> None:
    # TCP flows of 1 to 60 packets, 40 to 1500 bytes each: equal-frequency
    # bins of packets and of bytes, drawn independently, would often give
    # fewer bytes than 40 per packet
    rng = np.random.default_rng(11)
    n = 3000
    packets = rng.integers(1, 61, n)
    flows = FlowTable.from_columns(
        {
            "start": MONDAY_S + np.sort(rng.uniform(0, DAY_S, n)),
            "duration": rng.exponential(1.0, n),
            "proto": np.full(n, 6),
            "client": np.full(n, "10.0.0.1", dtype=object),
            "client_port": rng.integers(32768, 61000, n),
            "server": np.full(n, "10.0.0.2", dtype=object),
            "server_port": np.full(n, 443),
            "fwd_packets": packets,
            "fwd_bytes": packets * rng.integers(40, 1501, n),
            "bwd_packets": np.zeros(n, dtype=np.int64),
            "bwd_bytes": np.zeros(n, dtype=np.int64),
            "tcp_flags": np.full(n, 0x18),
            "state": np.full(n, "SF", dtype=object),
        }
    )
    table = encode_flows(flows)
    model = background_model(table)
    timing = fit_timing(model, table, max_gap_s=1.0)
    sampled = FlowSampler(
        model, timing, table.columns, table.codebooks, seed=3, rate_scale=2.0
    ).sample(MONDAY_S, MONDAY_S + DAY_S)
    assert len(sampled) > 1000
    # where the bin the network drew holds a valid size, bytes take one
    book = table.codebooks[table.column_index("fwd_bytes")]
    codes = book.encode(sampled.fwd_bytes)
    upper = np.array([book.interval(int(c))[1] for c in codes])
    allowed = upper >= 40 * sampled.fwd_packets
    assert allowed.mean() > 0.9
    assert np.all(sampled.fwd_bytes[allowed] >= 40 * sampled.fwd_packets[allowed])
    assert np.all(sampled.bwd_bytes == 0)
    # and the bins are wide enough for the rule to matter
    wide = [book.interval(c) for c in range(1, book.size)]
    assert max(high - low for low, high in wide) > 40 * 30


def test_bin_decoder_draws_like_the_codebook() -> None:
    rng = np.random.default_rng(6)
    values = np.concatenate([rng.geometric(0.001, 3000), np.full(500, 40)])
    edges = quantile_edges(values.astype(float), 10, integer=True)
    book = Codebook(
        name="fwd_bytes",
        kind=ColumnKind.CONTINUOUS,
        is_address=False,
        values=np.empty(0, dtype=object),
        edges=edges,
        is_integer=True,
        counts=np.ones(len(edges), dtype=np.int64),
    )
    codes = np.full(40_000, len(edges) - 1)  # the widest, last bin
    fast = BinDecoder.of(book, np.dtype(np.int64)).decode(codes, rng.random(len(codes)))
    slow = book.decode(codes, rng)
    assert np.array_equal(book.encode(fast), codes)
    assert np.median(fast) == pytest.approx(np.median(slow), rel=0.05)
