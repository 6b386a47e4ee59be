"""Assemble decoded packets into bidirectional connections.

How this works
--------------
Packets are grouped by a direction-agnostic key: capture file, VLAN, IP
protocol and the two endpoints (address and port) in a canonical order.  For
ICMP echo the identifier replaces the ports so that a request and its reply
share a key; other ICMP messages key on their type and code.

Inside a key, packets are taken in time order and a new connection starts
when:

- the gap since the previous packet exceeds the idle timeout of the protocol;
- the connection has lasted longer than the active timeout (NetFlow
  exporters cut long connections this way, so the same rule lets us compare
  with them);
- a TCP SYN (without ACK) arrives and the current connection is closed (a RST
  seen, or a FIN seen from both sides) or it carries a different initial
  sequence number (the port pair was reused; a retransmitted SYN keeps its
  sequence number and stays in the same connection);
- a DNS query over UDP (to port 53) arrives after an answer: each lookup is
  its own connection, even when a resolver client reuses its source port for
  many of them, as small devices do.  Lookups are the unit that later flows
  depend on ("ask DNS, then connect to the answer").

The *client* of a connection is the sender of its first SYN; failing that the
receiver of a SYN-ACK; for ICMP echo the requester; otherwise the side on the
ephemeral port when exactly one side uses a port below 1024, and the first
sender when neither rule decides.  *Forward* means client to server.

The connection state follows Zeek's ``conn_state`` vocabulary (see
:func:`_tcp_states`).  Bytes are IP bytes, as NetFlow exporters count them.

Deliberately left out: TCP stream reassembly (sequence numbers are kept per
packet, not interpreted) and ICMP errors attached to the flows they report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.capture import PacketTable, format_addresses
from fosr.flows.table import FlowTable

__all__ = [
    "DEFAULT_IDLE_TIMEOUTS_S",
    "Connections",
    "PacketSequence",
    "Timeouts",
    "assemble_connections",
]

Array = npt.NDArray[Any]

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
_ECHO_TYPES = {ICMP: (8, 0), ICMPV6: (128, 129)}

# Zeek's inactivity timeouts (tcp_inactivity_timeout 5 min, udp and icmp 1
# min): a default people already reason with.
DEFAULT_IDLE_TIMEOUTS_S: dict[int, float] = {
    TCP: 300.0,
    UDP: 60.0,
    ICMP: 60.0,
    ICMPV6: 60.0,
}
# A bound on one record's length, as NetFlow exporters apply (nfdump's
# nfpcapd uses 300 s by default; an hour keeps long sessions whole while
# still bounding a record).  Chosen, not tuned.
DEFAULT_ACTIVE_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Timeouts:
    """Idle and active timeouts of connection assembly, in seconds.

    ``idle_s`` maps an IP protocol number to its idle timeout; protocols
    missing from it use the UDP value.  ``active_s`` cuts a connection that
    has lasted that long; ``None`` never cuts.
    """

    idle_s: dict[int, float]
    active_s: float | None = DEFAULT_ACTIVE_TIMEOUT_S

    @classmethod
    def default(cls) -> Timeouts:
        """Return Zeek-like idle timeouts and a one-hour active timeout."""
        return cls(dict(DEFAULT_IDLE_TIMEOUTS_S))

    @classmethod
    def uniform(cls, idle_s: float, active_s: float | None) -> Timeouts:
        """Return the same idle timeout for every protocol."""
        return cls({p: idle_s for p in DEFAULT_IDLE_TIMEOUTS_S}, active_s)

    def idle_for(self, proto: int) -> float:
        """Return the idle timeout of ``proto`` in seconds."""
        return self.idle_s.get(proto, self.idle_s.get(UDP, 60.0))


@dataclass(frozen=True, eq=False)
class PacketSequence:
    """The packets of one connection, in time order, as numpy columns.

    ``forward`` is True for client-to-server packets.  ``payloads`` holds the
    captured payload bytes when the capture was read with payloads kept, and
    is ``None`` otherwise.
    """

    ts_ns: Array
    forward: Array
    tcp_flags: Array
    payload_len: Array
    ip_len: Array
    ttl: Array
    ip_id: Array
    tcp_seq: Array
    tcp_ack: Array
    tcp_window: Array
    tcp_mss: Array
    tcp_wscale: Array
    tcp_sack_perm: Array
    tcp_ts_val: Array
    tcp_ts_ecr: Array
    tcp_opt_kinds: Array
    payloads: list[bytes] | None

    def __len__(self) -> int:
        return len(self.ts_ns)

    def gaps_s(self) -> Array:
        """Return the inter-packet gaps in seconds (the first one is 0)."""
        if len(self.ts_ns) == 0:
            return np.empty(0, dtype=np.float64)
        return np.diff(self.ts_ns, prepend=self.ts_ns[0]) / 1e9


_SEQUENCE_COLUMNS = (
    "ts_ns",
    "tcp_flags",
    "payload_len",
    "ip_len",
    "ttl",
    "ip_id",
    "tcp_seq",
    "tcp_ack",
    "tcp_window",
    "tcp_mss",
    "tcp_wscale",
    "tcp_sack_perm",
    "tcp_ts_val",
    "tcp_ts_ecr",
    "tcp_opt_kinds",
)


@dataclass(frozen=True, eq=False)
class Connections:
    """Connections of one or more captures: flow records and their packets.

    ``flows`` has one row per connection, ordered by start time.  The packets
    of connection ``i`` are the rows ``order[offsets[i]:offsets[i + 1]]`` of
    ``packets``, in time order, and ``forward`` (aligned with ``order``) says
    which travelled from client to server.
    """

    flows: FlowTable
    file_index: Array
    packets: PacketTable
    order: Array
    offsets: Array
    forward: Array

    def __len__(self) -> int:
        return len(self.flows)

    def sequence(self, i: int) -> PacketSequence:
        """Return the packet sequence of connection ``i``."""
        rows = self.order[self.offsets[i] : self.offsets[i + 1]]
        columns = {
            name: getattr(self.packets, name)[rows] for name in _SEQUENCE_COLUMNS
        }
        payloads = None
        if self.packets.data is not None:
            payloads = [self.packets.payload(int(r)) for r in rows]
        return PacketSequence(
            forward=self.forward[self.offsets[i] : self.offsets[i + 1]],
            payloads=payloads,
            **columns,
        )


def assemble_connections(
    packets: PacketTable,
    timeouts: Timeouts | None = None,
) -> Connections:
    """Group ``packets`` into bidirectional connections.

    Connections never span two capture files.  The result's flows are ordered
    by start time.
    """
    timeouts = timeouts or Timeouts.default()
    if len(packets) == 0:
        return Connections(
            FlowTable.empty(),
            np.empty(0, np.uint16),
            packets,
            np.empty(0, np.int64),
            np.zeros(1, np.int64),
            np.empty(0, bool),
        )

    # key every packet by its unordered endpoints
    key, side = _endpoint_keys(packets)
    order = np.lexsort((np.arange(len(packets)), packets.ts_ns, key))

    # split each key's packets into connections
    conn = _split_connections(packets, key, side, order, timeouts)
    starts = np.flatnonzero(np.diff(conn, prepend=-1))
    offsets = np.append(starts, len(order)).astype(np.int64)

    # orient: find each connection's client side, then the forward packets
    sorted_side = side[order]
    client_side = _client_sides(packets, order, sorted_side, conn, starts)
    forward = sorted_side == client_side[conn]

    flows = _flow_records(packets, order, forward, conn, starts, client_side)
    file_index = packets.file_index[order[starts]]

    # present connections by start time (stable, so ties keep key order)
    by_start = np.argsort(flows.start, kind="stable")
    lengths = np.diff(offsets)[by_start]
    new_offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    gather = np.repeat(offsets[by_start] - new_offsets[:-1], lengths)
    gather += np.arange(len(order))
    return Connections(
        flows=flows.take(by_start),
        file_index=file_index[by_start],
        packets=packets,
        order=order[gather],
        offsets=new_offsets,
        forward=forward[gather],
    )


def _endpoint_keys(packets: PacketTable) -> tuple[Array, Array]:
    """Return a dense key per packet and the packet's side (0 or 1) in it."""
    n = len(packets)
    proto = packets.proto
    sport = packets.sport.astype(np.uint32)
    dport = packets.dport.astype(np.uint32)

    # ICMP echo: both directions share the identifier as their "ports";
    # other ICMP messages keep type and code
    is_icmp = (proto == ICMP) | (proto == ICMPV6)
    is_echo = np.zeros(n, dtype=bool)
    for number, types in _ECHO_TYPES.items():
        is_echo |= (proto == number) & np.isin(packets.sport, types)
    sport = np.where(is_echo, packets.icmp_id, sport)
    dport = np.where(is_echo, packets.icmp_id, dport)
    icmp_class = np.where(is_echo, 1, 0) + np.where(is_icmp & ~is_echo, 2, 0)

    # canonical order of the two endpoints: compare (address, port) as bytes
    src = np.concatenate([packets.src, _port_bytes(sport)], axis=1)
    dst = np.concatenate([packets.dst, _port_bytes(dport)], axis=1)
    side = _lexicographic_greater(src, dst).astype(np.int8)
    low = np.where(side[:, None] == 1, dst, src)
    high = np.where(side[:, None] == 1, src, dst)
    # ICMP messages that are not echo keep their direction in the key
    # (type and code differ per direction anyway)
    head = np.stack(
        [
            packets.file_index.astype(np.uint32) >> 8,
            packets.file_index.astype(np.uint32) & 0xFF,
            (packets.vlan.astype(np.int64) + 1) >> 8 & 0xFF,
            (packets.vlan.astype(np.int64) + 1) & 0xFF,
            proto.astype(np.uint32),
            icmp_class.astype(np.uint32),
        ],
        axis=1,
    ).astype(np.uint8)
    rows = np.ascontiguousarray(np.concatenate([head, low, high], axis=1))
    void = rows.view(np.dtype((np.void, rows.shape[1]))).ravel()
    _, key = np.unique(void, return_inverse=True)
    return key.ravel().astype(np.int64), side


