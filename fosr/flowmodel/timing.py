"""Timing of a flow stream without end: a rate profile and delays per gap.

How this works (METHODS.md §1.7, the streaming re-cast):

- Instances.  Every used window of a pattern and every background row is
  one *instance*; it starts at ``origin_s + tick * tick_s``.  Kind 0 is the
  background, kind ``i + 1`` the model's pattern ``i``; ``weights`` holds
  each kind's share of all instances (its usage).
- Rate profile.  One profile for all instances together, as Fos-R does;
  the sampler picks the kind of each start by weight.  Per-pattern
  profiles would split a few hundred starts over 96 (or 672) bins, mostly
  empty; one profile keeps the daily rhythm of the whole traffic at the cost
  of patterns having no rhythm of their own.  Bins are 15 minutes of local
  time in ``timezone`` (zoneinfo name, default UTC): 96 per day, and 7 days
  of them, Monday first, when the data spans at least 7 days (else one daily
  profile).  Rate of a bin = instance starts in it / seconds of observation
  in it (instances per second).
- Bins the data never (or barely: under half a bin) observed get the mean
  rate of all observations and are flagged in ``extrapolated``: the CIDDS
  sample covers 5 days, UGR'16 only 08:00-12:00 of one day, and a stream
  must go on outside those hours.
- Delays.  Per pattern and gap, the observed delays in seconds as
  :data:`N_QUANTILES` empirical quantiles (levels 0 to 1 evenly spaced);
  sampling interpolates linearly between them (inverse CDF).  This is the
  reference's smoothed empirical KDE (bandwidth one tick) without its
  negative tail: quantiles of non-negative delays are non-negative and never
  exceed the largest observed delay, itself at most ``max_gap_s``.  A
  log-normal fit was not chosen: delays of zero ticks are common (two flows
  in the same 10 ms) and delays are often multi-modal (a DNS answer in
  milliseconds, a poll every few seconds).

Everything is plain arrays (:meth:`FlowTiming.to_arrays`), for a JSON and
npy bundle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from fosr.flowmodel.encoding import CodedTable
from fosr.flowmodel.learn import LearnedFlowModel

__all__ = ["BIN_S", "BINS_PER_DAY", "N_QUANTILES", "FlowTiming", "fit_timing"]

Array = npt.NDArray[Any]

BIN_S = 900.0
"""Length of a rate-profile bin in seconds: 15 minutes, as in Fos-R."""

BINS_PER_DAY = 96
"""Bins in one day of the profile."""

N_QUANTILES = 33
"""Quantile levels kept per gap (chosen, not tuned: 32 steps of 1/32)."""

_DAY_S = 86_400.0
_WEEK_S = 7 * _DAY_S
# The grid on which observation time is spread over bins, in seconds: a
# quarter of a bin, so that the edges of the observed period cost little.
_GRID_S = 60.0
# 1970-01-01 was a Thursday; Monday is day 0 of the weekly profile.
_EPOCH_WEEKDAY = 3


@dataclass(frozen=True, eq=False)
class FlowTiming:
    """When instances start and how long their rows wait for each other.

    - ``timezone``: zoneinfo name of the local time of the profile;
    - ``rates_per_s``: float64 (days, 96), instance starts per second in
      each bin; days is 7 (Monday first) or 1 (every day alike);
    - ``extrapolated``: bool, same shape, bins given the mean rate because
      the data did not observe them;
    - ``weights``: float64 (kinds,), share of each kind (0: background,
      i + 1: pattern i), summing to 1;
    - ``delay_quantiles_s``: per pattern, float64 (gaps, N_QUANTILES)
      delay quantiles in seconds, ascending along each row;
    - ``max_gap_s``: the largest delay any gap can draw, seconds.
    """

    timezone: str
    rates_per_s: Array
    extrapolated: Array
    weights: Array
    delay_quantiles_s: tuple[Array, ...]
    max_gap_s: float

    def __post_init__(self) -> None:
        days = self.rates_per_s.shape[0] if self.rates_per_s.ndim == 2 else 0
        if days not in (1, 7) or self.rates_per_s.shape[1:] != (BINS_PER_DAY,):
            raise ValueError(f"rate profile of shape {self.rates_per_s.shape}")
        if len(self.weights) != len(self.delay_quantiles_s) + 1:
            raise ValueError(
                f"{len(self.weights)} weights for "
                f"{len(self.delay_quantiles_s)} patterns plus the background"
            )
        ZoneInfo(self.timezone)

    @property
    def is_weekly(self) -> bool:
        """Say whether the profile has one day per weekday."""
        return bool(self.rates_per_s.shape[0] == 7)

    @property
    def max_rows(self) -> int:
        """Return the most rows of any kind (1 for the background)."""
        return 1 + max((len(q) for q in self.delay_quantiles_s), default=0)

    def rate_at(self, times_s: Array) -> Array:
        """Return the instance rate in starts per second at Unix ``times_s``."""
        bins = profile_bins(np.asarray(times_s, dtype=np.float64), self.timezone)
        if not self.is_weekly:
            bins = bins % BINS_PER_DAY
        rates: Array = self.rates_per_s.ravel()[bins]
        return rates

    def sample_delays(self, pattern: int, u: Array) -> Array:
        """Return delays in seconds for uniform draws ``u`` (n, gaps)."""
        quantiles = self.delay_quantiles_s[pattern]
        levels = np.linspace(0.0, 1.0, quantiles.shape[1])
        out = np.empty(u.shape, dtype=np.float64)
        for gap in range(quantiles.shape[0]):
            out[:, gap] = np.interp(u[:, gap], levels, quantiles[gap])
        return np.clip(out, 0.0, self.max_gap_s)

    def to_arrays(self) -> dict[str, Array]:
        """Return the timing as named arrays (inverse: :meth:`from_arrays`).

        ``delays_{i}`` holds pattern i's quantiles; strings and scalars are
        0-d arrays.
        """
        arrays = {
            "timezone": np.array(self.timezone),
            "rates_per_s": self.rates_per_s,
            "extrapolated": self.extrapolated,
            "weights": self.weights,
            "max_gap_s": np.array(self.max_gap_s),
        }
        for i, q in enumerate(self.delay_quantiles_s):
            arrays[f"delays_{i}"] = q
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Array]) -> FlowTiming:
        """Return the timing of :meth:`to_arrays`; ValueError on bad shapes."""
        n_patterns = len(arrays["weights"]) - 1
        return cls(
            timezone=str(arrays["timezone"]),
            rates_per_s=np.asarray(arrays["rates_per_s"], dtype=np.float64),
            extrapolated=np.asarray(arrays["extrapolated"], dtype=bool),
            weights=np.asarray(arrays["weights"], dtype=np.float64),
            delay_quantiles_s=tuple(
                np.asarray(arrays[f"delays_{i}"], dtype=np.float64)
                for i in range(n_patterns)
            ),
            max_gap_s=float(arrays["max_gap_s"]),
        )


def fit_timing(
    model: LearnedFlowModel,
    table: CodedTable,
    *,
    timezone: str = "UTC",
    max_gap_s: float | None = 60.0,
) -> FlowTiming:
    """Fit the rate profile and the delays of ``model`` learnt on ``table``.

    ``max_gap_s`` bounds every delay (None: the largest observed delay);
    pass the search's :attr:`SearchSettings.max_gap_s`.  Raises ValueError
    on a model without instances.
    """
    starts_ticks = np.concatenate(
        [model.background_start_ticks] + [f.start_ticks for f in model.patterns]
    )
    if len(starts_ticks) == 0:
        raise ValueError("the model has no instance to time")
    usage = np.array(
        [len(model.background_start_ticks)] + [f.usage for f in model.patterns],
        dtype=np.float64,
    )
    starts_s = table.seconds(starts_ticks)
    rates, extrapolated = _rate_profile(starts_s, timezone)

    # delays per gap, in seconds, as quantiles
    quantiles = []
    largest = 0.0
    levels = np.linspace(0.0, 1.0, N_QUANTILES)
    for f in model.patterns:
        delays_s = np.asarray(f.delays_ticks, dtype=np.float64) * table.tick_s
        gaps = delays_s.shape[1] if delays_s.ndim == 2 else 0
        if gaps and len(delays_s):
            q = np.quantile(delays_s, levels, axis=0).T
            largest = max(largest, float(delays_s.max()))
        else:
            q = np.zeros((gaps, N_QUANTILES))
        quantiles.append(np.maximum(q, 0.0))
    bound = largest if max_gap_s is None else min(largest, max_gap_s)
    return FlowTiming(
        timezone=timezone,
        rates_per_s=rates,
        extrapolated=extrapolated,
        weights=usage / usage.sum(),
        delay_quantiles_s=tuple(np.minimum(q, bound) for q in quantiles),
        max_gap_s=bound,
    )


def profile_bins(times_s: Array, timezone: str) -> Array:
    """Return the weekly bin (0..671, Monday 00:00 first) of Unix ``times_s``.

    The UTC offset is looked up once per distinct 15-minute slot of UTC,
    which is exact for every zone whose transitions fall on quarter hours.
    """
    zone = ZoneInfo(timezone)
    slots = np.floor(times_s / BIN_S).astype(np.int64)
    distinct, inverse = np.unique(slots, return_inverse=True)
    offsets_s = np.array(
        [_offset_s(int(s) * BIN_S, zone) for s in distinct], dtype=np.float64
    )
    local_s = times_s + offsets_s[inverse.reshape(-1)]
    days = np.floor(local_s / _DAY_S).astype(np.int64)
    weekday = (days + _EPOCH_WEEKDAY) % 7
    of_day = np.floor((local_s - days * _DAY_S) / BIN_S).astype(np.int64)
    bins: Array = weekday * BINS_PER_DAY + np.minimum(of_day, BINS_PER_DAY - 1)
    return bins


def _offset_s(time_s: float, zone: ZoneInfo) -> float:
    offset = dt.datetime.fromtimestamp(time_s, zone).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def _rate_profile(starts_s: Array, timezone: str) -> tuple[Array, Array]:
    """Return rates per bin and the extrapolated mask (see the module doc)."""
    first, last = float(starts_s.min()), float(starts_s.max())
    # a single instant of data still observes something: one grid step
    last = max(last, first + _GRID_S)
    weekly = last - first >= _WEEK_S
    n_bins = 7 * BINS_PER_DAY if weekly else BINS_PER_DAY

    # observation seconds per bin, on a grid of short steps
    edges = np.append(np.arange(first, last, _GRID_S), last)
    middles = (edges[:-1] + edges[1:]) / 2
    exposure_s = np.bincount(
        _bins(middles, timezone, weekly), weights=np.diff(edges), minlength=n_bins
    )
    counts = np.bincount(_bins(starts_s, timezone, weekly), minlength=n_bins)

    # rates where observed, the mean rate elsewhere
    observed = exposure_s >= BIN_S / 2
    if not observed.any():
        observed = exposure_s > 0
    mean = counts.sum() / exposure_s.sum()
    rates = np.full(n_bins, mean, dtype=np.float64)
    rates[observed] = counts[observed] / exposure_s[observed]
    shape = (7 if weekly else 1, BINS_PER_DAY)
    return rates.reshape(shape), (~observed).reshape(shape)


def _bins(times_s: Array, timezone: str, weekly: bool) -> Array:
    bins = profile_bins(times_s, timezone)
    return bins if weekly else bins % BINS_PER_DAY
