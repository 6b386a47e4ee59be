"""The packet model: one automaton per service, and header sequences.

A *service* is ``(proto, server_port)`` for TCP and UDP and ``(proto,
icmp_type)`` for ICMP (the flow table keeps the type in ``client_port``).
Services with at least ``min_examples`` training connections get their own
automaton; the others are served by a fallback automaton learnt from all
connections of their protocol.  A protocol with no training connection at
all gets a generic two-symbol automaton (forward and backward binary
payloads), so that every flow can be sampled.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.connections import Connections
from fosr.flows.table import PROTO_NAMES, FlowTable
from fosr.packetmodel._automaton import Automaton
from fosr.packetmodel._learn import LearnOptions, learn_automaton
from fosr.packetmodel._sample import sample_paths
from fosr.packetmodel._symbols import BINARY, Symbol, gap_units, words_of
from fosr.packetmodel._values import sample_gaps, sample_sizes, size_bounds

__all__ = [
    "HEADER_BYTES",
    "HeaderSequences",
    "PacketModel",
    "ServiceKey",
    "learn_packet_model",
    "service_keys",
]

Array = npt.NDArray[Any]
ServiceKey = tuple[int, int]

logger = logging.getLogger(__name__)

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
# IP + transport header bytes assumed per packet when turning a flow's IP
# bytes into payload bytes: IPv4 without options, TCP without options
HEADER_BYTES = {TCP: 40, UDP: 28, ICMP: 28, ICMPV6: 28}
_DEFAULT_HEADER_BYTES = 28
# the fallback of a protocol learns from at most this many connections
_FALLBACK_SAMPLE = 3000
# a service learns from at most this many connections (a seeded sample)
_SERVICE_SAMPLE = 5000
_ABSURD_GAP_NS = 24 * 3600 * 10**9
# draws of a path whose packets cannot carry the requested bytes
_PATH_TRIES = 4


@dataclass(frozen=True, eq=False)
class HeaderSequences:
    """Packet headers of many flows, laid end to end (CSR).

    The packets of flow ``i`` are rows ``offsets[i]:offsets[i + 1]``.
    ``forward`` is True client to server; ``tcp_flags`` the TCP flag byte
    (0 for UDP and ICMP); ``payload_len`` the L4 payload in bytes;
    ``gap_ns`` the gap since the flow's previous packet (0 for its first);
    ``payload_class`` one of EMPTY, TEXT, BINARY, RANDOM (see
    :data:`PAYLOAD_CLASS_NAMES`); ``adjusted`` per flow, True when its
    request (packet counts or payload bytes) was infeasible for the
    automaton and the nearest feasible one was used.  ``payload_token``
    indexes ``tokens``: the first token of a text payload ("" when none).
    """

    offsets: Array
    forward: Array
    tcp_flags: Array
    payload_len: Array
    gap_ns: Array
    payload_class: Array
    adjusted: Array
    payload_token: Array = field(default_factory=lambda: np.zeros(0, np.int32))
    tokens: tuple[str, ...] = ("",)

    def __len__(self) -> int:
        return len(self.offsets) - 1


def service_keys(flows: FlowTable) -> Array:
    """Return the service key of each flow as an (n, 2) int64 array."""
    proto = flows.proto.astype(np.int64)
    is_icmp = (proto == ICMP) | (proto == ICMPV6)
    port = np.where(is_icmp, flows.client_port, flows.server_port).astype(np.int64)
    result: Array = np.stack([proto, port], axis=1)
    return result


@dataclass(eq=False)
class PacketModel:
    """Automata per service and per protocol, and how to sample from them.

    ``services`` maps a service key to its automaton, ``fallbacks`` a
    protocol number to the automaton of its rare services; ``notes`` are
    lines of the learning summary.  ``adjusted_counts`` counts, per
    service, the flows whose request was infeasible (runtime only, not
    saved).
    """

    services: dict[ServiceKey, Automaton]
    fallbacks: dict[int, Automaton]
    notes: list[str] = field(default_factory=list)
    adjusted_counts: dict[ServiceKey, int] = field(default_factory=dict)
    _generic: dict[int, Automaton] = field(default_factory=dict, repr=False)

    def automaton_for(self, key: ServiceKey) -> tuple[Automaton, ServiceKey]:
        """Return the automaton serving ``key`` and the key it is filed under.

        Fallbacks are filed under ``(proto, -1)``; a protocol without one
        gets a generic automaton (not saved with the model).
        """
        automaton = self.services.get(key)
        if automaton is not None:
            return automaton, key
        proto = key[0]
        if proto in self.fallbacks:
            return self.fallbacks[proto], (proto, -1)
        if proto not in self._generic:
            self._generic[proto] = generic_automaton(proto)
        return self._generic[proto], (proto, -1)

    def sample(self, flows: FlowTable, rng: np.random.Generator) -> HeaderSequences:
        """Return the packet headers of ``flows``, meeting their counts and totals.

        Per flow: exactly ``fwd_packets`` and ``bwd_packets`` packets,
        payloads adding up to the IP bytes less ``HEADER_BYTES`` per packet
        in each direction, gaps adding up to ``duration``.  An infeasible
        request is replaced by the nearest feasible one and the flow marked
        ``adjusted``; each service's first adjustment is logged (warning)
        and all are counted in ``adjusted_counts``.
        """
        n = len(flows)
        keys = service_keys(flows)
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        by_automaton: dict[int, tuple[Automaton, ServiceKey, list[Array]]] = {}
        for k, (proto, port) in enumerate(unique.tolist()):
            automaton, filed = self.automaton_for((proto, port))
            entry = by_automaton.setdefault(id(automaton), (automaton, filed, []))
            entry[2].append(np.flatnonzero(inverse == k))

        parts: list[tuple[Array, _Part]] = []
        for automaton, filed, members in by_automaton.values():
            index = np.sort(np.concatenate(members))
            part = _sample_flows(automaton, flows, index, rng)
            parts.append((index, part))
            n_adjusted = int(part.adjusted.sum())
            if n_adjusted:
                before = self.adjusted_counts.get(filed, 0)
                self.adjusted_counts[filed] = before + n_adjusted
                if before == 0:
                    logger.warning(
                        "packet model %s: %d of %d flows asked for packet counts "
                        "or bytes it cannot produce; the nearest feasible were "
                        "used (logged once per service)",
                        _key_name(filed),
                        n_adjusted,
                        len(index),
                    )
        return _assemble(n, parts)

    def summary(self) -> list[str]:
        """Return lines describing the model, for ``fosr model show``."""
        lines = [
            f"packet model: {len(self.services)} services, "
            f"{len(self.fallbacks)} protocol fallbacks"
        ]
        for key, automaton in sorted(self.services.items()):
            lines.append(f"  {_key_name(key)}: {_describe(automaton)}")
        for proto, automaton in sorted(self.fallbacks.items()):
            lines.append(f"  {_key_name((proto, -1))}: {_describe(automaton)}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return lines

    def automata(self) -> Iterator[tuple[ServiceKey, Automaton]]:
        """Yield every automaton with its key (fallbacks as ``(proto, -1)``)."""
        yield from sorted(self.services.items())
        for proto, automaton in sorted(self.fallbacks.items()):
            yield (proto, -1), automaton


@dataclass(frozen=True)
class _Part:
    """Sampled packets of a group of flows, in the group's order."""

    offsets: Array
    forward: Array
    tcp_flags: Array
    payload_len: Array
    gap_ns: Array
    payload_class: Array
    adjusted: Array
    token: Array
    token_names: tuple[str, ...]


