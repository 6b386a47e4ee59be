"""pcapng files (draft-ietf-opsawg-pcapng): walk the blocks, keep the frames.

Blocks are type, total length, body and the total length again.  A Section
Header Block opens each section and fixes its byte order, so sections of one
file may differ.  Interface Description Blocks number interfaces from 0
within their section and give each a link type, a snap length and the
options if_tsresol and if_tsoffset.  Enhanced Packet Blocks, Simple Packet
Blocks (interface 0, no timestamp) and the obsolete Packet Blocks carry
frames; every other block is stepped over.  Blocks differ too much for a
batch decode, so the walk reads each packet block's fields as it goes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.capture._pcap import MAX_CAPLEN_BYTES, Bytes
from fosr.errors import CaptureError

Array = npt.NDArray[Any]

# Chosen without evidence: no block we know of comes near 16 MiB, so a longer
# one means a corrupt length field rather than a file cut short.
MAX_BLOCK_BYTES = 16 * 1024 * 1024

PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_BYTE_ORDER_MAGIC = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
_BLOCK_IDB = 1
_BLOCK_PB = 2  # obsolete Packet Block
_BLOCK_SPB = 3
_BLOCK_EPB = 6
_BLOCK_SHB = 0x0A0D0D0A
# smallest total length of each block type we read (header and trailer included)
_MIN_BLOCK_BYTES = {
    _BLOCK_SHB: 28,
    _BLOCK_IDB: 20,
    _BLOCK_PB: 32,
    _BLOCK_SPB: 16,
    _BLOCK_EPB: 32,
}
_OPT_ENDOFOPT = 0
_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14


@dataclass(eq=False)
class PcapngWalk:
    """The frames of one pcapng file, already decoded block by block."""

    data_offsets: Array  # int64, file offset of each frame's first byte
    caplen: Array  # int64
    wire_len: Array  # int64
    ts_ns: Array  # int64, Unix time
    link_type: Array  # int64, link type of the frame's interface
    truncated_at: int | None  # offset of the incomplete block, if cut

    @property
    def frames(self) -> int:
        """Return the number of packet blocks."""
        return len(self.data_offsets)


@dataclass
class _Interface:
    """One Interface Description Block, as far as frames need it."""

    link_type: int
    snaplen: int  # 0 means no limit
    tsresol: int = 6  # if_tsresol: default microseconds
    tsoffset_s: int = 0  # if_tsoffset, seconds


class _ByteOrder:
    """The struct readers of one section's byte order."""

    def __init__(self, prefix: str) -> None:
        self.block = struct.Struct(prefix + "II").unpack_from
        self.u32 = struct.Struct(prefix + "I").unpack_from
        self.version = struct.Struct(prefix + "HH").unpack_from
        self.idb = struct.Struct(prefix + "HHI").unpack_from
        self.option = struct.Struct(prefix + "HH").unpack_from
        self.i64 = struct.Struct(prefix + "q").unpack_from
        self.epb = struct.Struct(prefix + "IIIII").unpack_from
        self.pb = struct.Struct(prefix + "HHIIII").unpack_from


_BYTE_ORDERS = {prefix: _ByteOrder(prefix) for prefix in "<>"}


