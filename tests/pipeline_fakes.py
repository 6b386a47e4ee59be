"""Small stand-ins for the engine's parts, for tests of the engine itself."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from fosr.flows.table import FlowTable


@dataclass(frozen=True)
class Sequences:
    offsets: Any
    forward: Any
    tcp_flags: Any
    payload_len: Any
    gap_ns: Any
    payload_class: Any
    adjusted: Any


class EvenPackets:
    """Forward packets first, then backward ones, gaps even over the duration.

    TCP flows get a handshake-free PSH/ACK on every packet; payload sizes
    are the flow's IP bytes less 40 (TCP) or 28 (UDP, ICMP) per packet.
    """

    def sample(self, flows: FlowTable, rng: np.random.Generator) -> Sequences:
        fwd = np.maximum(flows.fwd_packets.astype(np.int64), 1)
        bwd = flows.bwd_packets.astype(np.int64)
        n = fwd + bwd
        offsets = np.zeros(len(flows) + 1, np.int64)
        np.cumsum(n, out=offsets[1:])
        flow = np.repeat(np.arange(len(flows)), n)
        rank = np.arange(offsets[-1]) - offsets[flow]
        forward = rank < fwd[flow]
        header = np.where(flows.proto == 6, 40, 28)[flow]
        per_fwd = np.maximum(
            flows.fwd_bytes // fwd - np.where(flows.proto == 6, 40, 28), 0
        )
        per_bwd = np.maximum(
            flows.bwd_bytes // np.maximum(bwd, 1) - np.where(flows.proto == 6, 40, 28),
            0,
        )
        size = np.where(forward, per_fwd[flow], per_bwd[flow])
        del header
        step = (flows.duration * 1e9 / np.maximum(n - 1, 1)).astype(np.int64)
        gaps = np.where(rank == 0, 0, step[flow])
        return Sequences(
            offsets,
            forward,
            np.full(offsets[-1], 0x18, np.uint8),
            np.minimum(size, 1400).astype(np.int32),
            gaps,
            np.zeros(offsets[-1], np.uint8),
            np.zeros(len(flows), bool),
        )


class HashHosts:
    """Every name to 10.x.y.z by its hash; Linux, untagged."""

    def resolve(self, addresses: Any) -> tuple[Any, Any, Any, Any]:
        unique, inverse = np.unique(
            np.asarray(addresses, dtype=str), return_inverse=True
        )
        ips = np.array([0x0A000000 | (hash(a) & 0xFFFFFF) for a in unique], np.uint32)
        ip = ips[inverse]
        mac = np.zeros((len(ip), 6), np.uint8)
        mac[:, 0] = 0x02
        mac[:, 2:] = ip.view(np.uint8).reshape(-1, 4)
        return ip, mac, np.zeros(len(ip), np.int64), np.full(len(ip), -1, np.int64)


class ListFlows:
    """A flow sampler over a fixed table: batches cut it by start time."""

    def __init__(self, table: FlowTable) -> None:
        self.table = table

    def batches(self, start_s: float, batch_s: float) -> Iterator[FlowTable]:
        k = 0
        while True:
            lo, hi = start_s + k * batch_s, start_s + (k + 1) * batch_s
            keep = (self.table.start >= lo) & (self.table.start < hi)
            yield self.table.take(np.flatnonzero(keep))
            k += 1


def flow_table(n: int, start_s: float, span_s: float, seed: int = 0) -> FlowTable:
    """Return ``n`` TCP and UDP flows starting in ``[start_s, start_s + span_s)``."""
    rng = np.random.default_rng(seed)
    start = np.sort(start_s + rng.uniform(0, span_s, n))
    proto = rng.choice([6, 17], n)
    fwd = rng.integers(1, 6, n)
    bwd = rng.integers(0, 6, n)
    return FlowTable.from_columns(
        {
            "start": start,
            "duration": rng.uniform(0, 3.0, n),
            "proto": proto,
            "client": np.array([f"c{i % 7}" for i in range(n)], object),
            "client_port": rng.integers(32768, 60999, n),
            "server": np.array([f"s{i % 3}" for i in range(n)], object),
            "server_port": np.where(proto == 6, 443, 53),
            "fwd_packets": fwd,
            "fwd_bytes": fwd * 200,
            "bwd_packets": bwd,
            "bwd_bytes": bwd * 600,
            "tcp_flags": np.where(proto == 6, 0x18, 0),
            "state": np.array(["SF"] * n, object),
        }
    )
