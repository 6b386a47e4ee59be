"""Copy many byte segments between numpy buffers without a Python loop.

numpy moves one byte per element in fancy indexing or masked assignment,
about 1 to 2 ns a byte.  Here a buffer is seen as overlapping rows of
``w`` bytes (a strided view, row ``k`` starting at byte ``k``), so that
one fancy-index step moves a whole block of ``w`` contiguous bytes.  A
segment is covered by blocks at ``0, w, 2w, ...`` and a last one ending
exactly at its end, which overlaps the one before with the same bytes, so
the order of the writes does not matter.  Segments shorter than the
smallest block are copied byte by byte.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

__all__ = ["copy_segments", "windows"]

Array = npt.NDArray[Any]

# block widths, widest first: on our VMs a 256-byte row moves at about
# 0.2 ns a byte, while wider rows fall out of the caches and rows under
# 32 bytes take a slower path in numpy (about 3 ns a byte).  Chosen, not
# tuned.
BLOCKS = (256, 32)


def windows(buffer: Array, width: int) -> Array:
    """Return a writable view of ``buffer`` as overlapping rows of ``width``."""
    assert buffer.ndim == 1 and buffer.strides == (1,), "a contiguous byte buffer"
    return as_strided(buffer, (len(buffer) - width + 1, width), (1, 1))


def copy_segments(
    dst: Array, dst_at: Array, src: Array, src_at: Array, length: Array
) -> None:
    """Copy ``src[src_at[i]:][:length[i]]`` to ``dst[dst_at[i]:]`` for all i.

    ``dst`` and ``src`` are distinct 1-D uint8 buffers; the segments must
    lie inside them.
    """
    length = np.asarray(length, np.int64)
    upper = np.iinfo(np.int64).max
    for width in BLOCKS:
        pick = np.flatnonzero((length >= width) & (length < upper))
        upper = width
        if not len(pick):
            continue
        size = length[pick]
        count = -(-size // width)
        segment = np.repeat(pick, count)
        first = np.cumsum(count) - count
        step = np.arange(len(segment)) - np.repeat(first, count)
        at = np.minimum(step * width, length[segment] - width)
        windows(dst, width)[dst_at[segment] + at] = windows(src, width)[
            src_at[segment] + at
        ]

    # what is shorter than every block, byte by byte
    pick = np.flatnonzero(length < upper)
    size = length[pick]
    step = np.arange(int(size.sum())) - np.repeat(np.cumsum(size) - size, size)
    src_byte = np.repeat(src_at[pick], size) + step
    dst[np.repeat(dst_at[pick], size) + step] = src[src_byte]
