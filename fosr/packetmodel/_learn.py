"""Learn one timed automaton from words by minimum description length.

How this works
--------------
The search follows TADAM (METHODS.md §3.2-3.3) within a family of automata
where the state after an event is a function of the classes of the last
two matched symbols, which keeps every operation cheap and the automaton
deterministic without folding:

1. the *state-symbol* initialisation (the one Fos-R uses for network
   traffic) gives every symbol its own class, the state reached by
   emitting it, plus the initial state;
2. **state merges** join two classes of symbols that share an outgoing
   symbol, greedily, the best merge first, while the description length
   drops.  Two same-symbol edges out of the merged state already share
   their destination, so a merge changes only two rows of the transition
   table and is scored from sufficient statistics (counts, sums and second
   moments of the values), all candidate pairs at once.  The initial state
   is never merged;
3. a **state split** by history: each state is split by the class of the
   symbol before it (a state becomes a pair (previous class, class)), and
   the pairs of one class are merged back greedily while that pays.  Only
   pairs of the same class are merged, so the destination of an edge still
   depends on its source's class and symbol alone;
4. **sub-part deletion** removes a rare edge when its events cost less as
   noise; the words are routed again;
5. the **noise model** keeps the addition operation, its probability
   estimated by EM (at most 4 rounds, starting at 0.025, +1 prior, at most
   25 % noise, as TADAM does);
6. an **edge split** fits a mixture of up to 4 diagonal Gaussians to the
   edge's values and keeps it when it shortens the code (the component is
   paid with its weight, the extra edges with their parameters).

The score is L(A) + L(D|A) in bits.  L(A) is TADAM's model cost (states,
initial and accepting state, noise and transition probabilities at
precision 0.01, per edge its endpoints, symbol and guard parameters by the
universal integer code).  L(D|A) pays per matched event -log2 p_none, the
transition -log2 p(e|q) and the values; during the search the values are
paid with the Gaussian's differential entropy after adding the variance of
a unit box (1/12) to the guard, which stands in for the box probabilities
and gives the search closed-form costs.

Deliberately left out (TODO: each would widen the search): merges of
states with different histories that need recursive folding, memory
beyond two symbols, the noise operations deletion, re-emission,
transposition and substitution, and the APTA and TAG initialisations.  The
family's determinism makes every training word matched or corrected by
additions, so no word is left uncorrected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.packetmodel._automaton import VARIANCE_FLOOR, Automaton, universal_bits
from fosr.packetmodel._symbols import Words

__all__ = ["LearnOptions", "learn_automaton"]

Array = npt.NDArray[Any]

_LOG2_100 = math.log2(100.0)
_BOX_VARIANCE = 1.0 / 12.0
_LOG2_2PIE = math.log2(2 * math.pi * math.e)
# statistics per (row, symbol): n, sum gap, sum size, sum gap^2, sum size^2,
# sum gap*size
_N, _SG, _SS, _SGG, _SSS, _SGS = range(6)
# an edge split fits its mixture on at most this many values, in this many
# EM rounds
_MIXTURE_SAMPLE = 1000
_MIXTURE_ROUNDS = 20


@dataclass(frozen=True)
class LearnOptions:
    """Settings of one automaton's search.

    ``max_merges`` bounds the greedy merge steps; ``delete_below`` is the
    largest edge count considered for deletion; ``split_min`` the smallest
    edge count tried for an edge split; ``max_components`` the largest
    mixture tried there.
    """

    max_merges: int = 500
    delete_below: int = 3
    split_min: int = 8
    max_components: int = 4
    memory: bool = True
    seed: int = 0


def learn_automaton(
    words: Words, proto: int, options: LearnOptions | None = None
) -> Automaton:
    """Learn the automaton of ``words`` (all of one service); see the module doc."""
    options = options or LearnOptions()
    n_symbols = len(words.symbols)

    # state-symbol initialisation, then merges of symbol classes
    classes = np.arange(n_symbols, dtype=np.int64) + 1
    lookup = _first_order(classes)
    nothing = np.zeros((n_symbols + 1, n_symbols), dtype=bool)
    route = _route(words, classes, lookup, nothing)
    stats, ends = _stats(words, route, n_symbols + 1)
    group = _merge_rows(stats, ends, n_symbols, None, options.max_merges)
    classes = group[classes]
    lookup = _first_order(classes)

    # memory: split each state by the class before it, merge back what
    # does not pay
    if options.memory:
        lookup = _second_order(words, classes, options.max_merges)
    n_states = int(lookup.max()) + 1
    route = _route(words, classes, lookup, np.zeros((n_states, n_symbols), bool))

    # deletion of rare edges with the noise model, then the edges
    deleted, p_add, route = _delete_rare(
        words, classes, lookup, route, options.delete_below
    )
    return _build(words, proto, route, n_states, p_add, options)


@dataclass(frozen=True)
class _Route:
    """Per event: the state before it, the state after it, whether it is noise.

    ``final`` is the state each word ends in.
    """

    before: Array
    after: Array
    noise: Array
    final: Array


def _first_order(classes: Array) -> Array:
    """Return the state lookup of the state-symbol family: the state is the class.

    States are looked up by the pair (class of the matched event before
    last, class of the last matched event), numbered ``prev * K + cur``
    with ``K = max(classes) + 1`` and 0 for "no event yet".
    """
    k = int(classes.max()) + 1 if len(classes) else 1
    result: Array = np.tile(np.arange(k, dtype=np.int64), k)
    return result


def _route(words: Words, classes: Array, lookup: Array, deleted: Array) -> _Route:
    """Route every word through the automaton given by ``classes`` and ``lookup``.

    A matched event moves to the state of (class of the previous matched
    event, its own class); a noise event (its edge ``deleted``) leaves the
    state as it was.
    """
    n = len(words.symbol)
    k = int(classes.max()) + 1 if len(classes) else 1
    starts = np.repeat(words.offsets[:-1], np.diff(words.offsets))
    cls = classes[words.symbol] if n else np.zeros(0, np.int64)
    position = np.arange(n)
    noise = np.zeros(n, dtype=bool)
    before = np.zeros(n, dtype=np.int64)
    c1 = np.zeros(n, dtype=np.int64)
    for _ in range(64):
        # the last and the one-but-last matched events before each event
        last_incl = np.maximum.accumulate(np.where(noise, -1, position))
        last = np.concatenate(([-1], last_incl[:-1])) if n else last_incl
        at = np.maximum(last, 0)
        second = np.where(last >= 0, last[at], -1) if n else last
        c1 = np.where(last >= starts, cls[at], 0)
        c2 = np.where(second >= starts, cls[np.maximum(second, 0)], 0)
        before = lookup[c2 * k + c1]
        new_noise = deleted[before, words.symbol]
        if np.array_equal(new_noise, noise):
            break
        noise = new_noise
    after = np.where(noise, before, lookup[c1 * k + cls])
    lengths = np.diff(words.offsets)
    final = np.zeros(len(lengths), dtype=np.int64)
    has = lengths > 0
    final[has] = after[words.offsets[1:][has] - 1]
    return _Route(before, after, noise, final)


def _stats(words: Words, route: _Route, n_rows: int) -> tuple[Array, Array]:
    """Return per (row, symbol) value statistics and per row end counts."""
    n_symbols = len(words.symbols)
    keep = ~route.noise
    key = route.before[keep] * n_symbols + words.symbol[keep]
    g, s = words.gap[keep], words.size[keep].astype(np.float64)
    columns = [np.ones_like(g), g, s, g * g, s * s, g * s]
    size = n_rows * n_symbols
    stats = np.stack([np.bincount(key, weights=c, minlength=size) for c in columns], -1)
    ends = np.bincount(route.final, minlength=n_rows).astype(np.float64)
    return stats.reshape(n_rows, n_symbols, 6), ends[:n_rows]


def _second_order(words: Words, classes: Array, max_merges: int) -> Array:
    """Return the state lookup after splitting states by the class before them.

    Every pair (previous class, class) starts as its own state; pairs with
    the same class are then merged greedily while the description length
    drops.  Merging only states of the same class keeps the automaton
    deterministic without folding: the destination of an edge depends on
    the source's class and the symbol only.  Pairs never seen map to the
    busiest state of their class.
    """
    n_symbols = len(words.symbols)
    k = int(classes.max()) + 1
    identity = np.arange(k * k, dtype=np.int64)
    route = _route(words, classes, identity, np.zeros((k * k, n_symbols), bool))
    stats, ends = _stats(words, route, k * k)
    group = _merge_rows(stats, ends, n_symbols, identity % k, max_merges)

    # unseen pairs: the busiest group of their class
    used = (stats[..., _N].sum(axis=1) + ends) > 0
    used[0] = True
    weight = np.bincount(group, weights=stats[..., _N].sum(axis=1) + ends)
    for c in range(1, k):
        members = np.flatnonzero(identity % k == c)
        seen = members[used[members]]
        if len(seen) == 0:
            continue
        busiest = group[seen[np.argmax(weight[group[seen]])]]
        group[members[~used[members]]] = busiest
    _, dense = np.unique(group, return_inverse=True)
    result: Array = dense.ravel().astype(np.int64)
    return result


def _merge_rows(
    stats: Array, ends: Array, n_symbols: int, kind: Array | None, max_merges: int
) -> Array:
    """Greedily merge rows (states) while the description length drops.

    Row 0 (the initial state) is never merged; with ``kind``, only rows of
    the same kind are.  Returns each row's group, numbered densely with
    row 0's group 0.
    """
    stats, ends = stats.copy(), ends.copy()
    rows = len(stats)
    group = np.arange(rows, dtype=np.int64)
    alive = (stats[..., _N].sum(axis=1) + ends) > 0
    alive[0] = True
    bits, edges = _row_bits(stats, ends, n_symbols)
    for _ in range(max_merges):
        live = np.flatnonzero(alive[1:]) + 1
        if len(live) < 2:
            break
        out = stats[live, :, _N] > 0
        share = (out.astype(np.int64) @ out.T.astype(np.int64)) > 0
        if kind is not None:
            share &= kind[live][:, None] == kind[live][None, :]
        i_index, j_index = np.nonzero(np.triu(share, 1))
        if len(i_index) == 0:
            break
        n_states = int(alive.sum())
        total_bits, total_edges = bits[alive].sum(), edges[alive].sum()
        current = total_bits + _global_bits(n_states, total_edges)
        # after a merge: n_states - 1 states and the sink
        log_n = math.log2(n_states)
        fixed = (
            float(universal_bits(np.array([n_states]))[0])
            + 2 * log_n
            + 4 * _LOG2_100
            - n_states * _LOG2_100
        )
        best_cost, best = current - 1e-9, None
        for lo in range(0, len(i_index), 4096):
            a = live[i_index[lo : lo + 4096]]
            b = live[j_index[lo : lo + 4096]]
            merged_bits, merged_edges = _row_bits(
                stats[a] + stats[b], ends[a] + ends[b], n_symbols
            )
            cost = total_bits + merged_bits - bits[a] - bits[b]
            cost += (
                fixed + (total_edges + merged_edges - edges[a] - edges[b]) * 2 * log_n
            )
            j = int(np.argmin(cost))
            if cost[j] < best_cost:
                best_cost, best = float(cost[j]), (int(a[j]), int(b[j]))
        if best is None:
            break
        a_row, b_row = best
        stats[a_row] += stats[b_row]
        ends[a_row] += ends[b_row]
        alive[b_row] = False
        group[group == b_row] = a_row
        row_bits, row_edges = _row_bits(
            stats[a_row][None], ends[a_row : a_row + 1], n_symbols
        )
        bits[a_row], edges[a_row] = row_bits[0], row_edges[0]
    _, dense = np.unique(group, return_inverse=True)
    result: Array = dense.ravel().astype(np.int64)
    return result


def _row_bits(stats: Array, ends: Array, n_symbols: int) -> tuple[Array, Array]:
    """Return the bits of rows (transitions, values, edge parameters) and edges.

    The endpoints of edges (2 log2 |states| each) are paid by the caller,
    which knows the number of states.
    """
    n = stats[..., _N]
    present = n > 0
    has_end = ends > 0
    total = ((n + 0.5) * present).sum(-1) + np.where(has_end, ends + 0.5, 0.0)
    total = np.maximum(total, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        trans = -(n * np.log2((n + 0.5) / total[..., None]) * present).sum(-1)
        trans -= np.where(has_end, ends * np.log2((ends + 0.5) / total), 0.0)

    safe = np.maximum(n, 1.0)
    mg, ms = stats[..., _SG] / safe, stats[..., _SS] / safe
    vg = np.maximum(stats[..., _SGG] / safe - mg * mg, 0.0)
    vs = np.maximum(stats[..., _SSS] / safe - ms * ms, 0.0)
    cgs = stats[..., _SGS] / safe - mg * ms
    det = (vg + _BOX_VARIANCE) * (vs + _BOX_VARIANCE) - cgs * cgs
    values = (
        n * 0.5 * (2 * _LOG2_2PIE + np.log2(np.maximum(det, 1e-12))) * present
    ).sum(-1)

    parameters = (
        universal_bits(np.floor(np.abs(mg)) + 1)
        + universal_bits(np.floor(np.abs(ms)) + 1)
        + universal_bits(np.floor(vg / 0.1) + 1)
        + universal_bits(np.floor(vs / 0.1) + 1)
        + universal_bits(np.floor(np.abs(cgs) / 0.1) + 1)
        + math.log2(max(n_symbols, 1))
        + _LOG2_100
    )
    model = (parameters * present).sum(-1)
    model += np.where(has_end, math.log2(max(n_symbols, 1)) + _LOG2_100, 0.0)
    edges = present.sum(-1) + has_end
    return trans + values + model, edges.astype(np.float64)


def _global_bits(n_states: float, n_edges: float) -> float:
    """Return the bits of the states count, endpoints and probability precision."""
    n_all = n_states + 1  # the sink
    log_n = math.log2(n_all)
    return (
        float(universal_bits(np.array([n_all]))[0])
        + 2 * log_n
        + 4 * _LOG2_100
        - n_all * _LOG2_100
        + n_edges * 2 * log_n
    )


def _noise_event_bits(words: Words, n_symbols: int) -> Array:
    """Return the bits of each event paid as noise, without -log2 p_add."""
    values = universal_bits(np.rint(words.gap) + 1) + universal_bits(words.size + 1.0)
    result: Array = math.log2(n_symbols + 1) + values
    return result


def _delete_rare(
    words: Words, classes: Array, lookup: Array, route: _Route, delete_below: int
) -> tuple[Array, float, _Route]:
    """Delete rare edges whose events cost less as noise; estimate p_add by EM."""
    n_symbols = len(words.symbols)
    rows = int(lookup.max()) + 1
    deleted = np.zeros((rows, n_symbols), dtype=bool)
    p_add = 0.025
    literal = _noise_event_bits(words, n_symbols)
    log_n = math.log2(rows + 1)
    for _ in range(4):
        stats, ends = _stats(words, route, rows)
        bits, _ = _row_bits(stats, ends, n_symbols)
        n = stats[..., _N]
        added = False
        for q, a in np.argwhere((n > 0) & (n < delete_below)).tolist():
            without = stats[q].copy()
            without[a] = 0.0
            new_bits, _ = _row_bits(without[None], ends[q : q + 1], n_symbols)
            mask = (~route.noise) & (route.before == q) & (words.symbol == a)
            noise_bits = float((literal[mask] - math.log2(p_add)).sum())
            matched_bits = -n[q, a] * math.log2(1 - p_add)
            saved = bits[q] - new_bits[0] + 2 * log_n + matched_bits
            if noise_bits < saved and not deleted[q, a]:
                deleted[q, a] = True
                added = True

        # route again, then re-estimate the noise probability (EM)
        route = _route(words, classes, lookup, deleted)
        n_noise = int(route.noise.sum())
        p_add = min((n_noise + 1) / (len(route.noise) + 2), 0.25)
        if not added:
            break
    return deleted, p_add, route


def _build(
    words: Words,
    proto: int,
    route: _Route,
    n_states: int,
    p_add: float,
    options: LearnOptions,
) -> Automaton:
    """Return the automaton of the routed words, with edge splits."""
    n_symbols = len(words.symbols)
    keep = ~route.noise
    key = route.before[keep] * n_symbols + words.symbol[keep]
    after = route.after[keep]
    gap, size = words.gap[keep], words.size[keep].astype(np.float64)
    order = np.argsort(key, kind="stable")
    unique, first, counts = np.unique(key[order], return_index=True, return_counts=True)
    rng = np.random.default_rng(options.seed)

    src, dst, sym, count, mean, cov, lo, hi = [], [], [], [], [], [], [], []
    for k, start, n in zip(
        unique.tolist(), first.tolist(), counts.tolist(), strict=True
    ):
        q, a = divmod(k, n_symbols)
        members = order[start : start + n]
        values = np.stack([gap[members], size[members]], axis=1)
        labels = _split_edge(values, options, rng) if n >= options.split_min else None
        groups = (
            [values]
            if labels is None
            else [values[labels == c] for c in np.unique(labels)]
        )
        for part in groups:
            src.append(q)
            dst.append(int(after[members[0]]))
            sym.append(a)
            count.append(float(len(part)))
            mean.append(part.mean(axis=0))
            cov.append(_covariance(part))
            lo.append(int(part[:, 1].min()))
            hi.append(int(part[:, 1].max()))
    ends = np.bincount(route.final, minlength=n_states).astype(np.float64)

    # keep only the states some edge or word reaches, renumbered
    used = np.zeros(n_states, dtype=bool)
    used[0] = True
    used[np.asarray(src, np.int64)] = True
    used[np.asarray(dst, np.int64)] = True
    used[ends > 0] = True
    number = np.cumsum(used) - 1
    return Automaton(
        proto=proto,
        symbols=words.symbols,
        n_states=int(used.sum()),
        src=number[np.asarray(src, np.int64)],
        dst=number[np.asarray(dst, np.int64)],
        symbol=np.asarray(sym, np.int64),
        count=np.asarray(count, np.float64),
        end_count=ends[used],
        mean=np.asarray(mean, np.float64).reshape(-1, 2),
        cov=np.asarray(cov, np.float64).reshape(-1, 2, 2),
        size_lo=np.asarray(lo, np.int64),
        size_hi=np.asarray(hi, np.int64),
        p_add=p_add,
        n_examples=len(words),
    )


def _covariance(values: Array) -> Array:
    """Return the MLE covariance of rows of values, with TADAM's floor."""
    centred = values - values.mean(axis=0)
    cov: Array = centred.T @ centred / len(values)
    cov[0, 0] = max(cov[0, 0], VARIANCE_FLOOR)
    cov[1, 1] = max(cov[1, 1], VARIANCE_FLOOR)
    return cov + np.eye(2) * 1e-6


