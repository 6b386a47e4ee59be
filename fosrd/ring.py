"""The pcap ring: traffic written to numbered capture files that rotate.

How it works
------------
Files are named in dumpcap's style, ``<prefix>_<NNNNN>_<YYYYmmddHHMMSS>.<ext>``
(docs/PLATFORM.md section 3), and written under their final name: a
consumer watching for ``IN_CLOSE_WRITE`` (Arkime's monitor mode) or for an
mtime that stopped moving (Suricata's continuous directory mode) takes a
file once it is finished.  Every emit goes to the file with plain
``os.write`` calls, so the file in progress is readable up to its last
complete record at any moment, even after SIGKILL.

A file is opened when the first packet for it arrives.  The clock of
rotation is the packets' own timestamps (the generated traffic's time,
which runs faster than the wall clock under a speed factor):

- ``max_file_seconds``: a file holds packets from its first one to that
  many seconds later;
- with ``interval``, the switch happens at exact multiples of
  ``max_file_seconds`` since the epoch (dumpcap's ``-b interval``), and the
  file's name carries the start of its interval;
- ``max_file_bytes``: a file never grows past it (a single larger record
  still gets a file of its own).

A finished file is fsynced and closed before the next opens, then the
on-rotate command runs on it (also for the last file at close, unlike
tcpdump's ``-z``, tcpdump issue #1015), and the oldest files beyond
``max_files`` are deleted with their sidecars.

With ``flow_log``, a sidecar ``<stem>.csv`` or ``<stem>.jsonl`` beside
each file holds the ground-truth flows whose first frame landed in it
(found by the flow numbers the frames carry).
Beware that Suricata's directory mode reads every regular file of its
folder, sidecars included.

Trouble never raises from :meth:`PcapRing.emit`.  A write the disk refuses
(ENOSPC, EIO) is cut back to the last whole record; the rest of the chunk
is dropped and counted, and the next emit tries again.  A file or folder
removed under the ring is noticed at the next emit: the folder is created
again, a new file opened, and both events counted.  A run started in a
folder that holds ring files of the same prefix continues their sequence,
counts them towards ``max_files``, and cuts a torn record off the newest.
"""

from __future__ import annotations

import logging
import mmap
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.errors import ConfigError
from fosr.flows import FlowTable
from fosr.synth import Frames
from fosrd._capfile import (
    FORMATS,
    complete_length,
    encode_records,
    extension,
    file_header,
    record_sizes,
)
from fosrd._ringfiles import (
    AppendFile,
    RingDirectory,
    RotateHooks,
    error_kind,
    resolve_group,
    ring_name,
    validate_prefix,
)
from fosrd.flowlog import FLOW_LOG_FORMATS, flow_log_header, render_flows
from fosrd.outputs import Chunk, Output

__all__ = ["PcapRing"]

logger = logging.getLogger(__name__)

Array = npt.NDArray[Any]

LINKTYPE_ETHERNET = 1
DEFAULT_SNAPLEN_BYTES = 262144  # tcpdump's and dumpcap's default
BLOCK_FRAMES = 1 << 15  # frames encoded per write: about 4 MB of 100-byte frames
START_SLACK_NS = 1000  # a flow's start is its first frame's time to 1 µs
HOOK_WAIT_S = 2.0  # how long close waits for the last on-rotate commands


