"""Write built frames to a pcap file in one pass.

The classic pcap format (the libpcap file format, draft-ietf-opsawg-pcap):
a 24-byte global header, then per frame a 16-byte record header
(seconds, sub-seconds, captured length, original length; here little
endian) followed by the frame.  The whole output is laid out in one
preallocated numpy array: record headers are written as a structured
column, frames are copied with one vectorised scatter, and the array goes
to the file object in a single ``write``.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from fosr.synth._batch import Frames

__all__ = ["LINKTYPE_ETHERNET", "write_pcap", "write_pcap_header"]

Array = npt.NDArray[Any]

LINKTYPE_ETHERNET = 1
MAGIC_US, MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D
DEFAULT_SNAPLEN_BYTES = 262144  # tcpdump's default since 4.99
CHUNK_FRAMES = 1 << 13  # keeps each output array small enough to reuse memory

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
    for lo in range(0, len(frames), CHUNK_FRAMES):
        hi = min(lo + CHUNK_FRAMES, len(frames))
        chunk = _records(frames, lo, hi, nanosecond, snaplen_bytes)
        written += out.write(chunk.data)
    return written


def _records(
    frames: Frames, lo: int, hi: int, nanosecond: bool, snaplen_bytes: int
) -> Array:
    """Return frames ``lo:hi`` as record headers and frame bytes."""
    start = frames.offsets[lo:hi]
    origlen = frames.offsets[lo + 1 : hi + 1] - start
    caplen = np.minimum(origlen, snaplen_bytes)
    ts_ns = frames.ts_ns[lo:hi].astype(np.int64)

    # lay out: each record header directly before its frame
    at = np.zeros(hi - lo + 1, np.int64)
    np.cumsum(caplen + 16, out=at[1:])
    out = np.empty(int(at[-1]), np.uint8)
    headers = np.empty(hi - lo, _RECORD)
    headers["sec"] = ts_ns // 1_000_000_000
    sub_ns = ts_ns % 1_000_000_000
    headers["frac"] = sub_ns if nanosecond else sub_ns // 1000
    headers["caplen"] = caplen
    headers["origlen"] = origlen
    rows = at[:-1, None] + np.arange(16)
    out[rows] = headers.view(np.uint8).reshape(-1, 16)

    # frame bytes: everything that is not a record header, in order
    body = np.ones(len(out), bool)
    body[rows] = False
    if np.array_equal(caplen, origlen):
        out[body] = frames.data[start[0] : frames.offsets[hi]]
    else:
        src = np.repeat(start - (at[:-1] + 16), caplen)
        out[body] = frames.data[np.flatnonzero(body) + src]
    return out
