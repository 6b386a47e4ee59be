"""Writing bundles: round trips, atomic replacement, and what the writer refuses."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bundle_builders import ARRAYS, CREATED, DOCUMENTS, PROVENANCE, VALID, valid_bundle

from fosr.bundle import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Limits,
    Part,
    Provenance,
    read_bundle,
    unpack_bundle,
    write_bundle,
)


def write_sample(path: Path, **changes: Any) -> None:
    arguments: dict[str, Any] = {
        "documents": DOCUMENTS,
        "arrays": ARRAYS,
        "provenance": PROVENANCE,
    }
    arguments.update(changes)
    write_bundle(path, **arguments)


def test_write_then_read_gives_back_documents_arrays_and_provenance(
    tmp_path: Path,
) -> None:
    path = tmp_path / "model.fosr"
    write_sample(path)
    bundle = read_bundle(path)

    assert bundle.path == str(path)
    assert bundle.parts == {
        "flow_model": Part("flowchronicle", 1),
        "packet_model": Part("tadam", 2),
    }
    for name, document in DOCUMENTS.items():
        assert bundle.document(name) == document
    assert bundle.array_names == tuple(sorted(ARRAYS))
    assert bundle.provenance == PROVENANCE
    assert bundle.manifest["format"] == FORMAT_NAME
    assert bundle.format_version == FORMAT_VERSION
    assert bundle.size_bytes == path.stat().st_size


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_write_then_read_keeps_array_dtype_shape_and_values(name: str) -> None:
    array = unpack_bundle(VALID).array(name)
    original = ARRAYS[name]
    assert array.dtype == original.dtype
    assert array.shape == original.shape
    assert np.array_equal(array, original)
    assert not array.flags.writeable
    with pytest.raises(ValueError):
        array[...] = 0


@pytest.mark.parametrize(
    "array",
    [
        np.arange(6, dtype=">i4").reshape(2, 3),  # big-endian: stored as '<i4'
        np.asfortranarray(np.arange(6.0).reshape(2, 3)),  # stored in C order
        np.arange(20)[::3],  # a strided view
        np.array([1, 2, 0], dtype=np.uint8).view(bool),  # a view: 2 is True
    ],
    ids=["big-endian", "fortran", "strided", "bool-view"],
)
def test_write_converts_arrays_to_the_stored_form(array: np.ndarray[Any, Any]) -> None:
    data = valid_bundle(arrays={"a": array})
    stored = unpack_bundle(data).array("a")
    assert np.array_equal(stored, array)
    assert stored.dtype.newbyteorder("=") == array.dtype.newbyteorder("=")
    assert stored.flags.c_contiguous


def test_pack_is_reproducible_and_insensitive_to_dict_order() -> None:
    reordered = {
        name: dict(reversed(list(document.items())))
        for name, document in reversed(list(DOCUMENTS.items()))
    }
    assert valid_bundle() == VALID
    assert valid_bundle(documents=reordered) == VALID


def test_sha256_is_of_the_whole_file(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "model.fosr"
    write_sample(path)
    assert read_bundle(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_write_failing_midway_leaves_the_earlier_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.fosr"
    write_sample(path)
    before = path.read_bytes()

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        write_sample(path, documents={})

    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.fosr"]  # no temporary file left


def test_write_interrupted_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(source: str, target: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_sample(tmp_path / "model.fosr")
    assert os.listdir(tmp_path) == []


def test_write_keeps_permissions_of_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "model.fosr"
    write_sample(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o640)
    write_sample(path, documents={})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_write_over_a_file_being_read_keeps_the_reader_consistent(
    tmp_path: Path,
) -> None:
    # a reader holding the old file keeps reading the old bytes: the new
    # bundle arrives by rename, never by rewriting in place
    path = tmp_path / "model.fosr"
    write_sample(path)
    with open(path, "rb") as old:
        write_sample(path, documents={})
        assert old.read() == VALID
    assert read_bundle(path).parts == {}


def test_write_into_a_missing_folder_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_sample(tmp_path / "absent" / "model.fosr")


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"documents": {"../x": DOCUMENTS["flow_model"]}}, ValueError, "part name"),
        ({"documents": {"a/b": DOCUMENTS["flow_model"]}}, ValueError, "part name"),
        ({"documents": {"": DOCUMENTS["flow_model"]}}, ValueError, "part name"),
        ({"arrays": {"x" * 101: np.zeros(1)}}, ValueError, "array name"),
        ({"arrays": {"a..b": np.zeros(1)}}, ValueError, "array name"),
        ({"documents": {"p": [1, 2]}}, TypeError, "must be a mapping"),
        ({"documents": {"p": {"version": 1}}}, ValueError, "'kind'"),
        ({"documents": {"p": {"kind": "a b", "version": 1}}}, ValueError, "'kind'"),
        ({"documents": {"p": {"kind": "k", "version": 0}}}, ValueError, "'version'"),
        ({"documents": {"p": {"kind": "k", "version": True}}}, ValueError, "version"),
        (
            {"documents": {"p": {"kind": "k", "version": 1, "x": [float("nan")]}}},
            ValueError,
            r"field 'x\[0\]' is nan",
        ),
        (
            {"documents": {"p": {"kind": "k", "version": 1, "x": {1: 2}}}},
            TypeError,
            "key that is not a str",
        ),
        (
            {"documents": {"p": {"kind": "k", "version": 1, "x": np.int64(3)}}},
            TypeError,
            "field 'x' is a Python int64",
        ),
        (
            {"documents": {"p": {"kind": "k", "version": 1, "x": {1, 2}}}},
            TypeError,
            "set",
        ),
        ({"arrays": {"a": np.array([object()])}}, ValueError, "dtype object"),
        ({"arrays": {"a": np.array(["text"])}}, ValueError, "cannot be stored"),
        ({"arrays": {"a": np.zeros(2, dtype=complex)}}, ValueError, "complex"),
        ({"arrays": {"a": np.zeros(2, dtype="M8[s]")}}, ValueError, "datetime"),
        ({"arrays": {"a": [1, 2]}}, TypeError, "numpy array"),
    ],
)
def test_write_refuses_what_the_reader_would_refuse(
    tmp_path: Path, changes: dict[str, Any], error: type[Exception], match: str
) -> None:
    path = tmp_path / "model.fosr"
    with pytest.raises(error, match=match):
        write_sample(path, **changes)
    assert os.listdir(tmp_path) == []  # refused before touching the disk


@pytest.mark.parametrize(
    ("limits", "match"),
    [
        (Limits(max_members=3), "max_members=3"),
        (Limits(max_member_bytes=150), "max_member_bytes=150"),
        (Limits(max_total_bytes=2000), "max_total_bytes=2000"),
        (Limits(max_json_bytes=100), "max_json_bytes=100"),
        (Limits(max_json_depth=3), "max_json_depth=3"),
        (Limits(max_array_elements=7), "max_array_elements=7"),
        (Limits(max_array_dims=2), "max_array_dims=2"),
        (Limits(max_file_bytes=1000), "max_file_bytes=1000"),
    ],
)
def test_write_refuses_a_bundle_beyond_its_limits(
    tmp_path: Path, limits: Limits, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        write_sample(tmp_path / "model.fosr", limits=limits)
    assert os.listdir(tmp_path) == []


def test_provenance_needs_an_aware_creation_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Provenance(created=CREATED.replace(tzinfo=None))