def _split_edge(
    values: Array, options: LearnOptions, rng: np.random.Generator
) -> Array | None:
    """Return component labels of the best mixture, or None when one Gaussian wins."""
    n = len(values)

    def bits_of(labels: Array, k: int) -> float:
        total = 0.0
        for c in range(k):
            part = values[labels == c]
            if len(part) == 0:
                continue
            var = part.var(axis=0) + _BOX_VARIANCE
            total += len(part) * 0.5 * (2 * _LOG2_2PIE + float(np.log2(var).sum()))
            weight = len(part) / n
            total -= len(part) * math.log2(weight)
            mg, ms = part.mean(axis=0)
            vg, vs = part.var(axis=0)
            total += float(
                universal_bits(
                    np.array(
                        [abs(mg) + 1, abs(ms) + 1, vg / 0.1 + 1, vs / 0.1 + 1, 1.0]
                    )
                ).sum()
            )
            total += _LOG2_100 + 2 * 4.0  # probability and endpoints, roughly
        return total

    best_labels = np.zeros(n, dtype=np.int64)
    best_bits = bits_of(best_labels, 1)
    for k in range(2, options.max_components + 1):
        labels = _diagonal_mixture(values, k, rng)
        if labels is None:
            break
        bits = bits_of(labels, k)
        if bits < best_bits:
            best_bits, best_labels = bits, labels
    if best_labels.max() == 0:
        return None
    return best_labels