class PcapRing(Output):
    """Write chunks to a ring of capture files in ``directory``.

    ``format`` is ``"pcap"`` (microseconds), ``"pcap-ns"`` or ``"pcapng"``.
    ``max_file_bytes``, ``max_file_seconds`` (with ``interval`` for
    switches aligned on multiples of it) and ``max_files`` work as in
    dumpcap; None means no limit.  New files get ``file_mode`` and
    ``group`` (a name or gid).  ``on_rotate`` is an argv run without a
    shell with the finished path appended.  ``flow_log`` (``"csv"``,
    ``"jsonl"`` or None) adds a flow log sidecar per file.  File names
    carry local time, or UTC with ``utc_names``.

    Raises ConfigError for a setting it cannot honour (naming the field)
    or a folder it cannot create.
    """

    kind = "ring"

    def __init__(
        self,
        name: str,
        directory: str | os.PathLike[str],
        *,
        prefix: str = "fosr",
        format: str = "pcap",
        snaplen_bytes: int = DEFAULT_SNAPLEN_BYTES,
        linktype: int = LINKTYPE_ETHERNET,
        max_file_bytes: int | None = None,
        max_file_seconds: float | None = None,
        interval: bool = False,
        max_files: int | None = None,
        file_mode: int = 0o640,
        group: str | int | None = None,
        on_rotate: Sequence[str] | None = None,
        flow_log: str | None = None,
        utc_names: bool = False,
    ) -> None:
        super().__init__(name)
        _validate(
            format, snaplen_bytes, max_file_bytes, max_file_seconds, interval, max_files
        )
        if flow_log is not None and flow_log not in FLOW_LOG_FORMATS:
            raise ConfigError(f"flow_log: {flow_log!r} is not one of csv, jsonl")
        if on_rotate is not None and (
            isinstance(on_rotate, str) or not all(isinstance(a, str) for a in on_rotate)
        ):
            raise ConfigError(f"on_rotate: {on_rotate!r} is not a list of strings")

        # settings
        self.directory = Path(directory)
        self.prefix = validate_prefix(prefix)
        self.format = format
        self.snaplen_bytes = snaplen_bytes
        self.max_file_bytes = max_file_bytes
        self.period_ns = (
            None if max_file_seconds is None else round(max_file_seconds * 1e9)
        )
        self.interval = interval
        self.max_files = max_files
        self.file_mode = file_mode
        self.gid = resolve_group(group)
        self.flow_log = flow_log
        self.utc_names = utc_names
        self._header = file_header(format, snaplen_bytes, linktype)
        self._flow_header = b"" if flow_log is None else flow_log_header(flow_log)

        # state of the file in progress
        self._file: AppendFile | None = None
        self._sidecar: AppendFile | None = None
        self._sequence = 0
        self._limit_ns: int | None = None
        self._records = 0

        # trouble and helpers
        self._failing: set[str] = set()
        self._hooks = RotateHooks(on_rotate)
        self._hook_failures = 0
        self._closed = False

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"directory: cannot create {self.directory}: {error}"
            ) from error
        self._ring = RingDirectory(
            self.directory,
            self.prefix,
            sorted(set(FORMATS.values())),
            list(FLOW_LOG_FORMATS.values()),
        )
        if self._ring.files:
            _repair_tail(self._ring.files[-1].path)
            self._ring.rescan()
        self._update_file_stats()

    @property
    def current_path(self) -> Path | None:
        """Return the path of the file in progress, or None."""
        return None if self._file is None else self._file.path

    def emit(self, chunk: Chunk) -> None:
        """Write the chunk's frames and flows; never raises."""
        if self._closed:
            self.stats.dropped_packets += len(chunk.frames)
            self.stats.count_error("closed")
            return
        try:
            self._emit(chunk)
        except Exception as error:  # the one place emit catches everything
            logger.exception("%s: ring write failed", self.name)
            self._count_failure("internal", error)
        self._sync_hook_failures()
        self._update_file_stats()

    def rotate(self) -> str | None:
        """Finish the file in progress now; return its path, or None."""
        if self._file is None:
            return None
        path = self._finish()
        self._update_file_stats()
        return os.fspath(path)

    def close(self) -> None:
        """Finish the file in progress and wait briefly for hooks; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._file is not None:
            self._finish()
        self._hooks.wait(HOOK_WAIT_S)
        self._sync_hook_failures()
        self._update_file_stats()

    def status(self) -> dict[str, object]:
        """Return the counters and the ring's folder and file in progress."""
        described = super().status()
        described["directory"] = os.fspath(self.directory)
        current = self.current_path
        described["current_file"] = None if current is None else os.fspath(current)
        return described

    # --- writing ----------------------------------------------------------

    def _emit(self, chunk: Chunk) -> None:
        frames = chunk.frames
        n = len(frames)
        if n == 0:
            return
        self._check_file()
        sizes = record_sizes(frames, 0, n, self.format, self.snaplen_bytes)
        ends = np.cumsum(sizes)

        # cut the chunk into runs, one per file, and write each run with
        # the flows whose first frame is in it before the file may close
        first_at = _first_frames(chunk)
        written = lo = 0
        while lo < n:
            if self._file is None and not self._open(int(frames.ts_ns[lo])):
                break
            hi = self._run_end(frames.ts_ns, ends, lo)
            if hi == lo:
                self._finish()
                continue
            done = self._write_run(frames, ends, lo, hi)
            written += done
            if done:
                self._log_flows(chunk.flows, first_at, lo, lo + done)
            if done < hi - lo:
                break
            lo = hi
        self.stats.dropped_packets += n - written

    # TODO: time limits are checked only when packets arrive, so in a quiet
    # spell the file stays open past its limit; closing it on time needs
    # the scheduler to pass the generated time to outputs between chunks.
    def _run_end(self, ts_ns: Array, ends: Array, lo: int) -> int:
        """Return the end of the run from ``lo`` that fits the current file."""
        assert self._file is not None, "called with a file open"
        hi = len(ts_ns)
        if self._limit_ns is not None:
            hi = lo + int(np.searchsorted(ts_ns[lo:hi], self._limit_ns, "left"))
        if self.max_file_bytes is not None and hi > lo:
            base = int(ends[lo - 1]) if lo else 0
            room = self.max_file_bytes - self._file.size_bytes
            count = int(np.searchsorted(ends[lo:hi] - base, room, "right"))
            if count == 0 and self._records == 0:
                count = 1  # a record larger than the limit still gets a file
            hi = lo + count
        return hi

    def _write_run(self, frames: Frames, ends: Array, lo: int, hi: int) -> int:
        """Write frames ``lo:hi`` to the current file; return how many made it."""
        assert self._file is not None, "called with a file open"
        written = 0
        for start in range(lo, hi, BLOCK_FRAMES):
            stop = min(start + BLOCK_FRAMES, hi)
            data = encode_records(frames, start, stop, self.format, self.snaplen_bytes)
            base = int(ends[start - 1]) if start else 0
            kept, error = self._file.append(data, ends[start:stop] - base)
            written += kept
            self._records += kept
            self.stats.packets += kept
            self.stats.bytes += int(
                frames.offsets[start + kept] - frames.offsets[start]
            )
            if error is not None:
                self._count_failure(error_kind(error), error)
                return written
        if self._failing:
            logger.info("%s: writing again after %s", self.name, sorted(self._failing))
            self._failing.clear()
        return written

    def _log_flows(self, flows: FlowTable, first_at: Array, lo: int, hi: int) -> None:
        """Count and log the flows whose first frame is among ``lo:hi``."""
        rows = np.flatnonzero((first_at >= lo) & (first_at < hi))
        if len(rows) == 0:
            return
        self.stats.flows += len(rows)
        if self._sidecar is not None:
            self._append_flows(self._sidecar, flows.take(rows))

    def _append_flows(self, sidecar: AppendFile, flows: FlowTable) -> None:
        assert self.flow_log is not None, "a sidecar exists only with a flow log"
        try:
            data, ends = render_flows(flows, self.flow_log)
        except ValueError as invalid:
            self._count_failure("flow_log_invalid", invalid)
            return
        _, error = sidecar.append(data, ends)
        if error is not None:
            self._count_failure("flow_log_" + error_kind(error), error)

    # --- files ------------------------------------------------------------

    def _open(self, first_ns: int) -> bool:
        """Open the next file for a packet at ``first_ns``; False when it fails."""
        start_ns = first_ns
        self._limit_ns = None
        if self.period_ns is not None:
            if self.interval:
                start_ns = first_ns // self.period_ns * self.period_ns
            self._limit_ns = start_ns + self.period_ns
        try:
            if not self.directory.is_dir():
                self.directory.mkdir(parents=True, exist_ok=True)
                self.stats.count_error("directory_recreated")
                logger.warning("%s: created %s again", self.name, self.directory)
                self._ring.rescan()
            if self.max_files is not None:
                for error in self._ring.prune(self.max_files - 1):
                    self._count_failure("delete", error)
            self._file, self._sidecar = self._create_files(start_ns)
        except OSError as error:
            self._count_failure(error_kind(error), error)
            return False
        self._records = 0
        logger.debug("%s: opened %s", self.name, self._file.path)
        return True

    def _create_files(self, start_ns: int) -> tuple[AppendFile, AppendFile | None]:
        """Create the next ring file (and sidecar) with their headers."""
        for _ in range(100):  # names taken by someone else are skipped
            sequence = self._ring.next_sequence
            name = ring_name(
                self.prefix,
                sequence,
                start_ns / 1e9,
                extension(self.format),
                utc=self.utc_names,
            )
            try:
                file = _create_with(self.directory / name, self._header, self)
            except FileExistsError:
                self._ring.next_sequence += 1
                continue
            break
        else:
            raise FileExistsError(f"no free ring file name in {self.directory}")
        # TODO: sidecars always sit beside their ring file; Suricata's
        # directory mode reads every regular file, so a setting that puts
        # them in a sibling folder is missing.
        sidecar = None
        if self.flow_log is not None:
            suffix = FLOW_LOG_FORMATS[self.flow_log]
            try:
                sidecar = _create_with(
                    file.path.with_suffix(suffix), self._flow_header, self
                )
            except OSError:
                file.close(sync=False)
                file.path.unlink(missing_ok=True)
                raise
        # a number is used up only by a file that was made whole
        self._sequence = sequence
        self._ring.next_sequence += 1
        return file, sidecar

    def _finish(self) -> Path:
        """Flush, fsync and close the file in progress; run the hook on it."""
        assert self._file is not None, "called with a file open"
        file, self._file = self._file, None
        sidecar, self._sidecar = self._sidecar, None
        for each in (sidecar, file):
            if each is not None and (error := each.close(sync=True)) is not None:
                self._count_failure(error_kind(error), error)
        self._ring.add(file.path, self._sequence, file.size_bytes)
        self._limit_ns = None
        logger.info("%s: finished %s", self.name, file.path)
        self._hooks.run(file.path)
        return file.path

    def _check_file(self) -> None:
        """Drop the file in progress if it was removed or cannot be cut back."""
        file = self._file
        if file is None:
            return
        if file.is_replaced():
            kind = "file_removed" if self.directory.is_dir() else "directory_removed"
            self.stats.count_error(kind)
            logger.warning("%s: %s went away (%s)", self.name, file.path, kind)
        elif file.is_broken:
            # it may end in a torn record: keep it out of the hook, in the ring
            self._ring.add(file.path, self._sequence, file.size_bytes)
        else:
            return
        for each in (file, self._sidecar):
            if each is not None:
                each.close(sync=False)
        self._file = self._sidecar = None

    # --- counters ---------------------------------------------------------

    def _count_failure(self, kind: str, error: Exception) -> None:
        """Count an error; log it when it starts a streak of its kind."""
        self.stats.count_error(kind)
        if kind not in self._failing:
            logger.warning("%s: %s", self.name, error)
            self._failing.add(kind)

    def _sync_hook_failures(self) -> None:
        total = self._hooks.failures
        if total > self._hook_failures:
            self.stats.count_error("rotate_command", total - self._hook_failures)
            self._hook_failures = total

    def _update_file_stats(self) -> None:
        current = self._file.size_bytes if self._file is not None else 0
        self.stats.files = len(self._ring.files) + (self._file is not None)
        self.stats.file_bytes = self._ring.size_bytes() + current