def _port_bytes(port: Array) -> Array:
    """Return ports as two big-endian bytes per row."""
    return np.stack([(port >> 8) & 0xFF, port & 0xFF], axis=1).astype(np.uint8)


def _lexicographic_greater(a: Array, b: Array) -> Array:
    """Return, per row, whether byte row ``a`` sorts after byte row ``b``."""
    diff = a.astype(np.int16) - b.astype(np.int16)
    nonzero = diff != 0
    first = np.argmax(nonzero, axis=1)
    decided: Array = diff[np.arange(len(a)), first] > 0
    return decided


def _split_connections(
    packets: PacketTable,
    key: Array,
    side: Array,
    order: Array,
    timeouts: Timeouts,
) -> Array:
    """Return a connection number for each packet of ``order``.

    Numbers increase along ``order``, so each connection is one contiguous
    run of it.
    """
    idle_by_proto = np.full(256, int(timeouts.idle_for(UDP) * 1e9), np.int64)
    for proto in range(256):
        idle_by_proto[proto] = int(timeouts.idle_for(proto) * 1e9)
    active_ns = None if timeouts.active_s is None else int(timeouts.active_s * 1e9)

    keys = key[order].tolist()
    ts = packets.ts_ns[order].tolist()
    idle = idle_by_proto[packets.proto[order]].tolist()
    flags = (
        np.where(packets.proto[order] == TCP, packets.tcp_flags[order], 0)
        .astype(np.int64)
        .tolist()
    )
    seqs = packets.tcp_seq[order].tolist()
    sides = side[order].tolist()
    is_udp = packets.proto[order] == UDP
    dns = np.where(is_udp & (packets.dport[order] == 53), 1, 0)
    dns += np.where(is_udp & (packets.sport[order] == 53), 2, 0)
    dns_roles = dns.tolist()  # 1 query, 2 answer, 3 both ports 53, 0 other

    conn = [0] * len(keys)
    number = -1
    prev_key = -1
    first = last = 0
    syn_seq: int | None = None
    fin = [False, False]
    closed = answered = False
    for i, k in enumerate(keys):
        t = ts[i]
        f = flags[i]
        is_syn = f & (SYN | ACK) == SYN
        if (
            k != prev_key
            or t - last > idle[i]
            or (active_ns is not None and t - first > active_ns)
            or (is_syn and (closed or syn_seq != seqs[i]))
            or (answered and dns_roles[i] == 1)
        ):
            number += 1
            prev_key, first = k, t
            syn_seq = seqs[i] if is_syn else None
            fin = [False, False]
            closed = answered = False
        last = t
        if dns_roles[i] == 2:
            answered = True
        if f & RST:
            closed = True
        elif f & FIN:
            fin[sides[i]] = True
            closed = fin[0] and fin[1]
        conn[i] = number
    return np.asarray(conn, dtype=np.int64)


