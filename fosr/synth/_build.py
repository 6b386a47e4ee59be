"""Turn a flow batch into Ethernet frames, in numpy batches.

How this works
--------------
1. :func:`compute_fields` gives every varying header field per packet, and
   :func:`build_templates` the constant bytes of each flow and direction
   (Ethernet, IPv4 or IPv6, ports), with the sums of their words.
2. Packets are merged in time order (a stable sort, so packets with equal
   timestamps keep their flow order) and cut into chunks of consecutive
   packets.  Each chunk gets its own buffer with the frames back to back.
3. The buffer starts as random payload bytes: windows of a seeded random
   pool, so payload bytes are never generated per packet.  Given payloads
   are copied in 256- and 32-byte blocks (see _copy).
4. Each packet gets a header row: its template row, gathered in one step,
   then the packet fields patched in.  Rows are sorted by header layout
   (protocol, IP version, 802.1Q tag, option length), so that each layout
   is one slice of rows whose fields sit in fixed columns, patched with
   whole-column writes.  TCP options come from a table of option layouts
   built once (see _profiles).
5. Checksums (RFC 1071) add up words, never bytes: the template's sums,
   the words of the patched fields and the payload's sum.  Random
   payloads are windows of the pool, so their sums come from the pool's
   prefix sums without reading them; given payloads are summed with
   ``np.add.reduceat`` over the buffer's words.
6. Each layout's header rows are written over the first bytes of their
   frames in one strided step.

Chunks keep every array small enough for the allocator to reuse its
memory: on our VMs, touching fresh pages costs more than building the
packets in them (PLATFORM.md section 2.2 measured on the same machines).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.synth._batch import ICMP, TCP, UDP, FlowBatch, Frames
from fosr.synth._checksum import fold, sum_segments
from fosr.synth._copy import copy_segments, windows
from fosr.synth._fields import (
    IPV6_LAYOUTS,
    N_LAYOUTS,
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
from fosr.synth._templates import (
    L4_AT,
    ROW_WIDTH,
    TEMPLATE_WIDTH,
    FlowTemplates,
    build_templates,
    put16,
    put32,
)

__all__ = ["build_frames", "iter_frames"]

Array = npt.NDArray[Any]

DEFAULT_CHUNK_PACKETS = 16384
# Random payload bytes are windows of one seeded pool, tiled with a random
# phase per chunk: numpy's generator makes about 0.4 GB/s of fresh random
# bytes on our VMs, more than the rest of the build costs.  The pool size is
# odd so that frames see it at both byte parities.  Each payload looks
# random on its own; bytes repeat about every MiB across a capture.  Chosen,
# not tuned.
PAYLOAD_POOL_BYTES = (1 << 20) + 7
CHECKSUM_AT = {TCP: 16, UDP: 6, ICMP: 2}


def build_frames(
    batch: FlowBatch,
    seed: int | np.random.Generator = 0,
    *,
    headroom_bytes: int = 0,
) -> Frames:
    """Build the Ethernet frames of every packet of ``batch`` at once.

    ``seed`` (or a Generator) fixes the initial sequence numbers, timestamp
    offsets, IP IDs, flow labels and random payloads, so one seed gives the
    same bytes.  Frames come back merged in time order, with
    ``headroom_bytes`` of scratch space before each (see Frames).  For
    large batches prefer :func:`iter_frames`, which keeps memory bounded.
    """
    chunks = list(iter_frames(batch, seed, headroom_bytes=headroom_bytes))
    if not chunks:
        empty = np.empty(0, np.int64)
        return Frames(
            np.empty(0, np.uint8), np.zeros(1, np.int64), empty, empty, headroom_bytes
        )
    ends = np.cumsum([0] + [len(c.data) for c in chunks[:-1]])
    offsets = [c.offsets[:-1] + end for c, end in zip(chunks, ends, strict=True)]
    offsets.append(np.array([ends[-1] + len(chunks[-1].data)], np.int64))
    return Frames(
        np.concatenate([c.data for c in chunks]),
        np.concatenate(offsets),
        np.concatenate([c.ts_ns for c in chunks]),
        np.concatenate([c.flow for c in chunks]),
        headroom_bytes,
    )


def iter_frames(
    batch: FlowBatch,
    seed: int | np.random.Generator = 0,
    chunk_packets: int = DEFAULT_CHUNK_PACKETS,
    *,
    headroom_bytes: int = 0,
) -> Iterator[Frames]:
    """Build ``batch``'s frames in time order, ``chunk_packets`` at a time.

    Each Frames yielded owns its buffer (offsets start at 0) and leaves
    ``headroom_bytes`` before each frame: 16 lets :func:`write_pcap` put
    its record headers there instead of copying the frames.  The same seed
    gives the same headers as :func:`build_frames`, whatever the chunk
    size, except for random payload bytes and the checksums over them.
    """
    if chunk_packets <= 0:
        raise ValueError(f"chunk_packets must be positive, not {chunk_packets}")
    if headroom_bytes < 0:
        raise ValueError(f"headroom_bytes must not be negative, not {headroom_bytes}")
    rng = np.random.default_rng(seed)
    order = np.argsort(batch.ts_ns, kind="stable")
    packets = _Packets.in_time_order(batch, compute_fields(batch, rng, order), order)
    pool = _PayloadPool(rng.integers(0, 256, PAYLOAD_POOL_BYTES, np.uint8))
    templates = build_templates(batch, rng)
    options = _option_table()
    for lo in range(0, batch.n_packets, chunk_packets):
        rows = slice(lo, min(lo + chunk_packets, batch.n_packets))
        phase = int(rng.integers(0, PAYLOAD_POOL_BYTES))
        yield _build_chunk(
            batch, packets, templates, options, rows, pool, phase, headroom_bytes
        )


@dataclass(frozen=True, eq=False)
class _Packets:
    """Per-packet columns of a batch and its fields, in time order.

    Chunks are consecutive slices of these, so the gathers that follow a
    chunk's sort stay inside a few cache-sized arrays: gathering from the
    batch's flow order instead misses the caches on almost every packet.
    """

    fields: PacketFields
    forward: Array
    tcp_flags: Array
    payload_len: Array
    ts_ns: Array
    payload_src: Array | None

    @classmethod
    def in_time_order(
        cls, batch: FlowBatch, fields: PacketFields, order: Array
    ) -> _Packets:
        """Return the packets of ``batch`` in time ``order``."""
        taken = {
            name: getattr(fields, name)[order] for name in fields.__dataclass_fields__
        }
        src = batch.payload_offsets
        return cls(
            PacketFields(**taken),
            batch.forward[order],
            batch.tcp_flags[order],
            batch.payload_len[order].astype(np.int64),
            batch.ts_ns[order],
            None if src is None else src[:-1][order].astype(np.int64),
        )


class _PayloadPool:
    """A random byte pool, doubled, with prefix sums for payload checksums.

    A payload of at most 64 KiB at buffer offset ``a`` with phase ``p`` is
    the contiguous ``doubled[q : q + length]`` where ``q = (p + a) % size``,
    so its RFC 1071 sum comes from two prefix sums in O(1), without reading
    the payload.  The prefix sums of even and odd bytes sit side by side in
    int32 (at most 2**20 bytes of 255 each), so one lookup is one cache
    line: these lookups miss the caches, and misses are what they cost.
    """

    def __init__(self, pool: Array) -> None:
        self.size = len(pool)
        self.doubled = np.concatenate([pool, pool])
        even = np.where(np.arange(2 * self.size) % 2 == 0, self.doubled, 0)
        self.sums = np.zeros((2 * self.size + 1, 2), np.int32)
        np.cumsum(even, dtype=np.int32, out=self.sums[1:, 0])
        np.cumsum(self.doubled - even, dtype=np.int32, out=self.sums[1:, 1])

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
        # each pair read as one little-endian int64: even low, odd high
        pairs = self.sums.view(np.int64).reshape(-1)
        hi, lo = pairs[q + length], pairs[q]
        even = (hi & 0xFFFFFFFF) - (lo & 0xFFFFFFFF)
        odd = (hi >> 32) - (lo >> 32)
        result: Array = np.where(q % 2 == 0, even * 256 + odd, odd * 256 + even)
        return result


def _build_chunk(
    batch: FlowBatch,
    packets: _Packets,
    templates: FlowTemplates,
    options: _OptionTable,
    rows: slice,
    pool: _PayloadPool,
    phase: int,
    headroom: int,
) -> Frames:
    """Build the frames of packets ``rows`` (in time order) in a new buffer."""
    fields = packets.fields
    flow = fields.flow[rows]
    proto = batch.proto[flow]
    payload_len = packets.payload_len[rows]
    l4_len = np.where(proto == TCP, 20 + options.length[fields.layout[rows]], 8)
    header_at = templates.header_at[flow]
    header_len = L4_AT - header_at + l4_len
    offsets = np.zeros(len(flow) + 1, np.int64)
    np.cumsum(headroom + header_len + payload_len, out=offsets[1:])
    starts = offsets[:-1] + headroom
    payload_at = starts + header_len

    # payload bytes and their sums, in time order
    if batch.payload is None:
        data = pool.fill(int(offsets[-1]) + 2, phase)
        payload_sum = pool.sum_words(payload_at, payload_len, phase)
    else:
        assert packets.payload_src is not None, "FlowBatch checks the pair"
        data = np.empty(int(offsets[-1]) + 2, np.uint8)
        data[-2:] = 0
        if headroom:  # never leave stale memory where a writer may look
            windows(data, headroom)[offsets[:-1]] = 0
        src = packets.payload_src[rows]
        copy_segments(data, payload_at, batch.payload, src, payload_len)
        payload_sum = sum_segments(data, payload_at, payload_at + payload_len)

    # header rows, sorted so that each header layout is one slice
    key = (_PROTO_RANK[proto] << 10) + (header_at << 4) + (l4_len >> 2)
    perm = np.argsort(key.astype(np.uint16), kind="stable")
    chunk = _Chunk(batch, packets, templates, options, rows.start + perm)
    chunk.fill_headers(l4_len[perm], payload_sum[perm])

    # write each layout's headers over its frames' first bytes; numpy
    # scatters contiguous rows 2.5 times faster than strided ones, more
    # than the copy that makes them contiguous costs
    key = key[perm]
    bounds = np.flatnonzero(np.diff(key, prepend=-1, append=-1))
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        at = int(header_at[perm[lo]])
        width = int(header_len[perm[lo]])
        used = np.ascontiguousarray(chunk.header[lo:hi, at : at + width])
        windows(data, width)[starts[perm[lo:hi]]] = used
    return Frames(data[: offsets[-1]], offsets, packets.ts_ns[rows], flow, headroom)


class _Chunk:
    """Header rows of one chunk's packets, sorted by layout, being filled.

    Rows follow the column layout of the templates (see _templates): the
    transport header starts at ``L4_AT`` in every row, whatever comes
    before it.  Packets of one protocol are one slice of rows, and within
    it IPv6 packets (lower ``header_at``) come before IPv4 ones.
    """

    def __init__(
        self,
        batch: FlowBatch,
        packets: _Packets,
        templates: FlowTemplates,
        options: _OptionTable,
        rows: Array,
    ) -> None:
        self.batch, self.packets, self.options = batch, packets, options
        self.fields = packets.fields
        self.templates = templates
        self.rows = rows
        self.flow = self.fields.flow[rows]
        self.side = 2 * self.flow + ~packets.forward[rows]
        self.proto = batch.proto[self.flow]
        self.payload_len = packets.payload_len[rows]
        # numpy gathers narrow contiguous rows and copies them into wide
        # ones faster than it gathers into a strided target
        self.header = np.empty((len(rows), ROW_WIDTH), np.uint8)
        self.header[:, :TEMPLATE_WIDTH] = np.take(templates.rows, self.side, axis=0)

    def fill_headers(self, l4_len: Array, payload_sum: Array) -> None:
        """Patch every packet field and checksum into the rows."""
        l4_bytes = l4_len + self.payload_len
        for proto, lo, hi in self._slices(self.proto):
            part = slice(lo, hi)
            v6 = self.templates.header_at[self.flow[part]] < L4_AT - 18 - 20
            split = lo + int(np.count_nonzero(v6))
            self._ipv6(slice(lo, split), l4_bytes[lo:split])
            self._ipv4(slice(split, hi), l4_bytes[split:hi])
            total = payload_sum[part] + self.templates.l4_sum[self.side[part]]
            total += self.templates.pseudo_sum[self.side[part]]
            if proto == TCP:
                total += self._tcp(part, l4_len[part]) + l4_bytes[part]
            elif proto == UDP:
                put16(self.header[part], L4_AT + 4, l4_bytes[part])
                total += 2 * l4_bytes[part]
            else:
                total += self._icmp(part)
                total += np.where(v6, l4_bytes[part], 0)
            checksum = ~fold(total) & 0xFFFF
            if proto == UDP:  # zero means "no checksum" (RFC 768): send ones
                checksum = np.where(checksum == 0, 0xFFFF, checksum)
            put16(self.header[part], L4_AT + CHECKSUM_AT[proto], checksum)

    def _ipv4(self, part: slice, l4_bytes: Array) -> None:
        """Patch IPv4 total length, ID and header checksum (RFC 791)."""
        if part.start == part.stop:
            return
        header = self.header[part]
        length = 20 + l4_bytes
        ip_id = self.fields.ip_id[self.rows[part]]
        put16(header, L4_AT - 18, length)
        put16(header, L4_AT - 16, ip_id)
        total = self.templates.ip4_sum[self.side[part]] + length + ip_id
        put16(header, L4_AT - 10, ~fold(total) & 0xFFFF)

    def _ipv6(self, part: slice, l4_bytes: Array) -> None:
        """Patch the IPv6 payload length (RFC 8200 section 3)."""
        if part.start != part.stop:
            put16(self.header[part], L4_AT - 36, l4_bytes)

    def _tcp(self, part: slice, l4_len: Array) -> Array:
        """Patch TCP (RFC 9293 section 3.1); return its header's word sum."""
        header, rows, fields = self.header[part], self.rows[part], self.fields
        seq, ack = fields.seq[rows], fields.ack[rows]
        layout = fields.layout[rows]
        offset_flags = ((l4_len >> 2) << 12) + self.packets.tcp_flags[rows]
        window = fields.window[rows]
        put32(header, L4_AT + 4, seq)
        put32(header, L4_AT + 8, ack)
        put16(header, L4_AT + 12, offset_flags)
        put16(header, L4_AT + 14, window)
        header[:, L4_AT + 18 : L4_AT + 20] = 0  # urgent pointer
        width = int(l4_len.max(initial=20)) - 20
        if width:
            options = self.options.data[layout, :width]
            header[:, L4_AT + 20 : L4_AT + 20 + width] = options
        total: Array = _split(seq) + _split(ack) + offset_flags + window
        total += self.options.word_sum[layout]

        # timestamps (RFC 7323 section 3) where the layout has them, written
        # through the flat rows: a 2-D index costs twice as much here
        ts_at = self.options.ts_at[layout]
        timed = np.flatnonzero(ts_at >= 0)
        if len(timed):
            flat = self.header.reshape(-1)
            at = (part.start + timed) * ROW_WIDTH + L4_AT + 20 + ts_at[timed]
            for k, value in enumerate((fields.ts_val, fields.ts_ecr)):
                word = value[rows[timed]]
                for byte in range(4):
                    flat[at + 4 * k + byte] = word >> (24 - 8 * byte)
                total[timed] += _split(word)
        return total

    def _icmp(self, part: slice) -> Array:
        """Patch echo identifier and sequence; return their word sum."""
        identifier = self.batch.client_port[self.flow[part]].astype(np.int64)
        seq = self.fields.seq[self.rows[part]]
        put16(self.header[part], L4_AT + 4, identifier)
        put16(self.header[part], L4_AT + 6, seq)
        result: Array = identifier + seq
        return result

    @staticmethod
    def _slices(proto: Array) -> Iterator[tuple[int, int, int]]:
        """Yield (proto, lo, hi) of each protocol's slice of rows."""
        bounds = np.flatnonzero(np.diff(proto, prepend=-1, append=-1))
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            yield int(proto[lo]), int(lo), int(hi)


