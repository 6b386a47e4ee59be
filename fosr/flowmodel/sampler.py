"""Sample flows from a learnt flow model, in time order, without end.

How this works (METHODS.md §1.7, the streaming re-cast; ARCHITECTURE.md,
"Scale"):

- Time is cut into windows of ``window_s`` seconds aligned to the Unix
  epoch; window ``w`` is ``[w * window_s, (w + 1) * window_s)``.  Everything
  about the instances that *start* in window ``w`` comes from generators
  seeded by ``(seed, w)`` and ``(seed, w, kind)``.  The first draws how
  many instances of each kind start in the window, each ~ Poisson (rate at
  the window's middle x ``window_s`` x ``rate_scale`` x the kind's share;
  windows are shorter than the 15-minute bins of the profile): the same
  law as one Poisson count with kinds drawn by weight.  Then each instance
  gets one row of uniforms from its kind's stream, the rows one after the
  other: its start in the window, the delays of its gaps, its network
  record (:meth:`BayesNet.sample_uniforms`), and per flow one for each
  continuous column's bin draw and one for the client port.  So a flow
  depends only on the model, the seed and its window, never on how a
  caller cuts time into ranges or batches.
- A range ``[a, b)`` holds the rows starting in it, including rows of
  instances that started up to ``max_gap_s x (max_rows - 1)`` before
  ``a``: those earlier windows are drawn again and only their late rows
  kept.  :meth:`FlowSampler.batches` keeps rows drawn past the end of a
  batch for the next one instead.
- Shards: the instances of one kind in window ``w`` are cut into
  ``shards`` blocks of consecutive positions, and block ``b`` goes to shard
  ``(b + w + kind) mod shards`` (rotated so that single instances spread
  over the shards).  A shard draws the window's counts, then only its own
  instances' rows: it jumps the kind's stream over the other blocks
  (``advance``; a uniform is one 64-bit step).  So the shards are
  disjoint, together give the unsharded stream exactly, and each makes
  about 1/N of the draws.
- Cost: per window and kind, one stream and one
  :meth:`BayesNet.sample_uniforms` call (the networks cache their
  cumulative tables); at low rates (a few instances per window) these
  fixed costs dominate, so larger ``window_s`` pays off there.
- Values: codes are decoded with the table's codebooks; addresses map back
  to the hosts seen in training (no topology yet).  The client port is not
  mined: TCP and UDP rows get an ephemeral port drawn uniformly from Linux's
  default range 32768-60999; ICMP rows get type 8 (echo request) and ICMPv6
  rows type 128 in ``client_port`` (TODO: the type is not mined, so other
  ICMP messages are not reproduced).  Flow columns that were not mined hold
  zero or the empty string.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.flowmodel._codes import BinDecoder, Template, fill_codes
from fosr.flowmodel.codebook import Codebook, log_uniform
from fosr.flowmodel.learn import LearnedFlowModel
from fosr.flowmodel.network import BayesNet
from fosr.flowmodel.timing import FlowTiming
from fosr.flows.table import FLOW_COLUMNS, FlowTable

__all__ = ["EPHEMERAL_PORTS", "FlowSampler", "fill_codes"]

Array = npt.NDArray[Any]

EPHEMERAL_PORTS = (32768, 60999)
"""Client ports drawn, inclusive: Linux's default ip_local_port_range."""

_ICMP_TYPES = {1: 8, 58: 128}
_HEADER_BYTES = {6: 40, 17: 28, 1: 28, 58: 48}
"""Smallest IP plus transport header per protocol; 20 (bare IPv4) else."""
_MAX_PACKET_BYTES = 65_535
_EMPTY = FlowTable.empty()


@dataclass(frozen=True)
class _Kind:
    network: BayesNet
    template: Template


