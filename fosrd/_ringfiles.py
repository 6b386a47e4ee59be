"""File plumbing shared by the pcap ring and the flow log.

- :class:`AppendFile`: a file written only at its end, with plain
  ``os.write`` (no user-space buffer, so whatever a call wrote is readable
  at once), which cuts itself back to its last complete record when a write
  fails half-way (disk full), so a reader never meets a torn record.
- Ring names in dumpcap's style, ``<prefix>_<NNNNN>_<YYYYmmddHHMMSS>.<ext>``
  (a sequence number of at least five digits and the file's start time),
  and :func:`scan_ring` to find the files an earlier run left.
- :class:`RotateHooks`: the on-rotate command, started without a shell
  and reaped later, so a slow command never holds up emission.
"""

from __future__ import annotations

import errno
import grp
import logging
import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.errors import ConfigError

__all__ = [
    "AppendFile",
    "RingDirectory",
    "RingFile",
    "RotateHooks",
    "error_kind",
    "resolve_group",
    "ring_name",
    "scan_ring",
    "validate_prefix",
]

logger = logging.getLogger(__name__)

Array = npt.NDArray[Any]

REAP_EVERY_S = 0.5  # how often the hook thread collects finished commands

_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def validate_prefix(prefix: str, field: str = "prefix") -> str:
    """Return ``prefix`` if it is a plain file name start, else ConfigError.

    Letters, digits, ``.``, ``_`` and ``-``, not starting with a dot: no
    slash and no ``..``, so a name built from it stays in its folder.
    """
    if not _PREFIX.fullmatch(prefix) or ".." in prefix:
        raise ConfigError(
            f"{field}: {prefix!r} is not a plain name (letters, digits, "
            "'.', '_', '-'; no slash, no '..', no leading dot)"
        )
    return prefix


def resolve_group(group: str | int | None) -> int:
    """Return the gid of ``group`` (a name or a number), -1 for None."""
    if group is None:
        return -1
    if isinstance(group, int):
        return group
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ConfigError(f"group: no such group {group!r}") from None


def error_kind(error: OSError) -> str:
    """Return the short counter name of an OS error (``"ENOSPC"``...)."""
    if error.errno is None:
        return type(error).__name__
    return errno.errorcode.get(error.errno, f"errno{error.errno}")


# --- names ----------------------------------------------------------------


@dataclass(frozen=True)
class RingFile:
    """A ring file on disk: its path, sequence number and size."""

    path: Path
    sequence: int
    size_bytes: int


def ring_name(
    prefix: str, sequence: int, start_s: float, extension: str, *, utc: bool
) -> str:
    """Return ``<prefix>_<NNNNN>_<YYYYmmddHHMMSS>.<extension>``."""
    moment = time.gmtime(start_s) if utc else time.localtime(start_s)
    return (
        f"{prefix}_{sequence:05d}_{time.strftime('%Y%m%d%H%M%S', moment)}.{extension}"
    )


def scan_ring(
    directory: Path, prefix: str, extensions: Sequence[str]
) -> list[RingFile]:
    """Return the ring files of ``prefix`` in ``directory``, oldest first."""
    alternatives = "|".join(re.escape(ext) for ext in extensions)
    pattern = re.compile(
        rf"{re.escape(prefix)}_(\d{{5,}})_\d{{14}}\.(?:{alternatives})"
    )
    found = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and entry.is_file(follow_symlinks=False):
            size = entry.stat(follow_symlinks=False).st_size
            found.append(RingFile(Path(entry.path), int(match[1]), size))
    return sorted(found, key=lambda ring_file: ring_file.sequence)


# --- writing --------------------------------------------------------------


