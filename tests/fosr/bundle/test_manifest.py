"""manifest.json: the version check first, then every field, by its path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from bundle_builders import VALID, members_of, refusal, reseal, rezip

from fosr.bundle import unpack_bundle
from fosr.bundle._manifest import split_member

Edit = Callable[[dict[str, Any]], None]
F8 = 'members["arrays/float64.npy"]'


def edited(edit: Edit) -> bytes:
    return reseal(members_of(VALID), edit)


_DELETE = object()
ARRAY = "members|arrays/float64.npy"


def setting(path: str, value: Any) -> Edit:
    """Return an edit setting (or deleting) the field at ``path``, "a|b|c".

    The separator is "|" since member names hold dots and slashes.
    """

    def edit(manifest: dict[str, Any]) -> None:
        *parents, last = path.split("|")
        target = manifest
        for key in parents:
            target = target[key]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return edit


def test_read_bundle_of_a_newer_format_says_so() -> None:
    # whatever else changed, the version is reported first
    def newer(manifest: dict[str, Any]) -> None:
        manifest["version"] = 2
        manifest["members"] = "a layout this fosr does not know"

    error = refusal(edited(newer))
    assert str(error) == (
        "model.fosr: manifest.json: field 'version' is 2: made by a newer "
        "fosr; this fosr reads format version 1"
    )
    assert (error.member, error.field) == ("manifest.json", "version")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (setting("version", 0), "field 'version' is 0: no such format version"),
        (setting("version", "1"), "field 'version' must be an integer, not a string"),
        (setting("version", 1.0), "field 'version' must be an integer, not a number"),
        (setting("version", True), "must be an integer, not a boolean"),
        (setting("format", "zip"), "field 'format' is 'zip': not a fosr model bundle"),
        (setting("format", _DELETE), "has no field 'format'"),
        (setting("created", "2024-05-01 12:00"), "field 'created' is '2024-05-01"),
        (setting("created", "2024-13-01T12:00:00Z"), "not a UTC time like"),
        (setting("fosr_version", None), "field 'fosr_version' must be a string"),
        (setting("provenance|command", "fosr learn"), "'provenance.command' must"),
        (setting("provenance|command", [1]), "'provenance.command[0]' must be a s"),
        (setting("provenance|data", [{"path": "x"}]), "'provenance.data[0]' has no"),
        (
            setting("provenance|data", [{"path": "x", "sha256": "ab", "bytes": 1}]),
            "field 'provenance.data[0].sha256' is 'ab', not a SHA-256",
        ),
        (setting("provenance|host", 3), "'provenance.host' must be a string"),
        (setting("parts|flow_model|version", 0), "must be an integer >= 1, not 0"),
        (setting("parts|flow_model|kind", "a/b"), "is 'a/b', not a valid kind name"),
        (setting("parts|../x", {}), "field 'parts[\"../x\"]' is not a valid part"),
        (setting("members|../x.npy", {}), "is not a member name"),
        (setting("members|arrays/x.bin", {}), "is not a member name"),
        (setting(f"{ARRAY}|sha256", "AB" * 32), f"'{F8}.sha256' is 'ABAB"),
        (setting(f"{ARRAY}|bytes", -1), f"'{F8}.bytes' must be an integer >= 0"),
        (setting(f"{ARRAY}|dtype", _DELETE), f"'{F8}' has no field 'dtype'"),
        (setting(f"{ARRAY}|dtype", "|O"), f"'{F8}.dtype' must be one of '<f2',"),
        (setting(f"{ARRAY}|shape", [2, -2]), f"'{F8}.shape[1]' must be an integer >="),
        (setting(f"{ARRAY}|shape", [2**40]), "exceeds max_array_elements"),
        (setting(f"{ARRAY}|shape", [1] * 33), "must have at most 32 items, not 33"),
        (setting("members", []), "field 'members' must be an object, not an array"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_read_manifest_field_error_names_the_field(edit: Edit, expected: str) -> None:
    error = refusal(edited(edit))
    assert error.member == "manifest.json"
    assert expected in str(error)


def test_read_manifest_not_an_object_is_refused() -> None:
    members = members_of(VALID)
    members["manifest.json"] = b"[]"
    error = refusal(rezip(members))
    assert str(error) == "model.fosr: manifest.json: must be an object, not an array"


def test_read_manifest_ignores_keys_it_does_not_know() -> None:
    # the forward-compatibility rule: optional additions keep the version
    def add(manifest: dict[str, Any]) -> None:
        manifest["signature"] = {"by": "someone"}
        manifest["provenance"]["seed"] = 7
        manifest["members"]["arrays/float64.npy"]["compressed"] = True
        manifest["parts"]["flow_model"]["trained_on"] = "week 1"

    bundle = unpack_bundle(edited(add))
    assert bundle.manifest["signature"] == {"by": "someone"}


def test_read_manifest_without_host_and_notes_reads_defaults() -> None:
    def drop(manifest: dict[str, Any]) -> None:
        del manifest["provenance"]["host"]
        del manifest["provenance"]["notes"]

    provenance = unpack_bundle(edited(drop)).provenance
    assert (provenance.host, provenance.notes) == (None, "")


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("parts/flow_model.json", ("parts", "flow_model")),
        ("arrays/flow_model.cpt-3.npy", ("arrays", "flow_model.cpt-3")),
        ("arrays/.npy", None),
        ("arrays/../x.npy", None),
        ("arrays/a/b.npy", None),
        ("parts/a.npy", None),
        ("parts/" + "a" * 101 + ".json", None),
        ("manifest.json", None),
    ],
)
def test_split_member_accepts_only_the_two_folders(
    member: str, expected: tuple[str, str] | None
) -> None:
    assert split_member(member) == expected
