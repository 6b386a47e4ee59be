"""Pair one-way flow records into bidirectional flows.

How this works (METHODS.md §1.1, FlowChronicle's preprocessing):

1. Key each record by its protocol and its two endpoints, unordered, so that
   both directions of a connection share a key.  An endpoint is an address
   and a port.  ICMP and ICMPv6 records have no ports: their key holds the
   two addresses and the message type and code instead, with each reply type
   mapped to its request type (``_ICMP_REQUESTS``), so that an echo request
   and its reply share a key.
2. Within a key, order the records by start time and cut them into sessions
   where a record starts ``session_gap_s`` or more after the end (start plus
   duration) of every earlier record of the session.  A gap exactly equal to
   ``session_gap_s`` splits.  The reference compares with the previous
   record's end only; we take the latest end so far, so that a long record
   which overlaps several short ones keeps them in one flow.  Both rules
   agree whenever records do not nest.
3. Per session: start = the first start, duration = last end minus first
   start; *forward* records are those whose source endpoint is the first
   record's source, the others are *backward*; packets and bytes are summed
   per direction and TCP flags are OR-ed over both.
4. Orientation, deciding which side is the client:

   - TCP: a record with SYN and without ACK can only come from the side that
     opened the connection (a SYN-ACK and the RST answering a SYN carry
     ACK).  If exactly one side sent such a record, it is the client.
     Aggregated records hide the order of packets, so this is the only flag
     evidence used; otherwise the port rule decides.
   - ICMP: the side that sent echo (or timestamp, information, address mask)
     requests is the client; if no request was recorded, the destination of
     the first reply is.  Other messages keep the first record's sender.
     ``client_port`` holds the (request) type and ``server_port`` the code.
   - Everything else, the port rule of the reference: the server is the side
     on the lower port.  If the first record's source port is lower than its
     destination port, the orientation is reversed; equal ports keep the
     first record's orientation.

5. State: a Zeek ``conn_state`` derived from each side's flag union and from
   whether each side sent any record, by the rules in ``_TCP_STATES`` for
   TCP (first match wins; they mirror Zeek's ``conn_state`` function, with
   "sent a SYN" standing in for Zeek's per-endpoint TCP state) and, for
   every other protocol, the rule Zeek applies to UDP: both sides sent: SF,
   only the client: S0, only the server: SHR.  Zeek itself writes OTH for
   ICMP; we keep the UDP rule because it says whether an echo was answered.
   A TCP session whose records carry no flags at all gets ``""``: the
   exporter did not record them and nothing can be told.

TCP flags are kept for TCP only: some exporters (UGR'16's) write ``.A....``
on UDP and ICMP records, which means nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.flows.oneway import OneWayTable
from fosr.flows.table import TCP_FLAG_BITS, FlowTable

__all__ = ["DEFAULT_SESSION_GAP_S", "pair_oneway"]

Array = npt.NDArray[Any]

DEFAULT_SESSION_GAP_S = 120.0
"""FlowChronicle's session gap (METHODS.md §1.1)."""

_TCP, _ICMP, _ICMPV6 = 6, 1, 58
_SYN, _ACK = TCP_FLAG_BITS["S"], TCP_FLAG_BITS["A"]
_FIN, _RST = TCP_FLAG_BITS["F"], TCP_FLAG_BITS["R"]

# reply type -> request type: echo, timestamp, information, address mask
# (RFC 792, RFC 950) and ICMPv6 echo (RFC 4443)
_ICMP_REQUESTS: dict[int, dict[int, int]] = {
    _ICMP: {0: 8, 14: 13, 16: 15, 18: 17},
    _ICMPV6: {129: 128},
}


@dataclass(frozen=True)
class _Evidence:
    """Per-flow evidence for the state rules, client and server side."""

    client_flags: Array
    server_flags: Array
    client_seen: Array
    server_seen: Array

    def client_has(self, bit: int) -> Array:
        return np.asarray((self.client_flags & bit) != 0)

    def server_has(self, bit: int) -> Array:
        return np.asarray((self.server_flags & bit) != 0)


