"""Read capture files into a PacketTable: load, walk, then decode in one batch."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from fosr.capture._decode import decode_frames
from fosr.capture._formats import Walk, index_frames, walk_capture
from fosr.capture._headers import PAD_BYTES
from fosr.capture._pcap import PcapWalk
from fosr.capture._table import PacketTable, ReadStats
from fosr.errors import CaptureError, TruncatedInputError

logger = logging.getLogger(__name__)

Source = str | os.PathLike[str] | BinaryIO
MAX_FILES = 65_536  # file_index is a uint16


def read_capture(
    source: Source, *, keep_payload: bool = False, strict: bool = False
) -> PacketTable:
    """Read one pcap or pcapng file (a path or a binary file object).

    See :func:`read_captures` for what is decoded, kept and raised.
    """
    return read_captures([source], keep_payload=keep_payload, strict=strict)


def read_captures(
    sources: Iterable[Source],
    *,
    keep_payload: bool = False,
    progress: Callable[[int], object] | None = None,
    strict: bool = False,
    skip_bad: bool = False,
) -> PacketTable:
    """Read pcap and pcapng files into one table, rows in file order.

    Each source is a path or a binary file object; ``file_index`` refers to
    their order.  The files are walked one by one, then all their frames are
    decoded in one batch, so many small files cost little more than one big
    one.  ``progress(1)`` is called after each file is walked (tqdm's
    ``update`` fits).  With ``keep_payload`` the table keeps the files' bytes
    in ``data`` so that ``payload(i)`` works.

    Frames that are not IPv4/IPv6 with TCP, UDP, ICMP or ICMPv6 are counted
    in ``stats.skipped`` by reason, and so are frames of link types the
    reader does not decode: a file whose only link type is unsupported reads
    as all skipped rather than as an error, so that one odd file does not
    stop a batch.

    A file that ends inside a record keeps the frames before the cut, logs
    one warning naming the file and the offset, and is listed in
    ``stats.truncated``; with ``strict`` it raises TruncatedInputError
    instead.  Raises CaptureError for a file that cannot be read, is no
    capture, or holds a corrupt record length or header; with ``skip_bad``
    such a file gives no rows instead, logs one warning and is listed in
    ``stats.bad_files``, and the other files are read.
    """
    if isinstance(sources, str | bytes | os.PathLike) or hasattr(sources, "read"):
        raise TypeError(
            "read_captures takes an iterable of captures; use read_capture for one"
        )
    stats = ReadStats()
    inputs: list[_Input] = []
    for source in sources:
        try:
            inputs.append(_find_input(source))
        except CaptureError as error:
            if not skip_bad:
                raise
            # reported in file order with the others, below
            inputs.append(_Input(error.path or "<stream>", 0, error=error))
    if len(inputs) > MAX_FILES:
        raise ValueError(f"cannot read more than {MAX_FILES} files at once")

    # read every file into one buffer, walking each file's records as it
    # comes in; the padding lets the decoder read headers without bounds
    # checks (see _decode)
    # TODO: the buffer holds every byte of every file; captures of a size
    # near the machine's memory need walking and decoding in chunks
    sizes = [item.size for item in inputs]
    buf = np.empty(sum(sizes) + PAD_BYTES, dtype=np.uint8)
    buf[len(buf) - PAD_BYTES :] = 0
    view = buf.data
    walks: list[Walk] = []
    bases = np.cumsum([0, *sizes])[:-1].tolist()
    for item, base in zip(inputs, bases, strict=True):
        try:
            filled = _fill(view[base : base + item.size], item)
            stats.bytes_read += filled
            walks.append(_walk(view[base : base + filled], item, stats, strict))
        except CaptureError as error:
            if not skip_bad:
                raise
            walks.append(_NO_FRAMES)
            _report_bad_file(error, stats)
        if progress is not None:
            progress(1)
    buf.flags.writeable = False

    # decode every frame of every file in one batch
    frames = index_frames(walks, bases, buf)
    columns, stats.skipped = decode_frames(buf, frames)
    stats.frames = len(frames)
    stats.decoded = len(columns["frame"])
    link_types, counts = np.unique(frames.link_type, return_counts=True)
    stats.link_types = dict(zip(link_types.tolist(), counts.tolist(), strict=True))
    names = tuple(item.name for item in inputs)
    kept = buf if keep_payload else None
    return PacketTable(paths=names, data=kept, stats=stats, **columns)


@dataclass(eq=False)
class _Input:
    """One capture to read: a path to read later, or bytes already read."""

    name: str
    size: int
    path: str | None = None
    data: bytes = b""
    error: CaptureError | None = None  # why it could not be opened


# what a skipped file contributes
_NO_FRAMES = PcapWalk([], False, 1000, 0, truncated_at=None)


def _find_input(source: Source) -> _Input:
    if not isinstance(source, str | os.PathLike):
        name = getattr(source, "name", None)
        name = name if isinstance(name, str) else "<stream>"
        try:
            data = source.read()
        except OSError as exc:
            raise CaptureError(f"cannot read: {exc}", path=name) from exc
        if not isinstance(data, bytes):
            raise TypeError("capture file objects must be opened in binary mode")
        return _Input(name, len(data), data=data)
    path = os.fspath(source)
    try:
        info = os.stat(path)
        if stat.S_ISREG(info.st_mode):
            return _Input(path, info.st_size, path=path)
        # a pipe or a device has no size to plan the buffer with: read it now
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise CaptureError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    return _Input(path, len(data), data=data)


def _fill(target: memoryview, item: _Input) -> int:
    """Copy the bytes of ``item`` into ``target``; return how many there were.

    A file that shrank since it was sized gives fewer bytes (and will likely
    read as cut); one that grew is read up to its old size.
    """
    if item.path is None:
        target[:] = item.data
        return item.size
    filled = 0
    try:
        with open(item.path, "rb", buffering=0) as file:
            while filled < item.size:
                count = file.readinto(target[filled:])
                if not count:
                    break
                filled += count
    except OSError as exc:
        raise CaptureError(
            f"cannot read: {exc.strerror or exc}", path=item.path
        ) from exc
    return filled


def _walk(data: memoryview, item: _Input, stats: ReadStats, strict: bool) -> Walk:
    """Walk one file's records, reporting a cut as a warning or an error."""
    if item.error is not None:
        raise item.error
    walk = walk_capture(data, item.name)
    offset = walk.truncated_at
    if offset is None:
        return walk
    if strict:
        raise TruncatedInputError(
            f"capture ends inside a record, after {walk.frames} frames",
            path=item.name,
            offset=offset,
        )
    logger.warning(
        "%s: capture ends inside a record at offset %d; kept the %d frames before it",
        item.name,
        offset,
        walk.frames,
    )
    stats.truncated.append((item.name, offset))
    return walk


def _report_bad_file(error: CaptureError, stats: ReadStats) -> None:
    """Log and count a file skipped under skip_bad."""
    logger.warning("skipped %s", error)
    where = f"{error.where}: " if error.where else ""
    stats.bad_files.append((error.path or "<stream>", where + error.reason))
