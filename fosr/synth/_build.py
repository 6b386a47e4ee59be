"""Turn a flow batch into Ethernet frames, in numpy batches.

How this works
--------------
1. :func:`compute_fields` gives every varying header field per packet.
2. Packets are merged in time order (a stable sort, so packets with equal
   timestamps keep their flow order) and cut into chunks of consecutive
   packets.  Each chunk gets its own buffer with the frames back to back.
3. The buffer starts as random payload bytes: windows of a seeded random
   pool, so payload bytes are never generated or copied per packet.
4. Headers are built for the whole chunk at once, in three fixed-width
   arrays (Ethernet 18 bytes, IPv4 20, L4 60), whatever the layout: fields
   are patched with vectorised big-endian writes, TCP options are gathered
   from a table of option layouts built once (see _profiles), and the IPv4
   checksum is summed over the rows.  The used part of each row (14 or 18
   Ethernet bytes, 20 to 60 L4 bytes) is scattered over its frame.
5. The TCP, UDP and ICMP checksums (RFC 1071) add the header rows' words,
   the payload's words and the pseudo-header (RFC 9293 section 3.1, RFC
   768).  Random payloads are windows of the pool, so their sums come from
   the pool's prefix sums without reading them; given payloads are copied
   in and summed with ``np.add.reduceat`` over the buffer's words.

Chunks keep every array small enough for the allocator to reuse its
memory: on our VMs, touching fresh pages costs more than building the
packets in them (PLATFORM.md section 2.2 measured on the same machines).
Only IPv4 is built.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.synth._batch import ICMP, TCP, UDP, FlowBatch, Frames
from fosr.synth._checksum import checksum_rows, fold, sum_segments
from fosr.synth._fields import (
    N_OS,
    SYN_ACK_OPTIONS,
    SYN_OPTIONS,
    TS_ONLY,
    PacketFields,
    compute_fields,
)
from fosr.synth._profiles import (
    NOP,
    OS_PROFILES,
    TS,
    OptionLayout,
    pack_options,
    syn_ack_tokens,
)

__all__ = ["build_frames", "iter_frames"]

Array = npt.NDArray[Any]

DEFAULT_CHUNK_PACKETS = 8192
# Random payload bytes are windows of one seeded pool, tiled with a random
# phase per chunk: numpy's generator makes about 0.4 GB/s of fresh random
# bytes on our VMs, more than the rest of the build costs.  The pool size is
# odd so that frames see it at both byte parities.  Each payload looks
# random on its own; bytes repeat about every MiB across a capture.  Chosen,
# not tuned.
PAYLOAD_POOL_BYTES = (1 << 20) + 7
ETH_IPV4, ETH_VLAN = 0x0800, 0x8100
IP_DF = 0x4000
CHECKSUM_AT = {TCP: 16, UDP: 6, ICMP: 2}
ECHO_REQUEST, ECHO_REPLY = 8, 0
L4_WIDTH = 60
HEADER_WIDTH = 18 + 20 + L4_WIDTH


def build_frames(batch: FlowBatch, seed: int | np.random.Generator = 0) -> Frames:
    """Build the Ethernet frames of every packet of ``batch`` at once.

    ``seed`` (or a Generator) fixes the initial sequence numbers, timestamp
    offsets, IP IDs and random payloads, so one seed gives the same bytes.
    Frames come back merged in time order.  For large batches prefer
    :func:`iter_frames`, which keeps memory bounded.
    """
    chunks = list(iter_frames(batch, seed))
    if not chunks:
        empty = np.empty(0, np.int64)
        return Frames(np.empty(0, np.uint8), np.zeros(1, np.int64), empty, empty)
    ends = np.cumsum([0] + [len(c.data) for c in chunks[:-1]])
    offsets = [c.offsets[:-1] + end for c, end in zip(chunks, ends, strict=True)]
    offsets.append(np.array([ends[-1] + len(chunks[-1].data)], np.int64))
    return Frames(
        np.concatenate([c.data for c in chunks]),
        np.concatenate(offsets),
        np.concatenate([c.ts_ns for c in chunks]),
        np.concatenate([c.flow for c in chunks]),
    )


def iter_frames(
    batch: FlowBatch,
    seed: int | np.random.Generator = 0,
    chunk_packets: int = DEFAULT_CHUNK_PACKETS,
) -> Iterator[Frames]:
    """Build ``batch``'s frames in time order, ``chunk_packets`` at a time.

    Each Frames yielded owns its buffer (offsets start at 0).  The same
    seed gives the same bytes as :func:`build_frames`, whatever the chunk
    size, except for the random payload bytes.
    """
    if chunk_packets <= 0:
        raise ValueError(f"chunk_packets must be positive, not {chunk_packets}")
    rng = np.random.default_rng(seed)
    fields = compute_fields(batch, rng)
    pool = _PayloadPool(rng.integers(0, 256, PAYLOAD_POOL_BYTES, np.uint8))
    options = _option_table()
    order = np.argsort(batch.ts_ns, kind="stable")
    for lo in range(0, len(order), chunk_packets):
        rows = order[lo : lo + chunk_packets]
        phase = int(rng.integers(0, PAYLOAD_POOL_BYTES))
        yield _build_chunk(batch, fields, options, rows, pool, phase)


class _PayloadPool:
    """A random byte pool, doubled, with prefix sums for payload checksums.

    A payload of at most 64 KiB at buffer offset ``a`` with phase ``p`` is
    the contiguous ``doubled[q : q + length]`` where ``q = (p + a) % size``,
    so its RFC 1071 sum comes from two prefix sums in O(1), without reading
    the payload.
    """

    def __init__(self, pool: Array) -> None:
        self.size = len(pool)
        self.doubled = np.concatenate([pool, pool])
        even = np.where(np.arange(2 * self.size) % 2 == 0, self.doubled, 0)
        odd = self.doubled - even
        self.even_sums = np.concatenate([[0], np.cumsum(even, dtype=np.int64)])
        self.odd_sums = np.concatenate([[0], np.cumsum(odd, dtype=np.int64)])

    def fill(self, size: int, phase: int) -> Array:
        """Return ``size`` bytes (rounded up to even) tiled from ``phase``."""
        tile = self.doubled[phase : phase + self.size]
        data = np.empty(size + size % 2, np.uint8)
        whole = len(data) // self.size * self.size
        data[:whole].reshape(-1, self.size)[:] = tile
        data[whole:] = tile[: len(data) - whole]
        return data

    def sum_words(self, at: Array, length: Array, phase: int) -> Array:
        """Return the unfolded word sums of payloads at buffer offsets ``at``."""
        q = (phase + at) % self.size
        even = self.even_sums[q + length] - self.even_sums[q]
        odd = self.odd_sums[q + length] - self.odd_sums[q]
        result: Array = np.where(q % 2 == 0, even * 256 + odd, odd * 256 + even)
        return result


def _build_chunk(
    batch: FlowBatch,
    fields: PacketFields,
    options: tuple[Array, Array],
    rows: Array,
    pool: _PayloadPool,
    phase: int,
) -> Frames:
    """Build the frames of packets ``rows`` (in time order) in a new buffer."""
    flow = fields.flow[rows]
    proto = batch.proto[flow]
    opt_bytes, ts_at = options
    layout = fields.layout[rows]
    l4_len = np.where(proto == TCP, 20 + _OPT_LEN[layout], 8)
    eth_len = np.where(batch.vlan[flow] >= 0, 18, 14)
    frame_len = eth_len + 20 + l4_len + batch.payload_len[rows]
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(frame_len, out=offsets[1:])
    data = pool.fill(int(offsets[-1]) + 2, phase)

    # headers, all layouts at once
    starts = offsets[:-1]
    l4_at = starts + eth_len + 20
    eth = _ethernet(batch, flow, rows)
    ip = _ipv4(batch, fields, flow, rows, l4_len)
    l4 = _transport(batch, fields, flow, rows, opt_bytes, ts_at)
    _write_headers(data, starts, eth, ip, l4, eth_len + 20 + l4_len)

    # L4 checksums: header words from the rows, payload words from the pool
    payload_at = l4_at + l4_len
    if batch.payload is not None:
        _copy_payloads(batch, rows, payload_at, data)
        total = sum_segments(data, payload_at, offsets[1:])
    else:
        total = pool.sum_words(payload_at, batch.payload_len[rows], phase)
    total += l4[:, 0::2].astype(np.int64).sum(1) * 256
    total += l4[:, 1::2].astype(np.int64).sum(1)
    _write_l4_checksums(batch, flow, l4_at, offsets[1:] - l4_at, total, data)
    return Frames(data[: offsets[-1]], offsets, batch.ts_ns[rows], flow)


def _write_headers(
    data: Array, starts: Array, eth: Array, ip: Array, l4: Array, used: Array
) -> None:
    """Write each frame's header (its first ``used`` bytes) at ``starts``.

    Rows are HEADER_WIDTH wide whatever the layout.  The used bytes of all
    rows are compacted in order and written through a mask of the buffer's
    header bytes: two passes over the buffer cost less than scattering by
    index, which numpy does at about 10 ns a byte.
    """
    untagged = np.concatenate(
        [eth[:, :12], eth[:, 16:18], ip, l4, np.zeros((len(ip), 4), np.uint8)], 1
    )
    tagged = np.concatenate([eth, ip, l4], 1)
    header = np.where((eth[:, 12] == ETH_VLAN >> 8)[:, None], tagged, untagged)
    keep = np.arange(HEADER_WIDTH) < used[:, None]

    # a mask of header bytes over the buffer: runs of header, then the rest
    ends = np.append(starts[1:], len(data))
    runs = np.empty(2 * len(starts), np.int64)
    runs[0::2] = used
    runs[1::2] = ends - starts - used
    is_header = np.repeat(np.tile([True, False], len(starts)), runs)
    data[is_header] = header[keep]


def _ethernet(batch: FlowBatch, flow: Array, rows: Array) -> Array:
    """Return (n, 18) Ethernet headers, with an 802.1Q tag where asked.

    Untagged rows hold the EtherType at 16 and zeros at 12 to 16, which
    _write_headers drops.
    """
    out = np.zeros((len(rows), 18), np.uint8)
    side = batch.forward[rows][:, None]
    out[:, 0:6] = np.where(side, batch.server_mac[flow], batch.client_mac[flow])
    out[:, 6:12] = np.where(side, batch.client_mac[flow], batch.server_mac[flow])
    vlan = batch.vlan[flow].astype(np.int64)
    tagged = vlan >= 0
    _put16(out, 12, np.where(tagged, ETH_VLAN, 0))
    _put16(out, 14, np.where(tagged, vlan & 0x0FFF, 0))
    _put16(out, 16, ETH_IPV4)
    return out


def _ipv4(
    batch: FlowBatch, fields: PacketFields, flow: Array, rows: Array, l4_len: Array
) -> Array:
    """Return (n, 20) IPv4 headers (RFC 791; no options, TOS 0)."""
    out = np.zeros((len(rows), 20), np.uint8)
    fwd = batch.forward[rows]
    sender = fields.sender_os[rows]
    out[:, 0] = 0x45
    _put16(out, 2, 20 + l4_len + batch.payload_len[rows].astype(np.int64))
    _put16(out, 4, fields.ip_id[rows])
    _put16(out, 6, np.where(_DF[sender], IP_DF, 0))
    out[:, 8] = _TTL[sender]
    out[:, 9] = batch.proto[flow]
    _put32(out, 12, np.where(fwd, batch.client_ip[flow], batch.server_ip[flow]))
    _put32(out, 16, np.where(fwd, batch.server_ip[flow], batch.client_ip[flow]))
    _put16(out, 10, checksum_rows(out))
    return out


def _transport(
    batch: FlowBatch,
    fields: PacketFields,
    flow: Array,
    rows: Array,
    opt_bytes: Array,
    ts_at: Array,
) -> Array:
    """Return (n, 60) TCP, UDP or ICMP echo headers, checksums zero."""
    out = np.zeros((len(rows), L4_WIDTH), np.uint8)
    fwd = batch.forward[rows]
    proto = batch.proto[flow]
    tcp, udp, icmp = proto == TCP, proto == UDP, proto == ICMP
    sport = np.where(fwd, batch.client_port[flow], batch.server_port[flow])
    dport = np.where(fwd, batch.server_port[flow], batch.client_port[flow])
    seq = fields.seq[rows]
    payload_len = batch.payload_len[rows].astype(np.int64)

    # ports (TCP, UDP) or type, code and identifier (ICMP echo)
    icmp_type = np.where(fwd, ECHO_REQUEST, ECHO_REPLY)
    _put16(out, 0, np.where(icmp, icmp_type << 8, sport))
    _put16(out, 2, np.where(icmp, 0, dport))
    _put16(
        out,
        4,
        np.where(
            icmp, batch.client_port[flow], np.where(udp, 8 + payload_len, seq >> 16)
        ),
    )
    _put16(out, 6, np.where(icmp, seq, np.where(udp, 0, seq & 0xFFFF)))

    # the rest of TCP (RFC 9293 section 3.1) and its options
    layout = fields.layout[rows]
    _put32(out, 8, np.where(tcp, fields.ack[rows], 0))
    out[:, 12] = np.where(tcp, (5 + _OPT_LEN[layout] // 4) << 4, 0)
    out[:, 13] = np.where(tcp, batch.tcp_flags[rows], 0)
    _put16(out, 14, np.where(tcp, fields.window[rows], 0))
    out[:, 20:] = np.where(tcp[:, None], opt_bytes[layout], 0)
    timed = np.flatnonzero(tcp & (ts_at[layout] >= 0))
    at = 20 + ts_at[layout[timed]]
    for k, value in ((0, fields.ts_val[rows[timed]]), (4, fields.ts_ecr[rows[timed]])):
        for byte in range(4):
            out[timed, at + k + byte] = (value >> (24 - 8 * byte)) & 0xFF
    return out


def _option_table() -> tuple[Array, Array]:
    """Return the option bytes (L, 40) and TSval offset (L,) of each layout."""
    layouts = _option_layouts()
    table = np.zeros((len(layouts), 40), np.uint8)
    for i, layout in enumerate(layouts):
        table[i, : len(layout.data)] = np.frombuffer(layout.data, np.uint8)
    return table, np.array([layout.ts_at for layout in layouts], np.int64)


def _option_layouts() -> list[OptionLayout]:
    """Return the option layout of every layout code (see compute_fields)."""
    layouts = []
    for code in range(4 * N_OS * N_OS):
        kind, rest = divmod(code, N_OS * N_OS)
        sender, peer = (OS_PROFILES[i] for i in divmod(rest, N_OS))
        if kind == SYN_OPTIONS:
            tokens = sender.syn_options
        elif kind == SYN_ACK_OPTIONS:
            tokens = syn_ack_tokens(sender, peer)
        elif kind == TS_ONLY:
            tokens = (NOP, NOP, TS)
        else:
            tokens = ()
        layouts.append(pack_options(tokens, sender))
    return layouts


def _copy_payloads(batch: FlowBatch, rows: Array, at: Array, data: Array) -> None:
    """Copy the given payload bytes of ``rows`` to ``at`` in the buffer."""
    assert batch.payload is not None and batch.payload_offsets is not None, (
        "payload and payload_offsets come together"
    )
    length = batch.payload_len[rows].astype(np.int64)
    src = batch.payload_offsets[rows].astype(np.int64)
    step = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
    data[np.repeat(at, length) + step] = batch.payload[np.repeat(src, length) + step]


def _write_l4_checksums(
    batch: FlowBatch,
    flow: Array,
    l4_at: Array,
    l4_bytes: Array,
    total: Array,
    data: Array,
) -> None:
    """Add the pseudo-header to the L4 word sums ``total``; write checksums."""
    proto = batch.proto[flow].astype(np.int64)
    client = batch.client_ip[flow].astype(np.int64)
    server = batch.server_ip[flow].astype(np.int64)
    pseudo = (client >> 16) + (client & 0xFFFF) + (server >> 16) + (server & 0xFFFF)
    total = total + np.where(proto == ICMP, 0, pseudo + proto + l4_bytes)
    checksum = ~fold(total) & 0xFFFF
    # a UDP checksum of zero means "none" (RFC 768): send all ones
    checksum = np.where((proto == UDP) & (checksum == 0), 0xFFFF, checksum)

    at = l4_at + np.select(
        [proto == TCP, proto == UDP], [CHECKSUM_AT[TCP], CHECKSUM_AT[UDP]], 2
    )
    data[at] = checksum >> 8
    data[at + 1] = checksum & 0xFF


def _put16(out: Array, at: int, value: Any) -> None:
    """Write ``value`` big-endian into columns ``at``, ``at + 1``."""
    value = np.asarray(value, np.int64)
    out[:, at] = value >> 8
    out[:, at + 1] = value & 0xFF


def _put32(out: Array, at: int, value: Any) -> None:
    """Write ``value`` big-endian into columns ``at`` to ``at + 3``."""
    value = np.asarray(value, np.int64)
    out[:, at] = value >> 24
    out[:, at + 1] = (value >> 16) & 0xFF
    out[:, at + 2] = (value >> 8) & 0xFF
    out[:, at + 3] = value & 0xFF


_OPT_LEN = np.array([len(o.data) for o in _option_layouts()], np.int64)
_TTL = np.array([p.ttl for p in OS_PROFILES], np.uint8)
_DF = np.array([p.df for p in OS_PROFILES])
