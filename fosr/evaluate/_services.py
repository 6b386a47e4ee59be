"""Per-service samples of packet features, and the distances between them.

A *service* is the protocol and the server port of a connection ("TCP/443",
"UDP/53"); for ICMP and ICMPv6, which have no ports, the message type of
the client's first message ("ICMP/8" for echo).  For each service the
connections give five samples:

- packets per flow (both directions);
- packet sizes, IP bytes as the glossary counts them;
- inter-arrival times (gaps) between the packets of a connection, in
  seconds (the first packet of a connection has none);
- TCP flag sequences: the flags and direction of a connection's first
  :data:`SEQUENCE_PACKETS` packets, written ``>S <SA >A >PA`` (``>``
  client to server); TCP only;
- connection states, in Zeek's ``conn_state`` vocabulary.

Categories compare by the Jensen-Shannon distance (base 2, so between 0 for
equal shares and 1 for disjoint ones); numbers by the Wasserstein-1
distance, in the unit of the sample: packets, bytes, and for gaps decades
(the distance between log10 gaps), because gaps spread over six orders of
magnitude and a distance in seconds would only see the longest ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.connections import Connections
from fosr.flows.table import PROTO_NAMES

__all__ = [
    "OTHER",
    "SEQUENCE_PACKETS",
    "ServiceSample",
    "bucket_services",
    "compare_samples",
    "jensen_shannon",
    "service_distributions",
    "service_name",
    "wasserstein",
]

Array = npt.NDArray[Any]

OTHER = "other"
# Five packets cover the TCP handshake and the first exchange of data, where
# stacks and applications differ most; longer prefixes make nearly every
# connection its own category.  Chosen, not tuned.
SEQUENCE_PACKETS = 5
# Gaps below a microsecond (pcap's usual resolution) count as a microsecond
# before taking logarithms, so that equal timestamps do not give -inf.
GAP_FLOOR_S = 1e-6

_TCP = 6
_ICMPS = (1, 58)
# Flag letters in the order they are written: S, SA, A, PA, FA, RA ...
_FLAG_LETTERS = (
    (0x02, "S"),
    (0x01, "F"),
    (0x04, "R"),
    (0x08, "P"),
    (0x10, "A"),
    (0x20, "U"),
    (0x40, "E"),
    (0x80, "C"),
)


@dataclass(frozen=True, eq=False)
class ServiceSample:
    """What the connections of one service look like, as raw samples.

    ``flows`` connections gave ``packets_per_flow`` (one value each),
    ``packet_sizes_bytes`` (IP bytes, one per packet), ``gaps_s`` (one per
    packet after a connection's first), ``flag_sequences`` (TCP only, each
    sequence to its number of connections) and ``states`` (connection state
    to number of connections).
    """

    flows: int = 0
    packets_per_flow: Array = field(default_factory=lambda: np.empty(0, np.int64))
    packet_sizes_bytes: Array = field(default_factory=lambda: np.empty(0, np.int64))
    gaps_s: Array = field(default_factory=lambda: np.empty(0, np.float64))
    flag_sequences: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)

    @classmethod
    def merge(cls, samples: Iterable[ServiceSample]) -> ServiceSample:
        """Return one sample holding all of ``samples``."""
        items = list(samples)
        if not items:
            return cls()
        return cls(
            flows=sum(s.flows for s in items),
            packets_per_flow=np.concatenate([s.packets_per_flow for s in items]),
            packet_sizes_bytes=np.concatenate([s.packet_sizes_bytes for s in items]),
            gaps_s=np.concatenate([s.gaps_s for s in items]),
            flag_sequences=sum((s.flag_sequences for s in items), Counter()),
            states=sum((s.states for s in items), Counter()),
        )

    def summary(self) -> dict[str, float | int | None]:
        """Return medians of the numeric samples, for people to compare."""
        return {
            "flows": self.flows,
            "packets": int(len(self.packet_sizes_bytes)),
            "median_packets_per_flow": _median(self.packets_per_flow),
            "median_packet_size_bytes": _median(self.packet_sizes_bytes),
            "median_gap_s": _median(self.gaps_s),
        }


def service_name(proto: int, server_port: int, client_port: int) -> str:
    """Return the service of a connection: ``TCP/443``, ``UDP/53``, ``ICMP/8``."""
    name = PROTO_NAMES.get(proto, str(proto))
    if proto in _ICMPS:
        return f"{name}/{client_port}"  # the client's message type
    return f"{name}/{server_port}"


def service_distributions(
    connections: Connections, *, sequence_packets: int = SEQUENCE_PACKETS
) -> dict[str, ServiceSample]:
    """Return the sample of every service of ``connections``.

    Services come in decreasing order of flow count (ties by name).
    ``sequence_packets`` is how many leading packets make a flag sequence.
    """
    flows = connections.flows
    n = len(flows)
    if n == 0:
        return {}
    names = [
        service_name(p, s, c)
        for p, s, c in zip(
            flows.proto.tolist(),
            flows.server_port.tolist(),
            flows.client_port.tolist(),
            strict=True,
        )
    ]

    # per packet, in connection order: its connection, size and gap
    offsets = connections.offsets
    lengths = np.diff(offsets)
    owner = np.repeat(np.arange(n), lengths)
    rows = connections.order
    sizes = connections.packets.ip_len[rows].astype(np.int64)
    ts_ns = connections.packets.ts_ns[rows]
    gaps_s = np.diff(ts_ns, prepend=ts_ns[:1]) / 1e9
    has_gap = np.ones(len(rows), dtype=bool)
    has_gap[offsets[:-1]] = False

    # group connections, and their packets, by service
    tokens = _sequence_tokens(connections, sequence_packets)
    states = flows.state.tolist()
    unique, service_of = np.unique(np.asarray(names, dtype=object), return_inverse=True)
    service_of = service_of.ravel()
    flow_groups = _groups(service_of, len(unique))
    packet_service = service_of[owner]
    packet_groups = _groups(packet_service, len(unique))
    gap_groups = _groups(np.where(has_gap, packet_service, -1), len(unique))

    samples = {}
    for k, name in enumerate(unique.tolist()):
        members = flow_groups[k]
        samples[name] = ServiceSample(
            flows=len(members),
            packets_per_flow=lengths[members].astype(np.int64),
            packet_sizes_bytes=sizes[packet_groups[k]],
            gaps_s=gaps_s[gap_groups[k]],
            flag_sequences=Counter(tokens[i] for i in members.tolist() if tokens[i]),
            states=Counter(states[i] for i in members.tolist()),
        )
    return dict(sorted(samples.items(), key=lambda item: (-item[1].flows, item[0])))


def bucket_services(
    samples: Mapping[str, ServiceSample], keep: Sequence[str]
) -> dict[str, ServiceSample]:
    """Return the services of ``keep`` (empty when absent) and the rest as "other".

    The result has the names of ``keep`` in their order, then :data:`OTHER`.
    """
    kept = {name: samples.get(name, ServiceSample()) for name in keep}
    rest = [sample for name, sample in samples.items() if name not in kept]
    kept[OTHER] = ServiceSample.merge(rest)
    return kept


def compare_samples(
    real: ServiceSample, synthetic: ServiceSample
) -> dict[str, float | None]:
    """Return the distances between two samples of a service.

    Keys: ``packets_per_flow_w1`` (packets), ``packet_size_w1_bytes``,
    ``gap_w1_decades`` (log10 seconds), ``flag_sequence_js`` and
    ``state_js``.  A distance is None when either side has nothing to
    compare (no flows, no gaps, no TCP).
    """
    return {
        "packets_per_flow_w1": wasserstein(
            real.packets_per_flow, synthetic.packets_per_flow
        ),
        "packet_size_w1_bytes": wasserstein(
            real.packet_sizes_bytes, synthetic.packet_sizes_bytes
        ),
        "gap_w1_decades": wasserstein(
            _log_gaps(real.gaps_s), _log_gaps(synthetic.gaps_s)
        ),
        "flag_sequence_js": jensen_shannon(
            real.flag_sequences, synthetic.flag_sequences
        ),
        "state_js": jensen_shannon(real.states, synthetic.states),
    }


def jensen_shannon(p: Mapping[str, int], q: Mapping[str, int]) -> float | None:
    """Return the Jensen-Shannon distance (base 2) of two category counts.

    The distance is the square root of the divergence, between 0 and 1.
    None when either side has no counts.
    """
    keys = sorted(set(p) | set(q))
    a = np.array([p.get(k, 0) for k in keys], dtype=np.float64)
    b = np.array([q.get(k, 0) for k in keys], dtype=np.float64)
    if a.sum() <= 0 or b.sum() <= 0:
        return None
    a /= a.sum()
    b /= b.sum()
    m = (a + b) / 2
    divergence = (_kl_bits(a, m) + _kl_bits(b, m)) / 2
    return float(np.sqrt(max(divergence, 0.0)))


def wasserstein(u: Array, v: Array) -> float | None:
    """Return the Wasserstein-1 distance of two samples, in their unit.

    It is the area between the two empirical distribution functions.  None
    when either sample is empty.
    """
    if len(u) == 0 or len(v) == 0:
        return None
    u = np.sort(np.asarray(u, dtype=np.float64))
    v = np.sort(np.asarray(v, dtype=np.float64))
    points = np.sort(np.concatenate([u, v]))
    widths = np.diff(points)
    cdf_u = np.searchsorted(u, points[:-1], side="right") / len(u)
    cdf_v = np.searchsorted(v, points[:-1], side="right") / len(v)
    return float(np.sum(np.abs(cdf_u - cdf_v) * widths))


def flag_token(flags: int, forward: bool) -> str:
    """Return one packet of a flag sequence: ``>SA`` or ``<A`` (``.`` if none)."""
    letters = "".join(letter for bit, letter in _FLAG_LETTERS if flags & bit)
    return (">" if forward else "<") + (letters or ".")


def _sequence_tokens(connections: Connections, sequence_packets: int) -> list[str]:
    """Return each connection's flag sequence, "" for connections not TCP."""
    flows = connections.flows
    flags = connections.packets.tcp_flags[connections.order].tolist()
    forward = connections.forward.tolist()
    offsets = connections.offsets.tolist()
    cache: dict[tuple[int, bool], str] = {}
    result = []
    for i, proto in enumerate(flows.proto.tolist()):
        if proto != _TCP:
            result.append("")
            continue
        start = offsets[i]
        stop = min(offsets[i + 1], start + sequence_packets)
        words = []
        for j in range(start, stop):
            key = (flags[j], forward[j])
            if key not in cache:
                cache[key] = flag_token(*key)
            words.append(cache[key])
        result.append(" ".join(words))
    return result


def _groups(labels: Array, count: int) -> list[Array]:
    """Return, for each label 0 .. count - 1, the positions holding it.

    Negative labels belong to no group.
    """
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(count + 1))
    return [order[bounds[k] : bounds[k + 1]] for k in range(count)]


def _kl_bits(a: Array, m: Array) -> float:
    """Return the Kullback-Leibler divergence of ``a`` from ``m``, in bits."""
    nonzero = a > 0
    return float(np.sum(a[nonzero] * np.log2(a[nonzero] / m[nonzero])))


def _log_gaps(gaps_s: Array) -> Array:
    return np.log10(np.maximum(gaps_s, GAP_FLOOR_S))


def _median(values: Array) -> float | None:
    return float(np.median(values)) if len(values) else None
