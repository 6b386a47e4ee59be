"""TLS 1.3 records (RFC 8446) of the wished sizes.

The client's first turn is a ClientHello (with SNI when the flow has a
hostname, RFC 6066) padded to the wished size by the padding extension
(RFC 7685); the server's first turn is a ServerHello, a ChangeCipherSpec
(the middlebox compatibility mode of RFC 8446 appendix D.4) and
application data records standing for the encrypted handshake.  The
client's second turn opens with its ChangeCipherSpec; everything else is
application data records of random bytes, split so that no record carries
more than 2^14 + 17 bytes (a full TLS 1.3 AEAD record).

Sizes: a turn keeps its wished size when it is at least its fixed part
(ClientHello: about 150 bytes plus the name; ServerHello and
ChangeCipherSpec: 133 bytes; one application data record: 22 bytes);
otherwise it keeps its real size.
"""

from __future__ import annotations

import struct

from fosr.synth.payloads._dialogue import Dialogue, FlowContext

__all__ = ["TlsDialogue", "application_records"]

HANDSHAKE, CCS, APPLICATION_DATA = 22, 20, 23
CLIENT_HELLO, SERVER_HELLO = 1, 2
LEGACY_VERSION = 0x0303
TLS13 = 0x0304
X25519 = 0x001D
MAX_RECORD_BODY = (1 << 14) + 17  # plaintext limit + inner type + AEAD tag
MIN_RECORD_BODY = 17  # inner content type and a 16-byte tag
_CIPHER_SUITES = (0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030)
_SIGNATURES = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501)
_CCS_RECORD = bytes([CCS, 3, 3, 0, 1, 1])


def _extension(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


def _record(kind: int, body: bytes, version: int = LEGACY_VERSION) -> bytes:
    return struct.pack("!BHH", kind, version, len(body)) + body


def application_records(total: int, random: bytes) -> bytes:
    """Return application data records of ``total`` bytes in all.

    ``random`` supplies the record bodies and must hold at least ``total``
    bytes.  ``total`` below one minimal record (22 bytes) gives one such
    record.
    """
    total = max(total, 5 + MIN_RECORD_BODY)
    count = -(-total // (5 + MAX_RECORD_BODY))
    sizes = [total // count + (i < total % count) for i in range(count)]
    out = bytearray()
    used = 0
    for size in sizes:
        body = size - 5
        out += _record(APPLICATION_DATA, random[used : used + body])
        used += body
    return bytes(out)


class TlsDialogue(Dialogue):
    """A TLS 1.3 connection: handshake, then encrypted records."""

    def __init__(self, flow: FlowContext) -> None:
        super().__init__(flow)
        self.session_id = self.random(32)
        self.client_turns = 0
        self.server_turns = 0

    def push(self, forward: bool, wished: int, ts_ns: int) -> bytes:
        if forward:
            self.client_turns += 1
            if self.client_turns == 1:
                return self.client_hello(wished)
            if self.client_turns == 2 and wished >= len(_CCS_RECORD) + 22:
                return _CCS_RECORD + self.records(wished - len(_CCS_RECORD))
            return self.records(wished)
        self.server_turns += 1
        if self.server_turns == 1 and self.client_turns >= 1:
            hello = self.server_hello() + _CCS_RECORD
            rest = wished - len(hello)
            return hello + (self.records(rest) if rest > 0 else b"")
        return self.records(wished)

    def records(self, total: int) -> bytes:
        return application_records(total, self.random(max(total, 22)))

    def client_hello(self, wished: int) -> bytes:
        extensions = b""
        if self.flow.hostname:
            name = self.flow.hostname.encode()
            entry = b"\x00" + struct.pack("!H", len(name)) + name
            extensions += _extension(0, struct.pack("!H", len(entry)) + entry)
        groups = struct.pack("!HH", 2, X25519)
        signatures = struct.pack(
            f"!H{len(_SIGNATURES)}H", 2 * len(_SIGNATURES), *_SIGNATURES
        )
        share = struct.pack("!HH", X25519, 32) + self.random(32)
        alpn = b"\x02h2\x08http/1.1"
        extensions += (
            _extension(10, groups)
            + _extension(13, signatures)
            + _extension(43, struct.pack("!BH", 2, TLS13))
            + _extension(45, b"\x01\x01")
            + _extension(16, struct.pack("!H", len(alpn)) + alpn)
            + _extension(51, struct.pack("!H", len(share)) + share)
        )
        suites = struct.pack(
            f"!H{len(_CIPHER_SUITES)}H", 2 * len(_CIPHER_SUITES), *_CIPHER_SUITES
        )
        fixed = (
            struct.pack("!H", LEGACY_VERSION)
            + self.random(32)
            + b"\x20"
            + self.session_id
            + suites
            + b"\x01\x00"
        )

        # padding extension: 4 bytes of header, then zeros (RFC 7685)
        plain = 5 + 4 + len(fixed) + 2 + len(extensions)
        pad = wished - plain
        limit = (1 << 14) - (plain - 5)
        if pad > 0:
            pad = min(max(pad, 4), limit)
            extensions += _extension(21, bytes(pad - 4))
        body = fixed + struct.pack("!H", len(extensions)) + extensions
        hello = struct.pack("!I", CLIENT_HELLO << 24 | len(body)) + body
        record = _record(HANDSHAKE, hello, version=0x0301)
        rest = wished - len(record)
        # more than a ClientHello can hold goes out as early data records
        return record + (self.records(rest) if rest > 0 else b"")

    def server_hello(self) -> bytes:
        share = struct.pack("!HH", X25519, 32) + self.random(32)
        extensions = _extension(43, struct.pack("!H", TLS13)) + _extension(51, share)
        body = (
            struct.pack("!H", LEGACY_VERSION)
            + self.random(32)
            + b"\x20"
            + self.session_id
            + struct.pack("!HB", 0x1301, 0)
            + struct.pack("!H", len(extensions))
            + extensions
        )
        hello = struct.pack("!I", SERVER_HELLO << 24 | len(body)) + body
        return _record(HANDSHAKE, hello)
