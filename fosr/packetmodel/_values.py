"""Draw payload sizes and gaps of sampled paths under byte and time totals.

Sizes.  A packet on an edge of the ``Empty`` class carries nothing; any
other packet carries between 1 and the protocol's largest payload.  The
sizes of one flow's direction are drawn from their edges' normal laws
conditioned on their sum (METHODS.md §4.2, option two): with independent
``x_i ~ N(mu_i, s_i^2)``, ``x_i + s_i^2 / sum(s^2) * (S - sum(x))`` has the
law of ``x`` given ``sum(x) = S``.  The draws are then clipped to their
bounds and rounded, and the rounding residue is pushed onto the packets
that still have room, so the sum is met exactly whenever the bounds allow
it.

Gaps.  Each packet's gap (decibel microseconds) is drawn from its edge's
guard given the packet's size (the conditional normal), turned into
nanoseconds, and the gaps of a flow are scaled so that they add up to the
flow's duration; the rounding residue goes to the last gap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.packetmodel._automaton import VARIANCE_FLOOR, Automaton
from fosr.packetmodel._symbols import EMPTY, gap_ns_of_units

__all__ = ["MAX_PAYLOAD", "sample_gaps", "sample_sizes", "size_bounds"]

Array = npt.NDArray[Any]

# largest payload of one packet on a 1500-byte MTU without options
MAX_PAYLOAD = {6: 1460, 17: 1472, 1: 1472, 58: 1452}
_DEFAULT_MAX_PAYLOAD = 1472


def size_bounds(automaton: Automaton) -> tuple[Array, Array]:
    """Return the smallest and largest payload size each edge can carry."""
    empty = np.array(
        [
            automaton.symbols[s].payload_class == EMPTY
            for s in automaton.symbol.tolist()
        ],
        dtype=bool,
    )
    largest = MAX_PAYLOAD.get(automaton.proto, _DEFAULT_MAX_PAYLOAD)
    hi = np.maximum(largest, automaton.size_hi)
    lo = np.where(empty, 0, 1).astype(np.int64)
    return lo, np.where(empty, 0, hi).astype(np.int64)


def sample_sizes(
    automaton: Automaton,
    edges: Array,
    group: Array,
    target: Array,
    rng: np.random.Generator,
) -> tuple[Array, Array]:
    """Return sizes of packets on ``edges`` and whether each group met its target.

    ``group`` numbers the packets' (flow, direction) groups 0..G-1 and
    ``target`` gives each group's payload total (negative: no constraint).
    An unreachable total is replaced by the nearest reachable one.
    """
    n_groups = len(target)
    lo_e, hi_e = size_bounds(automaton)
    lo, hi = lo_e[edges], hi_e[edges]
    mean = automaton.mean[edges, 1]
    var = np.where(hi > lo, np.maximum(automaton.cov[edges, 1, 1], VARIANCE_FLOOR), 0.0)
    draw = np.clip(mean + rng.standard_normal(len(edges)) * np.sqrt(var), lo, hi)

    # nearest reachable total, then condition the draws on it
    low_sum = np.bincount(group, weights=lo, minlength=n_groups)
    high_sum = np.bincount(group, weights=hi, minlength=n_groups)
    free = target < 0
    goal = np.where(free, 0, np.clip(target, low_sum, high_sum))
    met = free | (goal == target)
    var_sum = np.bincount(group, weights=var, minlength=n_groups)
    draw_sum = np.bincount(group, weights=draw, minlength=n_groups)
    share = np.where(var_sum[group] > 0, var / np.maximum(var_sum[group], 1e-300), 0.0)
    conditioned = draw + share * (goal - draw_sum)[group]
    sizes = np.where(free[group], draw, conditioned)
    sizes = np.clip(np.rint(sizes), lo, hi).astype(np.int64)

    # push what clipping and rounding left over onto packets with room
    for _ in range(64):
        residue = np.where(
            free, 0, goal - np.bincount(group, weights=sizes, minlength=n_groups)
        )
        residue = residue.astype(np.int64)
        if not residue.any():
            break
        r = residue[group]
        room = np.where(r > 0, hi - sizes, np.where(r < 0, sizes - lo, 0))
        room_sum = np.bincount(group, weights=room, minlength=n_groups)
        part = np.where(room > 0, room / np.maximum(room_sum[group], 1), 0.0)
        step = np.trunc(part * r).astype(np.int64)
        # at least one byte each on the first packets with room
        rank = _rank_in_group(group, room > 0)
        need = np.abs(r) - np.abs(
            np.bincount(group, weights=step, minlength=n_groups)[group]
        )
        extra = (room > 0) & (rank < need) & (np.abs(step) < room)
        step += np.where(extra, np.sign(r), 0)
        sizes = np.clip(sizes + step, lo, hi)
    return sizes, met


def _rank_in_group(group: Array, mask: Array) -> Array:
    """Return the rank of each masked element among its group's masked ones."""
    order = np.lexsort((np.arange(len(group)), ~mask, group))
    ranks = np.empty(len(group), dtype=np.int64)
    sorted_group = group[order]
    first = np.searchsorted(sorted_group, sorted_group)
    ranks[order] = np.arange(len(group)) - first
    return ranks


