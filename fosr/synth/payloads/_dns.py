"""DNS queries and answers (RFC 1035), over UDP and over TCP.

Each client message is a recursive query (RD set) for the flow's hostname,
type A (AAAA when the answer is an IPv6 address); each server message
answers the oldest unanswered query with the flow's answer as one A or
AAAA record (TTL 300 s, RFC 3596), or NXDOMAIN when there is none.

Sizes: a message is padded to the wished size with an EDNS(0) OPT record
(RFC 6891) carrying the Padding option (RFC 7830) when the wished size
leaves room for it (15 bytes or more); otherwise, and above 1232 bytes
(the EDNS buffer size DNS Flag Day 2020 recommends), it keeps its real
size.  Over TCP each message has a 2-byte length prefix (RFC 1035 section
4.2.2) and its size counts it.
"""

from __future__ import annotations

import functools
import struct
from collections import deque

from fosr.synth.payloads._dialogue import Dialogue, FlowContext

__all__ = ["DnsDialogue", "DnsTcpDialogue", "encode_name"]

TYPE_A, TYPE_AAAA, CLASS_IN, TYPE_OPT, OPTION_PADDING = 1, 28, 1, 41, 12
FLAG_RD, FLAG_QR_RD_RA = 0x0100, 0x8180
RCODE_NXDOMAIN = 3
EDNS_BUFFER = 1232
_OPT_BYTES = 11 + 4  # the OPT RR and the padding option's own header


@functools.lru_cache(maxsize=4096)
def encode_name(name: str) -> bytes:
    """Return ``name`` in DNS wire format (length-prefixed labels)."""
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna") if not label.isascii() else label.encode()
        out += bytes([len(raw)]) + raw
    return bytes(out) + b"\x00"


class DnsDialogue(Dialogue):
    """A resolver exchange over UDP: one message per datagram."""

    def __init__(self, flow: FlowContext) -> None:
        super().__init__(flow)
        self.qtype = TYPE_AAAA if len(flow.dns_answer) == 16 else TYPE_A
        name = encode_name(flow.hostname or "example.invalid")
        self.question = name + struct.pack("!HH", self.qtype, CLASS_IN)
        self.pending: deque[int] = deque()

    def push(self, forward: bool, wished: int, ts_ns: int) -> bytes:
        if forward:
            ident = int.from_bytes(self.random(2))
            self.pending.append(ident)
            return self.pad(self.query(ident), wished)
        ident = (
            self.pending.popleft() if self.pending else int.from_bytes(self.random(2))
        )
        return self.pad(self.response(ident), wished)

    def query(self, ident: int) -> bytes:
        return struct.pack("!6H", ident, FLAG_RD, 1, 0, 0, 0) + self.question

    def response(self, ident: int) -> bytes:
        answer = self.flow.dns_answer
        if not answer:
            flags = FLAG_QR_RD_RA | RCODE_NXDOMAIN
            return struct.pack("!6H", ident, flags, 1, 0, 0, 0) + self.question
        record = struct.pack("!HHHIH", 0xC00C, self.qtype, CLASS_IN, 300, len(answer))
        record += answer
        header = struct.pack("!6H", ident, FLAG_QR_RD_RA, 1, 1, 0, 0)
        return header + self.question + record

    @staticmethod
    def pad(message: bytes, wished: int) -> bytes:
        """Append an OPT record padding ``message`` to ``wished`` bytes."""
        room = min(wished, EDNS_BUFFER) - len(message) - _OPT_BYTES
        if room < 0:
            return message
        arcount = struct.unpack_from("!H", message, 10)[0] + 1
        opt = struct.pack("!BHHIH", 0, TYPE_OPT, EDNS_BUFFER, 0, 4 + room)
        option = struct.pack("!HH", OPTION_PADDING, room) + bytes(room)
        return message[:10] + struct.pack("!H", arcount) + message[12:] + opt + option


class DnsTcpDialogue(DnsDialogue):
    """The same exchange over TCP: each message behind a 2-byte length."""

    def push(self, forward: bool, wished: int, ts_ns: int) -> bytes:
        message = super().push(forward, max(wished - 2, 0), ts_ns)
        return struct.pack("!H", len(message)) + message
