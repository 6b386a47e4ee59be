"""Sample packet paths of an automaton under a flow's constraints.

How this works
--------------
Forward filtering, backward sampling (METHODS.md §4.2).  Every packet edge
adds one to the forward count ``f`` or to the backward count ``b``, so the
product of the automaton with the counts is a DAG layered by ``n = f + b``.
The forward pass computes, layer by layer, ``alpha[f, b, q]``: the
probability of reaching state ``q`` having emitted ``f`` forward and ``b``
backward packets.  With the matrices ``Pf[q, q']`` and ``Pb[q, q']`` of
transition probabilities of forward and backward edges,

    alpha[f, b] = alpha[f - 1, b] @ Pf + alpha[f, b - 1] @ Pb

and ``Z(F, B) = alpha[F, B] @ p_end`` is the probability that a word has
exactly F forward and B backward packets.  Each layer is divided by its
largest value (the log of the divisors is kept), which leaves the ratios
the backward pass needs unchanged and keeps long flows from underflowing.

The backward pass starts in the sink with the requested ``(F, B)``, draws
the last state with weights ``alpha[F, B, q] * p_end[q]``, then repeatedly
an incoming edge ``e`` of the current state with weights
``alpha[prev(f, b, e), src[e]] * p_e``, until it is back at ``(0, 0)`` in
the initial state.  That draws exactly from ``P(path | F, B)``; all flows
of one automaton walk back together, one packet per step.

A request outside the table or with ``Z = 0`` is *infeasible*: it is
replaced by the feasible pair nearest in L1 distance (ties: the likelier
pair), and the flow is marked as adjusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.packetmodel._automaton import Automaton

__all__ = ["CountTable", "count_table", "sample_paths"]

Array = npt.NDArray[Any]

# bound on alpha's cells (states x (F + 1) x (B + 1)): 32 MB of float64 per
# automaton, cached for the life of the model; longer flows take the
# nearest feasible counts (a daemon holds every automaton's table)
MAX_CELLS = 4_000_000
# the forward pass is a Python loop over f + b: bound each count
# TODO: sample flows longer than MAX_COUNT packets in one direction by
# chaining walks instead of taking the nearest feasible count
MAX_COUNT = 2048
_GRID_STEP = 64


@dataclass(frozen=True, eq=False)
class CountTable:
    """The forward table of one automaton up to ``f_max`` and ``b_max``.

    ``alpha[f, b, q]`` is scaled per layer ``f + b``; ``log_scale[n]`` is
    the natural log of layer n's divisor product, so that
    ``log Z(F, B) = log(z[F, B]) + log_scale[F + B]``.
    """

    alpha: Array
    log_scale: Array
    z: Array
    p_edge: Array
    p_end: Array
    forward: Array
    padded: Array

    @property
    def f_max(self) -> int:
        """Return the largest forward count in the table."""
        return int(self.alpha.shape[0]) - 1

    @property
    def b_max(self) -> int:
        """Return the largest backward count in the table."""
        return int(self.alpha.shape[1]) - 1

    def log_z(self, f: Array, b: Array) -> Array:
        """Return ``log P(F = f, B = b)`` (natural log; -inf when infeasible)."""
        with np.errstate(divide="ignore"):
            result: Array = np.log(self.z[f, b]) + self.log_scale[f + b]
        return result


def count_table(automaton: Automaton, f_max: int, b_max: int) -> CountTable:
    """Return the forward table of ``automaton`` for counts up to the bounds.

    The bounds are rounded up to a multiple of 64 and cut so that the table
    holds at most ``MAX_CELLS`` cells; a cached table at least as large is
    reused.
    """
    n_states = automaton.n_states
    f_max, b_max = _grid(f_max, b_max, n_states)
    cached: CountTable | None = automaton.cache.get("count_table")
    if cached is not None and cached.f_max >= f_max and cached.b_max >= b_max:
        return cached
    if cached is not None:
        f_max, b_max = max(f_max, cached.f_max), max(b_max, cached.b_max)
        f_max, b_max = _grid(f_max, b_max, n_states)

    p_edge, p_end = automaton.probabilities()
    forward = automaton.forward_flags()
    pf = np.zeros((n_states, n_states))
    pb = np.zeros((n_states, n_states))
    np.add.at(pf, (automaton.src[forward], automaton.dst[forward]), p_edge[forward])
    np.add.at(pb, (automaton.src[~forward], automaton.dst[~forward]), p_edge[~forward])

    # layer by layer along n = f + b
    alpha = np.zeros((f_max + 1, b_max + 1, n_states))
    alpha[0, 0, 0] = 1.0
    log_scale = np.zeros(f_max + b_max + 1)
    for n in range(1, f_max + b_max + 1):
        fs = np.arange(max(0, n - b_max), min(n, f_max) + 1)
        bs = n - fs
        layer = np.zeros((len(fs), n_states))
        has_f = fs >= 1
        layer[has_f] += alpha[fs[has_f] - 1, bs[has_f]] @ pf
        has_b = bs >= 1
        layer[has_b] += alpha[fs[has_b], bs[has_b] - 1] @ pb
        peak = float(layer.max())
        if peak <= 0.0:
            log_scale[n:] = log_scale[n - 1]
            break
        alpha[fs, bs] = layer / peak
        log_scale[n] = log_scale[n - 1] + math.log(peak)
    z = alpha @ p_end
    padded = np.zeros((f_max + 2, b_max + 2, n_states))
    padded[: f_max + 1, : b_max + 1] = alpha
    table = CountTable(
        padded[: f_max + 1, : b_max + 1],
        log_scale,
        z,
        p_edge,
        p_end,
        forward,
        padded,
    )
    automaton.cache["count_table"] = table
    return table


def _grid(f_max: int, b_max: int, n_states: int) -> tuple[int, int]:
    """Return bounds rounded up to the grid step and cut to MAX_CELLS."""
    f_max = -(-min(max(f_max, 1), MAX_COUNT) // _GRID_STEP) * _GRID_STEP
    b_max = -(-min(max(b_max, 1), MAX_COUNT) // _GRID_STEP) * _GRID_STEP
    while n_states * (f_max + 1) * (b_max + 1) > MAX_CELLS:
        if f_max >= b_max:
            f_max = max(_GRID_STEP, f_max // 2)
        else:
            b_max = max(_GRID_STEP, b_max // 2)
        if f_max == b_max == _GRID_STEP:
            break
    return f_max, b_max


def nearest_feasible(
    table: CountTable, f: Array, b: Array
) -> tuple[Array, Array, Array]:
    """Return feasible (f, b) nearest to the requests, and which were changed."""
    f = np.asarray(f, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    inside = (f >= 0) & (b >= 0) & (f <= table.f_max) & (b <= table.b_max)
    ok = np.zeros(len(f), dtype=bool)
    ok[inside] = table.z[f[inside], b[inside]] > 0
    if ok.all():
        return f, b, ~ok
    cells_f, cells_b = np.nonzero(table.z > 0)
    if len(cells_f) == 0:
        raise ValueError("the automaton accepts no word")
    weight = table.log_z(cells_f, cells_b)
    out_f, out_b = f.copy(), b.copy()
    pairs = np.unique(np.stack([f[~ok], b[~ok]], axis=1), axis=0)
    for pf, pb in pairs.tolist():
        distance = np.abs(cells_f - pf) + np.abs(cells_b - pb)
        best = np.flatnonzero(distance == distance.min())
        k = best[np.argmax(weight[best])]
        rows = (~ok) & (f == pf) & (b == pb)
        out_f[rows], out_b[rows] = cells_f[k], cells_b[k]
    return out_f, out_b, ~ok


def sample_paths(
    automaton: Automaton,
    f: Array,
    b: Array,
    rng: np.random.Generator,
) -> tuple[Array, Array, Array, Array]:
    """Draw one path per request with exactly the (feasible) counts.

    Returns CSR ``offsets`` and ``edges`` of the paths, and the counts
    used and whether each request had to be adjusted.
    """
    f = np.maximum(np.asarray(f, dtype=np.int64), 0)
    b = np.maximum(np.asarray(b, dtype=np.int64), 0)
    want_f = int(f.max()) if len(f) else 1
    want_b = int(b.max()) if len(b) else 1
    table = count_table(automaton, want_f, want_b)
    f, b, adjusted = nearest_feasible(table, f, b)
    lengths = f + b
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    edges = np.full(int(offsets[-1]), -1, dtype=np.int64)
    if len(f) == 0:
        return offsets, edges, f, adjusted

    # the last state, weighted by alpha and the end probability
    state = _draw(table.alpha[f, b] * table.p_end[None, :], rng)

    # walk back, one packet per step, longest flows first: draw the
    # predecessor (state, direction) group, then the edge inside it
    groups = _in_groups(automaton, table.p_edge)
    by_length = np.argsort(-lengths, kind="stable")
    cur_f, cur_b, cur_q = f[by_length], b[by_length], state[by_length]
    remaining = lengths[by_length].copy()
    base = offsets[by_length]
    active = int((remaining > 0).sum())
    # alpha padded with a zero row and column, so that index -1 reads 0;
    # per state and incoming group, the flat offset of the predecessor cell
    # relative to the current one, and the group's probability
    stride_f = table.padded.shape[1] * table.padded.shape[2]
    stride_b = table.padded.shape[2]
    # float64: in float32 the small cells of long flows underflow to zero, a
    # walk then finds no predecessor and steps below zero packets
    flat = table.padded.ravel()
    step_f = groups.forward[groups.by_state]
    shift = -step_f * stride_f - (1 - step_f) * stride_b + groups.src[groups.by_state]
    shift = shift.astype(np.int32 if flat.size < 2**31 - 1 else np.int64)
    in_p = groups.p[groups.by_state]
    in_size = (groups.by_state < len(groups.p) - 1).sum(axis=1)
    while active > 0:
        q = cur_q[:active]
        width = max(int(in_size[q].max()), 1)
        here = (cur_f[:active] * stride_f + cur_b[:active] * stride_b).astype(
            shift.dtype
        )
        weight = flat[here[:, None] + shift[q, :width]] * in_p[q, :width]
        g = groups.by_state[q, :width]
        chosen_group = g[np.arange(active), _draw(weight, rng)]
        members = groups.cumulative[chosen_group]
        inside = (members < rng.random(active)[:, None]).sum(axis=1)
        chosen = groups.edges[chosen_group, np.minimum(inside, members.shape[1] - 1)]
        remaining[:active] -= 1
        edges[base[:active] + remaining[:active]] = chosen
        cur_f[:active] -= groups.forward[chosen_group]
        cur_b[:active] -= 1 - groups.forward[chosen_group]
        cur_q[:active] = groups.src[chosen_group]
        while active > 0 and remaining[active - 1] == 0:
            active -= 1
    return offsets, edges, f, adjusted


@dataclass(frozen=True, eq=False)
class _InGroups:
    """Edges grouped by (destination, source, direction), for the backward walk.

    ``by_state[q]`` lists the groups entering ``q`` (padded with a last,
    dummy group of probability 0); group
    ``g`` leaves ``src[g]``, is forward when ``forward[g]`` is 1, has the
    total probability ``p[g]``, and holds ``edges[g]`` (padded by
    repetition) with the normalised cumulative probabilities
    ``cumulative[g]``.
    """

    by_state: Array
    src: Array
    forward: Array
    p: Array
    edges: Array
    cumulative: Array


def _in_groups(automaton: Automaton, p_edge: Array) -> _InGroups:
    """Return the cached incoming groups of ``automaton``'s states."""
    cached: _InGroups | None = automaton.cache.get("in_groups")
    if cached is not None:
        return cached
    fwd = automaton.forward_flags().astype(np.int64)
    key = np.stack([automaton.dst, automaton.src, fwd], axis=1)
    unique, group = np.unique(key, axis=0, return_inverse=True)
    group = group.ravel()
    n_groups = len(unique)
    size = np.bincount(group, minlength=n_groups)
    width = int(size.max()) if n_groups else 1
    order = np.argsort(group, kind="stable")
    rank = np.arange(len(group)) - np.searchsorted(group[order], group[order])
    edges = np.full((n_groups, width), -1, dtype=np.int64)
    edges[group[order], rank] = order
    # pad each row with its last edge, which the cumulative never selects
    edges = np.where(
        edges >= 0, edges, np.take_along_axis(edges, (size - 1)[:, None], 1)
    )
    mask = np.arange(width)[None, :] < size[:, None]
    p = np.where(mask, p_edge[edges], 0.0)
    total = p.sum(axis=1)
    cumulative = np.cumsum(p, axis=1) / np.maximum(total, 1e-300)[:, None]
    cumulative = np.where(mask, cumulative, 2.0)

    dst = unique[:, 0]
    in_size = np.bincount(dst, minlength=automaton.n_states)
    in_width = max(int(in_size.max()), 1) if n_groups else 1
    # missing entries point at a dummy group of probability 0
    by_state = np.full((automaton.n_states, in_width), n_groups, dtype=np.int64)
    in_order = np.argsort(dst, kind="stable")
    in_rank = np.arange(n_groups) - np.searchsorted(dst[in_order], dst[in_order])
    by_state[dst[in_order], in_rank] = in_order
    groups = _InGroups(
        by_state,
        np.append(unique[:, 1], 0),
        np.append(unique[:, 2], 0),
        np.append(total, 0.0),
        np.vstack([edges, np.zeros((1, width), np.int64)]),
        np.vstack([cumulative, np.full((1, width), 2.0)]),
    )
    automaton.cache["in_groups"] = groups
    return groups


def _draw(weight: Array, rng: np.random.Generator) -> Array:
    """Return one column index per row, with probability proportional to weight."""
    cumulative = np.cumsum(weight, axis=1)
    total = cumulative[:, -1]
    u = rng.random(len(weight)) * total
    pick = (cumulative <= u[:, None]).sum(axis=1)
    result: Array = np.minimum(pick, weight.shape[1] - 1)
    return result