def sample_gaps(
    automaton: Automaton,
    edges: Array,
    sizes: Array,
    offsets: Array,
    duration_ns: Array,
    rng: np.random.Generator,
) -> Array:
    """Return the gap in nanoseconds before each packet (0 for each first one).

    A flow's gaps add up to ``duration_ns`` exactly when it is finite and
    >= 0 and the flow has two packets or more; otherwise the drawn gaps are
    kept as they are.
    """
    mean, cov = automaton.mean[edges], automaton.cov[edges]
    var_s = np.maximum(cov[:, 1, 1], VARIANCE_FLOOR)
    cond_mean = mean[:, 0] + cov[:, 0, 1] / var_s * (sizes - mean[:, 1])
    cond_var = np.maximum(cov[:, 0, 0] - cov[:, 0, 1] ** 2 / var_s, VARIANCE_FLOOR)
    units = cond_mean + rng.standard_normal(len(edges)) * np.sqrt(cond_var)
    gaps = gap_ns_of_units(np.maximum(units, 0.0))
    n_flows = len(offsets) - 1
    lengths = np.diff(offsets)
    flow = np.repeat(np.arange(n_flows), lengths)
    firsts = offsets[:-1][lengths > 0]
    gaps[firsts] = 0.0

    # scale each flow's gaps to its duration
    total = np.bincount(flow, weights=gaps, minlength=n_flows)
    duration = np.asarray(duration_ns, dtype=np.float64)
    scalable = np.isfinite(duration) & (duration >= 0) & (lengths >= 2)
    scale = np.ones(n_flows)
    np.divide(duration, total, out=scale, where=scalable & (total > 0))
    gaps *= scale[flow]
    # no drawn gap at all (all zero) but a duration to fill: spread it evenly
    even = scalable & (total <= 0) & (duration > 0)
    spread = np.where(even, duration / np.maximum(lengths - 1, 1), 0.0)
    gaps = np.where(even[flow], spread[flow], gaps)
    gaps[firsts] = 0.0
    out = np.floor(gaps).astype(np.int64)

    # the rounding residue (under a nanosecond per packet) goes to each
    # flow's last gap
    total_ns = np.bincount(flow, weights=out, minlength=n_flows).astype(np.int64)
    wanted = np.where(scalable, np.rint(np.where(scalable, duration, 0)), 0)
    residue = np.where(scalable, wanted.astype(np.int64) - total_ns, 0)
    has = lengths >= 2
    out[offsets[1:][has] - 1] += residue[has]
    return np.maximum(out, 0)
