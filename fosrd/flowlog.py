"""The ground-truth flow log: one row per flow emitted, CSV or JSON lines.

CSV rows are the fosr flow record format of
:func:`fosr.flows.write_flows_csv` (its header once at the top of each
file), so :func:`fosr.flows.read_flow_records` reads a log back.  JSON
lines carry the same columns with the same text for times, protocols and
flags (``start`` ISO 8601 UTC, ``proto`` a name, ``tcp_flags`` nfdump's
``.AP.SF``) and numbers as numbers.

:class:`FlowLog` is the flow log as an output of its own; the pcap ring
writes the same rows to a sidecar beside each of its files.  Rows are
appended per chunk and are readable as soon as :meth:`FlowLog.emit`
returns; a write the disk refuses half-way is cut back to the last whole
row.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from fosr.errors import ConfigError
from fosr.flows import FlowTable, write_flows_csv
from fosrd._ringfiles import (
    AppendFile,
    RingDirectory,
    error_kind,
    resolve_group,
    ring_name,
    validate_prefix,
)
from fosrd.outputs import Chunk, Output

__all__ = ["FLOW_LOG_FORMATS", "FlowLog", "flow_log_header", "render_flows"]

logger = logging.getLogger(__name__)

Array = npt.NDArray[Any]

#: flow log format -> file name suffix
FLOW_LOG_FORMATS: Final = {"csv": ".csv", "jsonl": ".jsonl"}

_INT_COLUMNS = frozenset(
    [
        "client_port",
        "server_port",
        "fwd_packets",
        "fwd_bytes",
        "bwd_packets",
        "bwd_bytes",
    ]
)


def flow_log_header(format: str) -> bytes:
    """Return the bytes that open a flow log file of ``format``."""
    if format == "jsonl":
        return b""
    buffer = io.StringIO(newline="")
    write_flows_csv(FlowTable.empty(), buffer)
    return buffer.getvalue().encode()


def render_flows(table: FlowTable, format: str) -> tuple[bytes, Array]:
    """Return the rows of ``table`` in ``format`` and where each row ends.

    Raises ValueError for values the flow record format cannot hold (see
    :func:`fosr.flows.write_flows_csv`).
    """
    buffer = io.StringIO(newline="")
    write_flows_csv(table, buffer)
    # the writer always starts with its header line; the log has it once
    _, _, rows = buffer.getvalue().partition("\n")
    if format == "jsonl":
        names = list(FlowTable.DTYPES)
        rows = "".join(
            json.dumps(dict(zip(names, map(_typed, names, row), strict=True))) + "\n"
            for row in csv.reader(io.StringIO(rows, newline=""))
        )
    data = rows.encode()
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n")) + 1
    return data, ends


def _typed(name: str, text: str) -> object:
    if name in _INT_COLUMNS:
        return int(text)
    if name == "duration":
        return float(text)
    return text


class FlowLog(Output):
    """Write the flows of every chunk to a log file, flushed per emit.

    ``path`` is the log file; it is appended to when it exists (a torn last
    row, left by a killed writer, is cut off first).  With
    ``max_file_bytes`` the log rotates instead: files named
    ``<stem>_<NNNNN>_<YYYYmmddHHMMSS><suffix>`` beside ``path`` (the time is
    the first flow's start), at most ``max_files`` kept.  ``format`` is
    ``"csv"`` or ``"jsonl"``; new files get ``file_mode`` and ``group``.
    """

    kind = "flowlog"

    def __init__(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        format: str = "csv",
        max_file_bytes: int | None = None,
        max_files: int | None = None,
        file_mode: int = 0o640,
        group: str | int | None = None,
        utc_names: bool = False,
    ) -> None:
        super().__init__(name)
        if format not in FLOW_LOG_FORMATS:
            raise ConfigError(f"format: {format!r} is not one of csv, jsonl")
        if max_file_bytes is not None and max_file_bytes <= 0:
            raise ConfigError(f"max_file_bytes: {max_file_bytes} is not positive")
        if max_files is not None and max_files < 1:
            raise ConfigError(f"max_files: {max_files} is below 1")

        # settings
        self.path = Path(path)
        self.format = format
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.file_mode = file_mode
        self.gid = resolve_group(group)
        self.utc_names = utc_names
        self._header = flow_log_header(format)

        # state
        self._file: AppendFile | None = None
        self._sequence = 0
        self._ring: RingDirectory | None = None
        self._failing: set[str] = set()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"path: cannot create {self.path.parent}: {error}"
            ) from error
        if max_file_bytes is not None:
            prefix = validate_prefix(self.path.stem, "path")
            self._ring = RingDirectory(
                self.path.parent, prefix, [FLOW_LOG_FORMATS[format].lstrip(".")]
            )
            if self._ring.files:
                _repair_last_row(self._ring.files[-1].path)
                self._ring.rescan()
        self._update_file_stats()

    def emit(self, chunk: Chunk) -> None:
        """Append the rows of ``chunk.flows``; never raises."""
        if self._closed:
            self.stats.count_error("closed")
            return
        if len(chunk.flows) == 0:
            return
        try:
            data, ends = render_flows(chunk.flows, self.format)
        except ValueError as error:
            self._count_failure("invalid_flow", error)
            return
        try:
            self._write_rows(chunk.flows, data, ends)
        except Exception as error:  # the one place emit catches everything
            logger.exception("%s: flow log failed", self.name)
            self._count_failure("internal", error)
        self._update_file_stats()

    def rotate(self) -> str | None:
        """Finish the current file when the log rotates; return its path."""
        if self._ring is None or self._file is None:
            return None
        return os.fspath(self._finish())

    def close(self) -> None:
        """Flush and close the log file; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._file is not None:
            self._finish()

    # --- helpers ----------------------------------------------------------

    def _write_rows(self, flows: FlowTable, data: bytes, ends: Array) -> None:
        self._drop_lost_file()
        done = 0
        while done < len(ends):
            if self._file is None and not self._open(float(flows.start[done])):
                return
            assert self._file is not None, "a file is open after _open succeeds"
            count = self._rows_that_fit(ends, done)
            if count == 0:
                self._finish()
                continue
            base = int(ends[done - 1]) if done else 0
            part = ends[done : done + count] - base
            written, error = self._file.append(data[base : base + int(part[-1])], part)
            self.stats.flows += written
            done += written
            if error is not None:
                self._count_failure(error_kind(error), error)
                return
            self._failing.clear()

    def _drop_lost_file(self) -> None:
        """Let go of a file moved or removed under the log, or left broken.

        A file moved away (by logrotate, say) keeps its rows; the log goes
        on in a new file under its path, as logging.WatchedFileHandler does.
        """
        file = self._file
        if file is None or not (file.is_broken or file.is_replaced()):
            return
        if self.path.parent.is_dir():
            self.stats.count_error("file_replaced")
        file.close(sync=False)
        self._file = None

    def _rows_that_fit(self, ends: Array, done: int) -> int:
        assert self._file is not None, "called with a file open"
        left = len(ends) - done
        if self.max_file_bytes is None:
            return left
        base = int(ends[done - 1]) if done else 0
        room = self.max_file_bytes - self._file.size_bytes
        count = int(np.searchsorted(ends[done:] - base, room, "right"))
        if count == 0 and self._file.size_bytes <= len(self._header):
            return 1  # one row larger than the limit still gets a file
        return count

    def _open(self, start_s: float) -> bool:
        """Open the file to append to; False (counted) when that fails."""
        try:
            if not self.path.parent.is_dir():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.stats.count_error("directory_recreated")
                if self._ring is not None:
                    self._ring.rescan()
            self._file = self._open_file(start_s)
        except OSError as error:
            self._count_failure(error_kind(error), error)
            return False
        return True

    def _open_file(self, start_s: float) -> AppendFile:
        if self._ring is None:
            if self.path.exists():
                file = AppendFile.reopen(self.path)
                _cut_torn_row(file)
                if file.size_bytes > 0:
                    return file
            else:
                file = AppendFile.create(self.path, mode=self.file_mode, gid=self.gid)
        else:
            if self.max_files is not None:
                self._ring.prune(self.max_files - 1)
            self._sequence = self._ring.next_sequence
            name = ring_name(
                self._ring.prefix,
                self._sequence,
                start_s,
                FLOW_LOG_FORMATS[self.format].lstrip("."),
                utc=self.utc_names,
            )
            path = self.path.parent / name
            file = AppendFile.create(path, mode=self.file_mode, gid=self.gid)
            self._ring.next_sequence += 1
        if self._header:
            _, error = file.append(self._header, np.array([len(self._header)]))
            if error is not None:
                file.close(sync=False)
                raise error
        return file

    def _finish(self) -> Path:
        assert self._file is not None, "called with a file open"
        file, self._file = self._file, None
        error = file.close(sync=True)
        if error is not None:
            self.stats.count_error(error_kind(error))
        if self._ring is not None:
            self._ring.add(file.path, self._sequence, file.size_bytes)
        return file.path

    def _count_failure(self, kind: str, error: Exception) -> None:
        self.stats.count_error(kind)
        if kind not in self._failing:
            logger.warning("%s: flow rows dropped: %s", self.name, error)
            self._failing.add(kind)

    def _update_file_stats(self) -> None:
        current = self._file.size_bytes if self._file is not None else 0
        finished = self._ring.files if self._ring is not None else []
        self.stats.files = len(finished) + (self._file is not None)
        self.stats.file_bytes = sum(f.size_bytes for f in finished) + current


def _repair_last_row(path: Path) -> None:
    """Cut a torn last row off ``path``, a file an earlier run left."""
    try:
        file = AppendFile.reopen(path)
    except OSError as error:
        logger.warning("%s: could not check its last row: %s", path, error)
        return
    try:
        _cut_torn_row(file)
    except OSError as error:
        logger.warning("%s: could not check its last row: %s", path, error)
    finally:
        file.close(sync=False)


def _cut_torn_row(file: AppendFile) -> None:
    """Cut a file back to its last line break (a killed writer's torn row)."""
    if file.size_bytes == 0:
        return
    tail_at = max(0, file.size_bytes - (1 << 16))
    with open(file.path, "rb") as stream:
        stream.seek(tail_at)
        tail = stream.read()
    if tail.endswith(b"\n"):
        return
    cut = tail.rfind(b"\n")
    size = tail_at + cut + 1 if cut >= 0 else 0
    os.ftruncate(file.fd, size)
    file.size_bytes = size
    logger.warning("%s: cut a torn last row at byte %d", file.path, size)
