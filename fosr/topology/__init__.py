"""The network the generated traffic lives in.

A topology file (TOML) declares networks, hosts with roles, operating
systems, MACs, addresses and services, and the outside world.
:func:`load_topology` reads and validates one, :func:`default_topology`
returns the lab network shipped with the package, and :class:`HostMap`
maps the hosts of a traffic model onto a topology.
"""

from fosr.topology._hostmap import (
    BENCHMARK_RANGE,
    IDENTITY_RESOLVER,
    HostMap,
    HostRoles,
    describe_hosts,
)
from fosr.topology._load import (
    default_topology,
    generate_mac,
    load_topology,
    parse_topology,
)
from fosr.topology._model import (
    CLIENT_ROLES,
    ROLE_OUI,
    Host,
    Network,
    Outside,
    Role,
    Service,
    Topology,
)

__all__ = [
    "BENCHMARK_RANGE",
    "CLIENT_ROLES",
    "IDENTITY_RESOLVER",
    "ROLE_OUI",
    "Host",
    "HostMap",
    "HostRoles",
    "Network",
    "Outside",
    "Role",
    "Service",
    "Topology",
    "default_topology",
    "describe_hosts",
    "generate_mac",
    "load_topology",
    "parse_topology",
]
