"""Encode frames as capture file records, in numpy batches.

Three layouts, all little endian:

- ``pcap`` and ``pcap-ns``: the libpcap file format
  (draft-ietf-opsawg-pcap): a 24-byte global header whose magic number
  says micro- (``0xa1b2c3d4``) or nanoseconds (``0xa1b23c4d``), then per
  frame a 16-byte record header (seconds, sub-seconds, captured length,
  original length) and the captured bytes.
- ``pcapng`` (draft-ietf-opsawg-pcapng): a Section Header Block, one
  Interface Description Block with ``if_tsresol`` = 9 (nanoseconds), then
  one Enhanced Packet Block per frame: a 28-byte head (type 6, total length,
  interface 0, timestamp high and low words, captured and original length),
  the captured bytes padded to 4 bytes, and the total length again.

:func:`encode_records` lays a run of frames out in one array.  Record heads
are written as rows of bytes through a strided view; frame bytes are copied
as rows of a 2-D view when all frames have one length, else with one
boolean-mask assignment (short frames) or one slice copy per frame (long
frames).  Frames built with 16 bytes of headroom get their classic pcap
record headers written in place, and nothing is copied.
:func:`record_sizes` gives the size of each record without building it, so
that callers can cut a run at a size limit first.
:func:`complete_length` walks a file's record heads to find where its last
complete record ends, to cut off a tail left by a killed writer.
"""

from __future__ import annotations

import mmap
import struct
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from fosr.synth import Frames

__all__ = [
    "FORMATS",
    "complete_length",
    "encode_records",
    "extension",
    "file_header",
    "record_sizes",
]

Array = npt.NDArray[Any]

#: format name -> file name extension
FORMATS: Final = {"pcap": "pcap", "pcap-ns": "pcap", "pcapng": "pcapng"}

MAGIC_US, MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D
PCAP_HEAD = 16  # record header of classic pcap
EPB_HEAD, EPB_TAIL = 28, 4  # Enhanced Packet Block head and trailing length
_EPB_TYPE, _SHB_TYPE, _IDB_TYPE = 6, 0x0A0D0D0A, 1
# Mean captured length from which frames are copied one slice at a time
# rather than through a byte mask: measured on a loaded 2-core VM, a slice
# copy costs about 1 µs of Python per frame, a masked copy 1.5-2 ns per
# byte, so they break even near 500 bytes; 256 leans to the slices.
SLICE_COPY_BYTES = 256
_BYTE_ORDER_MAGIC = 0x1A2B3C4D


def extension(format: str) -> str:
    """Return the file name extension of ``format`` (no dot)."""
    return FORMATS[format]


def file_header(format: str, snaplen_bytes: int, linktype: int) -> bytes:
    """Return the bytes that open a capture file of ``format``."""
    if format in ("pcap", "pcap-ns"):
        magic = MAGIC_NS if format == "pcap-ns" else MAGIC_US
        return struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen_bytes, linktype)
    if format != "pcapng":
        raise ValueError(f"unknown capture format {format!r}")
    # section header: byte-order magic, version 1.0, section length unknown,
    # and the shb_userappl option naming the writer
    options = _option(4, b"fosrd") + _option(0, b"")
    shb_len = 28 + len(options)
    shb = (
        struct.pack("<IIIHHq", _SHB_TYPE, shb_len, _BYTE_ORDER_MAGIC, 1, 0, -1)
        + options
        + struct.pack("<I", shb_len)
    )
    # interface: link type, snap length, if_tsresol 9 (10^-9 s units)
    options = _option(9, b"\x09") + _option(0, b"")
    idb_len = 20 + len(options)
    idb = (
        struct.pack("<IIHHI", _IDB_TYPE, idb_len, linktype, 0, snaplen_bytes)
        + options
        + struct.pack("<I", idb_len)
    )
    return shb + idb


