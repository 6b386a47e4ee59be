"""Property tests: whatever the bytes, reading a bundle only raises BundleError.

Random bytes and flipped bytes mostly stop at the ZIP walk or a CRC-32, so
the deeper checks are fuzzed through resealed archives: members and the
manifest are mutated, then the checksums are made right again.
bench/fuzz_bundle.py runs the long version of this.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
from bundle_builders import VALID, members_of, reseal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fosr.bundle import Bundle, unpack_bundle
from fosr.errors import BundleError

MEMBERS = members_of(VALID)
NAMES = sorted(MEMBERS)

# a read of a few kilobytes takes milliseconds; a second means a hang
FUZZ = settings(
    max_examples=100,
    deadline=1000,
    suppress_health_check=[HealthCheck.too_slow],
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
FLIPS = st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=8
)


def read_or_none(data: bytes) -> Bundle | None:
    """Read ``data``; return None when it raised a well-formed BundleError."""
    try:
        bundle = unpack_bundle(data, path="model.fosr")
    except BundleError as error:
        assert str(error).startswith("model.fosr: ")
        assert "\n" not in str(error)
        return None
    for name in bundle.array_names:
        assert not bundle.array(name).flags.writeable
    for name in bundle.parts:
        assert isinstance(bundle.document(name), dict)
    return bundle


def flipped(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    damaged = bytearray(data)
    for position, mask in flips:
        if damaged:
            damaged[position % len(damaged)] ^= mask
    return bytes(damaged)


@FUZZ
@given(st.binary(max_size=4096))
def test_read_random_bytes_raises_only_bundle_errors(data: bytes) -> None:
    read_or_none(data)


@FUZZ
@given(st.binary(max_size=512))
def test_read_random_bytes_after_a_zip_header_raises_only_bundle_errors(
    data: bytes,
) -> None:
    read_or_none(VALID[:30] + data + VALID[-22:])


@FUZZ
@given(FLIPS, st.integers(0, len(VALID)))
def test_read_flipped_and_cut_bundle_raises_only_bundle_errors(
    flips: list[tuple[int, int]], cut: int
) -> None:
    read_or_none(flipped(VALID, flips))
    read_or_none(flipped(VALID, flips)[:cut])


@FUZZ
@given(st.sampled_from(NAMES), FLIPS, st.integers(0, 4096), st.binary(max_size=16))
def test_read_resealed_damaged_member_raises_only_bundle_errors(
    name: str, flips: list[tuple[int, int]], cut: int, tail: bytes
) -> None:
    members = dict(MEMBERS)
    members[name] = flipped(members[name], flips)[:cut] + tail
    try:
        data = reseal(members)
    except ValueError:  # the manifest itself is no JSON any more
        return
    read_or_none(data)


@FUZZ
@given(st.data())
def test_read_resealed_manifest_with_a_random_value_raises_only_bundle_errors(
    data: st.DataObject,
) -> None:
    def edit(manifest: dict[str, Any]) -> None:
        # walk down to a random field and replace it with random JSON
        target: Any = manifest
        while True:
            keys = list(target) if isinstance(target, dict) else range(len(target))
            key = data.draw(st.sampled_from(list(keys)))
            child = target[key]
            if (
                not child
                or not isinstance(child, dict | list)
                or data.draw(st.booleans())
            ):
                target[key] = data.draw(JSON_VALUES)
                return
            target = child

    read_or_none(reseal(dict(MEMBERS), edit))


@FUZZ
@given(JSON_VALUES, st.sampled_from(["parts/flow_model.json", "arrays/int32.npy"]))
def test_read_resealed_random_document_raises_only_bundle_errors(
    value: Any, name: str
) -> None:
    members = dict(MEMBERS)
    members[name] = json.dumps(value).encode()
    read_or_none(reseal(members))


@FUZZ
@given(
    st.sampled_from(["|b1", "<i4", "<f8", "|O", "<U3", ">f8", "|V4"]),
    st.lists(st.integers(-1, 5), max_size=4),
    st.booleans(),
    st.binary(max_size=64),
)
def test_read_resealed_random_npy_header_raises_only_bundle_errors(
    descr: str, shape: list[int], fortran: bool, body: bytes
) -> None:
    dims = "".join(f"{n}, " for n in shape)
    text = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': ({dims}), }}"
    header = (text + " " * (-(len(text) + 11) % 64) + "\n").encode()
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + body
    members = dict(MEMBERS)
    members["arrays/int32.npy"] = npy

    def announce(manifest: dict[str, Any]) -> None:
        manifest["members"]["arrays/int32.npy"]["dtype"] = descr
        manifest["members"]["arrays/int32.npy"]["shape"] = shape

    bundle = read_or_none(reseal(members, announce))
    if bundle is not None:
        array = bundle.array("int32")
        assert array.dtype.kind in "biuf"
        assert list(array.shape) == shape
        assert np.asarray(array).nbytes == len(body)


@FUZZ
@given(st.text(max_size=40), st.binary(max_size=32), st.booleans())
def test_read_resealed_random_member_name_raises_only_bundle_errors(
    name: str, content: bytes, is_listed: bool
) -> None:
    def announce(manifest: dict[str, Any]) -> None:
        if is_listed:
            manifest["members"][name] = {"bytes": len(content), "sha256": "0" * 64}

    members = dict(MEMBERS)
    members[name] = content
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name
        data = reseal(members, announce)
    read_or_none(data)
