"""The records of a topology: networks, hosts, services and the outside.

A :class:`Topology` is what a topology file declares, already validated:
every address, MAC and VLAN in it is one the generator may emit.  Nothing
here reads files; :mod:`fosr.topology._load` does.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

__all__ = [
    "ROLE_OUI",
    "CLIENT_ROLES",
    "Host",
    "Network",
    "Outside",
    "Role",
    "Service",
    "Topology",
]


class Role(enum.Enum):
    """What a host does on the network; decides which model hosts it plays."""

    WORKSTATION = "workstation"
    SERVER = "server"
    IOT = "iot"
    PRINTER = "printer"
    RESOLVER = "resolver"
    GATEWAY = "gateway"


# Roles whose hosts open connections: model clients are mapped onto them.
CLIENT_ROLES = frozenset({Role.WORKSTATION, Role.IOT})

# Vendor prefixes (IEEE OUIs, names as in Wireshark's manuf file) for MACs
# the topology file leaves out.  One typical vendor per role, chosen as
# illustration rather than measured from any network.
ROLE_OUI: dict[Role, bytes] = {
    Role.WORKSTATION: bytes.fromhex("00 14 22"),  # Dell Inc.
    Role.SERVER: bytes.fromhex("00 25 90"),  # Super Micro Computer
    Role.IOT: bytes.fromhex("24 0a c4"),  # Espressif Inc.
    Role.PRINTER: bytes.fromhex("00 1b 78"),  # Hewlett Packard
    Role.RESOLVER: bytes.fromhex("b8 27 eb"),  # Raspberry Pi Foundation
    Role.GATEWAY: bytes.fromhex("00 1a a1"),  # Cisco Systems
}


@dataclass(frozen=True, order=True)
class Service:
    """A transport service a host offers: ``proto`` (6 TCP, 17 UDP) and port."""

    proto: int
    port: int

    def __str__(self) -> str:
        return f"{'tcp' if self.proto == 6 else 'udp'}/{self.port}"


@dataclass(frozen=True)
class Network:
    """A local network: ``cidr`` (IPv4) and the 802.1Q ``vlan`` id or -1."""

    name: str
    cidr: ipaddress.IPv4Network
    vlan: int = -1


@dataclass(frozen=True)
class Host:
    """A declared host.

    ``os`` is the name of an entry of ``fosr.synth.OS_PROFILES``; ``mac`` is
    6 bytes (given, or generated from the role's vendor prefix and the host
    name); ``services`` are what it answers on.
    """

    name: str
    role: Role
    network: str
    ip: ipaddress.IPv4Address
    mac: bytes
    os: str
    services: frozenset[Service]


@dataclass(frozen=True)
class Outside:
    """The world beyond the gateway.

    Outside hosts of the model get addresses drawn from ``ranges`` and DNS
    names from ``names``; their frames carry the gateway's MAC.
    """

    ranges: tuple[ipaddress.IPv4Network, ...]
    names: tuple[str, ...]
    os: str = "linux"


@dataclass(frozen=True)
class Topology:
    """A validated topology: networks, hosts, the outside and the resolver.

    ``domain`` is the DNS suffix of inside hosts (``nas`` answers as
    ``nas.<domain>``); ``resolver`` and ``gateway`` name hosts, or are
    ``None`` when the file declares none.  ``source`` is the file it came
    from, for messages.
    """

    networks: tuple[Network, ...]
    hosts: tuple[Host, ...]
    outside: Outside
    resolver: str | None
    gateway: str | None
    domain: str
    source: str = "<memory>"

    def host(self, name: str) -> Host:
        """Return the host called ``name``; raise KeyError when undeclared."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def network(self, name: str) -> Network:
        """Return the network called ``name``; raise KeyError when undeclared."""
        for network in self.networks:
            if network.name == name:
                return network
        raise KeyError(name)
