"""Read a topology file (TOML) and check every field of it.

The file has four parts; docs/topology.md describes them field by field::

    [dns]        resolver = "HOST", domain = "lab.home.arpa"
    [[networks]] name, cidr, vlan?
    [[hosts]]    name, role, network, ip, os?, mac?, services?
    [outside]    ranges, names, os?

Validation is complete on load: an unknown key, a bad CIDR, an address
outside its network, a duplicate IP or MAC, an unknown OS profile or role
raises :class:`~fosr.errors.ConfigError` whose one-line message names the
file, the field (``hosts[2].ip``) and the offending value.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable
from typing import Any, TypeVar

from fosr.errors import ConfigError
from fosr.synth import OS_PROFILES
from fosr.topology._model import (
    ROLE_OUI,
    Host,
    Network,
    Outside,
    Role,
    Service,
    Topology,
)

__all__ = ["default_topology", "load_topology", "parse_topology"]

T = TypeVar("T")

_OS_NAMES = tuple(profile.name for profile in OS_PROFILES)
# the OS a host gets when its entry names none
_ROLE_OS = {
    Role.WORKSTATION: "windows",
    Role.SERVER: "linux",
    Role.IOT: "iot",
    Role.PRINTER: "iot",
    Role.RESOLVER: "linux",
    Role.GATEWAY: "linux",
}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_SERVICE = re.compile(r"^(tcp|udp)/(\d{1,5})$")

_TOP_KEYS = {"dns", "networks", "hosts", "outside"}
_DNS_KEYS = {"resolver", "domain"}
_NETWORK_KEYS = {"name", "cidr", "vlan"}
_HOST_KEYS = {"name", "role", "network", "ip", "os", "mac", "services"}
_OUTSIDE_KEYS = {"ranges", "names", "os"}


def load_topology(path: str | os.PathLike[str]) -> Topology:
    """Read and validate the topology file at ``path``.

    Raises ConfigError (naming the file and the field) when the file cannot
    be read, is not TOML, or declares something invalid.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as stream:
            text = stream.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{source}: cannot read topology: {error}") from error
    return parse_topology(text, source)


def default_topology() -> Topology:
    """Return the default lab topology shipped with the package.

    It is ``fosr/topology/default.toml`` (package data); the repository's
    ``conf/topology.toml`` is the same file, for users to copy and edit.
    """
    resource = importlib.resources.files("fosr.topology") / "default.toml"
    return parse_topology(resource.read_text("utf-8"), "<default topology>")