def _diagonal_mixture(values: Array, k: int, rng: np.random.Generator) -> Array | None:
    """Fit a k-component diagonal Gaussian mixture by EM; return hard labels.

    The fit sees at most ``_MIXTURE_SAMPLE`` values (a random sample); every
    value is then labelled with its likeliest component.
    """
    if len(np.unique(values[: 4 * _MIXTURE_SAMPLE], axis=0)) < k:
        return None
    scale = values.std(axis=0) + 1e-9
    everything = values / scale
    x = everything
    if len(x) > _MIXTURE_SAMPLE:
        x = x[rng.choice(len(x), size=_MIXTURE_SAMPLE, replace=False)]
    # k-means++ style start on the scaled values
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = np.min([((x - c) ** 2).sum(axis=1) for c in centres], axis=0)
        if d.sum() <= 0:
            return None
        centres.append(x[rng.choice(len(x), p=d / d.sum())])
    mu = np.array(centres)
    var = np.ones((k, 2))
    weight = np.full(k, 1.0 / k)
    for _ in range(_MIXTURE_ROUNDS):
        log_p = (
            -0.5 * (((x[:, None, :] - mu[None]) ** 2) / var[None]).sum(-1)
            - 0.5 * np.log(var).sum(-1)[None]
            + np.log(weight)[None]
        )
        log_p -= log_p.max(axis=1, keepdims=True)
        resp = np.exp(log_p)
        resp /= resp.sum(axis=1, keepdims=True)
        nk = resp.sum(axis=0) + 1e-9
        weight = nk / nk.sum()
        mu = (resp.T @ x) / nk[:, None]
        var = (resp.T @ (x * x)) / nk[:, None] - mu * mu
        var = np.maximum(var, 1e-4)
    log_p = (
        -0.5 * (((everything[:, None, :] - mu[None]) ** 2) / var[None]).sum(-1)
        - 0.5 * np.log(var).sum(-1)[None]
        + np.log(weight)[None]
    )
    labels = np.argmax(log_p, axis=1)
    _, dense = np.unique(labels, return_inverse=True)
    result: Array = dense.ravel().astype(np.int64)
    return result
