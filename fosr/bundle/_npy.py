"""Array members: the .npy format, version 1.0, numbers and booleans only.

An array member is what ``numpy.save`` writes for a C-ordered little-endian
array, so ``numpy.load(..., allow_pickle=False)`` opens one pulled out of a
bundle.  Reading does not use numpy.load: its header is a Python literal
parsed with ``ast.literal_eval`` and its object arrays are pickles.  Here the
header must match, byte for byte, the one form numpy writes::

    \\x93NUMPY \\x01 \\x00 <u16 header length>
    {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }<spaces>\\n

(magic, version 1.0, then the header padded so the data starts at a
multiple of 64 bytes), and ``descr`` must be in the allow-list below: bool,
signed and unsigned integers of 8 to 64 bits, and floats of 16 to 64 bits.
No object, string, structured, datetime or complex arrays; no Fortran order;
big-endian arrays are converted on writing.  The data that follows must be
exactly the size the shape and dtype give, and a bool array holds only the
bytes 0 and 1.
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.bundle._limits import Limits
from fosr.errors import BundleError

Array = npt.NDArray[Any]

# descr as written in the header -> dtype; '|' for one-byte types, '<' for
# the rest, since the writer converts everything to little-endian
DTYPES: dict[str, np.dtype[Any]] = {
    descr: np.dtype(descr)
    for descr in (
        "|b1",
        "|i1",
        "|u1",
        "<i2",
        "<u2",
        "<i4",
        "<u4",
        "<i8",
        "<u8",
        "<f2",
        "<f4",
        "<f8",
    )
}

_MAGIC = b"\x93NUMPY\x01\x00"
_PREFIX_BYTES = len(_MAGIC) + 2  # magic, version, u16 header length
_ALIGN_BYTES = 64  # numpy's ARRAY_ALIGN: the data starts on this boundary
_MAX_HEADER_BYTES = 4096  # 32 dimensions of 19 digits fit with room to spare
_DIM = r"(?:0|[1-9][0-9]{0,18})"
_HEADER = re.compile(
    rb"\{'descr': '(?P<descr>[A-Za-z0-9<>|=\[\]]{1,40})', "
    rb"'fortran_order': (?P<fortran>True|False), "
    rb"'shape': \((?P<shape>|" + _DIM.encode() + rb",|"
    rb"" + _DIM.encode() + rb"(?:, " + _DIM.encode() + rb")+)\), \} *\n"
)


def descr_of(dtype: np.dtype[Any]) -> str:
    """Return the header ``descr`` for ``dtype`` stored little-endian.

    Raises ValueError if the dtype is not in the allow-list.
    """
    if dtype.kind in "biuf":
        descr = dtype.newbyteorder("<").str
        if descr in DTYPES:
            return descr
    raise ValueError(
        f"dtype {dtype} cannot be stored: only bool, int8 to int64, "
        "uint8 to uint64 and float16 to float64 arrays can"
    )


def pack_array(array: Array) -> tuple[bytes, memoryview, str]:
    """Return the .npy header, the data and the descr of ``array``.

    The data is C-ordered and little-endian; it is a view of ``array`` when
    that already is, else of a converted copy.  Raises ValueError for a
    dtype outside the allow-list.
    """
    descr = descr_of(array.dtype)
    stored = np.asarray(array, dtype=DTYPES[descr], order="C")
    if stored.dtype.kind == "b":
        # a bool array made by a view may hold bytes other than 0 and 1,
        # which the reader refuses: store what the values mean
        stored = stored.view(np.uint8).astype(bool)
    dims = "".join(f"{n}, " for n in stored.shape)
    shape = f"({dims[:-2]})" if stored.ndim != 1 else f"({dims[:-1]})"
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    padding = -(_PREFIX_BYTES + len(text) + 1) % _ALIGN_BYTES
    header = (text + " " * padding + "\n").encode("ascii")
    prefix = _MAGIC + struct.pack("<H", len(header))
    return prefix + header, stored.reshape(-1).view(np.uint8).data, descr


def unpack_array(
    data: bytes, limits: Limits, *, path: str | None, member: str
) -> Array:
    """Decode one .npy member into a read-only array.

    Raises BundleError if the header is not numpy's version 1.0 form, the
    dtype is not in the allow-list, the array is Fortran-ordered, the shape
    passes ``limits.max_array_dims`` or ``limits.max_array_elements``, the
    data is not exactly the size the header gives, or a bool array holds a
    byte other than 0 or 1.
    """

    def damaged(reason: str) -> BundleError:
        return BundleError(reason, path=path, member=member)

    # header
    if not data.startswith(_MAGIC[:6]):
        raise damaged("not a .npy array: no \\x93NUMPY magic")
    if len(data) < _PREFIX_BYTES:
        raise damaged(f".npy array cut short at {len(data)} bytes")
    if not data.startswith(_MAGIC):
        raise damaged(f"unsupported .npy version {data[6]}.{data[7]}")
    (header_bytes,) = struct.unpack_from("<H", data, len(_MAGIC))
    start = _PREFIX_BYTES + header_bytes
    if header_bytes > _MAX_HEADER_BYTES:
        raise damaged(f".npy header of {header_bytes} bytes is too long")
    if start > len(data):
        raise damaged(f".npy header of {header_bytes} bytes is cut short")
    if start % _ALIGN_BYTES:
        raise damaged(f".npy data starts at {start}, not a multiple of 64")
    match = _HEADER.fullmatch(data, _PREFIX_BYTES, start)
    if match is None:
        raise damaged(".npy header is not in the form numpy writes")

    # dtype and shape
    descr = match["descr"].decode("ascii")
    if descr not in DTYPES:
        raise damaged(
            f".npy dtype {descr!r} is not allowed (only bool, int, uint and float)"
        )
    if match["fortran"] == b"True":
        raise damaged(".npy array in Fortran order is not supported")
    shape = parse_shape(match["shape"].decode("ascii"))
    problem = shape_problem(shape, limits)
    if problem is not None:
        raise damaged(problem)

    # data
    dtype = DTYPES[descr]
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - start != expected:
        raise damaged(
            f".npy data is {len(data) - start} bytes, shape {shape} of "
            f"{descr!r} needs {expected}"
        )
    array: Array = np.frombuffer(data, dtype=dtype, offset=start).reshape(shape)
    if dtype.kind == "b" and array.size:
        if int(np.frombuffer(data, np.uint8, offset=start).max()) > 1:
            raise damaged(".npy bool array holds bytes other than 0 and 1")
    return array


def parse_shape(text: str) -> tuple[int, ...]:
    """Return the shape a header's ``(3, 4)`` contents stand for."""
    return tuple(int(part) for part in text.split(",") if part.strip())


def shape_problem(shape: tuple[int, ...], limits: Limits) -> str | None:
    """Return why ``shape`` exceeds the array limits, or None if it does not."""
    if len(shape) > limits.max_array_dims:
        return (
            f"array of {len(shape)} dimensions exceeds "
            f"max_array_dims={limits.max_array_dims}"
        )
    # a huge dimension beside a zero one has no elements, but numpy still
    # refuses the shape, so every dimension is bounded on its own too
    elements = math.prod(shape)
    if elements > limits.max_array_elements or any(
        n > limits.max_array_elements for n in shape
    ):
        return (
            f"array of shape {shape} exceeds "
            f"max_array_elements={limits.max_array_elements}"
        )
    return None