class PcapngWalker:
    """Walk the blocks of one pcapng file, collecting its frames."""

    def __init__(self, data: Bytes, name: str | None) -> None:
        self.data = data
        self.name = name
        self.order = _BYTE_ORDERS["<"]
        self.interfaces: list[_Interface] = []
        self.section_first = 0  # index in `interfaces` of the section's first
        # one entry per frame
        self.offsets: list[int] = []
        self.caplens: list[int] = []
        self.wire_lens: list[int] = []
        self.ts_high: list[int] = []
        self.ts_low: list[int] = []
        self.has_ts: list[bool] = []
        self.iface: list[int] = []

    def walk(self) -> PcapngWalk:
        """Return the frames; raise CaptureError at the first corrupt block."""
        data, size = self.data, len(self.data)
        pos = 0
        while pos < size:
            if size - pos < 12:
                return self._finish(truncated_at=pos)
            if data[pos : pos + 4] == PCAPNG_SHB:
                self._set_byte_order(pos)
            block_type, length = self.order.block(data, pos)
            if length < 12 or length % 4:
                raise self._error(
                    f"block length {length} is not a multiple of 4 of at least 12", pos
                )
            if length > MAX_BLOCK_BYTES:
                raise self._error(f"block length {length} is implausible", pos)
            if pos + length > size:
                return self._finish(truncated_at=pos)
            (trailer,) = self.order.u32(data, pos + length - 4)
            if trailer != length:
                raise self._error(
                    f"block length {length} disagrees with its trailing copy {trailer}",
                    pos,
                )
            if length < _MIN_BLOCK_BYTES.get(block_type, 12):
                raise self._error(
                    f"block of type 0x{block_type:x} is {length} bytes, too short",
                    pos,
                )
            self._read_block(block_type, pos, length)
            pos += length
        return self._finish(truncated_at=None)

    def _read_block(self, block_type: int, pos: int, length: int) -> None:
        data, order = self.data, self.order
        if block_type == _BLOCK_EPB:
            iface, high, low, caplen, wire_len = order.epb(data, pos + 8)
            self._add_frame(pos, length, 28, iface, caplen, wire_len, (high, low))
        elif block_type == _BLOCK_SPB:
            # the draft: the captured length is the original length capped by
            # the snap length of interface 0; the block's size bounds it too
            (wire_len,) = order.u32(data, pos + 8)
            caplen = min(wire_len, length - 16)
            if self.section_first < len(self.interfaces):
                snaplen = self.interfaces[self.section_first].snaplen
                caplen = min(caplen, snaplen or caplen)
            self._add_frame(pos, length, 12, 0, caplen, wire_len, None)
        elif block_type == _BLOCK_PB:
            iface, _drops, high, low, caplen, wire_len = order.pb(data, pos + 8)
            self._add_frame(pos, length, 28, iface, caplen, wire_len, (high, low))
        elif block_type == _BLOCK_IDB:
            self._read_interface(pos, length)
        elif block_type == _BLOCK_SHB:
            major, minor = order.version(data, pos + 12)
            if major != 1:
                raise self._error(f"unsupported pcapng version {major}.{minor}", pos)
            self.section_first = len(self.interfaces)

    def _set_byte_order(self, pos: int) -> None:
        magic = bytes(self.data[pos + 8 : pos + 12])
        if magic not in _BYTE_ORDER_MAGIC:
            raise self._error(
                f"section header has no byte-order magic (0x{magic.hex()})", pos
            )
        self.order = _BYTE_ORDERS[_BYTE_ORDER_MAGIC[magic]]

    def _read_interface(self, pos: int, length: int) -> None:
        link_type, _, snaplen = self.order.idb(self.data, pos + 8)
        interface = _Interface(link_type, snaplen)

        # options: code, length, value padded to 4 bytes; a malformed option
        # list only costs us the options, so it ends the list instead of
        # failing the file
        opt, stop = pos + 16, pos + length - 4
        while opt + 4 <= stop:
            code, size = self.order.option(self.data, opt)
            value = opt + 4
            if code == _OPT_ENDOFOPT or value + size > stop:
                break
            if code == _OPT_IF_TSRESOL and size == 1:
                interface.tsresol = self.data[value]
            elif code == _OPT_IF_TSOFFSET and size == 8:
                (interface.tsoffset_s,) = self.order.i64(self.data, value)
            opt = value + (size + 3) // 4 * 4
        self.interfaces.append(interface)

    def _add_frame(
        self,
        pos: int,
        length: int,
        header: int,
        iface: int,
        caplen: int,
        wire_len: int,
        ts: tuple[int, int] | None,
    ) -> None:
        defined = len(self.interfaces) - self.section_first
        if iface >= defined:
            raise self._error(
                f"packet names interface {iface}, but its section defines {defined}",
                pos,
            )
        if caplen > length - header - 4:
            raise self._error(
                f"captured length {caplen} runs past its {length}-byte block", pos
            )
        if caplen > MAX_CAPLEN_BYTES:
            raise self._error(
                f"captured length {caplen} exceeds {MAX_CAPLEN_BYTES}", pos
            )
        self.offsets.append(pos + header)
        self.caplens.append(caplen)
        self.wire_lens.append(wire_len)
        self.iface.append(self.section_first + iface)
        self.has_ts.append(ts is not None)
        high, low = ts or (0, 0)
        self.ts_high.append(high)
        self.ts_low.append(low)

    def _finish(self, truncated_at: int | None) -> PcapngWalk:
        iface = np.array(self.iface, dtype=np.int64)
        link_types = np.array(
            [i.link_type for i in self.interfaces] or [0], dtype=np.int64
        )
        return PcapngWalk(
            data_offsets=np.array(self.offsets, dtype=np.int64),
            caplen=np.array(self.caplens, dtype=np.int64),
            wire_len=np.array(self.wire_lens, dtype=np.int64),
            ts_ns=self._timestamps(iface),
            link_type=link_types[iface],
            truncated_at=truncated_at,
        )

    def _timestamps(self, iface: Array) -> Array:
        units = (np.array(self.ts_high, dtype=np.uint64) << np.uint64(32)) | np.array(
            self.ts_low, dtype=np.uint64
        )
        ts_ns = np.zeros(len(units), dtype=np.int64)
        for index in np.unique(iface):
            rows = iface == index
            interface = self.interfaces[index]
            ts_ns[rows] = units_to_ns(units[rows], interface.tsresol)
            ts_ns[rows] += _wrap_int64(interface.tsoffset_s * 1_000_000_000)

        # Simple Packet Blocks have no timestamp: give them the one of the
        # frame before (0 when none), so that time never runs backwards
        has_ts = np.array(self.has_ts, dtype=bool)
        if not has_ts.all():
            last = np.maximum.accumulate(np.where(has_ts, np.arange(len(units)), -1))
            ts_ns = np.where(last >= 0, ts_ns[np.maximum(last, 0)], 0)
        return ts_ns

    def _error(self, message: str, pos: int) -> CaptureError:
        return CaptureError(message, path=self.name, offset=pos)


def units_to_ns(units: Array, tsresol: int) -> Array:
    """Convert pcapng timestamp units to nanoseconds, as int64 (wrapping)."""
    if tsresol & 0x80:
        # a power of two: split seconds and fraction so nothing overflows
        shift = tsresol & 0x7F
        if shift >= 64:
            whole = np.zeros_like(units)
            fraction = units
        else:
            whole = units >> np.uint64(shift)
            fraction = units & np.uint64((1 << shift) - 1)
        fraction_ns = (fraction.astype(np.float64) * (1e9 / 2.0**shift)).astype(
            np.int64
        )
        return whole.astype(np.int64) * 1_000_000_000 + fraction_ns
    if tsresol <= 9:
        return (units * np.uint64(10 ** (9 - tsresol))).astype(np.int64)
    if tsresol - 9 > 19:  # 10**20 units per ns: every uint64 rounds to 0
        return np.zeros(len(units), dtype=np.int64)
    return (units // np.uint64(10 ** (tsresol - 9))).astype(np.int64)


def _wrap_int64(value: int) -> int:
    """Return ``value`` wrapped into int64, as numpy arithmetic would."""
    return (value + 2**63) % 2**64 - 2**63