def _split(value: Array) -> Array:
    """Return the sum of the two 16-bit halves of 32-bit ``value``."""
    result: Array = (value >> 16) + (value & 0xFFFF)
    return result


@dataclass(frozen=True, eq=False)
class _OptionTable:
    """TCP option bytes of every layout code (see compute_fields).

    Per layout: ``data`` (40 bytes, zero-padded), ``length`` (bytes, a
    multiple of 4), ``ts_at`` (offset of TSval, or -1), ``word_sum`` (the
    options' 16-bit word sum with zero timestamps).
    """

    data: Array
    length: Array
    ts_at: Array
    word_sum: Array


def _option_table() -> _OptionTable:
    """Return the option bytes of every layout code, IPv4 then IPv6."""
    layouts = _option_layouts()
    data = np.zeros((len(layouts), 40), np.uint8)
    for i, layout in enumerate(layouts):
        data[i, : len(layout.data)] = np.frombuffer(layout.data, np.uint8)
    word_sum = data[:, 0::2].astype(np.int64).sum(1) * 256
    word_sum += data[:, 1::2].astype(np.int64).sum(1)
    return _OptionTable(
        data,
        np.array([len(layout.data) for layout in layouts], np.int64),
        np.array([layout.ts_at for layout in layouts], np.int64),
        word_sum,
    )


def _option_layouts() -> list[OptionLayout]:
    """Return the option layout of every layout code (see compute_fields)."""
    layouts = []
    for code in range(N_LAYOUTS):
        v6, rest = divmod(code, IPV6_LAYOUTS)
        kind, rest = divmod(rest, N_OS * N_OS)
        sender, peer = (OS_PROFILES[i] for i in divmod(rest, N_OS))
        if kind == SYN_OPTIONS:
            tokens = sender.syn_options
        elif kind == SYN_ACK_OPTIONS:
            tokens = syn_ack_tokens(sender, peer)
        elif kind == TS_ONLY:
            tokens = (NOP, NOP, TS)
        else:
            tokens = ()
        layouts.append(pack_options(tokens, sender, sender.mss_bytes - 20 * v6))
    return layouts


_PROTO_RANK = np.zeros(256, np.int64)
_PROTO_RANK[[TCP, UDP, ICMP]] = [0, 1, 2]