class FlowSampler:
    """Draw the flows of a learnt model over any range of Unix time.

    ``columns`` and ``codebooks`` are the coded table's (what the model's
    codes mean); ``seed`` a non-negative integer; ``shard`` of ``shards``
    selects a disjoint part of the stream; ``window_s`` (positive) is the
    length of the windows the randomness is keyed by, and changing it
    changes the stream; ``rate_scale`` (non-negative) multiplies the rate
    profile (0: no flows).  Times before the epoch are refused.
    """

    def __init__(
        self,
        model: LearnedFlowModel,
        timing: FlowTiming,
        columns: Sequence[str],
        codebooks: Sequence[Codebook],
        *,
        seed: int,
        shard: int = 0,
        shards: int = 1,
        window_s: float = 60.0,
        rate_scale: float = 1.0,
    ) -> None:
        if shards < 1 or not 0 <= shard < shards:
            raise ValueError(f"shard {shard} of {shards}")
        if seed < 0 or not window_s > 0 or not rate_scale >= 0:
            raise ValueError(
                f"seed {seed}, window_s {window_s}, rate_scale {rate_scale}"
            )
        if len(timing.weights) != len(model.patterns) + 1:
            raise ValueError("timing fitted on another model")
        if len(columns) != len(codebooks):
            raise ValueError(f"{len(codebooks)} codebooks for {len(columns)} columns")

        # settings
        self.seed = seed
        self.shard = shard
        self.shards = shards
        self.window_s = float(window_s)
        self.rate_scale = float(rate_scale)

        # model
        self.timing = timing
        self.columns = tuple(columns)
        self.codebooks = tuple(codebooks)
        n = len(self.columns)
        self._kinds = [_Kind(model.background, Template.background(n))] + [
            _Kind(f.network, Template.of(f.pattern, f.variables, n))
            for f in model.patterns
        ]
        weights = np.asarray(timing.weights, np.float64)
        self._shares = weights / max(float(weights.sum()), 1e-300)
        self._categorical = [
            (i, name, book.values.astype(_dtype(name)))
            for i, (name, book) in enumerate(zip(columns, codebooks, strict=True))
            if not book.is_continuous
        ]
        self._unmined = [c for c in FLOW_COLUMNS if c not in self.columns]
        self._binned = [
            (i, name, BinDecoder.of(book, _dtype(name)))
            for i, (name, book) in enumerate(zip(columns, codebooks, strict=True))
            if book.is_continuous
        ]
        self.lookback_s = timing.max_gap_s * (timing.max_rows - 1)
        self._per_row = len(self._binned) + 1  # decoding uniforms per flow
        names = [name for _, name, _ in self._binned]
        self._byte_columns = [
            (j, direction) for j, name in enumerate(names)
            for direction in ("fwd", "bwd")
            if name == f"{direction}_bytes" and f"{direction}_packets" in self.columns
        ]  # fmt: skip

    def sample(self, start_s: float, end_s: float) -> FlowTable:
        """Return the flows starting in ``[start_s, end_s)``, by start time."""
        if end_s < start_s:
            raise ValueError(f"range [{start_s}, {end_s}) is reversed")
        first = self._window_of(start_s)
        last = math.ceil(end_s / self.window_s) - 1
        rows = _concat(self._draw(first, last))
        return _table(rows, start_s, end_s)

    def batches(self, start_s: float, batch_s: float) -> Iterator[FlowTable]:
        """Yield the flows of ``[start_s + k batch_s, start_s + (k+1) batch_s)``.

        Endless; ``batch_s`` is positive.  The concatenated batches equal
        :meth:`sample` over the same range.
        """
        if not batch_s > 0:
            raise ValueError(f"batch_s must be positive, got {batch_s}")
        next_window = self._window_of(start_s)
        pending: list[dict[str, Array]] = []
        k = 0
        while True:
            begin, end = start_s + k * batch_s, start_s + (k + 1) * batch_s
            last = math.ceil(end / self.window_s) - 1
            pending.extend(self._draw(next_window, last))
            next_window = max(next_window, last + 1)
            rows = _concat(pending)
            later = rows["start"] >= end
            pending = [{name: a[later] for name, a in rows.items()}]
            yield _table(rows, begin, end)
            k += 1

    def _window_of(self, start_s: float) -> int:
        """Return the first window whose instances reach ``start_s``."""
        if start_s < 0:
            raise ValueError(f"time {start_s} s lies before the Unix epoch")
        return max(math.floor((start_s - self.lookback_s) / self.window_s), 0)

    def _draw(self, first: int, last: int) -> list[dict[str, Array]]:
        """Return the shard's rows of windows ``first..last``, one dict each."""
        if last < first:
            return []
        windows = np.arange(first, last + 1)
        middles_s = (windows + 0.5) * self.window_s
        expected = self.timing.rate_at(middles_s) * self.window_s * self.rate_scale
        return [
            self._draw_window(int(w), float(mu))
            for w, mu in zip(windows, expected, strict=True)
        ]

    def _draw_window(self, w: int, expected: float) -> dict[str, Array]:
        """Return the shard's rows of the instances starting in window ``w``."""
        rng = np.random.default_rng([self.seed, w])
        counts = rng.poisson(expected * self._shares)

        # the shard's instances of each kind: codes, times, decoding uniforms
        codes, times, uniforms = [], [], []
        for k, kind in enumerate(self._kinds):
            first, last = self._block(int(counts[k]), w, k)
            if first == last:
                continue
            u = self._instance_uniforms(w, k, kind, first, last)
            rows = kind.template.n_rows
            at = np.repeat((w + u[:, :1]) * self.window_s, rows, axis=1)
            if rows > 1:
                delays = self.timing.sample_delays(k - 1, u[:, 1:rows])
                at[:, 1:] += np.cumsum(delays, axis=1)
            n_vars = len(kind.network)
            records = kind.network.sample_uniforms(u[:, rows : rows + n_vars])
            filled = kind.template.fill(records)
            codes.append(filled.reshape(-1, filled.shape[2]))
            times.append(at.ravel())
            uniforms.append(u[:, rows + n_vars :].reshape(-1, self._per_row))
        if not codes:
            return _no_rows()

        # time order; ties keep kind, instance and row order (stable sort)
        all_times = np.concatenate(times)
        order = np.argsort(all_times, kind="stable")
        return self._decode(
            np.concatenate(codes)[order],
            all_times[order],
            np.concatenate(uniforms)[order],
        )

    def _block(self, m: int, w: int, k: int) -> tuple[int, int]:
        """Return the shard's positions ``[first, last)`` among ``m`` instances.

        The instances of a kind in a window are cut into ``shards`` blocks
        of consecutive positions; block ``b`` goes to shard ``(b + w + k)
        mod shards``, so that single instances spread over the shards.
        """
        if self.shards == 1:
            return 0, m
        b = (self.shard - w - k) % self.shards
        return b * m // self.shards, (b + 1) * m // self.shards

    def _instance_uniforms(
        self, w: int, k: int, kind: _Kind, first: int, last: int
    ) -> Array:
        """Return the uniforms of instances ``first..last-1`` of kind ``k``.

        Each instance of the kind has one row of uniforms: its start in the
        window, its delays, its network record, then per flow one for each
        binned column and one for the client port.  Rows come one after the
        other from a stream seeded by (seed, window, kind); a shard jumps
        over the rows of the other shards (one uniform is one 64-bit step),
        so it draws only its own and still gets what the unsharded stream
        gets.
        """
        rows = kind.template.n_rows
        width = rows + len(kind.network) + rows * self._per_row
        bits = np.random.PCG64([self.seed, w, k + 1])  # default_rng's generator
        if first:
            bits.advance(first * width)
        u: Array = np.random.Generator(bits).random((last - first, width))
        return u

    def _decode(self, codes: Array, times: Array, u: Array) -> dict[str, Array]:
        """Turn the shard's rows, in time order, into flow columns."""
        n = len(codes)
        out = {name: _blank(name, n) for name in self._unmined}
        out["start"] = times
        for i, name, values in self._categorical:
            out[name] = values[codes[:, i]]
        for j, (i, name, decoder) in enumerate(self._binned):
            out[name] = decoder.decode(codes[:, i], u[:, j])
        for j, direction in self._byte_columns:
            self._fit_bytes_to_packets(out, direction, codes, u[:, j], j)

        # client ports: ephemeral, or the ICMP type for ICMP
        low, high = EPHEMERAL_PORTS
        ports = low + np.floor(u[:, -1] * (high - low + 1)).astype(np.int32)
        for proto, icmp_type in _ICMP_TYPES.items():
            ports[out["proto"] == proto] = icmp_type
        out["client_port"] = np.minimum(ports, high)
        return out

    def _fit_bytes_to_packets(
        self, out: dict[str, Array], direction: str, codes: Array, u: Array, j: int
    ) -> None:
        """Redraw bytes inside their bin where the bin allows a valid size.

        A bin of bytes and a bin of packets are drawn independently inside
        their intervals, which can give fewer bytes than the headers of the
        packets, or bytes without packets.  Where the bin of bytes holds a
        size between the headers (:data:`_HEADER_BYTES` per packet) and
        65,535 bytes per packet, bytes are drawn log-uniformly in that
        overlap from the same uniform; the code is unchanged either way.
        """
        i, _, decoder = self._binned[j]
        if not decoder.is_integer:
            return
        name = f"{direction}_bytes"
        packets = out[f"{direction}_packets"].astype(np.float64)
        header = np.full(len(packets), 20.0)
        for proto, size in _HEADER_BYTES.items():
            header[out["proto"] == proto] = size
        low = np.maximum(decoder.low[codes[:, i]], header * packets)
        high = np.minimum(decoder.high[codes[:, i]], _MAX_PACKET_BYTES * packets)
        fits = (low <= high) & (codes[:, i] > 0)
        drawn = log_uniform(low[fits], high[fits], u[fits], integer=True)
        out[name][fits] = drawn


