"""Array members: numpy's .npy 1.0 bytes, numbers and booleans only."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from bundle_builders import ARRAYS, UNPICKLED, npy_bytes, pickle_npy

from fosr.bundle import Limits
from fosr.bundle._npy import pack_array, unpack_array
from fosr.errors import BundleError

LIMITS = Limits()
SHAPES = [(), (0,), (1,), (7,), (2, 0), (3, 4), (1, 2, 3, 4, 5)]


def unpack(data: bytes, limits: Limits = LIMITS) -> np.ndarray[Any, Any]:
    return unpack_array(data, limits, path="model.fosr", member="arrays/a.npy")


def header_with(text: bytes) -> bytes:
    """Return a .npy 1.0 prefix and a padded header holding ``text``."""
    padding = -(10 + len(text) + 1) % 64
    header = text + b" " * padding + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_pack_array_writes_what_numpy_save_writes(name: str) -> None:
    header, data, _ = pack_array(ARRAYS[name])
    assert header + bytes(data) == npy_bytes(ARRAYS[name])


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["?", "i1", "u2", "i4", "u8", "f2", "f4", "f8"])
def test_unpack_array_reads_numpy_save_of_every_shape(
    dtype: str, shape: tuple[int, ...]
) -> None:
    array = np.arange(int(np.prod(shape))).astype(dtype).reshape(shape)
    header, data, _ = pack_array(array)
    assert header + bytes(data) == npy_bytes(array)
    unpacked = unpack(npy_bytes(array))
    assert unpacked.dtype == array.dtype
    assert unpacked.shape == shape
    assert np.array_equal(unpacked, array)
    assert not unpacked.flags.writeable


def test_unpack_array_never_unpickles() -> None:
    with pytest.raises(BundleError, match="dtype '|O' is not allowed"):
        unpack(pickle_npy())
    assert UNPICKLED == []


VALID_F8 = npy_bytes(np.zeros(2))
BOOL_HOLDING_TWO = (
    header_with(b"{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }")
    + b"\0\2\0"
)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "no \\x93NUMPY magic"),
        (b"PK\x03\x04" + VALID_F8, "no \\x93NUMPY magic"),
        (b"\x93NUMPY\x02\x00" + VALID_F8[8:], "unsupported .npy version 2.0"),
        (b"\x93NUMPY\x03\x00" + VALID_F8[8:], "unsupported .npy version 3.0"),
        (VALID_F8[:9], "cut short at 9 bytes"),
        (VALID_F8[:8] + b"\xff\xff" + VALID_F8[10:], "header of 65535 bytes is too"),
        (VALID_F8[:8] + b"\x00\x01" + VALID_F8[10:40], "is cut short"),
        (VALID_F8[:8] + b"\x75\x00" + VALID_F8[10:], "not a multiple of 64"),
        (header_with(b"{'descr': '<f8', 'shape': (2,), }"), "not in the form"),
        (header_with(b"{'descr':'<f8','fortran_order':False,'shape':(2,)}"), "form"),
        (
            header_with(b"{'descr': '<f8', 'fortran_order': False, 'shape': (02,), }"),
            "form",
        ),
        (header_with(b"{'descr': '<f8', 'fortran_order': 0, 'shape': (2,), }"), "form"),
        (
            header_with(b"{'descr': '<f8', 'fortran_order': False, 'shape': (2), }"),
            "form",
        ),
        (npy_bytes(np.zeros(2, dtype=[("a", "<i4")])), "not in the form"),
        (npy_bytes(np.array(["ab"])), "dtype '<U2' is not allowed"),
        (npy_bytes(np.array([b"ab"])), "dtype '|S2' is not allowed"),
        (npy_bytes(np.zeros(2, complex)), "dtype '<c16' is not allowed"),
        (npy_bytes(np.zeros(2, "M8[s]")), "dtype '<M8[s]' is not allowed"),
        (npy_bytes(np.zeros(2, ">f8")), "dtype '>f8' is not allowed"),
        (npy_bytes(np.zeros(2, np.longdouble)), "is not allowed"),
        (npy_bytes(np.zeros((2, 2), order="F")), "Fortran order"),
        (VALID_F8[:-1], "data is 15 bytes, shape (2,) of '<f8' needs 16"),
        (VALID_F8 + b"\0", "data is 17 bytes"),
        (BOOL_HOLDING_TWO, "bool array holds bytes other than 0 and 1"),
    ],
)
def test_unpack_array_refuses_with_the_reason(data: bytes, fragment: str) -> None:
    with pytest.raises(BundleError) as caught:
        unpack(data)
    assert fragment in str(caught.value)
    assert caught.value.member == "arrays/a.npy"


@pytest.mark.parametrize(
    ("array", "limits", "fragment"),
    [
        (np.zeros((1,) * 5), Limits(max_array_dims=4), "max_array_dims=4"),
        (np.zeros(10), Limits(max_array_elements=9), "max_array_elements=9"),
        # no elements, but a dimension numpy itself could not make
        (np.zeros((0, 10)), Limits(max_array_elements=9), "max_array_elements=9"),
    ],
)
def test_unpack_array_refuses_shapes_beyond_the_limits(
    array: np.ndarray[Any, Any], limits: Limits, fragment: str
) -> None:
    with pytest.raises(BundleError, match=fragment):
        unpack(npy_bytes(array), limits)


def test_unpack_array_refuses_a_dimension_beyond_numpy() -> None:
    data = header_with(
        b"{'descr': '<f8', 'fortran_order': False, 'shape': (0, 9999999999999999999), }"
    )
    with pytest.raises(BundleError, match="max_array_elements"):
        unpack(data)
