"""Provenance: what a bundle was learnt from, by which command, and when."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fosr.errors import InputError

__all__ = ["DataFile", "Provenance"]

_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class DataFile:
    """One input file of the learning run: its path, SHA-256 and size."""

    path: str  # as given on the command line, not made absolute
    sha256: str  # 64 lowercase hex digits
    size_bytes: int

    @classmethod
    def for_file(cls, path: str | os.PathLike[str]) -> DataFile:
        """Hash the file at ``path``, reading it in 1 MiB chunks.

        Raises InputError if the file cannot be read.
        """
        digest = hashlib.sha256()
        size = 0
        try:
            with open(path, "rb") as file:
                while chunk := file.read(_CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
        except OSError as error:
            raise InputError(f"cannot read: {error.strerror}", path=path) from error
        return cls(os.fspath(path), digest.hexdigest(), size)


@dataclass(frozen=True)
class Provenance:
    """Where a bundle comes from; stored in its manifest.

    ``created`` is the time the bundle was made (timezone-aware; stored as
    UTC to the second), ``command`` the argument vector of the learning
    run, ``data`` its input files, ``host`` the machine's name (``None``
    unless the caller wants it recorded) and ``notes`` free text.
    """

    created: datetime
    command: tuple[str, ...] = ()
    data: tuple[DataFile, ...] = ()
    host: str | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if self.created.tzinfo is None:
            raise ValueError("Provenance.created must be timezone-aware")

    @classmethod
    def for_files(
        cls,
        paths: Iterable[str | os.PathLike[str]],
        *,
        command: Sequence[str] | None = None,
        created: datetime | None = None,
        host: str | None = None,
        notes: str = "",
    ) -> Provenance:
        """Describe a learning run over ``paths``, hashing each file.

        ``command`` defaults to ``sys.argv`` and ``created`` to now; pass
        both to make a bundle reproducible.  Raises InputError if a file
        cannot be read.
        """
        return cls(
            created=datetime.now(UTC) if created is None else created,
            command=tuple(sys.argv if command is None else command),
            data=tuple(DataFile.for_file(path) for path in paths),
            host=host,
            notes=notes,
        )
