"""A whole traffic model: the flow model, the packet model and the hosts.

One bundle (docs/bundle.md) carries all that generation needs:

- ``flow_model``: which flows happen, between whom, when (FlowChronicle);
- ``packet_model``: what the packets of each service look like (TADAM);
  absent from bundles learnt from flow records alone, whose flows then get
  packets from a protocol's generic automaton;
- ``hosts``: every host address of the model with its role (opens flows,
  answers them, and on which services; inside or outside the network), so
  that a topology can give each host a part to play.

:func:`load_traffic_model` reads and checks all parts and is what ``fosr
generate`` and ``fosrd`` call; :func:`save_traffic_model` writes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.bundle import Bundle, Field, Provenance, read_bundle, write_bundle
from fosr.flowmodel.store import StoredFlowModel, flow_model_members, flow_model_of
from fosr.packetmodel import PacketModel, load_packet_model, save_packet_model
from fosr.topology import HostRoles, Service

__all__ = [
    "HOSTS_PART",
    "TrafficModel",
    "hosts_of",
    "load_traffic_model",
    "save_traffic_model",
]

Array = npt.NDArray[Any]

HOSTS_PART = "hosts"
_HOSTS_KIND, _HOSTS_VERSION = "hosts", 1
_MAX_HOSTS = 1_000_000
_MAX_SERVICES = 1_000


@dataclass(frozen=True, eq=False)
class TrafficModel:
    """Every part of a model bundle, checked.

    ``packets`` is None for a bundle without a packet model, ``addresses``
    and ``roles`` are None for one without a hosts part (then hosts are
    described from the flow model's address codebook, as clients and
    servers of every service).  ``sha256`` is the digest of the file.
    """

    path: str
    sha256: str
    flows: StoredFlowModel
    packets: PacketModel | None
    addresses: Array | None
    roles: HostRoles | None
    provenance: Provenance
    fosr_version: str

    @property
    def info(self) -> dict[str, Any]:
        """Return a short JSON-ready description (metrics, status, logs)."""
        return {
            "name": os.path.basename(self.path),
            "path": self.path,
            "sha256": self.sha256,
            "version": self.fosr_version,
            "created": self.provenance.created.isoformat(),
            "patterns": len(self.flows.model.patterns),
            "services": (
                0 if self.packets is None else len(list(self.packets.automata()))
            ),
            "hosts": 0 if self.addresses is None else len(self.addresses),
        }


def save_traffic_model(
    path: str | os.PathLike[str],
    *,
    flows: tuple[Any, Any, Any],
    packets: PacketModel | None,
    hosts: tuple[Array, HostRoles] | None,
    provenance: Provenance,
) -> None:
    """Write a bundle at ``path`` atomically.

    ``flows`` is ``(learnt flow model, timing, coded table)`` as
    :func:`fosr.flowmodel.store.flow_model_members` takes them; ``hosts``
    is ``(addresses, roles)`` from :func:`fosr.topology.describe_hosts`.
    """
    documents: dict[str, Any] = {}
    arrays: dict[str, Array] = {}
    flow_model_members(*flows, documents, arrays)
    if packets is not None:
        save_packet_model(packets, documents, arrays)
    if hosts is not None:
        _save_hosts(*hosts, documents, arrays)
    write_bundle(path, documents=documents, arrays=arrays, provenance=provenance)


def load_traffic_model(path: str | os.PathLike[str]) -> TrafficModel:
    """Read every part of the bundle at ``path``; BundleError names the fault."""
    name = os.fspath(path)
    bundle = read_bundle(name)
    flows = flow_model_of(bundle)
    packets = load_packet_model(bundle)
    hosts = hosts_of(bundle)
    addresses, roles = hosts if hosts is not None else (None, None)
    return TrafficModel(
        path=name,
        sha256=bundle.sha256,
        flows=flows,
        packets=packets,
        addresses=addresses,
        roles=roles,
        provenance=bundle.provenance,
        fosr_version=bundle.fosr_version,
    )


def _save_hosts(
    addresses: Array,
    roles: HostRoles,
    documents: dict[str, Any],
    arrays: dict[str, Array],
) -> None:
    if HOSTS_PART in documents:
        raise ValueError("the bundle's members already hold 'hosts'")
    documents[HOSTS_PART] = {
        "kind": _HOSTS_KIND,
        "version": _HOSTS_VERSION,
        "addresses": [str(a) for a in addresses],
        "services": [
            sorted([s.proto, s.port] for s in services) for services in roles.services
        ],
    }
    arrays[f"{HOSTS_PART}.roles"] = np.stack(
        [roles.is_client, roles.is_server, roles.is_inside], axis=1
    ).astype(bool)


def hosts_of(bundle: Bundle) -> tuple[Array, HostRoles] | None:
    """Return the hosts part of a bundle, or None when it has none."""
    if HOSTS_PART not in bundle.parts:
        return None
    root: Field = bundle.fields(HOSTS_PART)
    root["kind"].as_str(choices=[_HOSTS_KIND])
    if root["version"].as_int() != _HOSTS_VERSION:
        raise root["version"].error(f"must be {_HOSTS_VERSION}")
    names = [f.as_str() for f in root["addresses"].as_list(max_len=_MAX_HOSTS)]
    if len(set(names)) != len(names) or names != sorted(names):
        raise root["addresses"].error("must be sorted and without repeats")
    n = len(names)
    services = []
    for f in root["services"].as_list(min_len=n, max_len=n):
        pairs = []
        for pair in f.as_list(max_len=_MAX_SERVICES):
            proto, port = pair.as_list(min_len=2, max_len=2)
            pairs.append(
                Service(proto.as_int(min=0, max=255), port.as_int(min=0, max=65535))
            )
        services.append(frozenset(pairs))
    flags = bundle.array(f"{HOSTS_PART}.roles", dtype=np.bool_, shape=(n, 3))
    roles = HostRoles(
        is_client=flags[:, 0].copy(),
        is_server=flags[:, 1].copy(),
        is_inside=flags[:, 2].copy(),
        services=tuple(services),
    )
    return np.array(names, dtype=str), roles
