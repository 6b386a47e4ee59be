"""Codebooks: equal-frequency bins, encoding new values, decoding."""

from __future__ import annotations

import numpy as np
import pytest

from fosr.flowmodel.codebook import (
    UNSEEN,
    Codebook,
    ColumnKind,
    bin_codes,
    quantile_edges,
)


def continuous_book(
    values: np.ndarray, *, is_integer: bool, bins: int = 40
) -> Codebook:
    edges = quantile_edges(values, bins, integer=is_integer)
    codes = bin_codes(values, edges)
    return Codebook(
        name="fwd_bytes" if is_integer else "duration",
        kind=ColumnKind.CONTINUOUS,
        is_address=False,
        values=np.empty(0, dtype=object),
        edges=edges,
        is_integer=is_integer,
        counts=np.bincount(codes, minlength=max(len(edges), 1)),
    )


def test_quantile_edges_give_equal_frequency_bins() -> None:
    values = np.arange(1, 4001, dtype=np.float64)
    edges = quantile_edges(values, 40)
    counts = np.bincount(bin_codes(values, edges))
    assert len(edges) == 41
    assert counts[0] == 0
    # edges sit on observed values near 1, 100, 200, ..., 4000
    assert counts[1:].min() >= 99 and counts[1:].max() <= 101


def test_quantile_edges_drop_duplicates_of_tied_values() -> None:
    values = np.array([1.0] * 90 + [2.0] * 5 + [3.0] * 5)
    edges = quantile_edges(values, 40)
    assert list(edges) == [1.0, 2.0, 3.0]
    assert list(bin_codes(np.array([0.0, 1.0, 2.0, 3.0]), edges)) == [0, 1, 1, 2]


@pytest.mark.parametrize(
    ("values", "edges"),
    [
        ([0.0, 0.0], []),  # only bin 0 exists
        ([0.0, 7.0, 7.0], [7.0, 7.0]),  # one non-zero value: bin [7, 7]
    ],
)
def test_quantile_edges_of_degenerate_columns(
    values: list[float], edges: list[float]
) -> None:
    assert list(quantile_edges(np.array(values), 40)) == edges


def test_bin_codes_clip_values_outside_the_edges() -> None:
    edges = np.array([2.0, 4.0, 8.0])
    codes = bin_codes(np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 8.0, 100.0]), edges)
    assert list(codes) == [0, 1, 1, 1, 1, 2, 2, 2]


def test_decode_integer_codes_encode_back_to_the_same_codes() -> None:
    rng = np.random.default_rng(1)
    values = np.concatenate([np.zeros(50), rng.geometric(0.01, 2000)]).astype(float)
    book = continuous_book(values, is_integer=True)
    codes = np.repeat(np.arange(book.size), 50)
    decoded = book.decode(codes, rng)
    assert decoded.dtype == np.int64
    assert np.array_equal(book.encode(decoded), codes)
    for code in range(1, book.size):
        low, high = book.interval(code)
        inside = decoded[codes == code]
        assert np.all((inside >= low) & (inside <= high))


def test_decode_float_codes_draw_inside_their_interval() -> None:
    rng = np.random.default_rng(2)
    values = np.concatenate([np.zeros(10), rng.exponential(2.0, 1000)])
    book = continuous_book(values, is_integer=False)
    codes = np.repeat(np.arange(book.size), 20)
    decoded = book.decode(codes, rng)
    assert np.all(decoded[codes == 0] == 0.0)
    assert np.array_equal(book.encode(decoded), codes)


def test_decode_rejects_codes_out_of_range() -> None:
    book = continuous_book(np.array([1.0, 2.0]), is_integer=True)
    with pytest.raises(ValueError, match="codes must lie in 0..2"):
        book.decode(np.array([3]), np.random.default_rng(0))


