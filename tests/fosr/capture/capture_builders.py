"""Build pcap and pcapng bytes for the capture reader's tests.

Written with struct rather than scapy's writers, so that the tests control
what scapy cannot write: nanosecond and big-endian pcap, several sections of
different byte orders, every packet block type, odd resolutions and broken
lengths.  Frames come from scapy (``bytes(Ether()/IP()/TCP())``) or by hand.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Sequence

from fosr.capture import PacketTable, read_capture

PCAP_RECORD_BYTES = 16
PCAP_HEADER_BYTES = 24


def pcap(
    frames: Iterable[bytes | tuple[int, bytes] | tuple[int, bytes, int]],
    *,
    link_type: int = 1,
    big_endian: bool = False,
    nanosecond: bool = False,
    snaplen: int = 262_144,
) -> bytes:
    """Return a pcap file holding ``frames``.

    A frame is its bytes, or (ts_ns, bytes), or (ts_ns, bytes, wire_len);
    timestamps default to 1 s apart from 1_700_000_000 s.
    """
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, link_type)]
    for i, item in enumerate(frames):
        ts_ns, frame, wire_len = _unpack_frame(item, i)
        seconds, rest_ns = divmod(ts_ns, 1_000_000_000)
        fraction = rest_ns if nanosecond else rest_ns // 1000
        out.append(struct.pack(order + "IIII", seconds, fraction, len(frame), wire_len))
        out.append(frame)
    return b"".join(out)


def record_offsets(data: bytes, big_endian: bool = False) -> list[int]:
    """Return the offsets of the record headers of a pcap file."""
    order = ">" if big_endian else "<"
    offsets, pos = [], PCAP_HEADER_BYTES
    while pos < len(data):
        offsets.append(pos)
        (caplen,) = struct.unpack_from(order + "I", data, pos + 8)
        pos += PCAP_RECORD_BYTES + caplen
    return offsets


def _unpack_frame(
    item: bytes | tuple[int, bytes] | tuple[int, bytes, int], i: int
) -> tuple[int, bytes, int]:
    if isinstance(item, bytes):
        return (1_700_000_000 + i) * 1_000_000_000, item, len(item)
    if len(item) == 2:
        return item[0], item[1], len(item[1])
    return item  # type: ignore[return-value]


# pcapng ---------------------------------------------------------------------


def block(block_type: int, body: bytes, *, big_endian: bool = False) -> bytes:
    """Return a pcapng block: type, length, body padded to 4 bytes, length."""
    order = ">" if big_endian else "<"
    body += bytes(-len(body) % 4)
    length = len(body) + 12
    return (
        struct.pack(order + "II", block_type, length)
        + body
        + struct.pack(order + "I", length)
    )


def option(code: int, value: bytes, *, big_endian: bool = False) -> bytes:
    """Return one option: code, length, value padded to 4 bytes."""
    order = ">" if big_endian else "<"
    return struct.pack(order + "HH", code, len(value)) + value + bytes(-len(value) % 4)


def end_of_options(*, big_endian: bool = False) -> bytes:
    """Return the opt_endofopt option."""
    return option(0, b"", big_endian=big_endian)


def shb(*, big_endian: bool = False, version: tuple[int, int] = (1, 0)) -> bytes:
    """Return a Section Header Block."""
    order = ">" if big_endian else "<"
    body = struct.pack(order + "IHHq", 0x1A2B3C4D, *version, -1)
    return block(0x0A0D0D0A, body, big_endian=big_endian)


def idb(
    link_type: int,
    *,
    snaplen: int = 0,
    tsresol: int | None = None,
    tsoffset_s: int | None = None,
    big_endian: bool = False,
) -> bytes:
    """Return an Interface Description Block with optional time options."""
    order = ">" if big_endian else "<"
    body = struct.pack(order + "HHI", link_type, 0, snaplen)
    if tsresol is not None:
        body += option(9, bytes([tsresol]), big_endian=big_endian)
    if tsoffset_s is not None:
        body += option(14, struct.pack(order + "q", tsoffset_s), big_endian=big_endian)
    if tsresol is not None or tsoffset_s is not None:
        body += end_of_options(big_endian=big_endian)
    return block(1, body, big_endian=big_endian)


def epb(
    iface: int,
    ts_units: int,
    frame: bytes,
    *,
    wire_len: int | None = None,
    big_endian: bool = False,
) -> bytes:
    """Return an Enhanced Packet Block."""
    order = ">" if big_endian else "<"
    wire = len(frame) if wire_len is None else wire_len
    header = struct.pack(
        order + "IIIII", iface, ts_units >> 32, ts_units & 0xFFFF_FFFF, len(frame), wire
    )
    return block(6, header + frame, big_endian=big_endian)


def spb(
    frame: bytes, *, wire_len: int | None = None, big_endian: bool = False
) -> bytes:
    """Return a Simple Packet Block."""
    order = ">" if big_endian else "<"
    wire = len(frame) if wire_len is None else wire_len
    return block(3, struct.pack(order + "I", wire) + frame, big_endian=big_endian)


def packet_block(
    iface: int, ts_units: int, frame: bytes, *, big_endian: bool = False
) -> bytes:
    """Return an obsolete Packet Block (type 2)."""
    order = ">" if big_endian else "<"
    header = struct.pack(
        order + "HHIIII",
        iface,
        0,
        ts_units >> 32,
        ts_units & 0xFFFF_FFFF,
        len(frame),
        len(frame),
    )
    return block(2, header + frame, big_endian=big_endian)


def pcapng(frames: Sequence[bytes], *, link_type: int = 1) -> bytes:
    """Return a one-section, one-interface pcapng file of EPBs, 1 ms apart."""
    blocks = [shb(), idb(link_type)]
    blocks += [
        epb(0, 1_700_000_000_000_000 + i * 1000, f) for i, f in enumerate(frames)
    ]
    return b"".join(blocks)


def read_frames(
    frames: Sequence[bytes | tuple[int, bytes] | tuple[int, bytes, int]],
    *,
    link_type: int = 1,
    keep_payload: bool = False,
) -> PacketTable:
    """Write ``frames`` as a pcap in memory and read it back."""
    data = pcap(frames, link_type=link_type)
    return read_capture(io.BytesIO(data), keep_payload=keep_payload)


def block_offsets(data: bytes) -> list[int]:
    """Return the offsets of the blocks of a pcapng file."""
    offsets, pos, order = [], 0, "<"
    while pos < len(data):
        offsets.append(pos)
        if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        (length,) = struct.unpack_from(order + "I", data, pos + 4)
        pos += length
    return offsets