def _first_in_segment(mask: Array, conn: Array, n_conn: int) -> Array:
    """Return, per connection, the position of its first True in ``mask``, or -1."""
    result = np.full(n_conn, -1, dtype=np.int64)
    where = np.flatnonzero(mask)
    owners, first = np.unique(conn[where], return_index=True)
    result[owners] = where[first]
    return result


def _client_sides(
    packets: PacketTable,
    order: Array,
    sorted_side: Array,
    conn: Array,
    starts: Array,
) -> Array:
    """Return the side (0 or 1) of each connection's client."""
    n_conn = len(starts)
    proto = packets.proto[order]
    flags = np.where(proto == TCP, packets.tcp_flags[order], 0)
    sport = packets.sport[order]
    dport = packets.dport[order]

    # default: the first sender, or the side on the ephemeral port
    client = sorted_side[starts].astype(np.int8)
    first_sport = sport[starts].astype(np.int64)
    first_dport = dport[starts].astype(np.int64)
    is_icmp = (proto[starts] == ICMP) | (proto[starts] == ICMPV6)
    reply_first = (first_sport < 1024) & (first_dport >= 1024) & ~is_icmp
    client = np.where(reply_first, 1 - client, client)

    # ICMP echo: the requester
    request = np.isin(sport, (8, 128)) & ((proto == ICMP) | (proto == ICMPV6))
    request &= ~((proto == ICMP) & (sport == 128))
    request &= ~((proto == ICMPV6) & (sport == 8))
    at = _first_in_segment(request, conn, n_conn)
    client = np.where(at >= 0, sorted_side[at], client)

    # TCP: the receiver of a SYN-ACK, better still the sender of a SYN
    at = _first_in_segment(flags & (SYN | ACK) == SYN | ACK, conn, n_conn)
    client = np.where(at >= 0, 1 - sorted_side[at], client)
    at = _first_in_segment(flags & (SYN | ACK) == SYN, conn, n_conn)
    client = np.where(at >= 0, sorted_side[at], client)
    return client.astype(np.int8)


