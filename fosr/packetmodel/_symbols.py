"""Turn the packets of connections into words of symbols with values.

Each packet becomes one *event*: a symbol and two values.

- The symbol is the packet's direction, its TCP flags (TCP only) and the
  class of its payload, written as in METHODS.md §3.4: ``S_>_Empty``,
  ``PA_>_Text:GET``, ``A_<_Random``, ``>_Binary`` (UDP), ``<`` (ICMP).
- The values are the inter-packet gap, in *decibel microseconds*
  ``10 * log10(1 + gap_us)`` (0 for the first packet: a log scale keeps a
  1 ms and a 10 s gap within one Gaussian's reach), and the L4 payload size
  in bytes.

Payload classes, in the order they are tested:

========  =================================================================
empty     no payload
random    at least 20 two-bit chunks whose counts pass a chi-square test of
          uniformity (statistic <= 7.815, p >= 0.05 at 3 degrees of
          freedom): encrypted or compressed bytes
text      every byte printable ASCII, tab, CR or LF; the symbol keeps the
          first token (letters, digits, ``/._-``, at most 10 characters)
binary    anything else, and every non-empty payload when the capture was
          read without payload bytes
========  =================================================================

Only the first 256 captured bytes of a payload are looked at.  The text
token is the only thing kept from payload bytes: models never hold raw
payloads.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.connections import Connections

__all__ = [
    "BINARY",
    "EMPTY",
    "PAYLOAD_CLASS_NAMES",
    "RANDOM",
    "TEXT",
    "Symbol",
    "Words",
    "classify_payloads",
    "gap_units",
    "gap_ns_of_units",
    "words_of",
]

Array = npt.NDArray[Any]

EMPTY, TEXT, BINARY, RANDOM = 0, 1, 2, 3
PAYLOAD_CLASS_NAMES = ("Empty", "Text", "Binary", "Random")
TCP = 6

_LOOKED_AT_BYTES = 256
# a gap of about 11.6 days: no drawn gap is longer
_MAX_GAP_UNITS = 120.0
_MIN_CHUNKS = 20
# chi-square critical value for p = 0.05 with 3 degrees of freedom
_CHI2_CRITICAL = 7.815
_TOKEN = re.compile(rb"[A-Za-z0-9/._-]{1,10}")
_FLAG_LETTERS = "FSRPAUEC"

# per byte value: how many of its four 2-bit chunks equal 0, 1, 2, 3
_CHUNK_COUNTS = np.stack(
    [
        sum(
            ((np.arange(256) >> shift) & 3 == k).astype(np.int64)
            for shift in (0, 2, 4, 6)
        )
        for k in range(4)
    ],
    axis=1,
)
_PRINTABLE = np.zeros(256, dtype=bool)
_PRINTABLE[0x20:0x7F] = True
_PRINTABLE[[0x09, 0x0A, 0x0D]] = True


@dataclass(frozen=True)
class Symbol:
    """One symbol of an automaton: direction, TCP flags and payload class.

    ``forward`` is True client to server; ``flags`` is the TCP flag byte
    (0 for other protocols); ``payload_class`` one of EMPTY, TEXT, BINARY,
    RANDOM; ``token`` the first token of a text payload, or "".
    """

    forward: bool
    flags: int
    payload_class: int
    token: str = ""

    def name(self, proto: int) -> str:
        """Return the symbol as METHODS.md §3.4 writes it, e.g. ``PA_>_Text:GET``."""
        direction = ">" if self.forward else "<"
        payload = PAYLOAD_CLASS_NAMES[self.payload_class]
        if self.payload_class == TEXT and self.token:
            payload += ":" + self.token
        if proto == TCP:
            flags = "".join(
                c for i, c in enumerate(_FLAG_LETTERS) if self.flags >> i & 1
            )
            return f"{flags or '0'}_{direction}_{payload}"
        return f"{direction}_{payload}"


@dataclass(frozen=True, eq=False)
class Words:
    """The events of many connections, laid end to end (CSR).

    Events of connection ``i`` are ``offsets[i]:offsets[i + 1]``.
    ``symbol`` indexes ``symbols``; ``gap`` is in decibel microseconds and
    ``size`` in payload bytes.
    """

    symbols: tuple[Symbol, ...]
    offsets: Array
    symbol: Array
    gap: Array
    size: Array

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def take(self, index: Array) -> Words:
        """Return the words at ``index`` (integer positions), same symbols."""
        index = np.asarray(index, dtype=np.int64)
        lengths = np.diff(self.offsets)[index]
        offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        rows = np.repeat(self.offsets[index] - offsets[:-1], lengths)
        rows += np.arange(int(offsets[-1]))
        return Words(
            self.symbols, offsets, self.symbol[rows], self.gap[rows], self.size[rows]
        )


def gap_units(gap_ns: Array) -> Array:
    """Return gaps in decibel microseconds, ``10 * log10(1 + gap_us)``."""
    gap_us = np.maximum(np.asarray(gap_ns, dtype=np.float64), 0.0) / 1e3
    result: Array = 10.0 * np.log10(1.0 + gap_us)
    return result


def gap_ns_of_units(units: Array) -> Array:
    """Return nanoseconds of gaps in decibel microseconds (the inverse)."""
    units = np.minimum(np.asarray(units, dtype=np.float64), _MAX_GAP_UNITS)
    gap_us = np.power(10.0, units / 10.0) - 1.0
    result: Array = np.maximum(gap_us, 0.0) * 1e3
    return result


def classify_payloads(connections: Connections, rows: Array) -> tuple[Array, list[str]]:
    """Return the payload class (uint8) and text token of packets ``rows``.

    ``rows`` index ``connections.packets``.  Without payload bytes every
    non-empty payload is BINARY.
    """
    packets = connections.packets
    size = packets.payload_len[rows].astype(np.int64)
    classes = np.where(size > 0, BINARY, EMPTY).astype(np.uint8)
    tokens = [""] * len(rows)
    if packets.data is None or len(rows) == 0:
        return classes, tokens

    # the first bytes of every payload, as one flat index into data
    caplen = np.minimum(packets.payload_caplen[rows].astype(np.int64), _LOOKED_AT_BYTES)
    caplen = np.where(size > 0, caplen, 0)
    starts = np.concatenate(([0], np.cumsum(caplen)))
    flat = np.repeat(packets.payload_off[rows].astype(np.int64) - starts[:-1], caplen)
    flat += np.arange(int(starts[-1]))
    data = np.asarray(packets.data)[flat]
    owner = np.repeat(np.arange(len(rows)), caplen)

    # uniformity of 2-bit chunks, and printable text
    chunk_counts = _CHUNK_COUNTS[data]
    counts = np.stack(
        [
            np.bincount(owner, weights=chunk_counts[:, k], minlength=len(rows))
            for k in range(4)
        ],
        axis=1,
    )
    chunks = counts.sum(axis=1)
    expected = np.maximum(chunks, 1) / 4.0
    chi2 = ((counts - expected[:, None]) ** 2 / expected[:, None]).sum(axis=1)
    is_random = (chunks >= _MIN_CHUNKS) & (chi2 <= _CHI2_CRITICAL)
    unprintable = np.bincount(owner, weights=~_PRINTABLE[data], minlength=len(rows))
    is_text = (caplen > 0) & (unprintable == 0) & ~is_random
    classes[is_random & (size > 0)] = RANDOM
    classes[is_text & (size > 0)] = TEXT

    # the first token of each text payload
    for i in np.flatnonzero(classes == TEXT).tolist():
        head = data[starts[i] : starts[i] + min(int(caplen[i]), 32)].tobytes()
        match = _TOKEN.match(head.lstrip())
        tokens[i] = match.group().decode("ascii") if match else ""
    return classes, tokens


def words_of(
    connections: Connections,
    index: Array,
    *,
    min_token_count: int = 3,
    vocabulary: Collection[str] | None = None,
) -> Words:
    """Return the words of connections ``index`` with their own symbol table.

    Text tokens seen in fewer than ``min_token_count`` packets are dropped
    (the symbol becomes plain ``Text``), so that one-off strings neither
    swell the alphabet nor leak into the model.  With ``vocabulary``, only
    those tokens are kept (to read held-out data with a model's tokens).
    """
    index = np.asarray(index, dtype=np.int64)
    lengths = (connections.offsets[index + 1] - connections.offsets[index]).astype(
        np.int64
    )
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    positions = np.repeat(connections.offsets[index] - offsets[:-1], lengths)
    positions += np.arange(int(offsets[-1]))
    rows = connections.order[positions]
    packets = connections.packets

    forward = connections.forward[positions].astype(bool)
    proto = packets.proto[rows]
    flags = np.where(proto == TCP, packets.tcp_flags[rows], 0).astype(np.int64)
    classes, tokens = classify_payloads(connections, rows)
    size = packets.payload_len[rows].astype(np.int64)
    ts = packets.ts_ns[rows].astype(np.int64)
    gap_ns = np.diff(ts, prepend=ts[:1])
    gap_ns[offsets[:-1][lengths > 0]] = 0
    gap = gap_units(np.maximum(gap_ns, 0))

    # keep tokens frequent enough, then number the distinct symbols
    token_counts: dict[str, int] = {}
    for token in tokens:
        if token:
            token_counts[token] = token_counts.get(token, 0) + 1
    kept = {t for t, n in token_counts.items() if n >= min_token_count}
    if vocabulary is not None:
        kept = set(token_counts) & set(vocabulary)
    token_ids = {t: i + 1 for i, t in enumerate(sorted(kept))}
    token_code = np.array([token_ids.get(t, 0) for t in tokens], dtype=np.int64)
    key = ((forward.astype(np.int64) * 256 + flags) * 4 + classes) * (len(kept) + 1)
    key += token_code
    unique, symbol = np.unique(key, return_inverse=True)
    names = [""] + sorted(kept)
    symbols = []
    for k in unique.tolist():
        code, token = divmod(k, len(kept) + 1)
        code, payload_class = divmod(code, 4)
        fwd, flag_byte = divmod(code, 256)
        symbols.append(Symbol(bool(fwd), flag_byte, payload_class, names[token]))
    return Words(
        tuple(symbols),
        offsets,
        symbol.ravel().astype(np.int64),
        gap,
        size,
    )
