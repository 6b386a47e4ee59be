"""Write the payload bytes of a batch of flows.

Flows of a known service (see ``SERVICE_KINDS``) get protocol messages from
a dialogue object, one per flow; every other flow, and every ICMP packet,
gets random bytes of exactly the wished size, drawn in one numpy call.

A TCP flow is cut into *turns*: maximal runs of data-carrying packets in
one direction (pure ACKs and RST segments do not end a turn and carry no
message).  Each turn is one message of the wished total size; a message
that comes out larger than wished grows the turn's last packet, one that
comes out smaller empties the turn's last packets.  A UDP flow writes one
message per datagram.  The sizes actually written come back as
``payload_len``, from which the caller recomputes its ground truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.synth.payloads._dialogue import Dialogue, FlowContext, RandomPool
from fosr.synth.payloads._dns import DnsDialogue, DnsTcpDialogue
from fosr.synth.payloads._http import HttpDialogue
from fosr.synth.payloads._ntp import NtpDialogue
from fosr.synth.payloads._smtp import SmtpDialogue
from fosr.synth.payloads._spec import Kind, PayloadSpec
from fosr.synth.payloads._tls import TlsDialogue

__all__ = ["make_payloads"]

Array = npt.NDArray[Any]

RST = 0x04
TCP = 6
MAX_PAYLOAD = 65535 - 60  # what one IPv4 packet with full headers can carry

_DIALOGUES: dict[int, Callable[[FlowContext], Dialogue]] = {
    Kind.DNS: DnsDialogue,
    Kind.DNS_TCP: DnsTcpDialogue,
    Kind.HTTP: HttpDialogue,
    Kind.TLS: TlsDialogue,
    Kind.NTP: NtpDialogue,
    Kind.SMTP: SmtpDialogue,
}


def make_payloads(
    spec: PayloadSpec, rng: np.random.Generator
) -> tuple[Array, Array, Array]:
    """Return (payload uint8, payload_offsets int64, payload_len uint32).

    Packet ``i``'s payload is ``payload[payload_offsets[i]:
    payload_offsets[i + 1]]`` and ``payload_len == np.diff(
    payload_offsets)``, ready for :class:`~fosr.synth.FlowBatch`.  Sizes
    equal the wished ones for random payloads and wherever the protocol
    allows (see each service's module); DNS and NTP messages and SMTP
    commands keep their own sizes.
    """
    kinds = spec.kinds()
    length = np.asarray(spec.payload_len, np.int64).copy()
    pool = RandomPool(rng)

    # the packets of flows with a protocol, as Python lists, flow by flow
    flows = np.flatnonzero(kinds != Kind.RANDOM)
    first = np.asarray(spec.offsets[flows], np.int64)
    counts = np.asarray(spec.offsets[flows + 1], np.int64) - first
    bounds = np.zeros(len(flows) + 1, np.int64)
    np.cumsum(counts, out=bounds[1:])
    rows = np.repeat(first - bounds[:-1], counts) + np.arange(bounds[-1])
    packets = _Packets(
        wished=spec.payload_len[rows].tolist(),
        forward=spec.forward[rows].tolist(),
        ts_ns=spec.ts_ns[rows].tolist(),
        flags=spec.tcp_flags[rows].tolist(),
    )

    # protocol messages, one flow at a time
    chunks: list[bytes] = []
    at = bounds.tolist()
    flow_kinds = kinds[flows].tolist()
    is_tcp = (spec.proto[flows] == TCP).tolist()
    for j, f in enumerate(flows.tolist()):
        dialogue = _DIALOGUES[flow_kinds[j]](FlowContext(spec, f, pool))
        chunks += _write_flow(dialogue, is_tcp[j], packets, at[j], at[j + 1], pool)
    length[rows] = np.fromiter(map(len, chunks), np.int64, len(chunks))
    if np.any(length > MAX_PAYLOAD):
        raise ValueError(f"a payload grew past {MAX_PAYLOAD} bytes")

    # random bytes everywhere, then each flow's messages over them: a
    # flow's packets are consecutive rows, so its payload is one block
    offsets = np.zeros(len(length) + 1, np.int64)
    np.cumsum(length, out=offsets[1:])
    payload = rng.integers(0, 256, int(offsets[-1]), dtype=np.uint8)
    view = payload.data
    starts = offsets[first].tolist()
    for j, start in enumerate(starts):
        block = b"".join(chunks[at[j] : at[j + 1]])
        view[start : start + len(block)] = block
    return payload, offsets, length.astype(np.uint32)


@dataclass(frozen=True)
class _Packets:
    """Per-packet columns of the flows with a protocol, as Python lists."""

    wished: list[int]
    forward: list[bool]
    ts_ns: list[int]
    flags: list[int]


def _write_flow(
    dialogue: Dialogue,
    is_tcp: bool,
    packets: _Packets,
    lo: int,
    hi: int,
    pool: RandomPool,
) -> list[bytes]:
    """Return the payload of packets ``lo:hi`` of ``packets``, one flow."""
    wished = packets.wished[lo:hi]
    forward = packets.forward[lo:hi]
    ts = packets.ts_ns[lo:hi]
    if not is_tcp:
        return [
            dialogue.push(d, w, t) for d, w, t in zip(forward, wished, ts, strict=True)
        ]

    # TCP: one message per turn, cut along the turn's packets; RST
    # segments keep random bytes of their size
    flags = packets.flags[lo:hi]
    n = hi - lo
    chunks = [b""] * n
    turn: list[int] = []
    for at in range(n + 1):
        if at < n and flags[at] & RST:
            chunks[at] = pool.take(wished[at])
            continue
        if at < n and wished[at] == 0:
            continue
        if turn and (at == n or forward[at] != forward[turn[0]]):
            sizes = [wished[i] for i in turn]
            message = dialogue.push(forward[turn[0]], sum(sizes), ts[turn[0]])
            for i, piece in zip(turn, _cut(message, sizes), strict=True):
                chunks[i] = piece
            turn = []
        turn.append(at)
    return chunks


def _cut(message: bytes, sizes: list[int]) -> list[bytes]:
    """Cut ``message`` along packet ``sizes``; the last packet takes any excess."""
    pieces = []
    at = 0
    for size in sizes[:-1]:
        pieces.append(message[at : at + size])
        at += len(pieces[-1])
    pieces.append(message[at:])
    return pieces
