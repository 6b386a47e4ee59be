"""NTPv4 client requests and server replies (RFC 5905), 48 bytes each.

The client sends mode 3 with only its transmit timestamp (the packet's
capture time); the server answers mode 4, stratum 1 with reference "GPS",
origin = the client's transmit timestamp, receive and transmit = its own
capture time.  NTP packets keep 48 bytes whatever size was wished.
"""

from __future__ import annotations

import struct

from fosr.synth.payloads._dialogue import Dialogue, FlowContext

__all__ = ["NtpDialogue", "ntp_timestamp"]

NTP_EPOCH_OFFSET_S = 2_208_988_800  # 1900-01-01 to 1970-01-01
LI_VN_CLIENT = (0 << 6) | (4 << 3) | 3
LI_VN_SERVER = (0 << 6) | (4 << 3) | 4
PRECISION = -23  # about 119 ns, a typical kernel clock


def ntp_timestamp(ts_ns: int) -> int:
    """Return the 64-bit NTP timestamp (seconds since 1900, 32.32) of ``ts_ns``."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    return ((seconds + NTP_EPOCH_OFFSET_S) << 32) | ((nanos << 32) // 1_000_000_000)


class NtpDialogue(Dialogue):
    """A client polling one server."""

    def __init__(self, flow: FlowContext) -> None:
        super().__init__(flow)
        self.origin = 0

    def push(self, forward: bool, wished: int, ts_ns: int) -> bytes:
        now = ntp_timestamp(ts_ns)
        if forward:
            self.origin = now
            return struct.pack(
                "!BBbbII4sQQQQ", LI_VN_CLIENT, 0, 6, PRECISION, 0, 0,
                b"\0\0\0\0", 0, 0, 0, now,
            )  # fmt: skip
        reference = now - (64 << 32)  # last synchronised 64 s ago
        return struct.pack(
            "!BBbbII4sQQQQ", LI_VN_SERVER, 1, 6, PRECISION, 0, 0x10,
            b"GPS\0", reference, self.origin, now, now,
        )  # fmt: skip
