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
    edges = quantile_edges(values, bins)
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
    with pytest.raises(ValueError, match="codes must lie in 0..1"):
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


def test_describe_continuous_codes_as_intervals() -> None:
    book = continuous_book(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), is_integer=True, bins=2)
    assert [book.describe(c) for c in range(book.size)] == ["0", "[1, 2]", "(2, 4]"]
