"""Map the hosts of a traffic model onto the hosts of a topology.

A model knows its hosts by the addresses of its training data: IPv4
literals (``192.168.1.10``), anonymised tokens (CIDDS-001's ``16972_85``)
or labels (``DNS``).  A :class:`HostMap` gives each of them the IPv4
address, MAC, OS profile, VLAN and DNS name it has on the wire.

With a topology (:meth:`HostMap.build`), every model host plays a declared
host: a server plays a host offering most of its services (any DNS server
plays the resolver), a client plays a workstation or IoT device, and an
outside host gets a distinct address drawn from the outside ranges and the
gateway's MAC.  Several model hosts may share one declared host when the
topology is smaller than the model; no address, MAC or VLAN outside the
topology is ever produced.

Without one (:meth:`HostMap.identity`), IPv4 literals stay as they are and
other tokens get stable addresses in 198.18.0.0/15 (RFC 2544's benchmarking
range, never routed), ``DNS`` the fixed address 198.18.0.53.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.errors import ConfigError
from fosr.flows.table import FlowTable
from fosr.synth import profile_id
from fosr.topology._model import CLIENT_ROLES, Host, Role, Service, Topology

__all__ = [
    "BENCHMARK_RANGE",
    "IDENTITY_RESOLVER",
    "HostMap",
    "HostRoles",
    "describe_hosts",
]

Array = npt.NDArray[Any]

BENCHMARK_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
IDENTITY_RESOLVER = ipaddress.IPv4Address("198.18.0.53")
_DNS = frozenset({Service(17, 53), Service(6, 53)})
_INSIDE = tuple(
    ipaddress.IPv4Network(cidr)
    for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
)


@dataclass(frozen=True, eq=False)
class HostRoles:
    """What the model knows about its hosts, one row per address.

    ``is_client``: the host opens flows; ``is_server``: it answers them,
    on ``services``; ``is_inside``: it belongs to the local network (an
    RFC 1918 or link-local literal, or a label the caller declares).
    """

    is_client: Array
    is_server: Array
    is_inside: Array
    services: tuple[frozenset[Service], ...]

    def __len__(self) -> int:
        return len(self.is_client)


def describe_hosts(flows: FlowTable) -> tuple[Array, HostRoles]:
    """Return the addresses of ``flows`` (sorted) and what each one does.

    Services count TCP and UDP server ports.  IPv4 literals in RFC 1918 or
    link-local ranges are inside; the label ``DNS`` is inside (it stands for
    the site's resolver in CIDDS-001); other tokens are outside.
    """
    clients = np.asarray(flows.client, dtype=object)
    servers = np.asarray(flows.server, dtype=object)
    addresses = np.unique(np.concatenate([clients, servers]).astype(str))
    index = {address: i for i, address in enumerate(addresses)}
    n = len(addresses)
    is_client = np.zeros(n, bool)
    is_server = np.zeros(n, bool)
    is_client[[index[a] for a in set(clients.tolist())]] = True
    is_server[[index[a] for a in set(servers.tolist())]] = True

    # services: unique (server, proto, port) of TCP and UDP flows
    services: list[set[Service]] = [set() for _ in range(n)]
    proto = np.asarray(flows.proto)
    port = np.asarray(flows.server_port)
    ported = (proto == 6) | (proto == 17)
    keys = set(zip(servers[ported].tolist(), proto[ported], port[ported], strict=True))
    for server, p, q in keys:
        services[index[server]].add(Service(int(p), int(q)))

    inside = np.array([_is_inside(a) for a in addresses], bool)
    roles = HostRoles(is_client, is_server, inside, tuple(map(frozenset, services)))
    return addresses, roles


@dataclass(frozen=True, eq=False)
class HostMap:
    """Where each model address lands on the wire.

    Rows follow ``addresses`` (sorted, unique): ``ip`` (uint32), ``mac``
    ((n, 6) uint8), ``os_id`` (index into ``OS_PROFILES``), ``vlan``
    (802.1Q id or -1), ``name`` (DNS name or ``None``) and ``host`` (the
    declared host played, ``"outside"``, or ``""`` for an identity map).
    """

    addresses: Array
    ip: Array
    mac: Array
    os_id: Array
    vlan: Array
    name: tuple[str | None, ...]
    host: tuple[str, ...]

    @classmethod
    def build(
        cls,
        topology: Topology,
        addresses: Sequence[str] | Array,
        roles: HostRoles,
        seed: int = 0,
    ) -> HostMap:
        """Assign every model host to a host of ``topology``.

        ``roles`` has one row per entry of ``addresses``.  The result only
        depends on the inputs and ``seed``, not on the order of addresses.
        Raises ConfigError when the topology lacks what the model needs
        (hosts, or a gateway for outside hosts) and ValueError when
        ``roles`` and ``addresses`` differ in length.
        """
        return _Assigner(topology, addresses, roles, seed).run()

    @classmethod
    def identity(
        cls, addresses: Sequence[str] | Array, roles: HostRoles | None = None
    ) -> HostMap:
        """Keep IPv4 literals, give other tokens stable benchmark addresses.

        Tokens get an address in 198.18.0.0/15 from a hash of their text
        (linear probing on a collision); ``DNS`` gets 198.18.0.53.  The MAC
        is 02:00 followed by the address (locally administered), the OS a
        hash of the address over linux, windows and macos (linux for
        servers when ``roles`` says so), and no VLAN.
        """
        given = np.asarray(addresses, dtype=str)
        unique, first = np.unique(given, return_index=True)
        if roles is not None and (
            len(roles) != len(given) or len(unique) != len(given)
        ):
            raise ValueError("roles need one row per address, addresses unique")
        is_server = np.zeros(len(unique), bool)
        if roles is not None:
            is_server = roles.is_server[first]
        literal = {a: _ipv4(a) for a in unique}
        taken = {ip for ip in literal.values() if ip is not None}
        ips = np.zeros(len(unique), np.uint32)
        os_id = np.zeros(len(unique), np.int64)
        desktop = [profile_id(n) for n in ("linux", "windows", "macos")]
        for i, address in enumerate(unique):
            ip = literal[address]
            if ip is None:
                ip = _token_address(address, taken)
                taken.add(ip)
            ips[i] = ip
            os_id[i] = desktop[_hash(address) % 3]
            if is_server[i]:
                os_id[i] = profile_id("linux")
        mac = np.zeros((len(unique), 6), np.uint8)
        mac[:, 0] = 0x02
        mac[:, 2:] = ips.astype(">u4").view(np.uint8).reshape(-1, 4)
        n = len(unique)
        return cls(
            unique, ips, mac, os_id, np.full(n, -1, np.int16), (None,) * n, ("",) * n
        )

    def resolve(
        self, addresses: Sequence[str] | Array
    ) -> tuple[Array, Array, Array, Array]:
        """Return (ip uint32, mac (n, 6) uint8, os_id, vlan) per address.

        Raises KeyError naming the first address the map does not know.
        """
        rows = self.rows(addresses)
        return self.ip[rows], self.mac[rows], self.os_id[rows], self.vlan[rows]

    def names(self, addresses: Sequence[str] | Array) -> Array:
        """Return the DNS name (str or None) of each address, as an object array."""
        names = np.array(self.name + (None,), dtype=object)[:-1]
        return names[self.rows(addresses)]

    def rows(self, addresses: Sequence[str] | Array) -> Array:
        """Return the row of each address in this map (vectorised lookup)."""
        unique, inverse = np.unique(
            np.asarray(addresses, dtype=str), return_inverse=True
        )
        found = np.searchsorted(self.addresses, unique)
        found = np.minimum(found, max(len(self.addresses) - 1, 0))
        known = (
            self.addresses[found] == unique
            if len(self.addresses)
            else np.zeros(0, bool)
        )
        if len(unique) and not np.all(known):
            raise KeyError(f"address not in the host map: {unique[~known][0]!r}")
        return found[inverse.reshape(-1)]


class _Assigner:
    """Walk the model hosts once, placing each on the least-used candidate."""

    def __init__(
        self,
        topology: Topology,
        addresses: Sequence[str] | Array,
        roles: HostRoles,
        seed: int,
    ) -> None:
        addresses = np.asarray(addresses, dtype=str)
        if len(addresses) != len(roles):
            raise ValueError(
                f"{len(addresses)} addresses but {len(roles)} rows of roles"
            )
        if len(np.unique(addresses)) != len(addresses):
            raise ValueError("addresses must be unique")
        order = np.argsort(addresses, kind="stable")
        self.addresses = addresses[order]
        self.roles = HostRoles(
            roles.is_client[order],
            roles.is_server[order],
            roles.is_inside[order],
            tuple(roles.services[i] for i in order),
        )
        self.topology = topology
        self.rng = np.random.default_rng(seed)
        self.load = {host.name: 0 for host in topology.hosts}

    def run(self) -> HostMap:
        n = len(self.addresses)
        ip = np.zeros(n, np.uint32)
        mac = np.zeros((n, 6), np.uint8)
        os_id = np.zeros(n, np.int64)
        vlan = np.full(n, -1, np.int16)
        name: list[str | None] = [None] * n
        host: list[str] = [""] * n

        # inside hosts and DNS servers, in an order drawn from the seed
        roles = self.roles
        is_dns = np.array([bool(s & _DNS) for s in roles.services], bool)
        if self.topology.resolver is not None:
            placed = roles.is_inside | (roles.is_server & is_dns)
        else:
            placed = roles.is_inside.copy()
        inside = np.flatnonzero(placed)
        for i in self.rng.permutation(inside):
            chosen = self.place(int(i))
            network = self.topology.network(chosen.network)
            ip[i] = int(chosen.ip)
            mac[i] = np.frombuffer(chosen.mac, np.uint8)
            os_id[i] = profile_id(chosen.os)
            vlan[i] = network.vlan
            name[i] = f"{chosen.name}.{self.topology.domain}"
            host[i] = chosen.name

        # outside hosts: distinct drawn addresses behind the gateway
        outside = np.flatnonzero(~placed)
        if len(outside):
            gateway = self.gateway()
            ip[outside] = self.draw_outside(len(outside))
            mac[outside] = np.frombuffer(gateway.mac, np.uint8)
            os_id[outside] = profile_id(self.topology.outside.os)
            vlan[outside] = self.topology.network(gateway.network).vlan
            for i, label in zip(outside, self.outside_names(outside), strict=True):
                name[i] = label
                host[i] = "outside"
        return HostMap(self.addresses, ip, mac, os_id, vlan, tuple(name), tuple(host))

    def place(self, i: int) -> Host:
        hosts = self.topology.hosts
        if not hosts:
            raise ConfigError(f"{self.topology.source}: hosts: none declared")
        services = self.roles.services[i]
        candidates: Sequence[Host] = ()
        if self.roles.is_server[i] and services & _DNS and self.topology.resolver:
            candidates = [self.topology.host(self.topology.resolver)]
        elif self.roles.is_server[i]:
            scores = [len(services & host.services) for host in hosts]
            best = max(scores)
            if best > 0:
                candidates = [
                    h for h, s in zip(hosts, scores, strict=True) if s == best
                ]
            else:
                candidates = [h for h in hosts if h.role is Role.SERVER]
        else:
            candidates = [h for h in hosts if h.role in CLIENT_ROLES]
        if not candidates:
            candidates = hosts

        # least used first; ties broken by the seed
        least = min(self.load[h.name] for h in candidates)
        ties = [h for h in candidates if self.load[h.name] == least]
        chosen = ties[int(self.rng.integers(len(ties)))]
        self.load[chosen.name] += 1
        return chosen

    def gateway(self) -> Host:
        if self.topology.gateway is None:
            raise ConfigError(
                f"{self.topology.source}: hosts: the model has outside hosts "
                "but no host has role 'gateway' to carry their traffic"
            )
        return self.topology.host(self.topology.gateway)

    def draw_outside(self, k: int) -> Array:
        """Draw ``k`` addresses from the outside ranges, distinct while they last."""
        ranges = self.topology.outside.ranges
        sizes = np.array([r.num_addresses for r in ranges], np.int64)
        starts = np.array([int(r.network_address) for r in ranges], np.int64)
        total = int(sizes.sum())
        picks = self.rng.choice(total, size=min(k, total), replace=False)
        # more outside hosts than addresses: later ones share, in turn
        picks = np.resize(picks, k)
        bounds = np.cumsum(sizes)
        which = np.searchsorted(bounds, picks, side="right")
        offset = picks - (bounds[which] - sizes[which])
        return (starts[which] + offset).astype(np.uint32)

    def outside_names(self, rows: Array) -> list[str | None]:
        """Give outside servers the declared names, reusing them with a prefix."""
        names = self.topology.outside.names
        labels: list[str | None] = [None] * len(rows)
        servers = [j for j, i in enumerate(rows) if self.roles.is_server[i]]
        if not names:
            return labels
        shuffled = [names[k] for k in self.rng.permutation(len(names))]
        for n, j in enumerate(servers):
            base = shuffled[n % len(names)]
            labels[j] = base if n < len(names) else f"h{n // len(names)}-{base}"
        return labels


def _ipv4(text: str) -> int | None:
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def _is_inside(address: str) -> bool:
    if address == "DNS":
        return True
    ip = _ipv4(address)
    if ip is None:
        return False
    return any(ipaddress.IPv4Address(ip) in net for net in _INSIDE)


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest())


def _token_address(token: str, taken: set[int]) -> int:
    base = int(BENCHMARK_RANGE.network_address)
    size = BENCHMARK_RANGE.num_addresses
    if token == "DNS" and int(IDENTITY_RESOLVER) not in taken:
        return int(IDENTITY_RESOLVER)
    slot = _hash(token) % size
    while base + slot in taken or slot in (0, size - 1, 53):
        slot = (slot + 1) % size
    return base + slot