def _sample_flows(
    automaton: Automaton, flows: FlowTable, index: Array, rng: np.random.Generator
) -> _Part:
    """Sample the flows ``index`` of ``flows`` from one automaton."""
    proto = automaton.proto
    header = HEADER_BYTES.get(proto, _DEFAULT_HEADER_BYTES)
    fwd = np.maximum(flows.fwd_packets[index].astype(np.int64), 0)
    bwd = np.maximum(flows.bwd_packets[index].astype(np.int64), 0)
    offsets, edges, _, adjusted = sample_paths(automaton, fwd, bwd, rng)
    # a negative count is no request: it was read as 0
    adjusted |= (flows.fwd_packets[index] < 0) | (flows.bwd_packets[index] < 0)
    lengths = np.diff(offsets)
    flow = np.repeat(np.arange(len(index)), lengths)
    symbols = automaton.symbols
    symbol_forward = np.array([s.forward for s in symbols], bool)
    forward = symbol_forward[automaton.symbol[edges]]

    # payload totals: each direction's IP bytes less the headers
    n_fwd = np.bincount(flow, weights=forward, minlength=len(index)).astype(np.int64)
    n_bwd = lengths - n_fwd
    target = np.stack(
        [
            flows.fwd_bytes[index].astype(np.int64) - header * n_fwd,
            flows.bwd_bytes[index].astype(np.int64) - header * n_bwd,
        ],
        axis=1,
    )
    target = np.where(adjusted[:, None], -1, np.maximum(target, 0)).ravel()

    def group_of(path: Array) -> Array:
        # (flow, direction) of each packet: 2 i forward, 2 i + 1 backward
        result: Array = flow * 2 + (~symbol_forward[automaton.symbol[path]])
        return result

    # a path whose packets cannot carry the bytes is drawn again: several
    # candidates at once, the first that can carry them wins
    lo, hi = size_bounds(automaton)
    bad = np.flatnonzero(~_reachable(lo[edges], hi[edges], group_of(edges), target))
    if len(bad):
        tries = np.repeat(bad, _PATH_TRIES)
        sub_offsets, sub_edges, _, _ = sample_paths(
            automaton, fwd[tries], bwd[tries], rng
        )
        sub_lengths = np.diff(sub_offsets)
        sub_flow = np.repeat(np.arange(len(tries)), sub_lengths)
        sub_forward = symbol_forward[automaton.symbol[sub_edges]]
        sub_group = sub_flow * 2 + ~sub_forward
        sub_target = target.reshape(-1, 2)[tries].ravel()
        good = _reachable(lo[sub_edges], hi[sub_edges], sub_group, sub_target)
        good = good.reshape(-1, _PATH_TRIES)
        has_good = good.any(axis=1)
        pick = np.arange(len(bad)) * _PATH_TRIES + np.argmax(good, axis=1)
        for k in np.flatnonzero(has_good).tolist():
            i, j = int(bad[k]), int(pick[k])
            edges[offsets[i] : offsets[i + 1]] = sub_edges[
                sub_offsets[j] : sub_offsets[j + 1]
            ]
    forward = symbol_forward[automaton.symbol[edges]]
    flags = np.array([s.flags & 0xFF for s in symbols], np.uint8)[
        automaton.symbol[edges]
    ]
    classes = np.array([s.payload_class for s in symbols], np.uint8)[
        automaton.symbol[edges]
    ]
    sizes, met = sample_sizes(automaton, edges, group_of(edges), target, rng)
    adjusted = adjusted | ~met.reshape(-1, 2).all(axis=1)

    duration_ns = flows.duration[index].astype(np.float64) * 1e9
    gaps = sample_gaps(
        automaton, edges, sizes.astype(np.float64), offsets, duration_ns, rng
    )
    names = sorted({s.token for s in symbols} | {""})
    token_of = np.array([names.index(s.token) for s in symbols], np.int32)
    return _Part(
        offsets,
        forward,
        flags,
        sizes.astype(np.int32),
        gaps,
        classes,
        adjusted,
        token_of[automaton.symbol[edges]],
        tuple(names),
    )


