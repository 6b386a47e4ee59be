"""Exceptions raised by the fosr library.

One base class, :class:`FosrError`, and a few branches that callers treat
differently.  Every exception carries the facts of the failure as attributes
(file, offset, line, field, value) and its message repeats them, so that the
command line can print ``str(error)`` as one self-contained line.
"""

from __future__ import annotations

import os

__all__ = [
    "BundleError",
    "CaptureError",
    "ConfigError",
    "FosrError",
    "InputError",
    "ModelError",
    "RecordError",
    "ToolError",
    "TruncatedInputError",
]


class FosrError(Exception):
    """Base class of every error the fosr library raises on purpose."""


class InputError(FosrError):
    """Input data is wrong: a capture, a flow record file, a table.

    ``path`` names the file (or ``None`` for in-memory data) and ``where``
    says where in it, already formatted ("offset 1234", "line 7, column
    'Bytes'").
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        where: str | None = None,
    ) -> None:
        self.path = None if path is None else os.fspath(path)
        self.where = where
        self.reason = message
        prefix = ""
        if self.path is not None:
            prefix = f"{self.path}: "
        if where:
            prefix += f"{where}: "
        super().__init__(prefix + message)


class CaptureError(InputError):
    """A capture file is not a capture, or its bytes are wrong at ``offset``."""

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        offset: int | None = None,
    ) -> None:
        self.offset = offset
        where = None if offset is None else f"offset {offset}"
        super().__init__(message, path=path, where=where)


class TruncatedInputError(CaptureError):
    """A capture ends in the middle of a record or block at ``offset``.

    Kept apart from :class:`CaptureError`: the bytes read so far are good, so
    readers keep them and only warn.
    """


class RecordError(InputError):
    """A flow record file has a malformed row: ``line`` and ``column`` say where."""

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.line = line
        self.column = column
        parts = []
        if line is not None:
            parts.append(f"line {line}")
        if column is not None:
            parts.append(f"column {column!r}")
        super().__init__(message, path=path, where=", ".join(parts) or None)


class ModelError(FosrError):
    """A model bundle is damaged, of an unknown version, or inconsistent."""


class BundleError(ModelError):
    """A model bundle file failed a check: ``member`` and ``field`` say where.

    ``path`` names the bundle file (``None`` for bytes in memory), ``member``
    the archive member ("manifest.json", "parts/flow_model.json",
    "arrays/cpt.npy"; ``None`` for the archive itself), ``field`` the path
    of the offending value inside a JSON member ("patterns[3].support"), and
    ``reason`` what is wrong with it, with the value.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | os.PathLike[str] | None = None,
        member: str | None = None,
        field: str | None = None,
    ) -> None:
        self.path = None if path is None else os.fspath(path)
        self.member = member
        self.field = field
        self.reason = reason
        parts = [part for part in (self.path, member) if part is not None]
        if field:
            parts.append(f"field {field!r} {reason}")
        else:
            parts.append(reason)
        super().__init__(": ".join(parts))


class ConfigError(FosrError):
    """A configuration or topology file is wrong; the message names the field."""


class ToolError(FosrError):
    """An external program (tshark) is missing, failed or took too long.

    ``tool`` names the program, ``path`` the file it was working on (or
    ``None``), ``returncode`` its exit status (``None`` when it did not run
    or was stopped) and ``reason`` what went wrong, usually the last line
    the program wrote to stderr.
    """

    def __init__(
        self,
        reason: str,
        *,
        tool: str,
        path: str | os.PathLike[str] | None = None,
        returncode: int | None = None,
    ) -> None:
        self.tool = tool
        self.path = None if path is None else os.fspath(path)
        self.returncode = returncode
        self.reason = reason
        where = "" if self.path is None else f" on {self.path}"
        super().__init__(f"{tool}{where}: {reason}")