def test_categorical_encode_marks_unseen_values() -> None:
    book = Codebook(
        name="state",
        kind=ColumnKind.CATEGORICAL,
        is_address=False,
        values=np.array(["REJ", "S0", "SF"], dtype=object),
        edges=np.empty(0),
        is_integer=False,
        counts=np.array([1, 2, 3]),
    )
    assert list(book.encode(["SF", "OTH", "REJ"])) == [2, UNSEEN, 0]
    assert book.size == 3 and book.n_observed == 3


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [("proto", 17, "UDP"), ("tcp_flags", 0x12, ".A..S."), ("server_port", 53, "53")],
)
def test_describe_categorical_codes(name: str, value: int, text: str) -> None:
    book = Codebook(
        name=name,
        kind=ColumnKind.CATEGORICAL,
        is_address=False,
        values=np.array([value]),
        edges=np.empty(0),
        is_integer=False,
        counts=np.array([1]),
    )
    assert book.describe(0) == text


def test_describe_continuous_codes() -> None:
    book = continuous_book(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), is_integer=True, bins=2)
    assert [book.describe(c) for c in range(book.size)] == ["0", "1-2", "3-4"]
    durations = continuous_book(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), is_integer=False)
    assert durations.describe(1) == "[1, 2]"


def test_integer_columns_with_few_values_get_one_bin_per_value() -> None:
    # a DNS lookup: one packet each way almost always
    values = np.array([1.0] * 90 + [2.0] * 5 + [3.0] * 5)
    book = continuous_book(values, is_integer=True)
    assert list(book.edges) == [0.5, 1.5, 2.5, 3.5]
    assert list(book.counts) == [0, 90, 5, 5]
    decoded = book.decode(np.ones(1000, dtype=np.int64), np.random.default_rng(0))
    assert np.all(decoded == 1)


def test_frequent_integers_are_exact_among_many_values() -> None:
    rng = np.random.default_rng(3)
    tail = rng.integers(5, 5000, 2000)
    values = np.concatenate([np.full(1500, 1), np.full(900, 2), np.full(400, 40), tail])
    book = continuous_book(values.astype(float), is_integer=True)
    for frequent in (1, 2, 40):
        code = int(book.encode([float(frequent)])[0])
        assert book.describe(code) == str(frequent)
        decoded = book.decode(np.full(200, code), rng)
        assert np.all(decoded == frequent)
    # the tail still shares equal-frequency bins, and decodes back to them
    tail_codes = book.encode(tail.astype(float))
    shared = np.unique(tail_codes)
    assert 30 <= len(shared) <= 45
    assert np.array_equal(book.encode(book.decode(tail_codes, rng)), tail_codes)


def test_integer_bins_hold_observed_values_except_gaps_between_exact_ones() -> None:
    values = np.array([1.0] * 500 + [2.0] * 300 + [4.0] * 100 + list(range(5, 1000)))
    book = continuous_book(values, is_integer=True)
    empty = [c for c in range(1, book.size) if book.counts[c] == 0]
    # only the run {3} between the exact 2 and 4 holds no training row
    assert [book.describe(c) for c in empty] == ["3"]


def test_integer_columns_with_fractions_keep_plain_quantiles() -> None:
    values = np.array([0.5, 1.0, 1.5, 2.0])
    assert list(quantile_edges(values, 40, integer=True)) == [0.5, 1.0, 1.5, 2.0]


def test_one_integer_value_is_exact() -> None:
    assert list(quantile_edges(np.array([0.0, 7.0, 7.0]), 40, integer=True)) == [
        6.5,
        7.5,
    ]


def test_wide_bins_draw_log_uniformly() -> None:
    # a last bin like (100, 1e6]: real values thin out towards its top
    book = Codebook(
        name="duration",
        kind=ColumnKind.CONTINUOUS,
        is_address=False,
        values=np.empty(0, dtype=object),
        edges=np.array([1.0, 100.0, 1e6]),
        is_integer=False,
        counts=np.array([0, 10, 10]),
    )
    rng = np.random.default_rng(4)
    drawn = book.decode(np.full(20_000, 2), rng)
    assert np.all((drawn > 100.0) & (drawn <= 1e6))
    # log-uniform: median near the geometric mean 1e4 (uniform: 5e5)
    assert 5e3 < np.median(drawn) < 2e4
    assert np.mean(drawn < 1e3) == pytest.approx(0.25, abs=0.02)
