"""RFC 1071 Internet checksums over numpy rows and buffer segments.

Sums are taken in 16-bit words in int64 and folded at the end, so any
number of words up to 2**47 adds up without overflow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


def checksum_rows(rows: Array) -> Array:
    """Return the RFC 1071 checksum of each row of an even-width byte array."""
    total = rows[:, 0::2].astype(np.int64).sum(1) * 256
    total += rows[:, 1::2].astype(np.int64).sum(1)
    result: Array = ~fold(total) & 0xFFFF
    return result


def fold(total: Array) -> Array:
    """Fold sums of up to 48 bits into 16 bits with end-around carry."""
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    result: Array = (total & 0xFFFF) + (total >> 16)
    return result


def sum_segments(data: Array, lo: Array, hi: Array) -> Array:
    """Return the folded RFC 1071 sum of ``data[lo:hi]`` per segment.

    The buffer is summed as native little-endian 16-bit words, which gives
    the byte-swapped sum (RFC 1071 section 2(B)); a segment at an odd
    offset is swapped once more by the word alignment, so only segments at
    even offsets are swapped back.  ``data`` needs one spare byte past the
    last ``hi``.
    """
    words = data[: len(data) // 2 * 2].view("<u2")
    first, stop = lo // 2, (hi + 1) // 2
    total = _segment_sums(words, first, stop)

    # drop the byte before an odd start and the byte after an odd end
    odd_lo, odd_hi = lo % 2 == 1, hi % 2 == 1
    total -= np.where(odd_lo, data[lo - odd_lo], 0)
    total -= np.where(odd_hi, data[hi].astype(np.int64) << 8, 0)
    folded = fold(total)
    return np.where(odd_lo, folded, (folded >> 8) | ((folded & 0xFF) << 8))


def _segment_sums(values: Array, lo: Array, hi: Array) -> Array:
    """Return ``values[lo:hi].sum()`` per segment, 0 for empty ones."""
    base = int(lo.min())
    index = np.empty(2 * len(lo), np.int64)
    index[0::2] = lo - base
    index[1::2] = hi - base
    window = values[base : int(hi.max()) + 1]
    if len(window) < int(hi.max()) + 1 - base:  # a segment ends the buffer
        window = np.append(window, np.zeros(1, values.dtype))
    # uint32 is ten times faster than int64 here and cannot overflow inside
    # a segment (at most 32768 words of 0xFFFF); the sums between segments
    # may wrap, and are dropped
    sums = np.add.reduceat(window, index, dtype=np.uint32)[0::2]
    return np.where(hi > lo, sums.astype(np.int64), 0)