def record_sizes(frames: Frames, lo: int, hi: int, format: str, snaplen: int) -> Array:
    """Return the size in bytes of the record of each frame ``lo:hi``."""
    origlen: Array = np.diff(frames.offsets[lo : hi + 1]) - frames.headroom_bytes
    caplen: Array = np.minimum(origlen, snaplen)
    sizes: Array = (
        EPB_HEAD + EPB_TAIL + ((caplen + 3) & ~3)
        if format == "pcapng"
        else caplen + PCAP_HEAD
    )
    return sizes


def encode_records(
    frames: Frames, lo: int, hi: int, format: str, snaplen: int
) -> Array:
    """Return frames ``lo:hi`` as consecutive records of ``format`` (uint8).

    Frames longer than ``snaplen`` are cut to it; the record keeps their
    original length.  Frames built with exactly 16 bytes of headroom
    (:attr:`Frames.headroom_bytes`) are written in place for classic pcap:
    the record headers go into the headroom and the result is a view of
    ``frames.data``, valid until the next call on the same frames.
    """
    start = np.asarray(frames.offsets[lo:hi], np.int64) + frames.headroom_bytes
    origlen = frames.offsets[lo + 1 : hi + 1] - start
    caplen = np.minimum(origlen, snaplen)
    sizes = record_sizes(frames, lo, hi, format, snaplen)
    at = np.zeros(hi - lo + 1, np.int64)
    np.cumsum(sizes, out=at[1:])
    total = int(at[-1])
    head = EPB_HEAD if format == "pcapng" else PCAP_HEAD

    # the uint32 words of each record head (and pcapng's trailing length)
    ts_ns = np.asarray(frames.ts_ns[lo:hi], np.int64)
    n = hi - lo
    if format == "pcapng":
        fields = [
            np.full(n, _EPB_TYPE),
            sizes,
            np.zeros(n, np.int64),
            ts_ns >> 32,
            ts_ns & 0xFFFFFFFF,
            caplen,
            origlen,
        ]
    else:
        sub_ns = ts_ns % 1_000_000_000
        frac = sub_ns if format == "pcap-ns" else sub_ns // 1000
        fields = [ts_ns // 1_000_000_000, frac, caplen, origlen]

    if (
        n
        and format != "pcapng"
        and frames.headroom_bytes == PCAP_HEAD
        and _is_writable_bytes(frames.data)
        and np.array_equal(caplen, origlen)
    ):
        # records in place: headers into the headroom before each frame
        out = frames.data[frames.offsets[lo] : frames.offsets[hi]]
        _put_words(out, frames.offsets[lo:hi] - frames.offsets[lo], fields)
        return out
    out = np.empty(total, np.uint8)
    if n and _is_uniform(frames, lo, hi, caplen, origlen):
        _encode_rows(frames, out, head, fields, lo)
        return out
    _copy_frames(frames, out, head, start, at, caplen, origlen)
    _put_words(out, at[:-1], fields)
    if format == "pcapng":
        ends = at[:-1] + head + caplen
        for pad in range(3):  # zero the padding; the trailing length follows
            out[np.minimum(ends + pad, total - 1)] = 0
        _put_words(out, at[1:] - 4, [sizes])
    return out


def complete_length(data: bytes | mmap.mmap, format: str) -> int:
    """Return how many leading bytes of a capture file hold whole records.

    ``data`` is the file's content.  The walk stops at the first record
    whose head or body runs past the end, or whose length is impossible
    (a torn write), so the result is where a reader stops cleanly.
    """
    if format == "pcapng":
        return _complete_pcapng(data)
    if len(data) < 24:
        return 0
    pos, end = 24, len(data)
    while pos + PCAP_HEAD <= end:
        caplen = int.from_bytes(data[pos + 8 : pos + 12], "little")
        if pos + PCAP_HEAD + caplen > end:
            break
        pos += PCAP_HEAD + caplen
    return pos


def _complete_pcapng(data: bytes | mmap.mmap) -> int:
    pos, end = 0, len(data)
    while pos + 12 <= end:
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if size < 12 or size % 4 or pos + size > end:
            break
        if data[pos + size - 4 : pos + size] != data[pos + 4 : pos + 8]:
            break
        pos += size
    return pos


def _is_uniform(
    frames: Frames, lo: int, hi: int, caplen: Array, origlen: Array
) -> bool:
    """Return True for whole frames of one length, evenly spaced in memory."""
    length = caplen[0]
    spacing = frames.offsets[lo + 1] - frames.offsets[lo]
    return bool(
        (caplen == length).all()
        and (origlen == length).all()
        and frames.offsets[hi] - frames.offsets[lo] == (hi - lo) * spacing
    )


def _is_writable_bytes(data: Array) -> bool:
    return bool(
        data.dtype == np.uint8
        and data.ndim == 1
        and data.strides == (1,)
        and data.flags.writeable
    )


def _encode_rows(
    frames: Frames, out: Array, head: int, fields: list[Array], lo: int
) -> None:
    """Fill ``out`` with records of one size, as the rows of a 2-D view."""
    n = len(fields[0])
    first = int(frames.offsets[lo])
    spacing = int(frames.offsets[lo + 1]) - first
    length = spacing - frames.headroom_bytes
    rows = out.reshape(n, -1)
    source = frames.data[first : first + n * spacing].reshape(n, spacing)
    rows[:, head : head + length] = source[:, frames.headroom_bytes :]
    words = np.empty((n, len(fields)), "<u4")
    for j, field in enumerate(fields):
        words[:, j] = field
    rows[:, :head] = words.view(np.uint8)
    if rows.shape[1] > head + length:  # pcapng: padding and trailing length
        rows[:, head + length :] = 0
        rows[:, -4:] = np.full((n, 1), rows.shape[1], "<u4").view(np.uint8)


def _copy_frames(
    frames: Frames,
    out: Array,
    head: int,
    start: Array,
    at: Array,
    caplen: Array,
    origlen: Array,
) -> None:
    """Copy the captured bytes of each frame to its place after its head."""
    n = len(start)
    if n == 0:
        return
    contiguous = bool(np.array_equal(caplen, origlen)) and int(
        start[-1] + origlen[-1] - start[0]
    ) == int(origlen.sum())
    if caplen.mean() >= SLICE_COPY_BYTES:
        # long frames: one memcpy each costs less than a byte mask
        source = np.ascontiguousarray(frames.data).data
        target = out.data
        dest = (at[:-1] + head).tolist()
        for to, begin, length in zip(
            dest, start.tolist(), caplen.tolist(), strict=True
        ):
            target[to : to + length] = source[begin : begin + length]
        return
    # where the frame bytes go: runs of (head, frame, rest of the record)
    rest = np.diff(at) - head - caplen
    runs = np.stack([np.full(n, head), caplen, rest], axis=1).ravel()
    body = np.repeat(np.tile(np.array([False, True, False]), n), runs)
    if contiguous:
        out[body] = frames.data[start[0] : start[-1] + origlen[-1]]
        return
    # cut or scattered frames: gather byte by byte from each frame's start
    shift = np.repeat(start - (at[:-1] + head), caplen)
    out[body] = frames.data[np.flatnonzero(body) + shift]


def _put_words(out: Array, at: Array, fields: list[Array]) -> None:
    """Write ``fields[j][i]`` as little-endian uint32 at ``at[i] + 4 * j``.

    The words of a record go together as one row of bytes, through a view
    of ``out`` as overlapping rows (row ``k`` starts at byte ``k``), so one
    fancy-index assignment writes every record head at any byte offset.
    """
    if len(at) == 0:
        return
    words = np.empty((len(at), len(fields)), "<u4")
    for j, field in enumerate(fields):
        words[:, j] = field
    width = 4 * len(fields)
    rows = as_strided(out, (len(out) - width + 1, width), (1, 1))
    rows[at] = words.view(np.uint8)


def _option(code: int, value: bytes) -> bytes:
    """Return one pcapng option: code, length, value padded to 4 bytes."""
    pad = -len(value) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad
