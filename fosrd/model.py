"""Load what the daemon runs: a model bundle, a topology, and the engine.

:func:`load_model` reads the bundle (the bundled default when no path is
given), the topology (or maps hosts back to their training addresses),
applies the configured time zone to the model's day, and returns a
:class:`LoadedModel` whose :meth:`LoadedModel.chunks` starts an engine at
any generated time.  Every fault is a :class:`fosr.errors.FosrError` with
the file and field (BundleError, ConfigError); nothing is swapped in
before all of it has loaded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from fosr.errors import ConfigError, ModelError
from fosr.model import TrafficModel, load_traffic_model
from fosr.packetmodel import PacketModel
from fosr.pipeline import Chunk, Engine
from fosr.topology import HostMap, HostRoles, load_topology

__all__ = ["DEFAULT_MODEL", "LoadedModel", "default_model_path", "load_model"]

DEFAULT_MODEL = "default.fosr"


def default_model_path() -> Path:
    """Return the path of the model bundled with fosrd."""
    return Path(str(resources.files("fosrd.data").joinpath(DEFAULT_MODEL)))


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready to generate, with the settings it was loaded with."""

    model: TrafficModel
    hosts: HostMap
    packets: PacketModel
    seed: int
    shard: int
    shards: int
    batch_s: float
    info: dict[str, Any]

    def chunks(self, start_s: float, *, rate_scale: float = 1.0) -> Iterator[Chunk]:
        """Return the engine's endless chunks from generated time ``start_s``."""
        sampler = self.model.flows.sampler(
            seed=self.seed, shard=self.shard, shards=self.shards, rate_scale=rate_scale
        )
        engine = Engine(
            sampler,
            self.packets,
            self.hosts,
            seed=self.seed,
            shard=self.shard,
            batch_s=self.batch_s,
        )
        return engine.chunks(start_s)


def load_model(
    path: str = "",
    *,
    topology: str = "",
    seed: int = 0,
    shard: int = 0,
    shards: int = 1,
    timezone: str = "",
    batch_s: float = 10.0,
) -> LoadedModel:
    """Load the bundle at ``path`` (empty: the bundled one) and a topology."""
    bundle = Path(path) if path else default_model_path()
    if not bundle.is_file():
        raise ConfigError(f"model.path = {str(bundle)!r}: no such model bundle")
    model = load_traffic_model(bundle)
    if timezone:
        flows = model.flows
        timing = dataclasses.replace(flows.timing, timezone=timezone)
        model = dataclasses.replace(
            model, flows=dataclasses.replace(flows, timing=timing)
        )
    addresses, roles = _hosts(model)
    if topology:
        hosts = HostMap.build(load_topology(topology), addresses, roles, seed=seed)
    else:
        hosts = HostMap.identity(addresses, roles)
    packets = model.packets
    if packets is None:
        packets = PacketModel(services={}, fallbacks={})
    info = dict(model.info)
    info["topology"] = topology or ""
    return LoadedModel(model, hosts, packets, seed, shard, shards, batch_s, info)


def _hosts(model: TrafficModel) -> tuple[Any, HostRoles]:
    """Return the model's hosts and roles; from its codebook when not stored."""
    if model.addresses is not None and model.roles is not None:
        return model.addresses, model.roles
    flows = model.flows
    if "client" not in flows.columns:
        raise ModelError(f"{model.path}: the flow model has no address column")
    book = flows.codebooks[flows.columns.index("client")]
    addresses = np.unique(np.asarray(book.values, dtype=str))
    n = len(addresses)
    # without a hosts part every host may open and answer flows
    roles = HostRoles(
        is_client=np.ones(n, bool),
        is_server=np.ones(n, bool),
        is_inside=np.zeros(n, bool),
        services=(frozenset(),) * n,
    )
    return addresses, roles
