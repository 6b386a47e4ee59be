"""Parse the TCP options of many segments at once.

How this works.  The option areas (at most 40 bytes each, RFC 9293 section
3.1) are copied into one matrix, and a cursor per segment walks its options
in lock step with the others: each round reads one option of every segment
still walking.  A round costs a few numpy operations, and segments rarely
carry more than ten options, so the walk ends after a handful of rounds.

An option is kind, length, value; End of Option List (0) and No-Operation
(1) are a lone kind byte.  The walk records every kind in order and stops
after End of Option List, at the end of the area, or at a malformed option:
a length byte missing, below 2, or running past the area.  The malformed
option's kind is still recorded, as p0f does, because broken option lists
fingerprint a stack as well as good ones.  Values are taken only from
options of their proper length; when an option repeats, the last one wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.capture._headers import gather

Array = npt.NDArray[Any]

MAX_OPTION_BYTES = 40  # data offset 15 words, minus the 20-byte fixed header
# one byte more than the area, so reading the length byte of an option that
# starts at its last byte stays inside the matrix
_AREA = np.dtype((np.uint8, MAX_OPTION_BYTES + 8))

KIND_EOL = 0
KIND_NOP = 1
KIND_MSS = 2  # RFC 9293, 4 bytes
KIND_WSCALE = 3  # RFC 7323, 3 bytes
KIND_SACK_PERMITTED = 4  # RFC 2018, 2 bytes
KIND_TIMESTAMPS = 8  # RFC 7323, 10 bytes
# RFC 7323 section 2.3: a receiver uses 14 for any larger shift count
MAX_WSCALE = 14


@dataclass(eq=False)
class TcpOptions:
    """Option values of a batch of segments, one array element per segment."""

    mss: Array  # uint16, 0 when absent
    wscale: Array  # int8, -1 when absent, at most MAX_WSCALE
    sack_perm: Array  # bool
    ts_val: Array  # uint32, 0 when absent
    ts_ecr: Array  # uint32, 0 when absent
    has_ts: Array  # bool
    kinds: Array  # object array of bytes: the option kinds in order


def parse_tcp_options(buf: Array, start: Array, length: Array) -> TcpOptions:
    """Parse the options at ``start`` (offsets into ``buf``), ``length`` bytes each.

    Every ``length`` is at most 40 and every area lies inside its frame's
    captured bytes.
    """
    m = len(start)
    area = gather(buf, start, _AREA)
    options = TcpOptions(
        mss=np.zeros(m, dtype=np.uint16),
        wscale=np.full(m, -1, dtype=np.int8),
        sack_perm=np.zeros(m, dtype=bool),
        ts_val=np.zeros(m, dtype=np.uint32),
        ts_ecr=np.zeros(m, dtype=np.uint32),
        has_ts=np.zeros(m, dtype=bool),
        kinds=np.full(m, b"", dtype=object),
    )

    # fast path: NOP, NOP, Timestamps is the layout RFC 7323 appendix A
    # recommends and the one most segments of a connection carry; Linux
    # takes the same shortcut (tcp_parse_aligned_timestamp)
    head = np.ascontiguousarray(area[:, :4]).view(">u4").ravel()
    is_aligned_ts = (length == 12) & (head == 0x0101_080A)
    aligned = np.flatnonzero(is_aligned_ts)
    values = np.ascontiguousarray(area[aligned, 4:12]).view(">u4")
    options.ts_val[aligned] = values[:, 0]
    options.ts_ecr[aligned] = values[:, 1]
    options.has_ts[aligned] = True
    options.kinds[aligned] = b"\x01\x01\x08"

    walked = np.flatnonzero((length > 0) & ~is_aligned_ts)
    options.kinds[walked] = _walk(options, area, length, walked)
    return options


def _walk(options: TcpOptions, area: Array, length: Array, rows: Array) -> Array:
    """Walk the option areas of ``rows``; return their kinds as bytes."""
    # column 0 counts the kinds recorded in columns 1..40
    kinds = np.zeros((len(area), MAX_OPTION_BYTES + 1), dtype=np.uint8)
    cursor = np.zeros(len(area), dtype=np.int64)
    walked = rows

    # each round reads one option of every segment still walking; every
    # option takes at least one byte, so 40 rounds always suffice
    for _ in range(MAX_OPTION_BYTES):
        if not rows.size:
            break
        at, stop = cursor[rows], length[rows]
        kind = area[rows, at]
        count = kinds[rows, 0] + 1
        kinds[rows, count] = kind
        kinds[rows, 0] = count

        size = np.where(kind <= KIND_NOP, 1, area[rows, at + 1]).astype(np.int64)
        is_bad = (kind > KIND_NOP) & ((at + 2 > stop) | (size < 2) | (at + size > stop))
        good = ~is_bad
        _take_values(options, area, rows[good], at[good], kind[good], size[good])

        cursor[rows] = at + size
        goes_on = good & (kind != KIND_EOL) & (at + size < stop)
        rows = rows[goes_on]
    return _signatures(kinds[walked])


def _take_values(
    options: TcpOptions, area: Array, rows: Array, at: Array, kind: Array, size: Array
) -> None:
    """Store the values of the well-formed options of kind ``kind`` at ``at``."""

    def be(index: Array, offset: int, width: int) -> Array:
        value = np.zeros(len(index), dtype=np.uint32)
        for i in range(width):
            value = (value << 8) | area[rows[index], at[index] + offset + i]
        return value

    is_mss = np.flatnonzero((kind == KIND_MSS) & (size == 4))
    options.mss[rows[is_mss]] = be(is_mss, 2, 2)
    is_ws = np.flatnonzero((kind == KIND_WSCALE) & (size == 3))
    options.wscale[rows[is_ws]] = np.minimum(be(is_ws, 2, 1), MAX_WSCALE)
    is_sack = (kind == KIND_SACK_PERMITTED) & (size == 2)
    options.sack_perm[rows[is_sack]] = True
    is_ts = np.flatnonzero((kind == KIND_TIMESTAMPS) & (size == 10))
    options.ts_val[rows[is_ts]] = be(is_ts, 2, 4)
    options.ts_ecr[rows[is_ts]] = be(is_ts, 6, 4)
    options.has_ts[rows[is_ts]] = True


def _signatures(kinds: Array) -> Array:
    """Turn rows of (count, kind, kind, ...) into bytes, sharing equal ones.

    Segments of one stack share a handful of option layouts, so the bytes
    objects are made once per distinct row and handed out by index.  Rows of
    up to 7 kinds (all but a few SYNs) are compared as one uint64, which
    numpy deduplicates several times faster than byte strings.
    """
    signatures = np.empty(len(kinds), dtype=object)
    is_short = kinds[:, 0] < 8
    for rows, key_type in (
        (np.flatnonzero(is_short), np.dtype(np.uint64)),
        (np.flatnonzero(~is_short), np.dtype((np.void, MAX_OPTION_BYTES + 1))),
    ):
        if not rows.size:
            continue
        keys = np.ascontiguousarray(kinds[rows, : key_type.itemsize])
        unique, inverse = np.unique(keys.view(key_type).ravel(), return_inverse=True)
        table = np.empty(len(unique), dtype=object)
        for i, row in enumerate(unique.view(np.uint8).reshape(len(unique), -1)):
            table[i] = row[1 : 1 + row[0]].tobytes()
        signatures[rows] = table[inverse.ravel()]
    return signatures
