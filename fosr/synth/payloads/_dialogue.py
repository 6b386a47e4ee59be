"""The per-flow state every payload dialogue starts from."""

from __future__ import annotations

import functools
import ipaddress

import numpy as np

from fosr.synth.payloads._spec import PayloadSpec

__all__ = ["Dialogue", "FlowContext", "RandomPool", "filler_text"]

# printable filler for text protocols: letters and spaces, no dots, so that
# no line of an SMTP body is ever a lone "." (RFC 5321 section 4.5.2)
_WORDS = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "
_TEXT = _WORDS * 300


def filler_text(n: int, phase: int = 0) -> bytes:
    """Return ``n`` bytes of readable filler (letters and spaces)."""
    start = phase % len(_WORDS)
    if n <= len(_TEXT) - start:
        return _TEXT[start : start + n]
    return (_TEXT * (n // len(_TEXT) + 2))[start : start + n]


class RandomPool:
    """Random bytes handed out in slices, drawn from ``rng`` 1 MiB at a time.

    One numpy call per MiB instead of one per message; no byte is handed
    out twice.
    """

    BLOCK_BYTES = 1 << 20

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.block = b""
        self.at = 0

    def take(self, n: int) -> bytes:
        """Return ``n`` fresh random bytes."""
        if self.at + n > len(self.block):
            self.block = self.rng.bytes(max(n, self.BLOCK_BYTES))
            self.at = 0
        self.at += n
        return self.block[self.at - n : self.at]


class FlowContext:
    """What a dialogue knows of its flow, row ``flow`` of ``spec``.

    ``hostname`` is the server's name as the client uses it (None when the
    client uses the address); ``client`` and ``server`` are the endpoint
    addresses; ``dns_answer`` is the address a DNS flow must return: 4
    bytes (an A record), 16 (AAAA), or empty (NXDOMAIN).  Addresses are
    computed on first use: most dialogues never need them.
    """

    def __init__(self, spec: PayloadSpec, flow: int, pool: RandomPool) -> None:
        self.spec = spec
        self.index = flow
        self.pool = pool
        name = spec.hostname[flow]
        self.hostname: str | None = None if name is None else str(name)

    @functools.cached_property
    def client(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """Return the client's address."""
        return self.spec.client_address(self.index)

    @functools.cached_property
    def server(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """Return the server's address."""
        return self.spec.server_address(self.index)

    @functools.cached_property
    def dns_answer(self) -> bytes:
        """Return the DNS answer: 4 bytes, 16 bytes, or none."""
        return self.spec.answer_of(self.index)


class Dialogue:
    """The messages of one flow, written one at a time.

    ``push(forward, wished, ts_ns)`` returns the next message from the
    client (``forward``) or the server, of ``wished`` bytes where the
    protocol allows it; a message that cannot be that size comes back at
    its real length.  For TCP a message is everything one side sends in a
    turn; for UDP it is one datagram.
    """

    def __init__(self, flow: FlowContext) -> None:
        self.flow = flow

    def push(self, forward: bool, wished: int, ts_ns: int) -> bytes:
        """Return the next message in direction ``forward``."""
        return self.random(wished)

    def random(self, n: int) -> bytes:
        """Return ``n`` random bytes (encrypted or compressed content)."""
        return self.flow.pool.take(n)
