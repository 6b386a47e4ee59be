"""Small coded tables with planted patterns, shared by the learner tests."""

from __future__ import annotations

import numpy as np

from fosr.flowmodel.codebook import Codebook, ColumnKind
from fosr.flowmodel.encoding import CodedTable

PROTO, CLIENT, SERVER, PORT = 0, 1, 2, 3
TCP, UDP = 0, 1
DNS_PORT, HTTPS_PORT = 0, 1
DNS_SERVER = 25
COLUMNS = ("proto", "client", "server", "server_port")


def planted_table(n_pairs: int = 200, n_noise: int = 600, seed: int = 0) -> CodedTable:
    """Return DNS queries each followed within 0.1 s by TCP/443 from the same
    client, among random noise flows, over one hour."""
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(n_pairs):
        start_s, client = rng.uniform(0, 3600), int(rng.integers(0, 20))
        server = int(rng.integers(20, 25))
        records.append((start_s, UDP, client, DNS_SERVER, DNS_PORT))
        records.append((start_s + rng.uniform(0.01, 0.1), TCP, client, server, 1))
    for _ in range(n_noise):
        records.append(
            (
                rng.uniform(0, 3600),
                int(rng.integers(0, 2)),
                int(rng.integers(0, 20)),
                int(rng.integers(20, 30)),
                int(rng.integers(1, 4)),
            )
        )
    records.sort()
    return coded(np.array(records))


def coded(records: np.ndarray) -> CodedTable:
    """Return the table of (start_s, proto, client, server, port) records."""
    origin_s = float(records[0, 0]) if len(records) else 0.0
    ticks = np.rint((records[:, 0] - origin_s) / 0.01).astype(np.int64)
    codes = np.ascontiguousarray(records[:, 1:].astype(np.int32))
    hosts = np.array([f"10.0.0.{i}" for i in range(30)], dtype=object)

    def book(name: str, values: list[int] | np.ndarray, address: bool) -> Codebook:
        column = COLUMNS.index(name)
        return Codebook(
            name=name,
            kind=ColumnKind.CATEGORICAL,
            is_address=address,
            values=np.asarray(values, dtype=object),
            edges=np.zeros(0),
            is_integer=False,
            counts=np.bincount(codes[:, column], minlength=len(values)),
        )

    books = (
        book("proto", [6, 17], False),
        book("client", hosts, True),
        book("server", hosts, True),
        book("server_port", [53, 443, 80, 22], False),
    )
    return CodedTable(
        codes=codes,
        ticks=ticks,
        columns=COLUMNS,
        codebooks=books,
        tick_s=0.01,
        origin_s=origin_s,
    )
