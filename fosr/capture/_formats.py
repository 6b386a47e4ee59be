"""Walk pcap and pcapng files, then index the frames of a batch of them.

How this works.  A file is read whole into memory.  A tight loop steps from
one record (pcap, ``_pcap``) or block (pcapng, ``_pcapng``) to the next and
notes where each frame starts; everything else is decoded later with numpy,
for all the files of a batch at once (:func:`index_frames` for the record
headers, ``_decode`` for the packet headers).

Ran out of bytes or bytes are wrong.  A file that ends inside a record or
block is cut: the walk stops there and reports the offset of the incomplete
record in ``truncated_at``, keeping everything before it.  A length no writer
produces (a captured length above 262144 bytes, a block length that is not a
multiple of 4 or disagrees with its trailing copy) means the bytes are wrong,
and raises CaptureError with the offset of the record or block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.capture._pcap import (
    PCAP_MAGICS,
    Bytes,
    PcapWalk,
    index_pcap_records,
    walk_pcap,
)
from fosr.capture._pcapng import PCAPNG_SHB, PcapngWalk, PcapngWalker
from fosr.errors import CaptureError

Array = npt.NDArray[Any]
Walk = PcapWalk | PcapngWalk


@dataclass(eq=False)
class Frames:
    """Every frame of a batch of files, in file order, one array per field."""

    file_index: Array  # uint16, position of the file in the batch
    frame: Array  # uint32, index of the frame in its file
    offset: Array  # int64, offset of the frame in the batch buffer
    caplen: Array  # int64, bytes captured
    wire_len: Array  # int64, bytes on the wire
    ts_ns: Array  # int64, Unix time in nanoseconds
    link_type: Array  # int64

    def __len__(self) -> int:
        return len(self.offset)


def walk_capture(data: Bytes, name: str | None = None) -> Walk:
    """Find the frames of one pcap or pcapng file held in ``data``.

    ``name`` only labels errors.  A file cut inside a record or block, or
    inside its file header, comes back with ``truncated_at`` set and the
    frames before the cut.  Raises CaptureError when ``data`` is no capture
    (offset 0) or holds a corrupt length or header (offset of the record or
    block).
    """
    magic = bytes(data[:4])
    if magic in PCAP_MAGICS:
        return walk_pcap(data, name, *PCAP_MAGICS[magic])
    if magic == PCAPNG_SHB:
        return PcapngWalker(data, name).walk()
    if len(magic) < 4 and any(m.startswith(magic) for m in (*PCAP_MAGICS, PCAPNG_SHB)):
        # an empty file, or one cut inside its magic number
        return PcapWalk([], False, 1000, 0, truncated_at=0)
    raise CaptureError(
        f"not a pcap or pcapng file (starts with 0x{magic.hex()})", path=name, offset=0
    )


def index_frames(walks: Sequence[Walk], bases: Sequence[int], buf: Array) -> Frames:
    """Decode the record headers of a batch of walked files in one pass.

    ``bases[i]`` is where file ``i`` starts in ``buf``, the batch buffer.
    """
    counts = np.array([w.frames for w in walks], dtype=np.int64)
    starts = np.cumsum(counts) - counts
    total = int(counts.sum())
    frames = Frames(
        file_index=np.repeat(np.arange(len(walks), dtype=np.uint16), counts),
        frame=(np.arange(total) - np.repeat(starts, counts)).astype(np.uint32),
        offset=np.empty(total, dtype=np.int64),
        caplen=np.empty(total, dtype=np.int64),
        wire_len=np.empty(total, dtype=np.int64),
        ts_ns=np.empty(total, dtype=np.int64),
        link_type=np.empty(total, dtype=np.int64),
    )

    # pcapng files come decoded: copy them into place
    for walk, base, start in zip(walks, bases, starts.tolist(), strict=True):
        if isinstance(walk, PcapngWalk):
            rows = slice(start, start + walk.frames)
            frames.offset[rows] = walk.data_offsets + base
            frames.caplen[rows] = walk.caplen
            frames.wire_len[rows] = walk.wire_len
            frames.ts_ns[rows] = walk.ts_ns
            frames.link_type[rows] = walk.link_type

    # pcap record headers of all files in one gather
    is_pcap = np.array([isinstance(w, PcapWalk) for w in walks], dtype=bool)
    if is_pcap.any():
        pcaps = [w for w in walks if isinstance(w, PcapWalk)]
        bases_of_pcaps = np.array(bases, dtype=np.int64)[is_pcap]
        pcap_rows = np.flatnonzero(np.repeat(is_pcap, counts))
        for name, values in index_pcap_records(pcaps, bases_of_pcaps, buf).items():
            getattr(frames, name)[pcap_rows] = values
    return frames