def _flow_records(
    packets: PacketTable,
    order: Array,
    forward: Array,
    conn: Array,
    starts: Array,
    client_side: Array,
) -> FlowTable:
    """Summarise each connection as one bidirectional flow record."""
    n_conn = len(starts)
    ts = packets.ts_ns[order]
    ip_len = packets.ip_len[order].astype(np.int64)
    starts_rows = order[starts]
    proto = packets.proto[starts_rows]
    is_tcp = packets.proto[order] == TCP
    flags = np.where(is_tcp, packets.tcp_flags[order], 0).astype(np.uint16)

    # counters per direction
    fwd_packets = np.bincount(conn, weights=forward, minlength=n_conn)
    all_packets = np.bincount(conn, minlength=n_conn)
    fwd_bytes = np.bincount(conn, weights=ip_len * forward, minlength=n_conn)
    all_bytes = np.bincount(conn, weights=ip_len, minlength=n_conn)
    ends = np.append(starts[1:], len(order)) - 1

    # client and server endpoints, from the first packet's point of view
    first_forward = forward[starts]
    src = packets.src[starts_rows]
    dst = packets.dst[starts_rows]
    client_addr = np.where(first_forward[:, None], src, dst)
    server_addr = np.where(first_forward[:, None], dst, src)
    sport = packets.sport[starts_rows].astype(np.int32)
    dport = packets.dport[starts_rows].astype(np.int32)
    client_port = np.where(first_forward, sport, dport)
    server_port = np.where(first_forward, dport, sport)

    # ICMP keeps the type and code of the client's first message
    is_icmp = (proto == ICMP) | (proto == ICMPV6)
    at = _first_in_segment(forward, conn, n_conn)
    has_fwd = at >= 0
    icmp_type = np.where(has_fwd, packets.sport[order[np.maximum(at, 0)]], sport)
    icmp_code = np.where(has_fwd, packets.dport[order[np.maximum(at, 0)]], dport)
    client_port = np.where(is_icmp, icmp_type, client_port)
    server_port = np.where(is_icmp, icmp_code, server_port)

    union = np.bitwise_or.reduceat(flags, starts) if n_conn else flags[:0]
    state = _states(
        proto, forward, flags, conn, n_conn, fwd_packets, all_packets - fwd_packets
    )
    return FlowTable(
        start=ts[starts] / 1e9,
        duration=(ts[ends] - ts[starts]) / 1e9,
        proto=proto,
        client=format_addresses(client_addr),
        client_port=client_port,
        server=format_addresses(server_addr),
        server_port=server_port,
        fwd_packets=fwd_packets.astype(np.int64),
        fwd_bytes=fwd_bytes.astype(np.int64),
        bwd_packets=(all_packets - fwd_packets).astype(np.int64),
        bwd_bytes=(all_bytes - fwd_bytes).astype(np.int64),
        tcp_flags=union,
        state=state,
    )


