"""Per-packet header fields of a flow batch: TCP bookkeeping and IP IDs.

How this works
--------------
Everything is computed per packet in the batch's CSR order (flow by flow),
with cumulative sums restarted at each flow's first packet:

- Each side of a TCP connection draws a random initial sequence number
  (RFC 9293 section 3.4.1).  A segment consumes its payload length, plus
  one for SYN and one for FIN; its ``seq`` is the sender's ISN plus what
  the sender consumed before it.  ``ack`` is the peer's ISN plus what the
  peer consumed before this segment (no loss, so everything sent earlier
  has arrived), written only when the ACK flag is set.  A RST sent as the
  sender's first segment (a rejected SYN) carries seq 0, as RFC 9293
  section 3.10.7.1 prescribes for a reset answering a segment without ACK.
- TCP timestamps (RFC 7323) tick at 1 kHz from a random per-side offset
  (Linux randomises it per connection since 4.10); TSecr echoes the latest
  TSval received from the peer, 0 before any.
- Options: a SYN carries the sender OS's full layout, a SYN+ACK the
  options the SYN offered, later segments only NOP, NOP, TS when both SYNs
  carried timestamps.  A flow without any SYN uses what both profiles
  would have negotiated.
- TCP options on IPv6 flows use their own layouts (codes offset by
  ``IPV6_LAYOUTS``) whose MSS is 20 bytes less: the IPv6 header is 20
  bytes longer than IPv4's (RFC 8200 section 5 and RFC 9293 section
  3.7.1: MSS is the MTU less both fixed headers).
- IPv4 ID: a per-connection counter with a random start per side, or for
  profiles with ``global_ip_id`` (Windows) one counter per host shared by
  all its flows in time order.
- ICMP echo: requests go forward and replies backward; the sequence number
  counts requests, so a reply carries its request's number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.synth._batch import ICMP, TCP, FlowBatch
from fosr.synth._profiles import OS_PROFILES

Array = npt.NDArray[Any]

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
# option layout kinds, see layout_code()
NO_OPTIONS, TS_ONLY, SYN_OPTIONS, SYN_ACK_OPTIONS = 0, 1, 2, 3
N_OS = len(OS_PROFILES)
IPV6_LAYOUTS = 4 * N_OS * N_OS  # layout codes of IPv6 flows start here
N_LAYOUTS = 2 * IPV6_LAYOUTS

_P = OS_PROFILES
_HAS_TS = np.array([p.has_timestamps for p in _P])
_HAS_WS = np.array(["ws" in p.syn_options for p in _P])
_SYN_WINDOW = np.array([p.syn_window for p in _P], np.uint32)
_SCALED = np.array([p.window_bytes >> p.wscale for p in _P], np.uint32)
_UNSCALED = np.array([min(p.window_bytes, 65535) for p in _P], np.uint32)
_GLOBAL_ID = np.array([p.global_ip_id for p in _P])


@dataclass(frozen=True, eq=False)
class PacketFields:
    """Header fields per packet, in the batch's CSR order.

    ``layout`` is ``kind * N_OS**2 + sender_os * N_OS + peer_os`` for TCP
    (plus ``IPV6_LAYOUTS`` on IPv6 flows) and 0 otherwise; ``seq`` and
    ``ack`` are uint32 (for ICMP, ``seq`` is the echo sequence number).
    """

    flow: Array
    sender_os: Array
    layout: Array
    seq: Array
    ack: Array
    window: Array
    ts_val: Array
    ts_ecr: Array
    ip_id: Array


def compute_fields(
    batch: FlowBatch, rng: np.random.Generator, time_order: Array | None = None
) -> PacketFields:
    """Compute every varying header field of ``batch``'s packets.

    ``time_order`` is ``np.argsort(batch.ts_ns, kind="stable")`` when the
    caller has it already.

    Flows are taken in blocks of about BLOCK_PACKETS packets, so that the
    dozens of temporary arrays stay small enough for the allocator to
    reuse; the random draws are made for the whole batch first, so the
    result does not depend on the blocks.
    """
    n = batch.n_flows
    draws = _Draws(
        isn=rng.integers(0, 2**32, size=2 * n, dtype=np.int64),
        ts_offset=rng.integers(0, 2**32, size=2 * n, dtype=np.int64),
        id_base=rng.integers(0, 2**16, size=2 * n, dtype=np.int64),
    )
    blocks = [_block_fields(batch, draws, lo, hi) for lo, hi in _blocks(batch)]
    columns = [np.concatenate(column) for column in zip(*blocks, strict=True)]
    if not blocks:
        columns = [np.empty(0, np.int64)] * len(PacketFields.__dataclass_fields__)
    fields = PacketFields(*columns)
    if time_order is None:
        time_order = np.argsort(batch.ts_ns, kind="stable")
    _share_ip_ids(batch, fields, rng, time_order)
    return fields


# Blocks of flows for compute_fields: about 0.5 MB per temporary int64
# array, well inside what glibc keeps for reuse.  Chosen, not tuned.
BLOCK_PACKETS = 1 << 16


@dataclass(frozen=True, eq=False)
class _Draws:
    """Random values per flow and side (row ``2 * flow + backward``)."""

    isn: Array
    ts_offset: Array
    id_base: Array


def _blocks(batch: FlowBatch) -> list[tuple[int, int]]:
    """Return (first, end) flow ranges of about BLOCK_PACKETS packets."""
    cuts = np.searchsorted(
        batch.offsets, np.arange(0, batch.n_packets, BLOCK_PACKETS), "right"
    )
    bounds = np.unique(np.concatenate([[0], cuts - 1, [batch.n_flows]]))
    bounds = bounds[(bounds >= 0) & (bounds <= batch.n_flows)]
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _block_fields(
    batch: FlowBatch, draws: _Draws, first: int, end: int
) -> tuple[Array, ...]:
    """Return the PacketFields columns of flows ``first:end``."""
    p0, p1 = int(batch.offsets[first]), int(batch.offsets[end])
    counts = np.diff(batch.offsets[first : end + 1])
    local = np.repeat(np.arange(end - first), counts)
    flow = local + first
    start = batch.offsets[first:end][local] - p0
    fwd = np.asarray(batch.forward[p0:p1], bool)
    side = 2 * flow + ~fwd  # the sender's row in draws
    peer_side = side ^ 1
    is_tcp = batch.proto[flow] == TCP
    flags = np.where(is_tcp, batch.tcp_flags[p0:p1], 0).astype(np.int64)
    client_os, server_os = batch.client_os[flow], batch.server_os[flow]
    sender_os = np.where(fwd, client_os, server_os)
    peer_os = np.where(fwd, server_os, client_os)

    # sequence space consumed per side before each packet
    used = batch.payload_len[p0:p1].astype(np.int64)
    used += (flags & SYN > 0) + (flags & FIN > 0)
    all_before = _before(used, start)
    fwd_before = _before(np.where(fwd, used, 0), start)
    own_before = np.where(fwd, fwd_before, all_before - fwd_before)
    peer_before = all_before - own_before
    fwd_sent = _before(fwd, start)
    sent_before = np.where(fwd, fwd_sent, np.arange(p1 - p0) - start - fwd_sent)
    first_rst = (flags & RST > 0) & (sent_before == 0)
    seq = np.where(first_rst, 0, draws.isn[side] + own_before) & 0xFFFFFFFF
    peer = draws.isn[peer_side] + peer_before
    ack = np.where(flags & ACK > 0, peer, 0) & 0xFFFFFFFF

    # what the handshake negotiated, and which options each segment carries
    syn_only = (flags & (SYN | ACK)) == SYN
    syn_ack = (flags & (SYN | ACK)) == SYN | ACK
    has_syn = np.bincount(local, syn_only, end - first) > 0
    has_syn_ack = np.bincount(local, syn_ack, end - first) > 0
    agreed = (~has_syn | has_syn_ack)[local]
    ts_on = _HAS_TS[client_os] & _HAS_TS[server_os] & agreed
    ws_on = _HAS_WS[client_os] & _HAS_WS[server_os] & agreed
    kind = np.where(ts_on, TS_ONLY, NO_OPTIONS)
    kind = np.where(syn_only, SYN_OPTIONS, np.where(syn_ack, SYN_ACK_OPTIONS, kind))
    layout = (kind * N_OS + sender_os) * N_OS + peer_os
    layout += np.where(batch.ip_version[flow] == 6, IPV6_LAYOUTS, 0)
    layout = np.where(is_tcp, layout, 0)

    # receive window: unscaled in SYNs, zero in resets
    window = np.where(ws_on, _SCALED[sender_os], _UNSCALED[sender_os])
    window = np.where(flags & SYN > 0, _SYN_WINDOW[sender_os], window)
    window = np.where(flags & RST > 0, 0, window)

    # TCP timestamps, IPv4 IDs per connection, ICMP echo sequence numbers
    ts_val, ts_ecr = _timestamps(batch.ts_ns[p0:p1], draws, side, start, fwd)
    ip_id = draws.id_base[side] + sent_before
    icmp = batch.proto[flow] == ICMP
    seq = np.where(icmp, (fwd_sent + fwd) & 0xFFFF, seq)

    # narrow types: the builder gathers these per chunk in random order,
    # and half the bytes is half the cache misses
    return (
        flow,
        sender_os,
        layout.astype(np.uint16),
        seq.astype(np.uint32),
        ack.astype(np.uint32),
        window.astype(np.uint32),
        ts_val.astype(np.uint32),
        ts_ecr.astype(np.uint32),
        (ip_id & 0xFFFF).astype(np.uint16),
    )


def _before(values: Array, start: Array) -> Array:
    """Sum ``values`` over the earlier packets of each packet's flow."""
    total = np.cumsum(values, dtype=np.int64)
    exclusive = total - values
    return exclusive - exclusive[start]