def _reachable(lo: Array, hi: Array, group: Array, target: Array) -> Array:
    """Return per flow whether both directions' payload totals are reachable."""
    n_groups = len(target)
    low = np.bincount(group, weights=lo, minlength=n_groups)
    high = np.bincount(group, weights=hi, minlength=n_groups)
    ok = (target < 0) | ((low <= target) & (target <= high))
    result: Array = np.all(ok.reshape(-1, 2), axis=1)
    return result


def _assemble(n: int, parts: list[tuple[Array, _Part]]) -> HeaderSequences:
    """Put the groups' packets back in the flows' order."""
    lengths = np.zeros(n, dtype=np.int64)
    for index, part in parts:
        lengths[index] = np.diff(part.offsets)
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    total = int(offsets[-1])
    forward = np.zeros(total, bool)
    flags = np.zeros(total, np.uint8)
    sizes = np.zeros(total, np.int32)
    gaps = np.zeros(total, np.int64)
    classes = np.zeros(total, np.uint8)
    token = np.zeros(total, np.int32)
    adjusted = np.zeros(n, bool)
    names: dict[str, int] = {"": 0}
    for index, part in parts:
        part_lengths = np.diff(part.offsets)
        rows = np.repeat(offsets[index] - part.offsets[:-1], part_lengths)
        rows += np.arange(int(part.offsets[-1]))
        forward[rows] = part.forward
        flags[rows] = part.tcp_flags
        sizes[rows] = part.payload_len
        gaps[rows] = part.gap_ns
        classes[rows] = part.payload_class
        codes = [names.setdefault(t, len(names)) for t in part.token_names]
        token[rows] = np.asarray(codes, dtype=np.int32)[part.token]
        adjusted[index] = part.adjusted
    return HeaderSequences(
        offsets, forward, flags, sizes, gaps, classes, adjusted, token, tuple(names)
    )