class AppendFile:
    """A file written at its end, never left holding a partial record.

    Open it with :meth:`create` (a new file, given mode and group) or
    :meth:`reopen`.  :meth:`append` writes records and, when the system
    refuses part of them, truncates the file back to the end of the last
    record that made it whole.
    """

    def __init__(self, path: Path, fd: int, size_bytes: int) -> None:
        self.path = path
        self.fd = fd
        self.size_bytes = size_bytes
        #: set when the file could not be cut back; it must be replaced
        self.is_broken = False

    @classmethod
    def create(cls, path: Path, *, mode: int, gid: int) -> AppendFile:
        """Create ``path`` (it must not exist) with ``mode`` and group ``gid``."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(path, flags, mode)
        try:
            os.fchmod(fd, mode)  # whatever the umask took away
            if gid >= 0:
                os.fchown(fd, -1, gid)
        except OSError:
            os.close(fd)
            os.unlink(path)
            raise
        return cls(path, fd, 0)

    @classmethod
    def reopen(cls, path: Path) -> AppendFile:
        """Open an existing ``path`` to append to it."""
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        return cls(path, fd, os.fstat(fd).st_size)

    def append(self, data: Any, ends: Array) -> tuple[int, OSError | None]:
        """Write ``data``, records ending at offsets ``ends`` (ascending).

        Return how many records are now wholly in the file and the error
        that stopped the rest, or None.  On error the file is cut back to
        the end of the last whole record.
        """
        view = memoryview(data).cast("B")
        done = 0
        try:
            while done < len(view):
                done += os.write(self.fd, view[done:])
        except OSError as error:
            kept = int(np.searchsorted(ends, done, "right"))
            self._cut_back(self.size_bytes + (int(ends[kept - 1]) if kept else 0))
            return kept, error
        self.size_bytes += done
        return len(ends), None

    def is_replaced(self) -> bool:
        """Return True when the path no longer names this file.

        That is, the file (or its folder) was removed or moved away, and
        what is written to it would be lost to readers of the path.
        """
        try:
            held, named = os.fstat(self.fd), os.stat(self.path)
        except OSError:
            return True
        return (held.st_dev, held.st_ino) != (named.st_dev, named.st_ino)

    def close(self, *, sync: bool) -> OSError | None:
        """Flush to disk when ``sync``, close; return the error, if any."""
        failure: OSError | None = None
        if sync:
            try:
                os.fsync(self.fd)
            except OSError as error:
                failure = error
        try:
            os.close(self.fd)
        except OSError as error:
            failure = failure or error
        return failure

    def _cut_back(self, size_bytes: int) -> None:
        try:
            os.ftruncate(self.fd, size_bytes)
            self.size_bytes = size_bytes
        except OSError:
            logger.warning("%s: could not cut back a partial record", self.path)
            self.is_broken = True


# --- on-rotate command ----------------------------------------------------


class RotateHooks:
    """Run a command on each finished file, asynchronously and without a shell.

    The command is an argv list; the finished path is appended as its last
    argument.  A worker thread starts and reaps the commands, so even the
    fork stays off the caller's thread; a command that cannot start or
    exits non-zero counts in :attr:`failures`.
    """

    def __init__(self, argv: Sequence[str] | None) -> None:
        self.argv = list(argv) if argv else []
        self._failures = 0
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Path | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    @property
    def failures(self) -> int:
        """Return how many commands failed to start or exited non-zero."""
        with self._lock:
            return self._failures

    def run(self, path: Path) -> None:
        """Queue the command on ``path``; return at once."""
        if not self.argv:
            return
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._work, name="fosrd-on-rotate", daemon=True
            )
            self._thread.start()
        self._queue.put(path)

    def wait(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for the queued and running commands."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            logger.warning("on_rotate %s still running at close", self.argv[0])
        self._thread = None

    def _work(self) -> None:
        running: list[subprocess.Popen[bytes]] = []
        while True:
            try:
                path = self._queue.get(timeout=REAP_EVERY_S)
            except queue.Empty:
                running = self._reap(running)
                continue
            if path is None:
                break
            child = self._start(path)
            running = self._reap(running + ([child] if child else []))
        for child in running:
            child.wait()
        self._reap(running)

    def _start(self, path: Path) -> subprocess.Popen[bytes] | None:
        try:
            return subprocess.Popen(
                [*self.argv, os.fspath(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as error:
            logger.warning("on_rotate %s could not start: %s", self.argv[0], error)
            self._count_failure()
            return None

    def _reap(
        self, running: list[subprocess.Popen[bytes]]
    ) -> list[subprocess.Popen[bytes]]:
        """Return the commands still running; count those that failed."""
        still = []
        for child in running:
            code = child.poll()
            if code is None:
                still.append(child)
            elif code != 0:
                logger.warning("on_rotate %s exited with %s", child.args, code)
                self._count_failure()
        return still

    def _count_failure(self) -> None:
        with self._lock:
            self._failures += 1


# --- the set of files on disk ---------------------------------------------


class RingDirectory:
    """The numbered files of one prefix in one folder, oldest first.

    Keeps the sequence going across restarts (the next number follows the
    highest found) and deletes the oldest files, with their sidecars, when
    asked to keep fewer.
    """

    def __init__(
        self,
        directory: Path,
        prefix: str,
        extensions: Sequence[str],
        sidecar_suffixes: Sequence[str] = (),
    ) -> None:
        self.directory = directory
        self.prefix = prefix
        self.extensions = list(extensions)
        self.sidecar_suffixes = list(sidecar_suffixes)
        self.files: list[RingFile] = []
        self.next_sequence = 1
        self.rescan()

    def rescan(self) -> None:
        """Read the folder again: the files there and the next number."""
        self.files = scan_ring(self.directory, self.prefix, self.extensions)
        if self.files:
            self.next_sequence = max(self.next_sequence, self.files[-1].sequence + 1)

    def add(self, path: Path, sequence: int, size_bytes: int) -> None:
        """Record a finished file."""
        self.files.append(RingFile(path, sequence, size_bytes))

    def size_bytes(self) -> int:
        """Return the bytes of the finished files."""
        return sum(ring_file.size_bytes for ring_file in self.files)

    def prune(self, keep: int) -> list[OSError]:
        """Delete the oldest files until ``keep`` remain; return the errors."""
        errors = []
        while len(self.files) > max(keep, 0):
            oldest = self.files.pop(0)
            for path in [oldest.path, *self._sidecars(oldest.path)]:
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                except OSError as error:
                    errors.append(error)
        return errors

    def _sidecars(self, path: Path) -> list[Path]:
        return [path.with_suffix(suffix) for suffix in self.sidecar_suffixes]
