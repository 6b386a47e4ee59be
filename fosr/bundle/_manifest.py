"""manifest.json: what a bundle holds, where it comes from, and its checksums.

The manifest is the first member of the archive and the only one read
before the others are checked against it.  Its two fields ``format`` and
``version`` are frozen for all versions to come, so that any fosr can tell
a bundle made by a newer fosr from a damaged one.  Readers ignore keys they
do not know in the manifest's objects: a later fosr may add optional keys
without changing the format version (see docs/bundle.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from fosr import __version__
from fosr.bundle._json import JSON, quote
from fosr.bundle._limits import Limits
from fosr.bundle._npy import DTYPES, shape_problem
from fosr.bundle._provenance import DataFile, Provenance
from fosr.bundle._schema import Field

FORMAT_NAME = "fosr-model-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DOCUMENTS_FOLDER, DOCUMENT_SUFFIX = "parts/", ".json"
ARRAYS_FOLDER, ARRAY_SUFFIX = "arrays/", ".npy"

# part and array names: dot- or dash-separated words, so that a name can
# never climb out of its folder ("../x"), hide a slash or be empty
NAME = re.compile(r"[A-Za-z0-9_]+(?:[.-][A-Za-z0-9_]+)*")
MAX_NAME_CHARS = 100
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CREATED = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_CREATED_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Part:
    """A named JSON document of a bundle: which model kind, which version."""

    kind: str  # the model's registry name, e.g. "flowchronicle"
    version: int  # the version of that model's document layout, from 1


@dataclass(frozen=True)
class MemberInfo:
    """What the manifest says of one member; ``dtype`` and ``shape`` for arrays."""

    sha256: str
    size_bytes: int
    dtype: str | None = None  # .npy descr, e.g. "<f8"
    shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Manifest:
    """The checked content of manifest.json."""

    version: int
    fosr_version: str
    provenance: Provenance
    parts: dict[str, Part]
    members: dict[str, MemberInfo]


def is_name(name: str) -> bool:
    """Return True if ``name`` may name a part or an array."""
    return len(name) <= MAX_NAME_CHARS and NAME.fullmatch(name) is not None


def member_of_document(name: str) -> str:
    """Return the member that holds document ``name``."""
    return f"{DOCUMENTS_FOLDER}{name}{DOCUMENT_SUFFIX}"


def member_of_array(name: str) -> str:
    """Return the member that holds array ``name``."""
    return f"{ARRAYS_FOLDER}{name}{ARRAY_SUFFIX}"


def split_member(member: str) -> tuple[str, str] | None:
    """Return ("parts" or "arrays", name) for a valid member name, else None."""
    for folder, suffix in (
        (DOCUMENTS_FOLDER, DOCUMENT_SUFFIX),
        (ARRAYS_FOLDER, ARRAY_SUFFIX),
    ):
        if member.startswith(folder) and member.endswith(suffix):
            name = member[len(folder) : -len(suffix)]
            if is_name(name):
                return folder[:-1], name
    return None


def build_manifest(
    provenance: Provenance, parts: dict[str, Part], members: dict[str, MemberInfo]
) -> dict[str, JSON]:
    """Return the manifest of a bundle as a JSON object."""
    listed: dict[str, JSON] = {}
    for member, info in sorted(members.items()):
        entry: dict[str, JSON] = {"sha256": info.sha256, "bytes": info.size_bytes}
        if info.dtype is not None and info.shape is not None:
            entry["dtype"] = info.dtype
            entry["shape"] = list(info.shape)
        listed[member] = entry
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "created": provenance.created.astimezone(UTC).strftime(_CREATED_FORMAT),
        "fosr_version": __version__,
        "provenance": {
            "command": [_text(arg) for arg in provenance.command],
            "data": [
                {"path": _text(f.path), "sha256": f.sha256, "bytes": f.size_bytes}
                for f in provenance.data
            ],
            "host": None if provenance.host is None else _text(provenance.host),
            "notes": _text(provenance.notes),
        },
        "parts": {
            name: {"kind": part.kind, "version": part.version}
            for name, part in sorted(parts.items())
        },
        "members": listed,
    }


def _text(text: str) -> str:
    """Return ``text`` with lone surrogates replaced by U+FFFD.

    Arguments and file names that are not valid UTF-8 reach Python as lone
    surrogates (PEP 383), which JSON members may not hold; provenance is
    for people, so a replacement character beats refusing the bundle.
    """
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def parse_manifest(value: JSON, limits: Limits, path: str | None) -> Manifest:
    """Check the manifest's fields and return them; raise BundleError if wrong.

    ``format`` and ``version`` are checked first, so a bundle from a newer
    fosr is reported as such rather than as a damaged one.
    """
    root = Field(value, member=MANIFEST, bundle=path)
    name = root["format"]
    if name.value != FORMAT_NAME:
        raise name.error(f"is {quote(name.value)}: not a fosr model bundle")
    version = root["version"]
    number = version.as_int()
    if number > FORMAT_VERSION:
        raise version.error(
            f"is {number}: made by a newer fosr; this fosr reads format "
            f"version {FORMAT_VERSION}"
        )
    if number < 1:
        raise version.error(f"is {number}: no such format version")

    parts = {key: _parse_part(key, field) for key, field in root["parts"].items()}
    members = {
        key: _parse_member(key, field, limits) for key, field in root["members"].items()
    }
    for part in parts:
        if member_of_document(part) not in members:
            raise root["parts"][part].error(
                f"has no member {member_of_document(part)} in 'members'"
            )
    return Manifest(
        version=number,
        fosr_version=root["fosr_version"].as_str(),
        provenance=_parse_provenance(root),
        parts=parts,
        members=members,
    )


def _parse_part(name: str, field: Field) -> Part:
    if not is_name(name):
        raise field.error("is not a valid part name")
    kind = field["kind"]
    if not is_name(kind.as_str()):
        raise kind.error(f"is {quote(kind.value)}, not a valid kind name")
    return Part(kind.as_str(), field["version"].as_int(min=1))


def _parse_member(member: str, field: Field, limits: Limits) -> MemberInfo:
    split = split_member(member)
    if split is None:
        raise field.error(
            "is not a member name: members are parts/<name>.json and arrays/<name>.npy"
        )
    sha256 = field["sha256"]
    if not _SHA256.fullmatch(sha256.as_str()):
        raise sha256.error(f"is {quote(sha256.value)}, not 64 lowercase hex digits")
    size = field["bytes"].as_int(min=0)
    if split[0] == "parts":
        return MemberInfo(sha256.as_str(), size)

    # arrays also say what the .npy header must say
    dtype = field["dtype"].as_str(choices=DTYPES)
    dims = field["shape"].as_list(max_len=limits.max_array_dims)
    shape = tuple(dim.as_int(min=0) for dim in dims)
    problem = shape_problem(shape, limits)
    if problem is not None:
        raise field["shape"].error(problem)
    return MemberInfo(sha256.as_str(), size, dtype, shape)


def _parse_provenance(root: Field) -> Provenance:
    created = root["created"]
    text = created.as_str()
    try:
        if not _CREATED.fullmatch(text):
            raise ValueError(text)
        when = datetime.strptime(text, _CREATED_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise created.error(
            f"is {quote(text)}, not a UTC time like 2024-05-01T12:00:00Z"
        ) from None

    provenance = root["provenance"]
    data = []
    for item in provenance["data"].as_list():
        sha256 = item["sha256"]
        if not _SHA256.fullmatch(sha256.as_str()):
            raise sha256.error(f"is {quote(sha256.value)}, not a SHA-256")
        path = item["path"].as_str()
        data.append(DataFile(path, sha256.as_str(), item["bytes"].as_int(min=0)))
    host = provenance.get("host")
    notes = provenance.get("notes")
    return Provenance(
        created=when,
        command=tuple(arg.as_str() for arg in provenance["command"].as_list()),
        data=tuple(data),
        host=None if host is None or host.is_null() else host.as_str(),
        notes="" if notes is None else notes.as_str(),
    )
