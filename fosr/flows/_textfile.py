"""Open record files as text and report what reading them did.

Inputs are paths or binary file objects; gzip is recognised by its magic
bytes, not by the file name, and text is UTF-8 (a byte order mark is
dropped).  Errors of the OS, of gzip and of decoding become
:class:`~fosr.errors.InputError` naming the file.
"""

from __future__ import annotations

import gc
import gzip
import io
import os
import zlib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import IO, TypeAlias, cast

from fosr.errors import InputError, RecordError

__all__ = [
    "ReadReport",
    "Source",
    "open_text",
    "paused_gc",
    "read_first_line",
    "source_name",
]

Source: TypeAlias = "str | os.PathLike[str] | IO[bytes]"
"""Where records come from: a path, or a binary file object."""

_GZIP_MAGIC = b"\x1f\x8b"

MAX_KEPT_ERRORS = 10
"""How many skipped-row errors a report keeps as examples."""


@dataclass
class ReadReport:
    """What a reader did with one file; the reader fills it in.

    Pass a fresh report as ``report=`` to any reader, then print
    :meth:`summary` or inspect the counts.
    """

    path: str | None = None
    """The file read, or None for an unnamed file object."""
    format: str = ""
    """The record format: ``nfdump``, ``ugr16``, ``zeek`` or ``flows``."""
    records: int = 0
    """Rows returned: one-way records, or flows for bidirectional formats."""
    skipped: int = 0
    """Malformed rows skipped under ``skip_bad``."""
    filtered: int = 0
    """Well-formed rows dropped because their label was not kept."""
    errors: list[RecordError] = field(default_factory=list)
    """The first few errors of skipped rows, in file order."""

    def summary(self) -> str:
        """Return one line for a person, e.g. ``skipped 3 malformed rows``."""
        parts = [f"read {self.records} {self.format} records"]
        if self.filtered:
            parts.append(f"dropped {self.filtered} by label")
        if self.skipped:
            rows = "row" if self.skipped == 1 else "rows"
            parts.append(f"skipped {self.skipped} malformed {rows}")
        text = "; ".join(parts)
        if self.path is not None:
            text = f"{self.path}: {text}"
        if self.errors:
            text += f" (first: {self.errors[0]})"
        return text

    def add_skipped(self, errors: Sequence[RecordError]) -> None:
        """Count skipped rows and keep the first few errors as examples."""
        self.skipped += len(errors)
        room = MAX_KEPT_ERRORS - len(self.errors)
        if room > 0:
            self.errors.extend(errors[:room])


def source_name(source: Source) -> str | None:
    """Return the file name of a path or file object, None if it has none."""
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else None


@contextmanager
def open_text(source: Source) -> Iterator[tuple[IO[str], str | None]]:
    """Open a path or binary file object as UTF-8 text, gunzipping if needed.

    Yields the text stream and the file name.  A file object handed in is
    left open.  OS, gzip and decoding errors, at opening or while the body
    reads, come out as :class:`~fosr.errors.InputError` naming the file.
    """
    name = source_name(source)
    with ExitStack() as stack:
        raw: IO[bytes]
        if isinstance(source, str | os.PathLike):
            try:
                raw = stack.enter_context(open(source, "rb"))
            except OSError as error:
                reason = error.strerror or str(error)
                raise InputError(f"cannot open: {reason}", path=name) from error
        else:
            raw = source
        try:
            binary: IO[bytes] = raw
            if _peek(raw, 2) == _GZIP_MAGIC:
                unzipped = gzip.GzipFile(fileobj=raw, mode="rb")
                stack.callback(unzipped.close)
                binary = cast(IO[bytes], unzipped)
            text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
            # detach, don't close: the caller's file object stays usable
            stack.callback(text.detach)
            yield text, name
        except UnicodeDecodeError as error:
            raise InputError(f"not UTF-8 text: {error.reason}", path=name) from error
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise InputError(f"damaged gzip data: {error}", path=name) from error
        except OSError as error:
            reason = error.strerror or str(error)
            raise InputError(f"cannot read: {reason}", path=name) from error


def _peek(raw: IO[bytes], size: int) -> bytes:
    """Return the next ``size`` bytes of ``raw`` without consuming them."""
    peek = getattr(raw, "peek", None)
    if peek is not None:
        head: bytes = peek(size)
        return head[:size]
    if not raw.seekable():
        raise ValueError("a file object to read from must be seekable or peekable")
    position = raw.tell()
    head = raw.read(size)
    raw.seek(position)
    return head


def read_first_line(stream: IO[str], path: str | None) -> tuple[str, int]:
    """Return the first non-blank line, without its newline, and its number.

    Raises InputError if the file holds nothing but blank lines.
    """
    for number, line in enumerate(stream, start=1):
        text = line.rstrip("\r\n")
        if text.strip():
            return text, number
    raise InputError("empty file", path=path)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Suspend the cyclic garbage collector for the duration of the block.

    Reading allocates a container or more per row, and every few hundred
    of them the collector walks the young objects: pausing it saves a tenth
    of the time of reading UGR'16, and half where rows are split one by one.
    Rows hold only strings, so there is nothing cyclic to collect.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