def parse_topology(text: str, source: str = "<string>") -> Topology:
    """Parse and validate topology TOML ``text``; ``source`` names it in errors."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML: {error}") from error
    except RecursionError:
        raise ConfigError(f"{source}: not valid TOML: nested too deeply") from None
    return _Reader(source).read(document)


class _Reader:
    """Validate one document, remembering the file name for messages."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, reason: str) -> ConfigError:
        return ConfigError(f"{self.source}: {field}: {reason}")

    def read(self, document: dict[str, Any]) -> Topology:
        self.check_keys(document, _TOP_KEYS, "top level")
        networks = self.read_networks(document.get("networks", []))
        hosts = self.read_hosts(document.get("hosts", []), networks)
        outside = self.read_outside(document.get("outside", {}), networks)
        dns = self.table(document.get("dns", {}), "dns")
        self.check_keys(dns, _DNS_KEYS, "dns")
        domain = self.value(dns, "domain", str, "dns", "lab.home.arpa")
        if not _is_dns_name(domain):
            raise self.fail("dns.domain", f"{domain!r} is not a DNS name")
        resolver = self.read_resolver(dns, hosts)
        gateways = [h.name for h in hosts if h.role is Role.GATEWAY]
        return Topology(
            networks=tuple(networks),
            hosts=tuple(hosts),
            outside=outside,
            resolver=resolver,
            gateway=gateways[0] if gateways else None,
            domain=domain,
            source=self.source,
        )

    # networks

    def read_networks(self, entries: Any) -> list[Network]:
        networks: list[Network] = []
        for i, entry in enumerate(self.array(entries, "networks")):
            where = f"networks[{i}]"
            entry = self.table(entry, where)
            self.check_keys(entry, _NETWORK_KEYS, where)
            name = self.name(entry, where, {n.name for n in networks})
            cidr = self.cidr(self.value(entry, "cidr", str, where), f"{where}.cidr")
            vlan = self.value(entry, "vlan", int, where, -1)
            if vlan != -1 and not 1 <= vlan <= 4094:
                raise self.fail(f"{where}.vlan", f"{vlan} is not a VLAN id 1-4094")
            for other in networks:
                if cidr.overlaps(other.cidr):
                    raise self.fail(
                        f"{where}.cidr",
                        f"{cidr} overlaps network {other.name!r} ({other.cidr})",
                    )
            networks.append(Network(name, cidr, vlan))
        return networks

    # hosts

    def read_hosts(self, entries: Any, networks: list[Network]) -> list[Host]:
        by_name = {n.name: n for n in networks}
        hosts: list[Host] = []
        ips: dict[ipaddress.IPv4Address, str] = {}
        macs: dict[bytes, str] = {}
        for i, entry in enumerate(self.array(entries, "hosts")):
            where = f"hosts[{i}]"
            entry = self.table(entry, where)
            self.check_keys(entry, _HOST_KEYS, where)
            name = self.name(entry, where, {h.name for h in hosts})
            where = f"hosts[{i}] ({name!r})"
            role = self.choice(entry, "role", Role, where)
            network = self.value(entry, "network", str, where)
            if network not in by_name:
                raise self.fail(
                    f"{where}.network",
                    f"{network!r} is not a declared network {sorted(by_name)}",
                )
            ip = self.ip(entry, where, by_name[network], ips)
            os_name = self.value(entry, "os", str, where, _ROLE_OS[role])
            if os_name not in _OS_NAMES:
                raise self.fail(
                    f"{where}.os", f"{os_name!r} is not one of {list(_OS_NAMES)}"
                )
            mac = self.mac(entry, where, role, name, macs)
            services = self.services(entry, where)
            ips[ip] = name
            macs[mac] = name
            hosts.append(Host(name, role, network, ip, mac, os_name, services))
        return hosts

    def ip(
        self,
        entry: dict[str, Any],
        where: str,
        network: Network,
        taken: dict[ipaddress.IPv4Address, str],
    ) -> ipaddress.IPv4Address:
        text = self.value(entry, "ip", str, where)
        field = f"{where}.ip"
        try:
            ip = ipaddress.IPv4Address(text)
        except ValueError:
            raise self.fail(field, f"{text!r} is not an IPv4 address") from None
        if ip not in network.cidr:
            raise self.fail(
                field, f"{ip} is outside network {network.name!r} ({network.cidr})"
            )
        if network.cidr.prefixlen < 31 and ip in (
            network.cidr.network_address,
            network.cidr.broadcast_address,
        ):
            raise self.fail(field, f"{ip} is the network or broadcast address")
        if ip in taken:
            raise self.fail(field, f"{ip} is already the address of {taken[ip]!r}")
        return ip

    def mac(
        self,
        entry: dict[str, Any],
        where: str,
        role: Role,
        name: str,
        taken: dict[bytes, str],
    ) -> bytes:
        text = self.value(entry, "mac", str, where, "")
        field = f"{where}.mac"
        if text:
            if not _MAC.match(text.lower()):
                raise self.fail(field, f"{text!r} is not a MAC aa:bb:cc:dd:ee:ff")
            mac = bytes.fromhex(text.replace(":", ""))
            if mac[0] & 1:
                raise self.fail(field, f"{text!r} is a multicast address")
        else:
            mac = generate_mac(role, name)
        if mac in taken:
            raise self.fail(
                field, f"{mac.hex(':')} is already the MAC of {taken[mac]!r}"
            )
        return mac

    def services(self, entry: dict[str, Any], where: str) -> frozenset[Service]:
        texts = self.array(entry.get("services", []), f"{where}.services")
        services = set()
        for j, text in enumerate(texts):
            match = _SERVICE.match(text) if isinstance(text, str) else None
            port = int(match.group(2)) if match else 0
            if match is None or not 1 <= port <= 65535:
                raise self.fail(
                    f"{where}.services[{j}]",
                    f"{text!r} is not a service like 'tcp/443' or 'udp/53'",
                )
            services.add(Service(6 if match.group(1) == "tcp" else 17, port))
        return frozenset(services)

    # outside and DNS

    def read_outside(self, entry: Any, networks: list[Network]) -> Outside:
        entry = self.table(entry, "outside")
        self.check_keys(entry, _OUTSIDE_KEYS, "outside")
        ranges = []
        texts = self.array(entry.get("ranges", []), "outside.ranges")
        for j, text in enumerate(texts):
            field = f"outside.ranges[{j}]"
            cidr = self.cidr(text, field)
            for network in networks:
                if cidr.overlaps(network.cidr):
                    raise self.fail(
                        field, f"{cidr} overlaps inside network {network.name!r}"
                    )
            ranges.append(cidr)
        if not ranges:
            raise self.fail("outside.ranges", "declare at least one range")
        names = self.array(entry.get("names", []), "outside.names")
        for j, name in enumerate(names):
            if not isinstance(name, str) or not _is_dns_name(name):
                raise self.fail(f"outside.names[{j}]", f"{name!r} is not a DNS name")
        os_name = self.value(entry, "os", str, "outside", "linux")
        if os_name not in _OS_NAMES:
            raise self.fail(
                "outside.os", f"{os_name!r} is not one of {list(_OS_NAMES)}"
            )
        return Outside(tuple(ranges), tuple(names), os_name)

    def read_resolver(self, dns: dict[str, Any], hosts: list[Host]) -> str | None:
        by_name = {h.name: h for h in hosts}
        default = [h.name for h in hosts if h.role is Role.RESOLVER]
        name = self.value(dns, "resolver", str, "dns", "")
        if not name:
            return default[0] if len(default) == 1 else None
        if name not in by_name:
            raise self.fail("dns.resolver", f"{name!r} is not a declared host")
        if Service(17, 53) not in by_name[name].services:
            raise self.fail("dns.resolver", f"host {name!r} does not offer udp/53")
        return name

    # typed access

    def check_keys(self, entry: dict[str, Any], known: set[str], where: str) -> None:
        for key in entry:
            if key not in known:
                raise self.fail(
                    where, f"unknown key {key!r}; expected one of {sorted(known)}"
                )

    def table(self, entry: Any, where: str) -> dict[str, Any]:
        if not isinstance(entry, dict):
            raise self.fail(where, f"expected a table, not {entry!r}")
        return entry

    def array(self, entry: Any, where: str) -> list[Any]:
        if not isinstance(entry, list):
            raise self.fail(where, f"expected an array, not {entry!r}")
        return entry

    def value(
        self,
        entry: dict[str, Any],
        key: str,
        kind: type[T],
        where: str,
        default: T | None = None,
    ) -> T:
        if key not in entry:
            if default is None:
                raise self.fail(f"{where}.{key}", "missing")
            return default
        value = entry[key]
        if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
            raise self.fail(f"{where}.{key}", f"{value!r} is not a {kind.__name__}")
        return value

    def choice(
        self, entry: dict[str, Any], key: str, kind: Callable[[str], T], where: str
    ) -> T:
        text = self.value(entry, key, str, where)
        try:
            return kind(text)
        except ValueError:
            known = [role.value for role in Role]
            raise self.fail(
                f"{where}.{key}", f"{text!r} is not one of {known}"
            ) from None

    def name(self, entry: dict[str, Any], where: str, taken: set[str]) -> str:
        name = self.value(entry, "name", str, where)
        if not _LABEL.match(name):
            raise self.fail(
                f"{where}.name", f"{name!r} is not a DNS label (a-z, 0-9, -)"
            )
        if name in taken:
            raise self.fail(f"{where}.name", f"{name!r} is declared twice")
        return name

    def cidr(self, text: Any, field: str) -> ipaddress.IPv4Network:
        if not isinstance(text, str):  # ipaddress takes 5 (or True) as 0.0.0.5/32
            raise self.fail(field, f"{text!r} is not a string")
        try:
            # TODO: IPv6 networks are refused until frames can carry IPv6
            # addresses end to end (FlowBatch holds uint32 addresses).
            return ipaddress.IPv4Network(text, strict=True)
        except (ValueError, TypeError) as error:
            raise self.fail(field, f"{text!r} is not an IPv4 CIDR: {error}") from None


def generate_mac(role: Role, name: str) -> bytes:
    """Return the MAC of host ``name``: the role's vendor prefix + a hash.

    The three low bytes come from the host name alone, so adding or
    reordering hosts in the file does not change the MACs of the others.
    """
    digest = hashlib.blake2b(name.encode(), digest_size=3).digest()
    return ROLE_OUI[role] + digest


def _is_dns_name(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return len(name) <= 253 and all(_LABEL.match(label) for label in labels)