def _states(
    proto: Array,
    forward: Array,
    flags: Array,
    conn: Array,
    n_conn: int,
    fwd_packets: Array,
    bwd_packets: Array,
) -> Array:
    """Return each connection's state in Zeek's ``conn_state`` vocabulary."""
    state = np.where(bwd_packets > 0, "SF", "S0").astype(object)
    state = np.where(fwd_packets > 0, state, "SHR")
    tcp = proto == TCP
    if tcp.any():
        tcp_state = _tcp_states(forward, flags, conn, n_conn)
        state = np.where(tcp, tcp_state, state)
    return state


def _tcp_states(forward: Array, flags: Array, conn: Array, n_conn: int) -> Array:
    """Return Zeek's TCP connection states.

    The rules, as Zeek documents ``conn_state``:

    ======  ===========================================================
    S0      SYN seen, no reply
    S1      established (SYN and SYN-ACK), not closed
    SF      established and closed by a FIN from each side
    REJ     SYN answered by RST, no SYN-ACK
    S2      established, FIN from the client only
    S3      established, FIN from the server only
    RSTO    established, the client sent the first RST
    RSTR    established, the server sent the first RST
    RSTOS0  client sent SYN then RST, no SYN-ACK seen
    RSTRH   server sent SYN-ACK then RST, no SYN seen
    SH      client sent SYN then FIN, no SYN-ACK seen
    SHR     server sent SYN-ACK then FIN, no SYN seen
    OTH     no SYN seen, mid-stream traffic
    ======  ===========================================================
    """

    def seen(mask: Array) -> Array:
        return np.bincount(conn, weights=mask, minlength=n_conn) > 0

    def first(mask: Array) -> Array:
        return _first_in_segment(mask, conn, n_conn)

    backward = ~forward
    syn = flags & (SYN | ACK) == SYN
    synack = flags & (SYN | ACK) == SYN | ACK
    c_syn, s_synack = seen(syn & forward), seen(synack & backward)
    c_fin, s_fin = seen((flags & FIN > 0) & forward), seen((flags & FIN > 0) & backward)
    c_rst_at = first((flags & RST > 0) & forward)
    s_rst_at = first((flags & RST > 0) & backward)
    c_rst, s_rst = c_rst_at >= 0, s_rst_at >= 0
    big = np.iinfo(np.int64).max
    client_first_rst = np.where(c_rst, c_rst_at, big) < np.where(s_rst, s_rst_at, big)

    established = c_syn & s_synack
    rules: Sequence[tuple[Array, str]] = [
        (established & (c_rst | s_rst) & client_first_rst, "RSTO"),
        (established & (c_rst | s_rst), "RSTR"),
        (established & c_fin & s_fin, "SF"),
        (established & c_fin, "S2"),
        (established & s_fin, "S3"),
        (established, "S1"),
        (c_syn & s_rst, "REJ"),
        (c_syn & c_rst, "RSTOS0"),
        (c_syn & c_fin, "SH"),
        (c_syn, "S0"),
        (s_synack & s_rst, "RSTRH"),
        (s_synack & s_fin, "SHR"),
    ]
    conditions = [mask for mask, _ in rules]
    choices = [name for _, name in rules]
    return np.select(conditions, choices, default="OTH").astype(object)
