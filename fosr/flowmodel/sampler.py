"""Sample flows from a learnt flow model, in time order, without end.

How this works (METHODS.md §1.7, the streaming re-cast; ARCHITECTURE.md,
"Scale"):

- Time is cut into windows of ``window_s`` seconds aligned to the Unix
  epoch; window ``w`` is ``[w * window_s, (w + 1) * window_s)``.  Everything
  about the instances that *start* in window ``w`` comes from one generator
  seeded by ``(seed, w)``, drawn in a fixed order: their number ~ Poisson
  (rate at the window's middle x ``window_s`` x ``rate_scale``; windows are
  shorter than the 15-minute bins of the profile), their starts uniform in
  the window, their kinds by weight, then per kind, in kind order, the
  delays of each gap and one batch of network records
  (:meth:`BayesNet.sample`), then the draws inside continuous bins and the
  client ports of all their rows.  So a flow depends only on the model, the
  seed and its window, never on how a caller cuts time into ranges or
  batches.
- A range ``[a, b)`` holds the rows starting in it, including rows of
  instances that started up to ``max_gap_s x (max_rows - 1)`` before
  ``a``: those earlier windows are drawn again and only their late rows
  kept.  :meth:`FlowSampler.batches` keeps rows drawn past the end of a
  batch for the next one instead.
- Shards: instance ``j`` (in start order) of window ``w`` belongs to shard
  ``(w + j) mod shards``.  Every shard makes all the draws of a window
  (counts, starts, kinds, delays, network records, and one uniform per row
  for each continuous column and the client port), then turns only its own
  rows into values (the object arrays and bin draws), so the shards are
  disjoint and together give the unsharded stream exactly.  TODO: the
  draws are not divided by the number of shards; a 3-shard run costs each
  shard about 70% of the unsharded time on CIDDS (bench/bench_flow_sampler
  .py); a counter-based generator per instance would divide them too.
- Cost: per window and kind, one :meth:`BayesNet.sample` call, which
  rebuilds its probability tables on every call; at low rates (a few
  hundred flows per window) that dominates, so larger ``window_s`` or a
  table cache in :class:`BayesNet` pays off there.
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
from fosr.flowmodel.codebook import Codebook
from fosr.flowmodel.learn import LearnedFlowModel
from fosr.flowmodel.network import BayesNet
from fosr.flowmodel.timing import FlowTiming
from fosr.flows.table import FLOW_COLUMNS, FlowTable

__all__ = ["EPHEMERAL_PORTS", "FlowSampler", "fill_codes"]

Array = npt.NDArray[Any]

EPHEMERAL_PORTS = (32768, 60999)
"""Client ports drawn, inclusive: Linux's default ip_local_port_range."""

_ICMP_TYPES = {1: 8, 58: 128}
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
        self._cumulative = np.cumsum(timing.weights)
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
        n = int(rng.poisson(expected))
        starts_s = (w + np.sort(rng.random(n))) * self.window_s
        kinds = np.searchsorted(self._cumulative, rng.random(n), side="right")
        kinds = np.minimum(kinds, len(self._kinds) - 1)

        # rows of each kind: codes, start, instance and row number
        codes, times, instances, row_numbers = [], [], [], []
        for k, kind in enumerate(self._kinds):
            index = np.flatnonzero(kinds == k)
            if len(index) == 0:
                continue
            rows = kind.template.n_rows
            at = np.repeat(starts_s[index][:, None], rows, axis=1)
            if rows > 1:
                delays = self.timing.sample_delays(
                    k - 1, rng.random((len(index), rows - 1))
                )
                at[:, 1:] += np.cumsum(delays, axis=1)
            filled = kind.template.fill(kind.network.sample(len(index), rng))
            codes.append(filled.reshape(-1, filled.shape[2]))
            times.append(at.ravel())
            instances.append(np.repeat(index, rows))
            row_numbers.append(np.tile(np.arange(rows), len(index)))
        if not codes:
            return _no_rows()

        # time order; ties keep kind, instance and row order (stable sort)
        all_times = np.concatenate(times)
        order = np.argsort(all_times, kind="stable")
        mine = (w + np.concatenate(instances)[order]) % self.shards == self.shard
        return self._decode(np.concatenate(codes), all_times, order, mine, rng)

    def _decode(
        self,
        codes: Array,
        times: Array,
        order: Array,
        mine: Array,
        rng: np.random.Generator,
    ) -> dict[str, Array]:
        """Decode the shard's rows; draw for all rows to keep streams aligned.

        One uniform per row and continuous column, and one for the client
        port, are drawn for every row of the window; only the shard's rows
        are then turned into values.
        """
        u = rng.random((len(codes), len(self._binned) + 1))[mine]
        rows = order[mine] if self.shards > 1 else order
        codes = codes[rows]
        n = len(codes)
        out = {name: _blank(name, n) for name in self._unmined}
        out["start"] = times[rows]
        for i, name, values in self._categorical:
            out[name] = values[codes[:, i]]
        for j, (i, name, decoder) in enumerate(self._binned):
            out[name] = decoder.decode(codes[:, i], u[:, j])

        # client ports: ephemeral, or the ICMP type for ICMP
        low, high = EPHEMERAL_PORTS
        ports = low + np.floor(u[:, -1] * (high - low + 1)).astype(np.int32)
        for proto, icmp_type in _ICMP_TYPES.items():
            ports[out["proto"] == proto] = icmp_type
        out["client_port"] = np.minimum(ports, high)
        return out


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