def learn_packet_model(
    connections: Connections, *, min_examples: int = 20, progress: bool = False
) -> PacketModel:
    """Learn one automaton per service of ``connections``, and the fallbacks.

    Connections without packets are skipped; gaps longer than a day are
    cut to a day.  Each service or fallback learns from at most a seeded
    sample of 5000 (3000) connections.  The learning summary
    (:meth:`PacketModel.summary`) notes skipped connections, services left
    to their fallback, one-way-only services and cut gaps.
    """
    flows = connections.flows
    lengths = np.diff(connections.offsets)
    keys = service_keys(flows)
    notes: list[str] = []
    rng = np.random.default_rng(0)
    usable = lengths > 0
    if (~usable).any():
        notes.append(f"{int((~usable).sum())} connections without packets skipped")

    # services with enough examples, and the protocols of all
    unique, inverse, counts = np.unique(
        keys[usable], axis=0, return_inverse=True, return_counts=True
    )
    inverse = inverse.ravel()
    positions = np.flatnonzero(usable)
    rare: dict[int, list[str]] = {}
    jobs: list[tuple[ServiceKey, Array]] = []
    for k, (proto, port) in enumerate(unique.tolist()):
        members = positions[inverse == k]
        if counts[k] >= min_examples:
            jobs.append(((proto, port), _subsample(members, _SERVICE_SAMPLE, rng)))
        else:
            rare.setdefault(proto, []).append(f"{port} ({counts[k]})")
    for proto, names in sorted(rare.items()):
        notes.append(
            f"{PROTO_NAMES.get(proto, str(proto))} services with fewer than "
            f"{min_examples} connections use the protocol's fallback: "
            + ", ".join(names[:20])
            + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        )
    for proto in np.unique(keys[usable, 0]).tolist():
        members = positions[keys[usable, 0] == proto]
        jobs.append(((proto, -1), _subsample(members, _FALLBACK_SAMPLE, rng)))

    services: dict[ServiceKey, Automaton] = {}
    fallbacks: dict[int, Automaton] = {}
    iterator: Any = jobs
    if progress:
        from tqdm import tqdm

        iterator = tqdm(jobs, desc="packet automata", unit="service")
    for key, members in iterator:
        words = words_of(connections, members)
        words, cut = _cut_gaps(words)
        if cut:
            notes.append(f"{_key_name(key)}: {cut} gaps longer than a day cut to a day")
        automaton = learn_automaton(words, key[0], LearnOptions())
        if not any(s.forward for s in words.symbols) or all(
            s.forward for s in words.symbols
        ):
            notes.append(f"{_key_name(key)}: one-way traffic only")
        if key[1] == -1:
            fallbacks[key[0]] = automaton
        else:
            services[key] = automaton
    return PacketModel(services, fallbacks, notes)


def _subsample(members: Array, limit: int, rng: np.random.Generator) -> Array:
    """Return at most ``limit`` of ``members``, a seeded sample, in order."""
    if len(members) <= limit:
        return members
    return np.sort(rng.choice(members, size=limit, replace=False))


def _cut_gaps(words: Any) -> tuple[Any, int]:
    """Return words with gaps above a day cut to a day, and how many were."""
    ceiling = float(gap_units(np.array([_ABSURD_GAP_NS]))[0])
    cut = int((words.gap > ceiling).sum())
    if cut:
        from dataclasses import replace

        words = replace(words, gap=np.minimum(words.gap, ceiling))
    return words, cut


def generic_automaton(proto: int) -> Automaton:
    """Return an automaton for a protocol never seen in training.

    Any mix of forward and backward packets with binary payloads, 1 ms
    gaps and 100-byte payloads (wide guards); flags 0x18 (PSH ACK) on TCP.
    """
    flags = 0x18 if proto == TCP else 0
    symbols = (Symbol(True, flags, BINARY), Symbol(False, flags, BINARY))
    # states: 0 initial, 1 after a forward packet, 2 after a backward one
    src = np.array([0, 0, 1, 1, 2, 2], np.int64)
    dst = np.array([1, 2, 1, 2, 1, 2], np.int64)
    symbol = np.array([0, 1, 0, 1, 0, 1], np.int64)
    mean = np.tile([30.0, 100.0], (6, 1))
    cov = np.tile(np.diag([100.0, 1e4]), (6, 1, 1))
    return Automaton(
        proto=proto,
        symbols=symbols,
        n_states=3,
        src=src,
        dst=dst,
        symbol=symbol,
        count=np.ones(6),
        end_count=np.array([0.0, 1.0, 1.0]),
        mean=mean,
        cov=cov,
        size_lo=np.full(6, 1, np.int64),
        size_hi=np.full(6, 1460, np.int64),
        notes=("generic: no training connection of this protocol",),
    )


def _key_name(key: ServiceKey) -> str:
    """Return a service key as text, e.g. ``TCP/443`` or ``UDP fallback``."""
    proto, port = key
    name = PROTO_NAMES.get(proto, f"proto {proto}")
    if port == -1:
        return f"{name} fallback"
    if proto in (ICMP, ICMPV6):
        return f"{name} type {port}"
    return f"{name}/{port}"


def _describe(automaton: Automaton) -> str:
    """Return one line about an automaton's size and training."""
    text = (
        f"{automaton.n_states} states, {automaton.n_edges} edges, "
        f"{len(automaton.symbols)} symbols, {automaton.n_examples} connections, "
        f"noise p_add {automaton.p_add:.3f}"
    )
    if automaton.notes:
        text += "; " + "; ".join(automaton.notes)
    return text
