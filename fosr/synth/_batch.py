"""The input and output records of packet synthesis.

A :class:`FlowBatch` holds flows as numpy columns and their packets in CSR
form: the packets of flow ``i`` are rows ``offsets[i]:offsets[i + 1]`` of
the per-packet columns.  A :class:`Frames` holds the built Ethernet frames
of all flows, merged in time order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.synth._profiles import OS_PROFILES

__all__ = ["FlowBatch", "Frames"]

Array = npt.NDArray[Any]

TCP, UDP, ICMP = 6, 17, 1
IPV4, IPV6 = 4, 6


@dataclass(frozen=True, eq=False)
class FlowBatch:
    """Flows and, per flow, the header sequence of their packets.

    Per flow (length F): ``proto`` (6 TCP, 17 UDP, 1 ICMP echo, which is
    ICMPv6 echo on IPv6 flows); ``client_ip`` and ``server_ip`` (uint32
    IPv4 addresses, ignored on IPv6 flows);
    ``client_port`` and ``server_port`` (for ICMP, ``client_port`` is the
    echo identifier); ``client_mac`` and ``server_mac`` ((F, 6) uint8);
    ``client_os`` and ``server_os`` (indices into ``OS_PROFILES``);
    ``vlan`` (802.1Q VLAN id 0-4095, or -1 for an untagged frame).

    Per packet (length P, CSR by ``offsets`` of length F + 1): ``ts_ns``
    (capture time, ns since the epoch; non-decreasing within a flow);
    ``forward`` (True from client to server); ``tcp_flags`` (the TCP flag
    byte, ignored for UDP and ICMP); ``payload_len`` (L4 payload bytes).

    Payload content is random unless ``payload`` (uint8) and
    ``payload_offsets`` (length P + 1) give it; then ``payload_len`` must
    equal ``np.diff(payload_offsets)``.

    ``ip_version`` (per flow, 4 or 6) defaults to 4 for every flow.  IPv6
    flows take their addresses from ``client_ip6`` and ``server_ip6``
    ((F, 16) uint8, network byte order), which must be given when any flow
    is IPv6.

    Construction validates the columns and raises ValueError on the first
    disagreement.
    """

    # TODO: ICMP destination unreachable (type 3 code 3, or ICMPv6 type 1
    # code 4, quoting the offending IP header and the first 8 bytes of its
    # datagram) is not built: a UDP flow to a closed port cannot yet be
    # answered by its ICMP error, only by a UDP packet or silence.

    proto: Array
    client_ip: Array
    server_ip: Array
    client_port: Array
    server_port: Array
    client_mac: Array
    server_mac: Array
    client_os: Array
    server_os: Array
    vlan: Array
    offsets: Array
    ts_ns: Array
    forward: Array
    tcp_flags: Array
    payload_len: Array
    payload: Array | None = None
    payload_offsets: Array | None = None
    ip_version: Array = None  # type: ignore[assignment]  # all 4 when None
    client_ip6: Array | None = None
    server_ip6: Array | None = None

    def __post_init__(self) -> None:
        if self.ip_version is None:
            all_v4 = np.full(self.n_flows, IPV4, np.uint8)
            object.__setattr__(self, "ip_version", all_v4)
        self.validate()

    @property
    def n_flows(self) -> int:
        """Return the number of flows."""
        return len(self.proto)

    @property
    def n_packets(self) -> int:
        """Return the number of packets of all flows."""
        return len(self.ts_ns)

    def validate(self) -> None:
        """Raise ValueError when columns disagree in length or range."""
        n, p = self.n_flows, self.n_packets
        for name in (
            "client_ip",
            "server_ip",
            "client_port",
            "server_port",
            "client_os",
            "server_os",
            "vlan",
            "ip_version",
        ):
            _check_len(name, getattr(self, name), n)
        for name in ("client_mac", "server_mac"):
            shape = np.shape(getattr(self, name))
            if shape != (n, 6):
                raise ValueError(f"{name} must have shape ({n}, 6), not {shape}")
        for name in ("forward", "tcp_flags", "payload_len"):
            _check_len(name, getattr(self, name), p)
        _check_len("offsets", self.offsets, n + 1)
        if n and (self.offsets[0] != 0 or self.offsets[-1] != p):
            raise ValueError(f"offsets must run from 0 to {p}")
        if np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must not decrease")
        if not np.isin(self.proto, (TCP, UDP, ICMP)).all():
            raise ValueError(f"proto must be 6, 17 or 1, not {set(self.proto)}")
        for side in (self.client_os, self.server_os):
            if np.any((side < 0) | (side >= len(OS_PROFILES))):
                raise ValueError(f"OS profile ids must be in 0..{len(OS_PROFILES)}")
        if np.any(self.vlan > 4095):
            raise ValueError("a VLAN id is at most 4095")
        if np.any(self.payload_len > 65535 - 60):
            raise ValueError("a payload_len does not fit in one IPv4 packet")
        self._validate_payload(p)
        self._validate_ipv6(n)

    def _validate_ipv6(self, n: int) -> None:
        if not np.isin(self.ip_version, (IPV4, IPV6)).all():
            raise ValueError(
                f"ip_version must be 4 or 6, not {set(self.ip_version.tolist())}"
            )
        given = [self.client_ip6 is not None, self.server_ip6 is not None]
        if any(given) and not all(given):
            raise ValueError("give both client_ip6 and server_ip6, or neither")
        if not all(given):
            if np.any(self.ip_version == IPV6):
                raise ValueError("IPv6 flows need client_ip6 and server_ip6")
            return
        for name in ("client_ip6", "server_ip6"):
            shape = np.shape(getattr(self, name))
            if shape != (n, 16):
                raise ValueError(f"{name} must have shape ({n}, 16), not {shape}")

    def _validate_payload(self, p: int) -> None:
        if (self.payload is None) != (self.payload_offsets is None):
            raise ValueError("give both payload and payload_offsets, or neither")
        if self.payload_offsets is None:
            return
        _check_len("payload_offsets", self.payload_offsets, p + 1)
        if not np.array_equal(np.diff(self.payload_offsets), self.payload_len):
            raise ValueError("payload_len must equal np.diff(payload_offsets)")


@dataclass(frozen=True, eq=False)
class Frames:
    """Built Ethernet frames, all flows merged in time order.

    Frame ``i`` belongs to flow ``flow[i]`` of the batch it was built from
    and was captured at ``ts_ns[i]`` (ns since the epoch).  Its bytes are
    ``data[offsets[i] + headroom_bytes : offsets[i + 1]]``: with the
    default ``headroom_bytes`` of 0 the frames lie back to back; a builder
    asked for headroom leaves that many scratch bytes before each frame, so
    that a capture writer can put its record headers there and write the
    buffer as it is (see :func:`fosr.synth.write_pcap`).
    """

    data: Array
    offsets: Array
    ts_ns: Array
    flow: Array
    headroom_bytes: int = 0

    def __len__(self) -> int:
        return len(self.ts_ns)

    def frame(self, i: int) -> bytes:
        """Return the bytes of frame ``i``."""
        lo = self.offsets[i] + self.headroom_bytes
        return bytes(self.data[lo : self.offsets[i + 1]])

    def lengths(self) -> Array:
        """Return the length of each frame in bytes."""
        result: Array = np.diff(self.offsets) - self.headroom_bytes
        return result


def _check_len(name: str, column: Array, expected: int) -> None:
    if len(column) != expected:
        raise ValueError(f"{name} has {len(column)} rows, expected {expected}")
