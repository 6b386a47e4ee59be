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
    and 0 otherwise; ``seq`` and ``ack`` are uint32 (for ICMP, ``seq`` is
    the echo sequence number).
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


def compute_fields(batch: FlowBatch, rng: np.random.Generator) -> PacketFields:
    """Compute every varying header field of ``batch``'s packets."""
    counts = np.diff(batch.offsets)
    flow = np.repeat(np.arange(batch.n_flows), counts)
    start = batch.offsets[:-1][flow]
    fwd = np.asarray(batch.forward, bool)
    flags = np.asarray(batch.tcp_flags, np.int64)
    is_tcp = batch.proto[flow] == TCP
    flags = np.where(is_tcp, flags, 0)
    sender_os = np.where(fwd, batch.client_os[flow], batch.server_os[flow])
    peer_os = np.where(fwd, batch.server_os[flow], batch.client_os[flow])

    # sequence space consumed per side before each packet
    used = batch.payload_len.astype(np.int64) + (flags & SYN > 0) + (flags & FIN > 0)
    fwd_before = _before(np.where(fwd, used, 0), start)
    bwd_before = _before(np.where(fwd, 0, used), start)
    sent_before = np.where(fwd, _before(fwd, start), _before(~fwd, start))
    isn = rng.integers(0, 2**32, size=(batch.n_flows, 2), dtype=np.int64)
    own = np.where(fwd, isn[flow, 0] + fwd_before, isn[flow, 1] + bwd_before)
    peer = np.where(fwd, isn[flow, 1] + bwd_before, isn[flow, 0] + fwd_before)
    first_rst = (flags & RST > 0) & (sent_before == 0)
    seq = np.where(first_rst, 0, own) & 0xFFFFFFFF
    ack = np.where(flags & ACK > 0, peer, 0) & 0xFFFFFFFF

    # what the handshake negotiated, and which options each segment carries
    syn_only = (flags & (SYN | ACK)) == SYN
    syn_ack = (flags & (SYN | ACK)) == SYN | ACK
    has_syn = np.bincount(flow, syn_only, batch.n_flows) > 0
    has_syn_ack = np.bincount(flow, syn_ack, batch.n_flows) > 0
    agreed = ~has_syn | has_syn_ack
    ts_on = _HAS_TS[batch.client_os] & _HAS_TS[batch.server_os] & agreed
    ws_on = _HAS_WS[batch.client_os] & _HAS_WS[batch.server_os] & agreed
    kind = np.where(ts_on[flow], TS_ONLY, NO_OPTIONS)
    kind = np.where(syn_only, SYN_OPTIONS, np.where(syn_ack, SYN_ACK_OPTIONS, kind))
    layout = np.where(is_tcp, (kind * N_OS + sender_os) * N_OS + peer_os, 0)

    # receive window: unscaled in SYNs, zero in resets
    window = np.where(ws_on[flow], _SCALED[sender_os], _UNSCALED[sender_os])
    window = np.where(flags & SYN > 0, _SYN_WINDOW[sender_os], window)
    window = np.where(flags & RST > 0, 0, window)

    ts_val, ts_ecr = _timestamps(batch, rng, flow, start, fwd)
    ip_id = _ip_ids(batch, rng, flow, fwd, sender_os, sent_before)
    if np.any(batch.proto == ICMP):
        echo_seq = _before(fwd, start) + fwd
        seq = np.where(batch.proto[flow] == ICMP, echo_seq & 0xFFFF, seq)
    return PacketFields(
        flow, sender_os, layout, seq, ack, window, ts_val, ts_ecr, ip_id
    )


def _before(values: Array, start: Array) -> Array:
    """Sum ``values`` over the earlier packets of each packet's flow."""
    total = np.cumsum(values, dtype=np.int64)
    exclusive = total - values
    return exclusive - exclusive[start]


def _timestamps(
    batch: FlowBatch,
    rng: np.random.Generator,
    flow: Array,
    start: Array,
    fwd: Array,
) -> tuple[Array, Array]:
    offset = rng.integers(0, 2**32, size=(batch.n_flows, 2), dtype=np.int64)
    ticks = (batch.ts_ns // 1_000_000).astype(np.int64)
    ts_val = (np.where(fwd, offset[flow, 0], offset[flow, 1]) + ticks) & 0xFFFFFFFF

    # the peer's latest packet before each packet, if any in this flow
    index = np.arange(len(fwd))
    last_fwd = np.maximum.accumulate(np.where(fwd, index, -1))
    last_bwd = np.maximum.accumulate(np.where(fwd, -1, index))
    last_peer = np.where(fwd, last_bwd, last_fwd)
    seen = last_peer >= start
    ts_ecr = np.where(seen, ts_val[np.maximum(last_peer, 0)], 0)
    return ts_val, ts_ecr


def _ip_ids(
    batch: FlowBatch,
    rng: np.random.Generator,
    flow: Array,
    fwd: Array,
    sender_os: Array,
    sent_before: Array,
) -> Array:
    base = rng.integers(0, 2**16, size=(batch.n_flows, 2), dtype=np.int64)
    ip_id = np.where(fwd, base[flow, 0], base[flow, 1]) + sent_before

    # one counter per host for global-counter profiles, in time order
    shared = np.flatnonzero(_GLOBAL_ID[sender_os])
    if len(shared):
        src = np.where(fwd, batch.client_ip[flow], batch.server_ip[flow])[shared]
        hosts, host = np.unique(src, return_inverse=True)
        order = np.lexsort((shared, batch.ts_ns[shared], host))
        sorted_host = host[order]
        first = np.flatnonzero(np.diff(sorted_host, prepend=-1))
        rank = np.arange(len(order)) - np.repeat(
            first, np.diff(first, append=len(order))
        )
        host_base = rng.integers(0, 2**16, size=len(hosts), dtype=np.int64)
        ip_id[shared[order]] = host_base[sorted_host] + rank
    result: Array = ip_id & 0xFFFF
    return result