def _first_frames(chunk: Chunk) -> Array:
    """Return the index of each ground-truth flow's first frame in the chunk.

    Flow row ``r`` is stream flow ``chunk.first_flow + r``, the number its
    frames carry in ``frames.flow``.  A match is trusted when that frame's
    time is the flow's start (to 1 µs, the start's rounding); any other
    row is placed by its start time, the first frame at or after it.
    """
    frames, flows = chunk.frames, chunk.flows
    if len(flows) == 0:
        return np.empty(0, np.int64)
    start_ns = np.round(flows.start * 1e9).astype(np.int64)
    first_at = np.searchsorted(frames.ts_ns, start_ns - START_SLACK_NS, "left")

    ids = frames.flow.astype(np.int64) - chunk.first_flow
    inside = np.flatnonzero((ids >= 0) & (ids < len(flows)))
    found, first = np.unique(ids[inside], return_index=True)
    at = inside[first]
    agree = np.abs(frames.ts_ns[at].astype(np.int64) - start_ns[found])
    trusted = agree <= START_SLACK_NS
    first_at[found[trusted]] = at[trusted]
    return first_at


def _validate(
    format: str,
    snaplen_bytes: int,
    max_file_bytes: int | None,
    max_file_seconds: float | None,
    interval: bool,
    max_files: int | None,
) -> None:
    """Raise ConfigError naming the first setting that cannot be honoured."""
    if format not in FORMATS:
        raise ConfigError(f"format: {format!r} is not one of {', '.join(FORMATS)}")
    if not 0 < snaplen_bytes <= 0x7FFFFFFF:
        raise ConfigError(f"snaplen_bytes: {snaplen_bytes} is out of 1..2^31-1")
    if max_file_bytes is not None and max_file_bytes <= 0:
        raise ConfigError(f"max_file_bytes: {max_file_bytes} is not positive")
    if max_file_seconds is not None and not max_file_seconds > 0:
        raise ConfigError(f"max_file_seconds: {max_file_seconds} is not positive")
    if interval and max_file_seconds is None:
        raise ConfigError("interval: needs max_file_seconds, the interval length")
    if max_files is not None and max_files < 1:
        raise ConfigError(f"max_files: {max_files} is below 1")