def _dtype(name: str) -> np.dtype[Any]:
    dtype: np.dtype[Any] = getattr(_EMPTY, name).dtype
    return dtype


def _blank(name: str, n: int) -> Array:
    """Return ``n`` rows of an unmined column: zeros or empty strings."""
    dtype = _dtype(name)
    return np.full(n, "" if dtype.kind == "O" else 0, dtype=dtype)


def _no_rows() -> dict[str, Array]:
    return {name: np.empty(0, dtype=_dtype(name)) for name in FLOW_COLUMNS}


def _concat(parts: Sequence[dict[str, Array]]) -> dict[str, Array]:
    """Stack window rows in window order, then order them by start (stable)."""
    if not parts:
        return _no_rows()
    rows = {name: np.concatenate([p[name] for p in parts]) for name in FLOW_COLUMNS}
    order = np.argsort(rows["start"], kind="stable")
    return {name: a[order] for name, a in rows.items()}


def _table(rows: dict[str, Array], start_s: float, end_s: float) -> FlowTable:
    """Return the rows (sorted by start) with a start in ``[start_s, end_s)``."""
    starts = rows["start"]
    lo = int(np.searchsorted(starts, start_s, side="left"))
    hi = int(np.searchsorted(starts, end_s, side="left"))
    return FlowTable(**{name: a[lo:hi] for name, a in rows.items()})
