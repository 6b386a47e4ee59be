"""The generic plots: PNG figures of the promised size from plain arrays."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from fosr.evaluate._plots import (
    plot_acf,
    plot_category_bars,
    plot_distribution,
    plot_heatmaps,
)
from fosr.evaluate.report import Figure


def png_size(figure: Figure) -> tuple[int, int]:
    assert figure.png.startswith(b"\x89PNG\r\n\x1a\n")
    # the IHDR chunk comes first: width and height, big-endian
    width, height = struct.unpack(">II", figure.png[16:24])
    return width, height


def test_distribution_log_scale() -> None:
    rng = np.random.default_rng(1)
    figure = plot_distribution(
        rng.lognormal(5, 2, 2000),
        np.concatenate([[0.0], rng.lognormal(4, 1, 500)]),
        title="fwd_bytes",
        xlabel="bytes",
        log_scale=True,
        caption="a caption",
    )
    assert png_size(figure) == (900, 450)
    assert figure.title == "fwd_bytes" and figure.caption == "a caption"


@pytest.mark.parametrize(
    ("real", "synthetic"),
    [
        (np.array([1.0, 1.0]), np.array([1.0])),  # constant
        (np.array([0.0, 1.0, np.nan]), np.array([])),  # empty side, NaN
    ],
)
def test_distribution_degenerate_samples(
    real: np.ndarray, synthetic: np.ndarray
) -> None:
    assert png_size(plot_distribution(real, synthetic, title="t", xlabel="x")) == (
        900,
        450,
    )


def test_category_bars_top_values_and_other() -> None:
    real = np.array(
        ["TCP"] * 5 + ["UDP"] * 3 + ["a-very-long-address-token-0123456789"]
    )
    synthetic = np.array(["UDP"] * 4 + ["GRE"])
    figure = plot_category_bars(real, synthetic, title="proto", top=2)
    assert png_size(figure) == (900, 450)


def test_heatmaps_side_by_side() -> None:
    names = ["a", "b", "c"]
    figure = plot_heatmaps(np.eye(3), -np.eye(3), names, title="correlations")
    assert png_size(figure) == (900, 450)


def test_acf_curves_long_and_short() -> None:
    lags = np.array([1, 2, 24])
    curve = np.cos(np.arange(5000) / 24.0)
    assert png_size(plot_acf(curve, curve * 0.5, title="acf", lags=lags)) == (900, 450)
    short = np.array([1.0, 0.5, 0.2])
    assert png_size(plot_acf(short, short, title="acf")) == (900, 450)
