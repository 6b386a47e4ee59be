"""Write built frames to a pcap file in one pass.

The classic pcap format (the libpcap file format, draft-ietf-opsawg-pcap):
a 24-byte global header, then per frame a 16-byte record header
(seconds, sub-seconds, captured length, original length; here little
endian) followed by the frame.

Frames built with 16 bytes of headroom (``iter_frames(...,
headroom_bytes=16)``) already lie where the records need them: their
record headers are written into the headroom and the buffer goes to the
file object in one ``write``, without copying a frame.  Other frames are
laid out chunk by chunk in a preallocated array, frames copied in blocks
(see _copy), then written.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from fosr.synth._batch import Frames
from fosr.synth._copy import copy_segments, windows

__all__ = ["LINKTYPE_ETHERNET", "write_pcap", "write_pcap_header"]

Array = npt.NDArray[Any]

LINKTYPE_ETHERNET = 1
MAGIC_US, MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D
DEFAULT_SNAPLEN_BYTES = 262144  # tcpdump's default since 4.99
CHUNK_FRAMES = 1 << 13  # keeps each output array small enough to reuse memory
RECORD_BYTES = 16

_RECORD = np.dtype(
    [("sec", "<u4"), ("frac", "<u4"), ("caplen", "<u4"), ("origlen", "<u4")]
)


def write_pcap_header(
    out: BinaryIO,
    *,
    nanosecond: bool = True,
    snaplen_bytes: int = DEFAULT_SNAPLEN_BYTES,
    linktype: int = LINKTYPE_ETHERNET,
) -> int:
    """Write the 24-byte pcap global header to ``out``; return 24."""
    magic = MAGIC_NS if nanosecond else MAGIC_US
    return out.write(
        struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen_bytes, linktype)
    )


def write_pcap(
    out: BinaryIO,
    frames: Frames,
    *,
    nanosecond: bool = True,
    header: bool = True,
    snaplen_bytes: int = DEFAULT_SNAPLEN_BYTES,
) -> int:
    """Write ``frames`` as pcap records to ``out``; return the bytes written.

    With ``header`` the global header comes first; pass ``header=False`` to
    append a further batch to a file already begun.  Timestamps are kept to
    the nanosecond, or truncated to the microsecond without
    ``nanosecond``.  Frames longer than ``snaplen_bytes`` are cut, keeping
    their original length in the record.  ``out`` is written, never closed.
    """
    if snaplen_bytes <= 0:
        raise ValueError(f"snaplen_bytes must be positive, not {snaplen_bytes}")
    written = 0
    if header:
        written += write_pcap_header(
            out, nanosecond=nanosecond, snaplen_bytes=snaplen_bytes
        )
    if not len(frames):
        return written
    if _has_record_room(frames, snaplen_bytes):
        windows(frames.data, RECORD_BYTES)[frames.offsets[:-1]] = _record_headers(
            frames.ts_ns, frames.lengths(), nanosecond, snaplen_bytes
        )
        records = frames.data[frames.offsets[0] : frames.offsets[-1]]
        return written + out.write(records.data)
    for lo in range(0, len(frames), CHUNK_FRAMES):
        hi = min(lo + CHUNK_FRAMES, len(frames))
        chunk = _records(frames, lo, hi, nanosecond, snaplen_bytes)
        written += out.write(chunk.data)
    return written


def _has_record_room(frames: Frames, snaplen_bytes: int) -> bool:
    """Say whether record headers can go into the frames' own headroom."""
    data = frames.data
    return (
        frames.headroom_bytes == RECORD_BYTES
        and data.dtype == np.uint8
        and data.ndim == 1
        and data.strides == (1,)
        and data.flags.writeable
        and int(frames.lengths().max()) <= snaplen_bytes
    )


def _record_headers(
    ts_ns: Array, origlen: Array, nanosecond: bool, snaplen_bytes: int
) -> Array:
    """Return (n, 16) record headers as bytes."""
    ts_ns = ts_ns.astype(np.int64)
    headers = np.empty(len(ts_ns), _RECORD)
    headers["sec"] = ts_ns // 1_000_000_000
    sub_ns = ts_ns % 1_000_000_000
    headers["frac"] = sub_ns if nanosecond else sub_ns // 1000
    headers["caplen"] = np.minimum(origlen, snaplen_bytes)
    headers["origlen"] = origlen
    result: Array = headers.view(np.uint8).reshape(-1, RECORD_BYTES)
    return result


def _records(
    frames: Frames, lo: int, hi: int, nanosecond: bool, snaplen_bytes: int
) -> Array:
    """Return frames ``lo:hi`` as record headers and frame bytes."""
    start = frames.offsets[lo:hi] + frames.headroom_bytes
    origlen = frames.offsets[lo + 1 : hi + 1] - start
    caplen = np.minimum(origlen, snaplen_bytes)

    # lay out: each record header directly before its frame
    at = np.zeros(hi - lo + 1, np.int64)
    np.cumsum(caplen + RECORD_BYTES, out=at[1:])
    out = np.empty(int(at[-1]), np.uint8)
    windows(out, RECORD_BYTES)[at[:-1]] = _record_headers(
        frames.ts_ns[lo:hi], origlen, nanosecond, snaplen_bytes
    )
    copy_segments(out, at[:-1] + RECORD_BYTES, frames.data, start, caplen)
    return out
