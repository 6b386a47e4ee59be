"""What payload synthesis is asked for, and how DNS flows learn their answers.

A :class:`PayloadSpec` carries, per flow, the service (protocol and server
port), the endpoint addresses, the name the client uses for the server and,
for DNS flows, the address the answer must give; per packet (CSR by
``offsets``, as in :class:`~fosr.synth.FlowBatch`) the capture time, the
direction, the TCP flags and the payload size the packet model wished.

:func:`link_dns` fills in the DNS part: each DNS query asks for the name of
the flow its client opens next, and is answered with that flow's server
address, so that a capture reads like a resolver lookup followed by the
connection it served.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.synth._batch import FlowBatch

__all__ = [
    "DNS_KINDS",
    "SERVICE_KINDS",
    "Kind",
    "PayloadSpec",
    "classify",
    "link_dns",
]

Array = npt.NDArray[Any]


class Kind:
    """Payload kinds, as small integers for numpy columns."""

    RANDOM = 0
    DNS = 1  # udp/53
    DNS_TCP = 2  # tcp/53, each message behind a 2-byte length (RFC 1035 4.2.2)
    HTTP = 3
    TLS = 4
    NTP = 5
    SMTP = 6


DNS_KINDS = (Kind.DNS, Kind.DNS_TCP)

# (proto, server port) -> kind; every other service gets random bytes
SERVICE_KINDS: dict[tuple[int, int], int] = {
    (17, 53): Kind.DNS,
    (6, 53): Kind.DNS_TCP,
    (6, 80): Kind.HTTP,
    (6, 8080): Kind.HTTP,
    (6, 443): Kind.TLS,
    (6, 8443): Kind.TLS,
    (6, 465): Kind.TLS,
    (6, 853): Kind.TLS,
    (6, 993): Kind.TLS,
    (6, 995): Kind.TLS,
    (17, 123): Kind.NTP,
    (6, 25): Kind.SMTP,
    (6, 587): Kind.SMTP,
}


@dataclass(frozen=True, eq=False)
class PayloadSpec:
    """Flows and packets whose payloads are to be written.

    Per flow (length F): ``proto`` (6, 17 or 1), ``server_port``,
    ``client_ip`` and ``server_ip`` (uint32), ``hostname`` (object array of
    str or None: the server's name as the client uses it, in the HTTP Host
    header, the TLS SNI and, for DNS flows, the name queried) and
    ``dns_answer`` (uint32 A record of a DNS flow's answer; 0 answers
    NXDOMAIN).  Per packet (length P, CSR by ``offsets``): ``ts_ns``,
    ``forward``, ``tcp_flags`` and the wished ``payload_len``.

    IPv6, as in FlowBatch: ``ip_version`` (per flow 4 or 6; None: all 4),
    ``client_ip6`` and ``server_ip6`` ((F, 16) uint8, read on IPv6 flows),
    and ``dns_answer6`` ((F, 16) uint8): a DNS flow whose row is not all
    zero answers that AAAA record instead of ``dns_answer``.
    """

    proto: Array
    server_port: Array
    client_ip: Array
    server_ip: Array
    offsets: Array
    ts_ns: Array
    forward: Array
    tcp_flags: Array
    payload_len: Array
    hostname: Array
    dns_answer: Array
    ip_version: Array | None = None
    client_ip6: Array | None = None
    server_ip6: Array | None = None
    dns_answer6: Array | None = None

    def __post_init__(self) -> None:
        n, p = len(self.proto), len(self.ts_ns)
        for name in ("client_ip6", "server_ip6", "dns_answer6"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != (n, 16):
                raise ValueError(f"{name} must have shape ({n}, 16)")
        if self.ip_version is not None and len(self.ip_version) != n:
            raise ValueError(f"ip_version must have {n} rows")
        if self.is_ipv6.any() and (self.client_ip6 is None or self.server_ip6 is None):
            raise ValueError("IPv6 flows need client_ip6 and server_ip6")
        for name in ("server_port", "client_ip", "server_ip", "hostname"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} must have {n} rows")
        if len(self.dns_answer) != n:
            raise ValueError(f"dns_answer must have {n} rows")
        if len(self.offsets) != n + 1 or (n and self.offsets[-1] != p):
            raise ValueError(f"offsets must have {n + 1} rows ending at {p}")
        for name in ("forward", "tcp_flags", "payload_len"):
            if len(getattr(self, name)) != p:
                raise ValueError(f"{name} must have {p} rows")

    @classmethod
    def from_batch(
        cls,
        batch: FlowBatch,
        hostname: Array | None = None,
        dns_answer: Array | None = None,
    ) -> PayloadSpec:
        """Take flows and wished sizes from ``batch``; names default to None."""
        n = batch.n_flows
        return cls(
            proto=np.asarray(batch.proto),
            server_port=np.asarray(batch.server_port),
            client_ip=np.asarray(batch.client_ip, np.uint32),
            server_ip=np.asarray(batch.server_ip, np.uint32),
            offsets=np.asarray(batch.offsets, np.int64),
            ts_ns=np.asarray(batch.ts_ns, np.int64),
            forward=np.asarray(batch.forward, bool),
            tcp_flags=np.asarray(batch.tcp_flags, np.uint8),
            payload_len=np.asarray(batch.payload_len),
            hostname=np.full(n, None, object) if hostname is None else hostname,
            dns_answer=np.zeros(n, np.uint32) if dns_answer is None else dns_answer,
            ip_version=getattr(batch, "ip_version", None),
            client_ip6=getattr(batch, "client_ip6", None),
            server_ip6=getattr(batch, "server_ip6", None),
        )

    @property
    def is_ipv6(self) -> Array:
        """Return, per flow, whether it runs over IPv6."""
        if self.ip_version is None:
            return np.zeros(len(self.proto), bool)
        is_ipv6: Array = np.asarray(self.ip_version) == 6
        return is_ipv6

    def _is_ipv6(self, f: int) -> bool:
        return self.ip_version is not None and int(self.ip_version[f]) == 6

    def server_address(self, f: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """Return the server address of flow ``f``."""
        if self.server_ip6 is not None and self._is_ipv6(f):
            return ipaddress.IPv6Address(bytes(self.server_ip6[f]))
        return ipaddress.IPv4Address(int(self.server_ip[f]))

    def client_address(self, f: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """Return the client address of flow ``f``."""
        if self.client_ip6 is not None and self._is_ipv6(f):
            return ipaddress.IPv6Address(bytes(self.client_ip6[f]))
        return ipaddress.IPv4Address(int(self.client_ip[f]))

    def answer_of(self, f: int) -> bytes:
        """Return the DNS answer of flow ``f``: 4 bytes (A), 16 (AAAA) or none."""
        if self.dns_answer6 is not None and self.dns_answer6[f].any():
            return bytes(self.dns_answer6[f])
        answer = int(self.dns_answer[f])
        return answer.to_bytes(4, "big") if answer else b""

    @property
    def n_flows(self) -> int:
        """Return the number of flows."""
        return len(self.proto)

    def kinds(self) -> Array:
        """Return the payload kind (a :class:`Kind` value) of every flow."""
        return classify(self.proto, self.server_port)


def classify(proto: Array, server_port: Array) -> Array:
    """Return the payload kind of each (proto, server port) pair, as int8."""
    keys = np.asarray(proto, np.int64) << 16 | np.asarray(server_port, np.int64)
    known = np.array([p << 16 | q for p, q in SERVICE_KINDS], np.int64)
    kinds = np.array(list(SERVICE_KINDS.values()), np.int8)
    order = np.argsort(known)
    at = np.searchsorted(known[order], keys)
    at = np.minimum(at, len(known) - 1)
    hit = known[order][at] == keys
    return np.where(hit, kinds[order][at], Kind.RANDOM).astype(np.int8)


def link_dns(spec: PayloadSpec, fallback_domain: str = "example.net") -> PayloadSpec:
    """Make each DNS flow resolve the next non-DNS flow of the same client.

    The target of a DNS flow is the first non-DNS flow of the same client
    starting at or after it.  The DNS flow then queries the target's
    hostname and answers with the target's server address (an A record, or
    AAAA for an IPv6 target); a target without a hostname gets
    ``ip-<address>.<fallback_domain>``, written into the target too so
    that its SNI or Host header agrees.  DNS flows without a target keep
    their hostname (or query ``nxN.invalid``) and answer NXDOMAIN.
    Returns a new spec.
    """
    n = spec.n_flows
    if n == 0:
        return spec
    hostname = np.array(spec.hostname, dtype=object, copy=True)
    answer = np.zeros(n, np.uint32)
    answer6 = np.zeros((n, 16), np.uint8)
    is_dns = np.isin(spec.kinds(), DNS_KINDS)
    target = _next_flow_of_client(spec, is_dns)

    for i in np.flatnonzero(is_dns).tolist():
        t = int(target[i])
        if t < 0:
            if hostname[i] is None:
                hostname[i] = f"nx{i}.invalid"
            continue
        address = spec.server_address(t)
        if hostname[t] is None:
            label = address.compressed.replace(".", "-").replace(":", "-")
            hostname[t] = f"ip-{label}.{fallback_domain}"
        hostname[i] = hostname[t]
        if address.version == 6:
            answer6[i] = np.frombuffer(address.packed, np.uint8)
        else:
            answer[i] = int(address)
    return dataclasses.replace(
        spec, hostname=hostname, dns_answer=answer, dns_answer6=answer6
    )


def _client_groups(spec: PayloadSpec) -> Array:
    """Return a group number per flow: flows of one client share it."""
    if spec.client_ip6 is None or not spec.is_ipv6.any():
        return np.asarray(spec.client_ip, np.int64)
    keys = np.zeros((spec.n_flows, 16), np.uint8)
    keys[:, 10:12] = 0xFF  # IPv4 clients as IPv4-mapped addresses (RFC 4291)
    keys[:, 12:] = np.asarray(spec.client_ip, ">u4").view(np.uint8).reshape(-1, 4)
    v6 = spec.is_ipv6
    keys[v6] = np.asarray(spec.client_ip6)[v6]
    whole = keys.view(np.dtype((np.void, 16))).reshape(-1)
    _, groups = np.unique(whole, return_inverse=True)
    return np.asarray(groups).reshape(-1)


def _next_flow_of_client(spec: PayloadSpec, is_dns: Array) -> Array:
    """Return, per flow, the next non-DNS flow of its client, or -1."""
    n = spec.n_flows
    first = np.minimum(spec.offsets[:-1], max(len(spec.ts_ns) - 1, 0))
    start = spec.ts_ns[first] if len(spec.ts_ns) else np.zeros(n, np.int64)
    start = np.where(np.diff(spec.offsets) > 0, start, np.iinfo(np.int64).max)
    client = _client_groups(spec)

    # sort by client, then start, DNS flows before others starting together
    order = np.lexsort((~is_dns, start, client))
    position = np.where(is_dns[order], n, np.arange(n))
    following = np.minimum.accumulate(position[::-1])[::-1]
    found = following < n
    same = np.zeros(n, bool)
    same[found] = client[order][following[found]] == client[order][found]
    target = np.full(n, -1, np.int64)
    target[order[same]] = order[following[same]]
    return target