def _client_syn_only(x: _Evidence) -> Array:
    """The client sent SYN and never ACK: Zeek's SYN_SENT."""
    return x.client_has(_SYN) & ~x.client_has(_ACK)


# Zeek's conn_state decision list (base/protocols/conn/main.zeek) on flag
# unions; first match wins.  Where Zeek asks whether a side is "inactive or
# partial", we ask whether the client sent no SYN or the server no SYN-ACK;
# Zeek's SYN_SENT is "SYN and never ACK".
_TCP_STATES: tuple[tuple[str, Callable[[_Evidence], Array]], ...] = (
    ("", lambda x: (x.client_flags | x.server_flags) == 0),
    ("REJ", lambda x: x.server_has(_RST) & _client_syn_only(x)),
    ("RSTRH", lambda x: x.server_has(_RST) & ~x.client_has(_SYN)),
    ("RSTR", lambda x: x.server_has(_RST)),
    (
        "RSTOS0",
        lambda x: (
            x.client_has(_RST)
            & ~x.server_has(_SYN)
            & _client_syn_only(x)
            & ~x.client_has(_FIN)
        ),
    ),
    ("OTH", lambda x: x.client_has(_RST) & ~x.server_has(_SYN)),
    ("RSTO", lambda x: x.client_has(_RST)),
    ("SF", lambda x: x.client_has(_FIN) & x.server_has(_FIN)),
    ("SH", lambda x: x.client_has(_FIN) & ~x.server_has(_SYN)),
    ("S2", lambda x: x.client_has(_FIN)),
    ("SHR", lambda x: x.server_has(_FIN) & ~x.client_has(_SYN)),
    ("S3", lambda x: x.server_has(_FIN)),
    ("S0", lambda x: _client_syn_only(x) & ~x.server_seen),
    (
        "S1",
        lambda x: x.client_has(_SYN) & x.client_has(_ACK) & x.server_has(_SYN),
    ),
    ("OTH", lambda x: np.ones(len(x.client_flags), dtype=bool)),
)


def pair_oneway(
    table: OneWayTable, *, session_gap_s: float = DEFAULT_SESSION_GAP_S
) -> FlowTable:
    """Pair one-way records into flows, ordered by start time.

    ``session_gap_s`` is the shortest silence, in seconds, that separates two
    flows between the same endpoints (120 s by default; 0 makes every record
    its own flow unless records overlap).  Packets and bytes are conserved:
    their totals over both directions equal the records' totals.

    Raises ValueError if ``session_gap_s`` is negative or not a number, or if
    a port is negative.
    """
    if not session_gap_s >= 0:
        raise ValueError(f"session_gap_s must be >= 0, not {session_gap_s!r}")
    if len(table) == 0:
        return FlowTable.empty()
    keys = _Keys.build(table)
    order = keys.order()
    sessions = _find_sessions(keys, order, table, session_gap_s)
    return sessions.flows()


@dataclass(frozen=True)
class _Keys:
    """Direction-agnostic keys of the records, and each record's side."""

    proto: Array
    low: Array
    high: Array
    icmp_kind: Array
    swapped: Array
    start: Array
    is_reply: Array
    is_request: Array

    @classmethod
    def build(cls, table: OneWayTable) -> _Keys:
        proto = table.proto
        src_port = table.src_port.astype(np.int64)
        dst_port = table.dst_port.astype(np.int64)
        if min(src_port.min(), dst_port.min()) < 0:
            raise ValueError("ports must not be negative")

        # icmp: no ports in the endpoints, (request) type and code in the key
        is_icmp = (proto == _ICMP) | (proto == _ICMPV6)
        kind_type = src_port.copy()
        is_reply = np.zeros(len(table), dtype=bool)
        is_request = np.zeros(len(table), dtype=bool)
        for number, requests in _ICMP_REQUESTS.items():
            mine = proto == number
            for reply, request in requests.items():
                replies = mine & (src_port == reply)
                kind_type[replies] = request
                is_reply |= replies
                is_request |= mine & (src_port == request)
        icmp_kind = np.where(is_icmp, kind_type * 256 + dst_port, 0)
        src_port = np.where(is_icmp, 0, src_port)
        dst_port = np.where(is_icmp, 0, dst_port)

        # endpoints as integers: address code, then port
        src_code, dst_code = _factorize(table.src, table.dst)
        span = int(max(src_port.max(), dst_port.max())) + 1
        src_end = src_code * span + src_port
        dst_end = dst_code * span + dst_port
        return cls(
            proto=proto,
            low=np.minimum(src_end, dst_end),
            high=np.maximum(src_end, dst_end),
            icmp_kind=icmp_kind,
            swapped=src_end > dst_end,
            start=table.start,
            is_reply=is_reply,
            is_request=is_request,
        )

    def order(self) -> Array:
        """Sort by key, then start; at equal starts requests before replies."""
        return np.lexsort(
            (self.is_reply, self.start, self.icmp_kind, self.high, self.low, self.proto)
        )


