"""Build valid bundles, and damaged or hostile ones that pass the checksums.

A flipped byte is caught by the first CRC-32; to reach the checks behind it
(the manifest's fields, the .npy headers, the document kinds) a test edits
the members and then reseals the archive: sizes and SHA-256 recomputed in
the manifest, the ZIP rewritten with fresh CRC-32s.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from fosr.bundle import DataFile, Provenance, pack_bundle, unpack_bundle
from fosr.errors import BundleError

CREATED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
PROVENANCE = Provenance(
    created=CREATED,
    command=("fosr", "learn", "week1.pcap", "-o", "model.fosr"),
    data=(DataFile("week1.pcap", "ab" * 32, 1234),),
    host="lab-1",
    notes="test bundle",
)
DOCUMENTS: dict[str, dict[str, Any]] = {
    "flow_model": {
        "kind": "flowchronicle",
        "version": 1,
        "patterns": [{"support": 12, "rows": [{"cells": [1, 2.5, "x", None]}]}],
    },
    "packet_model": {"kind": "tadam", "version": 2, "services": {"dns": True}},
}
ARRAYS = {
    "bool": np.array([[True, False], [False, True]]),
    "int8": np.array([-128, 0, 127], dtype=np.int8),
    "uint8": np.array([0, 255], dtype=np.uint8),
    "int16": np.array([-(2**15), 2**15 - 1], dtype=np.int16),
    "uint16": np.array([2**16 - 1], dtype=np.uint16),
    "int32": np.arange(12, dtype=np.int32).reshape(3, 4),
    "uint32": np.array([2**32 - 1], dtype=np.uint32),
    "int64": np.array([-(2**63), 2**63 - 1], dtype=np.int64),
    "uint64": np.array([2**64 - 1], dtype=np.uint64),
    "float16": np.array([0.5, -2.0], dtype=np.float16),
    "float32": np.linspace(0, 1, 5, dtype=np.float32),
    "float64": np.array([[1e-300, -0.0], [np.pi, 1e300]]),
    "scalar": np.array(42.5),
    "empty": np.zeros((0, 3), dtype=np.int32),
    "flow_model.cpt-3": np.full((2, 2, 2), 0.5),
}


def valid_bundle(**changes: Any) -> bytes:
    """Return the bytes of the sample bundle, with keyword arguments changed."""
    arguments: dict[str, Any] = {
        "documents": DOCUMENTS,
        "arrays": ARRAYS,
        "provenance": PROVENANCE,
    }
    arguments.update(changes)
    return pack_bundle(**arguments)


VALID = valid_bundle()


def members_of(data: bytes) -> dict[str, bytes]:
    """Return the members of a ZIP archive by name, in archive order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rezip(
    members: dict[str, bytes] | list[tuple[str, bytes]],
    *,
    method: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """Write ``members`` into a fresh ZIP archive with zipfile."""
    items = members.items() if isinstance(members, dict) else members
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, content in items:
            info = zipfile.ZipInfo(name, (2024, 5, 1, 12, 0, 0))
            info.compress_type = method
            archive.writestr(info, content)
    return buffer.getvalue()


def reseal(
    members: dict[str, bytes],
    edit_manifest: Callable[[dict[str, Any]], None] | None = None,
    *,
    method: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """Recompute the manifest's sizes and SHA-256s, apply an edit, rezip.

    Only members the manifest already lists get fresh checksums; the edit
    runs after, so it can break them again on purpose.
    """
    manifest = json.loads(members["manifest.json"])
    for name, info in manifest["members"].items():
        if name in members:
            info["bytes"] = len(members[name])
            info["sha256"] = hashlib.sha256(members[name]).hexdigest()
    if edit_manifest is not None:
        edit_manifest(manifest)
    resealed = dict(members)
    resealed["manifest.json"] = json.dumps(manifest).encode()
    return rezip(resealed, method=method)


def npy_bytes(array: np.ndarray[Any, Any], **save_options: Any) -> bytes:
    """Return what numpy.save writes for ``array``."""
    buffer = io.BytesIO()
    np.save(buffer, array, **save_options)
    return buffer.getvalue()


UNPICKLED: list[str] = []


def mark_unpickled(text: str) -> str:
    """Record that a pickle ran code; the hostile payloads call this."""
    UNPICKLED.append(text)
    return text


class Payload:
    """An object whose unpickling calls :func:`mark_unpickled`."""

    def __reduce__(self) -> tuple[Callable[[str], str], tuple[str]]:
        return mark_unpickled, ("payload ran",)


def pickle_npy() -> bytes:
    """Return a .npy object array whose loading with pickle runs code."""
    payload = np.empty(1, dtype=object)
    payload[0] = Payload()
    return npy_bytes(payload, allow_pickle=True)


def refusal(data: bytes, **options: Any) -> BundleError:
    """Return the BundleError that reading ``data`` as model.fosr raises."""
    try:
        unpack_bundle(data, path="model.fosr", **options)
    except BundleError as error:
        return error
    raise AssertionError("the bundle was accepted")
