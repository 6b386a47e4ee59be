"""Small flow tables for the evaluation tests, built by hand or by a toy model.

``toy_flows`` draws flows from a tiny model of an office network with real
dependencies between columns (DNS goes to the resolver over UDP with small
packets, web traffic to outside servers over TCP with bytes growing with
packets, NetBIOS to the broadcast address, unanswered), so that shuffling
its columns breaks something the metrics can see.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fosr.flows.table import FLOW_COLUMNS, FlowTable

# 2017-04-05 00:00:00 UTC, a Wednesday, as CIDDS-001's training week
T0 = 1_491_350_400.0

_DEFAULTS: dict[str, Any] = {
    "start": T0,
    "duration": 0.5,
    "proto": 6,
    "client": "192.168.1.10",
    "client_port": 50_000,
    "server": "192.168.1.1",
    "server_port": 443,
    "fwd_packets": 3,
    "fwd_bytes": 300,
    "bwd_packets": 2,
    "bwd_bytes": 200,
    "tcp_flags": 0x1B,
    "state": "SF",
}


def flows(*rows: dict[str, Any], **common: Any) -> FlowTable:
    """Return a table of the given rows; missing columns take defaults."""
    filled = [{**_DEFAULTS, **common, **row} for row in rows]
    return FlowTable.from_columns({c: [r[c] for r in filled] for c in FLOW_COLUMNS})


def toy_flows(
    n: int, seed: int, *, start: float = T0, span_s: float = 6 * 3600
) -> FlowTable:
    """Return n flows of the toy office network, ordered by start time.

    Six hours by default: the temporal metric's cost grows with the span.
    """
    rng = np.random.default_rng(seed)
    kind = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    web, dns, netbios = kind == 0, kind == 1, kind == 2
    clients = np.array([f"192.168.1.{i}" for i in range(10, 20)], dtype=object)
    outside = np.array([f"203.0.113.{i}" for i in range(1, 21)], dtype=object)

    server = np.where(web, outside[rng.integers(0, 20, n)], "192.168.1.1")
    server = np.where(netbios, "192.168.1.255", server)
    port = np.where(web, rng.choice([443, 80], n, p=[0.7, 0.3]), 53)
    port = np.where(netbios, 138, port)
    fwd_packets = np.where(web, rng.geometric(0.2, n) + 2, 1)
    bwd_packets = np.where(web, fwd_packets + rng.integers(0, 3, n), 1)
    bwd_packets = np.where(netbios, 0, bwd_packets)
    size = np.where(web, rng.uniform(60, 1400, n), rng.uniform(60, 90, n))
    fwd_bytes = np.round(fwd_packets * size).astype(np.int64)
    bwd_bytes = np.round(bwd_packets * np.where(dns, rng.uniform(90, 300, n), size))
    duration = np.where(web, fwd_packets * rng.exponential(0.2, n), 0.01)
    duration = np.where(netbios, 0.0, duration)
    table = FlowTable.from_columns(
        {
            "start": start + np.sort(rng.uniform(0, span_s, n)),
            "duration": duration,
            "proto": np.where(web, 6, 17),
            "client": clients[rng.integers(0, 10, n)],
            "client_port": rng.integers(32_768, 61_000, n),
            "server": server,
            "server_port": port,
            "fwd_packets": fwd_packets,
            "fwd_bytes": fwd_bytes,
            "bwd_packets": bwd_packets,
            "bwd_bytes": bwd_bytes.astype(np.int64),
            "tcp_flags": np.where(web, 0x1B, 0),
            "state": np.where(netbios, "S0", "SF"),
        }
    )
    return table


def shuffle_columns(table: FlowTable, seed: int) -> FlowTable:
    """Return the table with every column permuted on its own."""
    rng = np.random.default_rng(seed)
    columns = table.columns()
    return FlowTable.from_columns(
        {name: values[rng.permutation(len(values))] for name, values in columns.items()}
    )