def _factorize(src: Array, dst: Array) -> tuple[Array, Array]:
    """Number the addresses of both columns with one shared code book."""
    distinct = dict.fromkeys(itertools.chain(src, dst))
    codes = dict(zip(distinct, range(len(distinct)), strict=True))
    src_code = np.fromiter(map(codes.__getitem__, src), np.int64, count=len(src))
    dst_code = np.fromiter(map(codes.__getitem__, dst), np.int64, count=len(dst))
    return src_code, dst_code


@dataclass(frozen=True)
class _Sides:
    """Per-session sums, forward (the first record's source) and backward."""

    packets: tuple[Array, Array]
    bytes: tuple[Array, Array]
    flags: tuple[Array, Array]
    records: tuple[Array, Array]
    bare_syn: tuple[Array, Array]
    requests: tuple[Array, Array]


@dataclass(frozen=True)
class _Sessions:
    """Sorted records cut into sessions; ``first`` indexes each session."""

    records: OneWayTable
    keys: _Keys
    first: Array
    forward: Array

    def flows(self) -> FlowTable:
        """Reduce each session to one flow and orient it."""
        r, first = self.records, self.first
        sides = self._sum_sides()
        reverse = self._reverse(sides)
        is_tcp = r.proto[first] == _TCP
        is_icmp = (r.proto[first] == _ICMP) | (r.proto[first] == _ICMPV6)

        def client(pair: tuple[Array, Array]) -> Array:
            return np.where(reverse, pair[1], pair[0])

        def server(pair: tuple[Array, Array]) -> Array:
            return np.where(reverse, pair[0], pair[1])

        # the flow's columns, client side first
        kind = self.keys.icmp_kind[first]
        ports = (r.src_port[first], r.dst_port[first])
        flags = (np.where(is_tcp, client(sides.flags), 0),
                 np.where(is_tcp, server(sides.flags), 0))  # fmt: skip
        seen = (client(sides.records) > 0, server(sides.records) > 0)
        ends = np.maximum.reduceat(r.start + r.duration, first)
        flows = FlowTable(
            start=r.start[first],
            duration=ends - r.start[first],
            proto=r.proto[first],
            client=client((r.src[first], r.dst[first])),
            client_port=np.where(is_icmp, kind // 256, client(ports)),
            server=server((r.src[first], r.dst[first])),
            server_port=np.where(is_icmp, kind % 256, server(ports)),
            fwd_packets=client(sides.packets),
            fwd_bytes=client(sides.bytes),
            bwd_packets=server(sides.packets),
            bwd_bytes=server(sides.bytes),
            tcp_flags=flags[0] | flags[1],
            state=_derive_states(is_tcp, _Evidence(*flags, *seen)),
        )
        return flows.sorted_by_start()

    def _sum_sides(self) -> _Sides:
        r, first, forward = self.records, self.first, self.forward

        def split(values: Array) -> tuple[Array, Array]:
            total = np.add.reduceat(values, first)
            ahead = np.add.reduceat(np.where(forward, values, 0), first)
            return ahead, total - ahead

        def union(values: Array) -> tuple[Array, Array]:
            return (
                np.bitwise_or.reduceat(np.where(forward, values, 0), first),
                np.bitwise_or.reduceat(np.where(forward, 0, values), first),
            )

        def any_of(mask: Array) -> tuple[Array, Array]:
            ahead, behind = split(mask.astype(np.int64))
            return ahead > 0, behind > 0

        flags = r.tcp_flags.astype(np.int64)
        bare_syn = (r.proto == _TCP) & ((flags & _SYN) != 0) & ((flags & _ACK) == 0)
        return _Sides(
            packets=split(r.packets),
            bytes=split(r.bytes),
            flags=union(flags),
            records=split(np.ones(len(r), dtype=np.int64)),
            bare_syn=any_of(bare_syn),
            requests=any_of(self.keys.is_request),
        )

    def _reverse(self, sides: _Sides) -> Array:
        """Return, per session, whether the first record's destination is
        the client (the module docstring's step 4)."""
        r, first = self.records, self.first
        is_tcp = r.proto[first] == _TCP
        is_icmp = (r.proto[first] == _ICMP) | (r.proto[first] == _ICMPV6)
        by_port = r.src_port[first] < r.dst_port[first]

        # tcp: the only side that sent a bare SYN, else the port rule
        f_syn, b_syn = sides.bare_syn
        tcp = np.where(f_syn != b_syn, b_syn, by_port)

        # icmp: the side that sent requests, else the first reply's destination
        f_req, b_req = sides.requests
        icmp = (b_req & ~f_req) | (~f_req & ~b_req & self.keys.is_reply[first])
        reverse: Array = np.select([is_tcp, is_icmp], [tcp, icmp], by_port)
        return reverse


def _find_sessions(
    keys: _Keys, order: Array, table: OneWayTable, session_gap_s: float
) -> _Sessions:
    """Sort the records and cut them into sessions."""
    records = table.take(order)
    keys = _Keys(**{name: getattr(keys, name)[order] for name in _KEY_FIELDS})

    # a new key starts a group
    n = len(records)
    new_key = np.ones(n, dtype=bool)
    for column in (keys.proto, keys.low, keys.high, keys.icmp_kind):
        new_key[1:] &= column[1:] == column[:-1]
    new_key = ~new_key
    new_key[0] = True
    group = np.cumsum(new_key) - 1

    # a silence of session_gap_s after every earlier end starts a session
    end = records.start + records.duration
    latest = _latest_previous_end(end, group)
    with np.errstate(invalid="ignore"):
        silent = records.start - latest >= session_gap_s
    breaks = new_key | silent
    first = np.flatnonzero(breaks)
    session = np.cumsum(breaks) - 1
    forward = keys.swapped == keys.swapped[first][session]
    return _Sessions(records=records, keys=keys, first=first, forward=forward)


_KEY_FIELDS = (
    "proto",
    "low",
    "high",
    "icmp_kind",
    "swapped",
    "start",
    "is_reply",
    "is_request",
)


def _latest_previous_end(end: Array, group: Array) -> Array:
    """Return, per record, the latest end of the earlier records of its group.

    ``-inf`` for a group's first record.  A running maximum that restarts at
    each group, computed exactly: ends are replaced by their rank, and each
    group is lifted above all earlier ones by adding ``group * n``.
    """
    n = len(end)
    by_end = np.argsort(end, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[by_end] = np.arange(n)
    running = np.maximum.accumulate(group * n + rank)
    latest = np.full(n, -np.inf)
    same = group[1:] == group[:-1]
    previous_rank = running[:-1] - group[1:] * n
    latest[1:][same] = end[by_end][previous_rank[same]]
    return latest


def _derive_states(is_tcp: Array, sides: _Evidence) -> Array:
    """Return the Zeek conn_state of each flow, by the module's rules."""
    n = len(is_tcp)
    states = np.full(n, "", dtype=object)
    decided = ~is_tcp
    for state, rule in _TCP_STATES:
        match = rule(sides) & ~decided
        states[match] = state
        decided |= match

    # every other protocol: Zeek's UDP rule
    client, server = sides.client_seen, sides.server_seen
    states[~is_tcp & client & server] = "SF"
    states[~is_tcp & client & ~server] = "S0"
    states[~is_tcp & ~client & server] = "SHR"
    return states
