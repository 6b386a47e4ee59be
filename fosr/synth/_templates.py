"""Header templates per flow and direction: the bytes no packet changes.

Row ``2 * flow`` is the client-to-server direction, row ``2 * flow + 1``
the way back.  Each row uses the column layout of the builder's header
rows (see _build): the Ethernet header (with its 802.1Q tag, if any) and
the IPv4 or IPv6 header lie right-aligned so that the IP header ends at
column ``L4_AT``, and columns ``L4_AT`` to ``L4_AT + 4`` hold the first
transport word pair: the ports, or the ICMP type and code and a zero
checksum.  Packet fields (lengths, IPv4 ID, checksums, TCP state) are
left zero for the builder to patch.

The RFC 1071 sums of the constant words are kept beside the rows, so that
a packet's checksums need only the words it adds (RFC 1624 computes them
the same way, by updating a known sum).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.synth._batch import ICMP, IPV6, FlowBatch
from fosr.synth._profiles import OS_PROFILES

Array = npt.NDArray[Any]

L4_AT = 58  # 18 bytes of tagged Ethernet and a 40-byte IPv6 header before it
TEMPLATE_WIDTH = L4_AT + 4
ROW_WIDTH = L4_AT + 60  # up to a TCP header with 40 bytes of options
ETH_IPV4, ETH_IPV6, ETH_VLAN = 0x0800, 0x86DD, 0x8100
ICMPV6 = 58
# echo request and reply types, forward and backward (RFC 792, RFC 4443)
ECHO_TYPES = {4: (8, 0), 6: (128, 129)}

_TTL = np.array([p.ttl for p in OS_PROFILES], np.int64)
_DF = np.array([p.df for p in OS_PROFILES])


@dataclass(frozen=True, eq=False)
class FlowTemplates:
    """Template rows of a batch, two per flow, with their constant sums.

    ``rows`` is (2F, TEMPLATE_WIDTH) uint8; ``header_at`` (per flow) the
    first used column: ``L4_AT`` less the IP and Ethernet header lengths.
    Per row, unfolded sums of 16-bit words: ``ip4_sum`` of the IPv4
    header (0 on IPv6), ``pseudo_sum`` of the pseudo-header without its
    length (RFC 9293 section 3.1, RFC 8200 section 8.1; 0 for ICMPv4,
    which has none), ``l4_sum`` of the first transport word pair.
    """

    rows: Array
    header_at: Array
    ip4_sum: Array
    pseudo_sum: Array
    l4_sum: Array


def build_templates(batch: FlowBatch, rng: np.random.Generator) -> FlowTemplates:
    """Return the header templates of every flow of ``batch``.

    ``rng`` draws the IPv6 flow label of each flow and direction.
    """
    n = batch.n_flows
    v6 = batch.ip_version == IPV6
    tagged = batch.vlan >= 0
    rows = np.zeros((2 * n, TEMPLATE_WIDTH), np.uint8)
    labels = rng.integers(1, 1 << 20, size=2 * n, dtype=np.int64)

    # Ethernet and IP, one column layout per (IP version, tag) pair, built
    # per flow and direction (row 2 * flow + backward)
    for is_v6 in (False, True):
        for is_tagged in (False, True):
            flow = np.flatnonzero((v6 == is_v6) & (tagged == is_tagged))
            if not len(flow):
                continue
            for backward in (0, 1):
                row = 2 * flow + backward
                eth = _ethernet(batch, flow, backward, is_v6, is_tagged)
                if is_v6:
                    ip = _ipv6(batch, flow, backward, labels[row])
                else:
                    ip = _ipv4(batch, flow, backward)
                at = L4_AT - ip.shape[1] - eth.shape[1]
                rows[row, at:L4_AT] = np.concatenate([eth, ip], 1)

    # sums of the constant words, from the values rather than the bytes
    sender = np.stack([batch.client_os, batch.server_os], 1).reshape(-1)
    proto = np.repeat(batch.proto.astype(np.int64), 2)
    client = batch.client_ip.astype(np.int64)
    server = batch.server_ip.astype(np.int64)
    addresses = np.where(v6, _ip6_words(batch), _split(client) + _split(server))
    addresses = np.repeat(addresses, 2)
    row_v6 = np.repeat(v6, 2)
    ip4_sum = 0x4500 + np.where(_DF[sender], 0x4000, 0) + (_TTL[sender] << 8)
    ip4_sum = np.where(row_v6, 0, ip4_sum + proto + addresses)
    icmp = proto == ICMP
    next_header = np.where(icmp, ICMPV6, proto)
    pseudo_sum = np.where(icmp & ~row_v6, 0, addresses + next_header)

    # ports, or the echo type and code
    fwd = np.tile([True, False], n)
    client_port = np.repeat(batch.client_port.astype(np.int64), 2)
    server_port = np.repeat(batch.server_port.astype(np.int64), 2)
    sport = np.where(fwd, client_port, server_port)
    dport = np.where(fwd, server_port, client_port)
    echo = np.where(row_v6, np.where(fwd, 128, 129), np.where(fwd, 8, 0))
    first = np.where(icmp, echo << 8, sport)
    second = np.where(icmp, 0, dport)
    put16(rows, L4_AT, first)
    put16(rows, L4_AT + 2, second)
    l4_sum = first + second

    header_at = L4_AT - np.where(tagged, 18, 14) - np.where(v6, 40, 20)
    return FlowTemplates(rows, header_at, ip4_sum, pseudo_sum, l4_sum)


def _ethernet(
    batch: FlowBatch, flow: Array, backward: int, is_v6: bool, is_tagged: bool
) -> Array:
    """Return Ethernet headers (RFC 894), 802.1Q-tagged when asked."""
    out = np.empty((len(flow), 18 if is_tagged else 14), np.uint8)
    to, by = (batch.client_mac, batch.server_mac)[:: 1 if backward else -1]
    out[:, 0:6] = to[flow]
    out[:, 6:12] = by[flow]
    if is_tagged:
        put16(out, 12, np.full(len(flow), ETH_VLAN))
        put16(out, 14, batch.vlan[flow].astype(np.int64) & 0x0FFF)
    put16(out, out.shape[1] - 2, np.full(len(flow), ETH_IPV6 if is_v6 else ETH_IPV4))
    return out


def _ipv4(batch: FlowBatch, flow: Array, backward: int) -> Array:
    """Return IPv4 headers (RFC 791), length, ID and checksum zero."""
    out = np.zeros((len(flow), 20), np.uint8)
    sender = (batch.server_os if backward else batch.client_os)[flow]
    src, dst = (batch.client_ip, batch.server_ip)[:: -1 if backward else 1]
    out[:, 0] = 0x45
    out[:, 6] = np.where(_DF[sender], 0x40, 0)
    out[:, 8] = _TTL[sender]
    out[:, 9] = batch.proto[flow]
    put32(out, 12, src[flow])
    put32(out, 16, dst[flow])
    return out


def _ipv6(batch: FlowBatch, flow: Array, backward: int, label: Array) -> Array:
    """Return IPv6 headers (RFC 8200 section 3), payload length zero.

    Traffic class 0; the flow label is random and non-zero per flow and
    direction, as stacks that label their flows choose it (RFC 6437
    section 3); the hop limit is the sender profile's.
    """
    assert batch.client_ip6 is not None and batch.server_ip6 is not None, (
        "FlowBatch checks that IPv6 flows have addresses"
    )
    out = np.empty((len(flow), 40), np.uint8)
    sender = (batch.server_os if backward else batch.client_os)[flow]
    src, dst = (batch.client_ip6, batch.server_ip6)[:: -1 if backward else 1]
    put32(out, 0, (6 << 28) | label)
    put16(out, 4, np.zeros(len(flow), np.int64))
    proto = batch.proto[flow]
    out[:, 6] = np.where(proto == ICMP, ICMPV6, proto)
    out[:, 7] = _TTL[sender]
    out[:, 8:24] = src[flow]
    out[:, 24:40] = dst[flow]
    return out


def _ip6_words(batch: FlowBatch) -> Array:
    """Return the word sum of both IPv6 addresses per flow (0 without)."""
    if batch.client_ip6 is None or batch.server_ip6 is None:
        return np.zeros(batch.n_flows, np.int64)
    both = np.concatenate([batch.client_ip6, batch.server_ip6], 1)
    words = np.ascontiguousarray(both, np.uint8).view(">u2")
    result: Array = words.sum(1, dtype=np.int64)
    return result


def _split(value: Array) -> Array:
    """Return the sum of the two 16-bit halves of 32-bit ``value``."""
    result: Array = (value >> 16) + (value & 0xFFFF)
    return result


# Column by column: numpy writes one uint8 column of a wide row array at
# about 1.5 ns a row, and a 2-column block of big-endian bytes at about 8,
# its cost per row of a 2-D copy.  Storing into uint8 keeps the low byte.


def put16(out: Array, at: int, value: Any) -> None:
    """Write ``value`` big-endian into columns ``at``, ``at + 1``."""
    value = np.asarray(value, np.int64)
    out[:, at] = value >> 8
    out[:, at + 1] = value


def put32(out: Array, at: int, value: Any) -> None:
    """Write ``value`` big-endian into columns ``at`` to ``at + 3``."""
    value = np.asarray(value, np.int64)
    out[:, at] = value >> 24
    out[:, at + 1] = value >> 16
    out[:, at + 2] = value >> 8
    out[:, at + 3] = value
