"""Reading bundles: each kind of damage is refused, naming what failed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bundle_builders import (
    DOCUMENTS,
    UNPICKLED,
    VALID,
    members_of,
    npy_bytes,
    pickle_npy,
    refusal,
    reseal,
    rezip,
)

from fosr.bundle import Bundle, Limits, read_bundle, unpack_bundle
from fosr.errors import BundleError, ModelError

Edit = Callable[[dict[str, bytes]], bytes]


def test_read_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="absent.fosr: cannot read: No such file"):
        read_bundle(tmp_path / "absent.fosr")


def test_read_folder_is_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a regular file"):
        read_bundle(tmp_path)


def test_read_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "model.fosr"
    os.mkfifo(fifo)
    with pytest.raises(BundleError, match="not a regular file"):
        read_bundle(fifo)


def test_read_file_beyond_max_file_bytes_is_refused_before_reading(
    tmp_path: Path,
) -> None:
    path = tmp_path / "model.fosr"
    path.write_bytes(VALID)
    with pytest.raises(BundleError, match="exceeds max_file_bytes=100"):
        read_bundle(path, limits=Limits(max_file_bytes=100))


def test_bundle_error_is_a_model_error_with_facts() -> None:
    error = refusal(b"not a zip")
    assert isinstance(error, ModelError)
    assert (error.path, error.member, error.field) == ("model.fosr", None, None)
    assert str(error) == "model.fosr: not a fosr model bundle: not a ZIP archive"


def _drop(name: str) -> Edit:
    def edit(members: dict[str, bytes]) -> bytes:
        del members[name]
        return reseal(members)

    return edit


def _add(name: str, content: bytes) -> Edit:
    def edit(members: dict[str, bytes]) -> bytes:
        members[name] = content
        return reseal(members)

    return edit


def _replace(name: str, content: bytes, *, seal: bool = True) -> Edit:
    def edit(members: dict[str, bytes]) -> bytes:
        members[name] = content
        return reseal(members) if seal else rezip(members)

    return edit


def _flip_float64(members: dict[str, bytes]) -> bytes:
    # same size, fresh ZIP CRC-32, stale SHA-256 in the manifest
    content = bytearray(members["arrays/float64.npy"])
    content[-1] ^= 0x01
    members["arrays/float64.npy"] = bytes(content)
    return rezip(members)


def _swap_document_kind(members: dict[str, bytes]) -> bytes:
    members["parts/flow_model.json"] = members["parts/flow_model.json"].replace(
        b'"kind":"flowchronicle"', b'"kind":"otherkind"'
    )
    return reseal(members)


def _listed_part_without_member(members: dict[str, bytes]) -> bytes:
    def edit(manifest: dict[str, Any]) -> None:
        manifest["parts"]["ghost"] = {"kind": "k", "version": 1}

    return reseal(members, edit)


def _member_without_part(members: dict[str, bytes]) -> bytes:
    def edit(manifest: dict[str, Any]) -> None:
        del manifest["parts"]["packet_model"]

    return reseal(members, edit)


FLOW = DOCUMENTS["flow_model"]
DAMAGE: dict[str, tuple[Edit, str | None, str]] = {
    # name: (edit, member named, message fragment)
    "missing member": (
        _drop("arrays/int8.npy"),
        "arrays/int8.npy",
        "listed in manifest.json but not in the archive",
    ),
    "extra member": (
        _add("arrays/extra.npy", npy_bytes(np.zeros(2))),
        "arrays/extra.npy",
        "in the archive but not listed in manifest.json",
    ),
    "path traversal": (
        _add("../x", b"payload"),
        "../x",
        "member name is not allowed",
    ),
    "traversal inside a folder": (
        _add("arrays/../../x.npy", b"payload"),
        "arrays/../../x.npy",
        "member name is not allowed",
    ),
    "absolute name": (_add("/etc/passwd", b""), "/etc/passwd", "not allowed"),
    "unknown folder": (_add("code/run.py", b"print()"), "code/run.py", "not allowed"),
    "no manifest": (
        lambda members: rezip({k: v for k, v in members.items() if "/" in k}),
        "manifest.json",
        "no manifest.json",
    ),
    "checksum": (_flip_float64, "arrays/float64.npy", "SHA-256 mismatch"),
    "size": (
        _replace("arrays/int8.npy", npy_bytes(np.zeros(9, np.int8)), seal=False),
        "arrays/int8.npy",
        "manifest.json says",
    ),
    "object array": (
        _replace("arrays/int8.npy", npy_bytes(np.array([None, 1]), allow_pickle=True)),
        "arrays/int8.npy",
        "dtype '|O' is not allowed",
    ),
    "dtype differs from the manifest": (
        _replace("arrays/int8.npy", npy_bytes(np.zeros(3, np.uint8))),
        "arrays/int8.npy",
        "header says '|u1' (3,), manifest.json says '|i1' (3,)",
    ),
    "shape differs from the manifest": (
        _replace("arrays/int8.npy", npy_bytes(np.zeros((3, 1), np.int8))),
        "arrays/int8.npy",
        "(3, 1), manifest.json says '|i1' (3,)",
    ),
    "document kind differs from the manifest": (
        _swap_document_kind,
        "parts/flow_model.json",
        "field 'kind' is 'otherkind', manifest.json says 'flowchronicle'",
    ),
    "document version of another type": (
        _replace("parts/flow_model.json", b'{"kind":"flowchronicle","version":true}'),
        "parts/flow_model.json",
        "field 'version' is True, manifest.json says 1",
    ),
    "document not an object": (
        _replace("parts/flow_model.json", b"[1, 2]"),
        "parts/flow_model.json",
        "must be an object, not an array",
    ),
    "document not JSON": (
        _replace("parts/flow_model.json", b'{"kind": "flowchronicle",\n "v": }'),
        "parts/flow_model.json",
        "not JSON: Expecting value at line 2, column 7",
    ),
    "part without member": (
        _listed_part_without_member,
        "manifest.json",
        "field 'parts.ghost' has no member parts/ghost.json",
    ),
    "member without part": (
        _member_without_part,
        "parts/packet_model.json",
        "without an entry in the parts",
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_read_damaged_bundle_names_the_member_that_failed(case: str) -> None:
    edit, member, fragment = DAMAGE[case]
    error = refusal(edit(members_of(VALID)))
    assert error.member == member
    assert fragment in str(error)
    assert str(error).startswith(f"model.fosr: {member}: ")
    assert "\n" not in str(error)


def test_read_valid_resealed_bundle_is_accepted() -> None:
    # the control for the table above: resealing alone damages nothing
    bundle = unpack_bundle(reseal(members_of(VALID)))
    assert bundle.document("flow_model") == FLOW


@pytest.mark.parametrize("cut", [0, 1, 30, len(VALID) // 2, len(VALID) - 1])
def test_read_truncated_bundle_is_refused(cut: int) -> None:
    error = refusal(VALID[:cut])
    assert error.member is None
    assert "not a ZIP archive" in str(error) or "truncated" in str(error)


def test_read_never_unpickles_a_pickle_payload() -> None:
    payload = pickle_npy()
    # the control: numpy with pickles allowed does run the payload
    np.load(__import__("io").BytesIO(payload), allow_pickle=True)
    assert UNPICKLED == ["payload ran"]
    UNPICKLED.clear()

    members = members_of(VALID)
    members["arrays/int8.npy"] = payload
    error = refusal(reseal(members))
    assert "dtype '|O' is not allowed" in str(error)

    # the manifest may even announce the object dtype: refused earlier
    def announce(manifest: dict[str, Any]) -> None:
        manifest["members"]["arrays/int8.npy"]["dtype"] = "|O"
        manifest["members"]["arrays/int8.npy"]["shape"] = [1]

    error = refusal(reseal(members, announce))
    assert error.field == 'members["arrays/int8.npy"].dtype'
    assert UNPICKLED == []


@pytest.mark.parametrize(
    ("limits", "member", "fragment"),
    [
        (Limits(max_file_bytes=1000), None, "exceeds max_file_bytes=1000"),
        (Limits(max_members=5), None, "18 members exceed max_members=5"),
        (Limits(max_member_bytes=200), "manifest.json", "max_member_bytes=200"),
        (Limits(max_total_bytes=5000), None, "max_total_bytes=5000"),
        (Limits(max_json_bytes=500), "manifest.json", "max_json_bytes=500"),
        (Limits(max_json_depth=3), "manifest.json", "nested 4 deep"),
        (Limits(max_array_elements=7), "manifest.json", "max_array_elements=7"),
        (Limits(max_array_dims=2), "manifest.json", "at most 2 items, not 3"),
    ],
)
def test_read_bundle_beyond_a_limit_names_the_limit(
    limits: Limits, member: str | None, fragment: str
) -> None:
    error = refusal(VALID, limits=limits)
    assert error.member == member
    assert fragment in str(error)


def test_read_bundle_exactly_at_the_limits_is_accepted() -> None:
    members = members_of(VALID)
    limits = Limits(
        max_file_bytes=len(VALID),
        max_members=len(members),
        max_member_bytes=max(len(m) for m in members.values()),
        max_total_bytes=sum(len(m) for m in members.values()),
        max_json_depth=6,  # flow_model: {patterns: [{rows: [{cells: [...]}]}]}
        max_array_elements=12,
        max_array_dims=3,
    )
    assert isinstance(unpack_bundle(VALID, limits=limits), Bundle)


def test_bundle_array_checks_dtype_and_shape_for_the_caller() -> None:
    bundle = unpack_bundle(VALID, path="model.fosr")
    assert bundle.array("int32", dtype=np.int32, shape=(None, 4)).shape == (3, 4)
    with pytest.raises(BundleError, match="has dtype int32, expected float64"):
        bundle.array("int32", dtype=np.float64)
    with pytest.raises(BundleError, match=r"has shape \(3, 4\), expected \('any', 5\)"):
        bundle.array("int32", shape=(None, 5))
    with pytest.raises(BundleError, match="expected"):
        bundle.array("int32", shape=(3,))
    with pytest.raises(BundleError, match="arrays/absent.npy: no such array"):
        bundle.array("absent")
    with pytest.raises(BundleError, match="parts/absent.json: no such part"):
        bundle.document("absent")


def test_bundle_fields_name_bundle_member_and_path() -> None:
    bundle = unpack_bundle(VALID, path="model.fosr")
    cells = bundle.fields("flow_model")["patterns"][0]["rows"][0]["cells"]
    with pytest.raises(BundleError) as caught:
        cells.as_str()
    assert str(caught.value) == (
        "model.fosr: parts/flow_model.json: field 'patterns[0].rows[0].cells' "
        "must be a string, not an array"
    )
    assert caught.value.field == "patterns[0].rows[0].cells"
