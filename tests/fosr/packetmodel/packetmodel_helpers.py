"""Hand-made automata and flow tables for the packet model tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from fosr.flows.table import FlowTable
from fosr.packetmodel import BINARY, EMPTY, Automaton, Symbol

# symbols of a small UDP-like automaton: forward data, backward data,
# backward empty
SMALL_SYMBOLS = (
    Symbol(True, 0, BINARY),
    Symbol(False, 0, BINARY),
    Symbol(False, 0, EMPTY),
)


def small_automaton() -> Automaton:
    """Return a 3-state automaton with loops, both directions and empty packets.

    State 0 is initial; 1 follows a forward packet, 2 a backward one.
    """
    src = np.array([0, 0, 1, 1, 1, 2, 2, 2], np.int64)
    dst = np.array([1, 2, 1, 2, 2, 1, 2, 2], np.int64)
    symbol = np.array([0, 1, 0, 1, 2, 0, 1, 2], np.int64)
    count = np.array([30.0, 5.0, 4.0, 10.0, 3.0, 6.0, 2.0, 1.0])
    n = len(src)
    mean = np.column_stack([np.full(n, 30.0), np.where(symbol == 2, 0.0, 200.0)])
    cov = np.tile(np.diag([25.0, 900.0]), (n, 1, 1))
    cov[symbol == 2, 1, 1] = 1e-6
    return Automaton(
        proto=17,
        symbols=SMALL_SYMBOLS,
        n_states=3,
        src=src,
        dst=dst,
        symbol=symbol,
        count=count,
        end_count=np.array([0.0, 8.0, 20.0]),
        mean=mean,
        cov=cov,
        size_lo=np.where(symbol == 2, 0, 150).astype(np.int64),
        size_hi=np.where(symbol == 2, 0, 250).astype(np.int64),
        n_examples=28,
    )


def flows(rows: list[dict[str, Any]]) -> FlowTable:
    """Return a flow table of ``rows``; missing columns get plain defaults."""
    n = len(rows)
    defaults: dict[str, Any] = {
        "start": 0.0,
        "duration": 1.0,
        "proto": 17,
        "client": "10.0.0.2",
        "client_port": 40000,
        "server": "10.0.0.9",
        "server_port": 9999,
        "fwd_packets": 1,
        "fwd_bytes": 100,
        "bwd_packets": 1,
        "bwd_bytes": 100,
        "tcp_flags": 0,
        "state": "SF",
    }
    columns: dict[str, Any] = {
        name: [row.get(name, value) for row in rows] for name, value in defaults.items()
    }
    columns["client"] = np.array(columns["client"], dtype=object)
    columns["server"] = np.array(columns["server"], dtype=object)
    columns["state"] = np.array(columns["state"], dtype=object)
    table = FlowTable.from_columns(columns)
    assert len(table) == n
    return table