def _timestamps(
    ts_ns: Array, draws: _Draws, side: Array, start: Array, fwd: Array
) -> tuple[Array, Array]:
    """Return TSval and TSecr per packet (``start``: flow's first packet)."""
    ts_val = (draws.ts_offset[side] + ts_ns // 1_000_000) & 0xFFFFFFFF

    # the peer's latest packet before each packet, if any in this flow
    index = np.arange(len(fwd))
    last_fwd = np.maximum.accumulate(np.where(fwd, index, -1))
    last_bwd = np.maximum.accumulate(np.where(fwd, -1, index))
    last_peer = np.where(fwd, last_bwd, last_fwd)
    seen = last_peer >= start
    ts_ecr = np.where(seen, ts_val[np.maximum(last_peer, 0)], 0)
    return ts_val, ts_ecr


def _share_ip_ids(
    batch: FlowBatch,
    fields: PacketFields,
    rng: np.random.Generator,
    time_order: Array,
) -> None:
    """Give global-counter profiles one IPv4 ID counter per host, in place.

    The counter runs in time order over all the host's flows (the packets
    in time order, then a stable sort by host); IPv6 has no ID to share.
    """
    flow, fwd = fields.flow, batch.forward
    is_v4 = batch.ip_version[flow] == 4
    is_shared = _GLOBAL_ID[fields.sender_os] & is_v4
    shared = time_order[is_shared[time_order]]
    if not len(shared):
        return
    src = np.where(
        fwd[shared], batch.client_ip[flow[shared]], batch.server_ip[flow[shared]]
    )
    order = np.argsort(src, kind="stable")
    first = np.flatnonzero(np.diff(src[order], prepend=-1))
    count = np.diff(first, append=len(order))
    rank = np.arange(len(order)) - np.repeat(first, count)
    host_base = rng.integers(0, 2**16, size=len(first), dtype=np.int64)
    fields.ip_id[shared[order]] = (np.repeat(host_base, count) + rank) & 0xFFFF
