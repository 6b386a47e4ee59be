"""Write a bundle: check everything first, then write atomically.

Every check the reader makes is made here before a byte is written, with
the same limits, so a bundle that writes reads back; a mistake is the
caller's and raises ValueError or TypeError.  The file appears complete or
not at all: it is written to a temporary file in the target's folder,
flushed to disk, and renamed over the target, which is what lets a daemon
reload a model while a new one is being learnt.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import tempfile
from collections.abc import Mapping
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from fosr.bundle._json import dump_json
from fosr.bundle._limits import DEFAULT_LIMITS, Limits
from fosr.bundle._manifest import (
    MANIFEST,
    MemberInfo,
    Part,
    build_manifest,
    is_name,
    member_of_array,
    member_of_document,
)
from fosr.bundle._npy import pack_array, shape_problem
from fosr.bundle._provenance import Provenance
from fosr.bundle._zip import write_zip

Array = npt.NDArray[Any]
_NEW_FILE_MODE = 0o644


def write_bundle(
    path: str | os.PathLike[str],
    *,
    documents: Mapping[str, Mapping[str, object]],
    arrays: Mapping[str, Array],
    provenance: Provenance,
    limits: Limits = DEFAULT_LIMITS,
) -> None:
    """Write a bundle to ``path``, atomically replacing any file there.

    ``documents`` maps part names to JSON objects, each with a string
    ``kind`` and an integer ``version`` >= 1; ``arrays`` maps array names to
    numpy arrays of bool, int, uint or float.  Names are words of letters,
    digits and underscores joined by dots or dashes, at most 100 characters
    ("flow_model", "flow_model.cpt-3").  A replaced file keeps its
    permissions; a new one gets 0644.

    Raises ValueError or TypeError, before touching the disk, for a value
    the reader would refuse under ``limits``, and ValueError if the
    compressed file exceeds ``limits.max_file_bytes``, leaving any earlier
    file in place.  OSError from the file system passes through, with the
    same guarantee.
    """
    members = _pack_members(documents, arrays, provenance, limits)
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = _NEW_FILE_MODE

    fd, temporary = tempfile.mkstemp(prefix=".fosr-bundle-", dir=folder)
    try:
        with os.fdopen(fd, "w+b") as file:
            _write_file(file, members, provenance, limits)
            os.fchmod(file.fileno(), mode)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)


def pack_bundle(
    *,
    documents: Mapping[str, Mapping[str, object]],
    arrays: Mapping[str, Array],
    provenance: Provenance,
    limits: Limits = DEFAULT_LIMITS,
) -> bytes:
    """Return the bytes of a bundle; see :func:`write_bundle` for the rest.

    The same arguments give the same bytes.
    """
    members = _pack_members(documents, arrays, provenance, limits)
    buffer = io.BytesIO()
    _write_file(buffer, members, provenance, limits)
    return buffer.getvalue()


def _pack_members(
    documents: Mapping[str, Mapping[str, object]],
    arrays: Mapping[str, Array],
    provenance: Provenance,
    limits: Limits,
) -> list[tuple[str, bytes]]:
    """Encode every member and the manifest; return them in archive order.

    The order is the manifest, the documents, then the arrays, each by name.
    """
    members: dict[str, bytes] = {}
    infos: dict[str, MemberInfo] = {}
    parts: dict[str, Part] = {}
    for name, document in sorted(documents.items()):
        parts[name] = _check_document(name, document)
        data = dump_json(dict(document), limits)
        member = member_of_document(name)
        members[member] = data
        infos[member] = MemberInfo(hashlib.sha256(data).hexdigest(), len(data))
    for name, array in sorted(arrays.items()):
        member = member_of_array(name)
        members[member], infos[member] = _pack_array(name, array, limits)

    # the manifest goes first, so a reader can stream the archive; its keys
    # keep build_manifest's order (format and version first) for whoever
    # opens it with unzip -p
    manifest_value = build_manifest(provenance, parts, infos)
    manifest = dump_json(manifest_value, limits, indent=1, sort_keys=False)
    ordered = [(MANIFEST, manifest), *members.items()]
    if len(ordered) > limits.max_members:
        raise ValueError(
            f"{len(ordered)} members exceed max_members={limits.max_members}"
        )
    total = sum(len(content) for _, content in ordered)
    if total > limits.max_total_bytes:
        raise ValueError(
            f"members of {total} bytes exceed max_total_bytes={limits.max_total_bytes}"
        )
    for member, content in ordered:
        if len(content) > limits.max_member_bytes:
            raise ValueError(
                f"{member} of {len(content)} bytes exceeds "
                f"max_member_bytes={limits.max_member_bytes}"
            )
    return ordered


def _check_document(name: str, document: Mapping[str, object]) -> Part:
    """Check a document's name, ``kind`` and ``version``; return them as a Part."""
    if not is_name(name):
        raise ValueError(f"not a valid part name: {name!r}")
    if not isinstance(document, Mapping):
        raise TypeError(f"document {name!r} must be a mapping, not {type(document)}")
    kind, version = document.get("kind"), document.get("version")
    if not isinstance(kind, str) or not is_name(kind):
        raise ValueError(f"document {name!r} needs a 'kind' name, not {kind!r}")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"document {name!r} needs a 'version' >= 1, not {version!r}")
    return Part(kind, version)


def _pack_array(name: str, array: Array, limits: Limits) -> tuple[bytes, MemberInfo]:
    """Return the .npy member of array ``name`` and its manifest entry."""
    if not is_name(name):
        raise ValueError(f"not a valid array name: {name!r}")
    if not isinstance(array, np.ndarray):
        raise TypeError(f"array {name!r} must be a numpy array, not {type(array)}")
    problem = shape_problem(array.shape, limits)
    if problem is not None:
        raise ValueError(f"array {name!r}: {problem}")
    try:
        header, data, descr = pack_array(array)
    except ValueError as error:
        raise ValueError(f"array {name!r}: {error}") from None
    content = b"".join((header, data))
    digest = hashlib.sha256(content).hexdigest()
    return content, MemberInfo(digest, len(content), descr, array.shape)


def _write_file(
    file: BinaryIO,
    members: list[tuple[str, bytes]],
    provenance: Provenance,
    limits: Limits,
) -> None:
    write_zip(file, members, created=provenance.created)
    size = file.tell()
    if size > limits.max_file_bytes:
        raise ValueError(
            f"bundle of {size} bytes exceeds max_file_bytes={limits.max_file_bytes}"
        )


def _fsync_folder(folder: str) -> None:
    """Make the rename durable: flush the folder's entry to disk (POSIX)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # not a POSIX file system: the rename is all we can do
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