def _create_with(path: Path, header: bytes, ring: PcapRing) -> AppendFile:
    """Create ``path`` with the ring's mode and group and write ``header``."""
    file = AppendFile.create(path, mode=ring.file_mode, gid=ring.gid)
    if header:
        _, error = file.append(header, np.array([len(header)]))
        if error is not None:
            file.close(sync=False)
            path.unlink(missing_ok=True)
            raise error
    return file


def _repair_tail(path: Path) -> None:
    """Cut a torn last record off ``path``, left by a writer killed mid-write.

    Only files that start like the ones the ring writes are touched; one
    holding less than a file header is removed, since no reader can use it.
    """
    try:
        with open(path, "r+b") as stream:
            head = stream.read(4)
            format = _MAGICS.get(head)
            if format is None:
                if len(head) < 4 and any(m.startswith(head) for m in _MAGICS):
                    path.unlink()
                return
            with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
                size, keep = len(data), complete_length(data, format)
            if keep == 0:
                path.unlink()
            elif keep < size:
                stream.truncate(keep)
                logger.warning("%s: cut a torn record at byte %d", path, keep)
    except OSError as error:
        logger.warning("%s: could not check its last record: %s", path, error)


#: the first four bytes of the files the ring writes, little endian
_MAGICS = {
    (0xA1B2C3D4).to_bytes(4, "little"): "pcap",
    (0xA1B23C4D).to_bytes(4, "little"): "pcap-ns",
    b"\x0a\x0d\x0d\x0a": "pcapng",
}
