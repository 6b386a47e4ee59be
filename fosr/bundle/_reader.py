"""Read a bundle: every check, in order, before anything is handed out.

The file is read into memory once (bounded by ``max_file_bytes``) and
hashed; everything after works on those bytes, so the SHA-256 a daemon
reports is that of the bundle it runs.  Then, in this order, each step
refusing with a BundleError that names the member and the field:

1. the archive is the strict ZIP subset of ``_zip`` and within the limits;
2. every member name is manifest.json, parts/<name>.json or
   arrays/<name>.npy;
3. manifest.json parses and names this format, at a version this fosr
   reads, with well-formed fields;
4. the archive holds exactly the members the manifest lists;
5. each member has the size and SHA-256 the manifest gives; documents are
   JSON objects whose ``kind`` and ``version`` match the manifest's parts;
   arrays are .npy with the dtype and shape the manifest gives.

What a document or an array means is not checked here: each model part
checks its own content through :class:`~fosr.bundle.Field` and
:meth:`Bundle.array`.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.bundle._json import JSON, load_json, quote
from fosr.bundle._limits import DEFAULT_LIMITS, Limits
from fosr.bundle._manifest import (
    MANIFEST,
    Manifest,
    MemberInfo,
    Part,
    member_of_array,
    member_of_document,
    parse_manifest,
    split_member,
)
from fosr.bundle._npy import unpack_array
from fosr.bundle._provenance import Provenance
from fosr.bundle._schema import Field
from fosr.bundle._zip import Entry, inflate, read_entries
from fosr.errors import BundleError

Array = npt.NDArray[Any]


class Bundle:
    """A model bundle, read and checked: its documents, arrays and provenance.

    Made by :func:`read_bundle` and :func:`unpack_bundle`, never directly.
    Attributes: ``path`` (the file, or None for bytes from memory),
    ``sha256`` and ``size_bytes`` of the whole file, ``manifest`` (as
    parsed, unknown keys included), ``format_version``, ``fosr_version``
    (of the fosr that wrote it), ``provenance``, ``parts`` (kind and version
    of each document, by part name) and ``array_names``.  Documents and
    arrays are shared by every caller: arrays are read-only, and documents
    must be treated so.
    """

    def __init__(
        self,
        *,
        path: str | None,
        sha256: str,
        size_bytes: int,
        manifest: dict[str, JSON],
        checked: Manifest,
        documents: dict[str, dict[str, JSON]],
        arrays: dict[str, Array],
    ) -> None:
        # the file
        self.path = path
        self.sha256 = sha256
        self.size_bytes = size_bytes

        # what the manifest says
        self.manifest = manifest
        self.format_version = checked.version
        self.fosr_version = checked.fosr_version
        self.provenance: Provenance = checked.provenance
        self.parts: Mapping[str, Part] = MappingProxyType(checked.parts)
        self.array_names = tuple(sorted(arrays))

        # content
        self._documents = documents
        self._arrays = arrays

    def document(self, name: str) -> dict[str, JSON]:
        """Return the document of part ``name``; raise BundleError if absent."""
        if name not in self._documents:
            raise self._missing(member_of_document(name), "part")
        return self._documents[name]

    def fields(self, name: str) -> Field:
        """Return the root Field of part ``name``, to read it with checks."""
        return Field(self.document(name), "", member_of_document(name), self.path)

    def array(
        self,
        name: str,
        *,
        dtype: npt.DTypeLike | None = None,
        shape: tuple[int | None, ...] | None = None,
    ) -> Array:
        """Return the read-only array ``name``.

        With ``dtype``, its dtype must be that one (byte order aside); with
        ``shape``, it must have that many dimensions, and the length given
        for each one that is not None.  Raises BundleError if the array is
        absent or differs.
        """
        if name not in self._arrays:
            raise self._missing(member_of_array(name), "array")
        array = self._arrays[name]
        if dtype is not None:
            wanted = np.dtype(dtype)
            if array.dtype.newbyteorder("=") != wanted.newbyteorder("="):
                raise self.array_error(
                    name, f"has dtype {array.dtype}, expected {wanted}"
                )
        if shape is not None and not _fits(array.shape, shape):
            expected = tuple("any" if n is None else n for n in shape)
            raise self.array_error(
                name, f"has shape {array.shape}, expected {expected}"
            )
        return array

    def array_error(self, name: str, reason: str) -> BundleError:
        """Return a BundleError about array ``name``, for the caller to raise."""
        return BundleError(reason, path=self.path, member=member_of_array(name))

    def _missing(self, member: str, what: str) -> BundleError:
        return BundleError(
            f"no such {what} in the bundle", path=self.path, member=member
        )


def read_bundle(
    path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS
) -> Bundle:
    """Read and check the bundle file at ``path``.

    Raises BundleError, naming the file, the member and the field, if the
    file cannot be read, is not a regular file, or fails a check.
    """
    name = os.fspath(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise BundleError("not a regular file", path=name)
            if info.st_size > limits.max_file_bytes:
                raise _too_big(info.st_size, limits, name)
            data = _read_at_most(fd, limits.max_file_bytes + 1)
        finally:
            os.close(fd)
    except OSError as error:
        raise BundleError(f"cannot read: {error.strerror}", path=name) from error
    return unpack_bundle(data, limits=limits, path=name)


def unpack_bundle(
    data: bytes,
    *,
    limits: Limits = DEFAULT_LIMITS,
    path: str | os.PathLike[str] | None = None,
) -> Bundle:
    """Check the bundle in ``data`` and return it.

    ``path`` only names the bundle in error messages.  Raises BundleError as
    :func:`read_bundle` does.
    """
    name = None if path is None else os.fspath(path)
    if len(data) > limits.max_file_bytes:
        raise _too_big(len(data), limits, name)
    data = bytes(data)
    entries = read_entries(data, limits, name)
    for entry in entries:
        if entry.name != MANIFEST and split_member(entry.name) is None:
            raise BundleError(
                "member name is not allowed: members are manifest.json, "
                "parts/<name>.json and arrays/<name>.npy",
                path=name,
                member=entry.name,
            )

    # the manifest, then the members it lists
    by_name = {entry.name: entry for entry in entries}
    if MANIFEST not in by_name:
        raise BundleError(
            "no manifest.json: not a fosr model bundle", path=name, member=MANIFEST
        )
    manifest = load_json(
        inflate(data, by_name[MANIFEST], name), limits, path=name, member=MANIFEST
    )
    checked = parse_manifest(manifest, limits, name)
    _check_listing(checked, set(by_name) - {MANIFEST}, name)

    documents: dict[str, dict[str, JSON]] = {}
    arrays: dict[str, Array] = {}
    for entry in entries:
        if entry.name == MANIFEST:
            continue
        content = _read_member(data, entry, checked.members[entry.name], name)
        folder, item = split_member(entry.name) or ("", "")
        if folder == "parts":
            documents[item] = _load_document(content, checked, item, limits, name)
        else:
            arrays[item] = _load_array(content, entry, checked, limits, name)
    assert isinstance(manifest, dict), "parse_manifest accepted a non-object"
    return Bundle(
        path=name,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        manifest=manifest,
        checked=checked,
        documents=documents,
        arrays=arrays,
    )


def _check_listing(checked: Manifest, present: set[str], path: str | None) -> None:
    """Refuse a member listed but absent, or present but not listed."""
    listed = set(checked.members)
    missing, unlisted = sorted(listed - present), sorted(present - listed)
    if missing:
        raise BundleError(
            "listed in manifest.json but not in the archive",
            path=path,
            member=missing[0],
        )
    if unlisted:
        raise BundleError(
            "in the archive but not listed in manifest.json",
            path=path,
            member=unlisted[0],
        )
    documents = {member_of_document(name) for name in checked.parts}
    orphans = sorted(m for m in listed - documents if m.startswith("parts/"))
    if orphans:
        raise BundleError(
            "document without an entry in the parts of manifest.json",
            path=path,
            member=orphans[0],
        )


def _read_member(
    data: bytes, entry: Entry, info: MemberInfo, path: str | None
) -> bytes:
    """Decompress a member and check its size and SHA-256 against the manifest."""
    if entry.size_bytes != info.size_bytes:
        raise BundleError(
            f"is {entry.size_bytes} bytes, manifest.json says {info.size_bytes}",
            path=path,
            member=entry.name,
        )
    content = inflate(data, entry, path)
    digest = hashlib.sha256(content).hexdigest()
    if digest != info.sha256:
        raise BundleError(
            f"SHA-256 mismatch: manifest.json says {info.sha256[:16]}..., "
            f"the member hashes to {digest[:16]}...",
            path=path,
            member=entry.name,
        )
    return content


def _load_document(
    content: bytes, checked: Manifest, name: str, limits: Limits, path: str | None
) -> dict[str, JSON]:
    """Parse a document and check its kind and version against the manifest."""
    member = member_of_document(name)
    value = load_json(content, limits, path=path, member=member)
    root = Field(value, "", member, path)
    part = checked.parts[name]
    root.get("kind")  # refuses a document that is not an object
    for key, expected in (("kind", part.kind), ("version", part.version)):
        found = root[key].value
        # compare types too: true == 1 and 1.0 == 1 in Python, not in JSON
        if (type(found), found) != (type(expected), expected):
            raise root[key].error(f"is {quote(found)}, manifest.json says {expected!r}")
    assert isinstance(value, dict), "Field.get accepted a non-object"
    return value


def _load_array(
    content: bytes, entry: Entry, checked: Manifest, limits: Limits, path: str | None
) -> Array:
    """Decode an array and check its dtype and shape against the manifest."""
    array = unpack_array(content, limits, path=path, member=entry.name)
    info = checked.members[entry.name]
    descr = array.dtype.str
    if (descr, array.shape) != (info.dtype, info.shape):
        raise BundleError(
            f".npy header says {descr!r} {array.shape}, manifest.json says "
            f"{info.dtype!r} {info.shape}",
            path=path,
            member=entry.name,
        )
    return array


def _fits(shape: tuple[int, ...], pattern: tuple[int | None, ...]) -> bool:
    """Return True if ``shape`` has the dimensions ``pattern`` asks for."""
    return len(shape) == len(pattern) and all(
        want is None or want == have for want, have in zip(pattern, shape, strict=True)
    )


def _read_at_most(fd: int, size: int) -> bytes:
    """Read from ``fd`` until the end of the file or ``size`` bytes."""
    chunks: list[bytes] = []
    left = size
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _too_big(size: int, limits: Limits, path: str | None) -> BundleError:
    return BundleError(
        f"file of {size} bytes exceeds max_file_bytes={limits.max_file_bytes}",
        path=path,
    )
