"""The timed automaton of one service: states, edges, guards.

How this works
--------------
A probabilistic deterministic real-time automaton (METHODS.md §3.1).  State
0 is the initial state; the accepting sink is implicit: ``end_count[q]``
counts the training words that ended in state ``q`` (the ``$`` edge from
``q`` to the sink).  Every other edge ``e`` goes from ``src[e]`` to
``dst[e]`` emitting ``symbol[e]`` (an index into ``symbols``), so it stands
for one packet.  Its guard is a bivariate normal over the packet's values
``[gap, size]`` (gap in decibel microseconds, size in payload bytes) with
mean ``mean[e]`` and covariance ``cov[e]`` (2 x 2); ``size_lo[e]`` and
``size_hi[e]`` bound the sizes seen on the edge.

Parallel edges (same source, symbol and destination) come from edge splits:
each holds one component of a mixture of guards.  Transition probabilities
follow TADAM's +1/2 smoothing over the out-edges of a state, the ``$``
edge included when it exists:

    p(e | q) = (n_e + 1/2) / sum over out-edges e' of q of (n_e' + 1/2)

The probability of integer values ``v`` under a guard is the box
probability of ``[v - 1/2, v + 1/2]``, computed as the size's box times the
gap's box under the conditional normal of the gap given the size (exact
for a diagonal covariance, an approximation otherwise).

The noise model keeps one operation, *addition*: an event the automaton
cannot emit from the current state costs ``-log2 p_add + log2 |symbols|``
plus the universal code of its values, and leaves the state unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from fosr.packetmodel._symbols import Symbol

__all__ = [
    "VARIANCE_FLOOR",
    "Automaton",
    "universal_bits",
]

Array = npt.NDArray[Any]

VARIANCE_FLOOR = 1e-6
# TADAM floors the guard probability of one event at 1e-3
_GUARD_FLOOR = 1e-3
_LOG2_C0 = math.log2(2.865064)


def universal_bits(n: Array) -> Array:
    """Return Rissanen's universal code length of integers ``n >= 1``, in bits."""
    value = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    total = np.full(value.shape, _LOG2_C0)
    term = np.log2(value)
    while np.any(term > 0):
        total += np.where(term > 0, term, 0.0)
        term = np.where(term > 0, np.log2(np.maximum(term, 1e-300)), 0.0)
    return total


@dataclass(frozen=True, eq=False)
class Automaton:
    """A learnt timed automaton; see the module docstring for the semantics.

    ``proto`` is the IP protocol of the service, ``n_examples`` the number
    of training connections, ``p_add`` the probability of the noise
    operation *addition* (estimated by EM), ``notes`` lines for the
    learning summary.
    """

    proto: int
    symbols: tuple[Symbol, ...]
    n_states: int
    src: Array
    dst: Array
    symbol: Array
    count: Array
    end_count: Array
    mean: Array
    cov: Array
    size_lo: Array
    size_hi: Array
    p_add: float = 0.0
    n_examples: int = 0
    notes: tuple[str, ...] = ()
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_edges(self) -> int:
        """Return the number of packet edges (``$`` edges not included)."""
        return len(self.src)

    def probabilities(self) -> tuple[Array, Array]:
        """Return ``p(e | src[e])`` per edge and ``p($ | q)`` per state."""
        smoothed = self.count + 0.5
        ends = np.where(self.end_count > 0, self.end_count + 0.5, 0.0)
        totals = np.bincount(self.src, weights=smoothed, minlength=self.n_states)
        totals = totals + ends
        safe = np.where(totals > 0, totals, 1.0)
        return smoothed / safe[self.src], ends / safe

    def forward_flags(self) -> Array:
        """Return per edge whether its packet travels client to server."""
        return np.array([self.symbols[s].forward for s in self.symbol.tolist()], bool)

    def guard_log2(self, edges: Array, gap: Array, size: Array) -> Array:
        """Return log2 of the box probability of integer values on ``edges``."""
        mean, cov = self.mean[edges], self.cov[edges]
        var_s = np.maximum(cov[:, 1, 1], VARIANCE_FLOOR)
        var_g = np.maximum(cov[:, 0, 0], VARIANCE_FLOOR)
        cond_mean = mean[:, 0] + cov[:, 0, 1] / var_s * (size - mean[:, 1])
        cond_var = np.maximum(var_g - cov[:, 0, 1] ** 2 / var_s, VARIANCE_FLOOR)
        p_size = _box(size, mean[:, 1], var_s)
        p_gap = _box(gap, cond_mean, cond_var)
        result: Array = np.log2(np.maximum(p_size * p_gap, _GUARD_FLOOR))
        return result

    def word_bits(self, symbol: Array, gap: Array, size: Array) -> float:
        """Return the code length in bits of one word (its ``$`` included).

        Symbols are indices into ``symbols``, or -1 for a symbol the
        automaton never saw; ``gap`` and ``size`` are rounded to integers.
        The path is followed greedily; an event with no edge from the
        current state is paid as noise (addition), see the module docstring.
        """
        p_edge, p_end = self.probabilities()
        table = self._out_table()
        gap_i = np.rint(gap).astype(np.float64)
        size_i = np.rint(size).astype(np.float64)
        p_none = 1.0 - self.p_add
        noise_bits = -math.log2(max(self.p_add, 1e-6)) + math.log2(
            len(self.symbols) + 1
        )
        bits = 0.0
        state = 0
        for i, a in enumerate(symbol.tolist()):
            edges = table.get((state, a)) if a >= 0 else None
            if edges is None:
                values = universal_bits(np.array([gap_i[i] + 1, size_i[i] + 1]))
                bits += noise_bits + float(values.sum())
                continue
            guard = np.exp2(
                self.guard_log2(
                    edges, np.full(len(edges), gap_i[i]), np.full(len(edges), size_i[i])
                )
            )
            bits -= math.log2(p_none) + math.log2(float((p_edge[edges] * guard).sum()))
            state = int(self.dst[edges[0]])
        if p_end[state] > 0:
            bits -= math.log2(p_none) + math.log2(float(p_end[state]))
        else:
            bits += noise_bits
        return bits

    def _out_table(self) -> dict[tuple[int, int], Array]:
        """Return the edges leaving each (state, symbol), cached."""
        table = self.cache.get("out")
        if table is None:
            table = {}
            for e, (q, a) in enumerate(
                zip(self.src.tolist(), self.symbol.tolist(), strict=True)
            ):
                table.setdefault((q, a), []).append(e)
            table = {k: np.asarray(v, dtype=np.int64) for k, v in table.items()}
            self.cache["out"] = table
        result: dict[tuple[int, int], Array] = table
        return result


def _box(value: Array, mean: Array, var: Array) -> Array:
    """Return the probability of ``[value - 1/2, value + 1/2]`` under N(mean, var)."""
    sd = np.sqrt(var)
    upper = ndtr((value + 0.5 - mean) / sd)
    lower = ndtr((value - 0.5 - mean) / sd)
    result: Array = upper - lower
    return result
