"""pcap files (draft-ietf-opsawg-pcap): find the records, then decode them.

A 24-byte file header, then records of a 16-byte header (seconds, micro- or
nanoseconds, captured length, original length) and the frame.  The magic
number gives the byte order and the timestamp unit; one link type covers the
whole file.  The walk reads only each record's captured length, to step to
the next one; :func:`index_pcap_records` decodes the record headers of every
pcap file of a batch at once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.capture._headers import gather
from fosr.errors import CaptureError

Array = npt.NDArray[Any]
Bytes = bytes | bytearray | memoryview

# Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD and libpcap's MAXIMUM_SNAPLEN:
# no capture of the link types we decode holds a longer frame.
MAX_CAPLEN_BYTES = 262_144
PCAP_MAGICS: dict[bytes, tuple[bool, int]] = {
    # magic as stored -> (big-endian, nanoseconds per timestamp unit)
    b"\xd4\xc3\xb2\xa1": (False, 1000),
    b"\xa1\xb2\xc3\xd4": (True, 1000),
    b"\x4d\x3c\xb2\xa1": (False, 1),
    b"\xa1\xb2\x3c\x4d": (True, 1),
}
_PCAP_HEADER_BYTES = 24
_PCAP_RECORD_BYTES = 16
_PCAP_RECORD = np.dtype(
    [("ts_sec", "<u4"), ("ts_frac", "<u4"), ("caplen", "<u4"), ("len", "<u4")]
)
# libpcap's LT_LINKTYPE: the upper bits of the field carry FCS information
_PCAP_LINKTYPE_MASK = 0x03FF_FFFF


@dataclass(eq=False)
class PcapWalk:
    """Where the records of one pcap file are; their headers are decoded later."""

    header_offsets: list[int]  # file offsets of the 16-byte record headers
    is_big_endian: bool
    ts_unit_ns: int  # 1000 for microsecond files, 1 for nanosecond files
    link_type: int
    truncated_at: int | None  # offset of the incomplete record, if cut

    @property
    def frames(self) -> int:
        """Return the number of complete records."""
        return len(self.header_offsets)


def walk_pcap(data: Bytes, name: str | None, is_big: bool, unit_ns: int) -> PcapWalk:
    """Find the records of a pcap file whose magic said ``is_big`` and ``unit_ns``.

    Raises CaptureError for an unknown version or a corrupt captured length.
    """
    size = len(data)
    prefix = ">" if is_big else "<"
    if size < _PCAP_HEADER_BYTES:
        return PcapWalk([], is_big, unit_ns, 0, truncated_at=0)
    major, minor, _, _, _, network = struct.unpack_from(prefix + "HHiIII", data, 4)
    if major != 2:
        raise CaptureError(
            f"unsupported pcap version {major}.{minor}", path=name, offset=4
        )

    # step through the records; this loop is the reader's per-packet cost in
    # Python, so it reads one field and appends one offset
    caplen_at = struct.Struct(prefix + "I").unpack_from
    offsets: list[int] = []
    append = offsets.append
    pos = _PCAP_HEADER_BYTES
    last = size - _PCAP_RECORD_BYTES
    while pos <= last:
        (caplen,) = caplen_at(data, pos + 8)
        if caplen > MAX_CAPLEN_BYTES:
            raise CaptureError(
                f"record captured length {caplen} exceeds {MAX_CAPLEN_BYTES}",
                path=name,
                offset=pos,
            )
        following = pos + _PCAP_RECORD_BYTES + caplen
        if following > size:
            break
        append(pos)
        pos = following
    truncated_at = None if pos == size else pos
    link_type = network & _PCAP_LINKTYPE_MASK
    return PcapWalk(offsets, is_big, unit_ns, link_type, truncated_at)


def index_pcap_records(
    pcaps: list[PcapWalk], bases: Array, buf: Array
) -> dict[str, Array]:
    """Decode the record headers of walked pcap files that lie in ``buf``.

    ``bases[i]`` is where file ``i`` starts in ``buf``.  Returns the Frames
    fields (offset, caplen, wire_len, ts_ns, link_type) of all their frames.
    """
    counts = np.array([w.frames for w in pcaps], dtype=np.int64)
    header_offsets: list[int] = []
    for walk in pcaps:
        header_offsets.extend(walk.header_offsets)
    headers = np.array(header_offsets, dtype=np.int64) + np.repeat(bases, counts)

    # read the headers little-endian, then swap the rows of big-endian files
    records = gather(buf, headers, _PCAP_RECORD)
    is_big = np.repeat([w.is_big_endian for w in pcaps], counts)
    if is_big.any():
        records[is_big] = records[is_big].byteswap()
    unit_ns = np.repeat([w.ts_unit_ns for w in pcaps], counts)
    return {
        "offset": headers + _PCAP_RECORD_BYTES,
        "caplen": records["caplen"],
        "wire_len": records["len"],
        "ts_ns": records["ts_sec"].astype(np.int64) * 1_000_000_000
        + records["ts_frac"].astype(np.int64) * unit_ns,
        "link_type": np.repeat([w.link_type for w in pcaps], counts),
    }
