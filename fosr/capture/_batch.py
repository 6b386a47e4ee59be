"""The state of one batch decode: where each frame's headers are, or why not."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.capture._formats import Frames
from fosr.capture._headers import Skip

Array = npt.NDArray[Any]
# a failure mask over some rows, the reason, and its detail (per row or one)
Check = tuple[Array, Skip, Array | int]


class Batch:
    """The frames being decoded and what the stages found out about them."""

    def __init__(self, buf: Array, frames: Frames) -> None:
        n = len(frames)
        self.buf = buf
        self.start = frames.offset
        self.end = frames.offset + frames.caplen
        self.wire_end = frames.offset + frames.wire_len
        # why a frame was skipped (Skip.NONE while alive), and a detail
        self.reason = np.zeros(n, dtype=np.uint8)
        self.value = np.zeros(n, dtype=np.int64)
        # what the stages found
        self.l3 = np.zeros(n, dtype=np.int64)  # offset of the network header
        self.ethertype = np.zeros(n, dtype=np.int64)
        self.vlan = np.full(n, -1, dtype=np.int32)
        self.version = np.zeros(n, dtype=np.uint8)
        self.proto = np.zeros(n, dtype=np.uint8)
        self.ip_hdr_len = np.zeros(n, dtype=np.int64)
        self.ip_len = np.zeros(n, dtype=np.int64)
        self.l4_hdr_len = np.zeros(n, dtype=np.int64)

    def check(self, rows: Array, checks: Sequence[Check]) -> Array:
        """Skip the rows that fail a check; return the mask of those that pass.

        Checks run in order and a row gets the reason of the first it fails,
        so a length check placed first shields the checks after it from
        values read past the frame.
        """
        reason = np.zeros(len(rows), dtype=np.uint8)
        value = np.zeros(len(rows), dtype=np.int64)
        for fails, skip, detail in checks:
            new = fails & (reason == 0)
            reason[new] = skip
            value[new] = detail[new] if isinstance(detail, np.ndarray) else detail
        failed = reason != 0
        self.reason[rows[failed]] = reason[failed]
        self.value[rows[failed]] = value[failed]
        passed: Array = ~failed
        return passed

    def caplen(self, rows: Array) -> Array:
        """Return the captured length of ``rows``."""
        return self.end[rows] - self.start[rows]
