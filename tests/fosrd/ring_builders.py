"""Chunks of synthetic traffic and capture checks for the ring and flow log tests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

from fosr.flows import FlowTable
from fosr.synth import FlowBatch, Frames, build_frames
from fosrd.outputs import Chunk

T0_NS = 1_700_000_000 * 10**9  # 2023-11-14 22:13:20 UTC


def udp_chunk(
    n_flows: int,
    *,
    start_ns: int = T0_NS,
    gap_ns: int = 10_000_000,
    payload: int | tuple[int, int] = 58,
    seed: int = 0,
    headroom_bytes: int = 0,
) -> Chunk:
    """Return a chunk of ``n_flows`` UDP request/response flows.

    Flow ``i`` starts at ``start_ns + i * gap_ns``; its response follows a
    quarter of the gap later.  ``payload`` is a size or a (low, high) range;
    58 bytes make 100-byte frames.  The flow table matches the frames,
    built with ``headroom_bytes`` of scratch space before each.
    """
    rng = np.random.default_rng(seed)
    sizes = (
        np.full(2 * n_flows, payload)
        if isinstance(payload, int)
        else rng.integers(payload[0], payload[1], 2 * n_flows)
    )
    first = start_ns + np.arange(n_flows, dtype=np.int64) * gap_ns
    ts_ns = np.stack([first, first + gap_ns // 4], axis=1).ravel()
    index = np.arange(n_flows)
    mac = np.zeros((n_flows, 6), np.uint8)
    mac[:, 0], mac[:, 4], mac[:, 5] = 2, index >> 8, index & 0xFF
    batch = FlowBatch(
        proto=np.full(n_flows, 17, np.uint8),
        client_ip=(0x0A000000 + 1 + index).astype(np.uint32),
        server_ip=np.full(n_flows, 0x0A010001, np.uint32),
        client_port=(20000 + index).astype(np.uint16),
        server_port=np.full(n_flows, 53, np.uint16),
        client_mac=mac,
        server_mac=mac[::-1].copy(),
        client_os=np.zeros(n_flows, np.uint8),
        server_os=np.zeros(n_flows, np.uint8),
        vlan=np.full(n_flows, -1, np.int16),
        offsets=np.arange(0, 2 * n_flows + 1, 2, dtype=np.int64),
        ts_ns=ts_ns,
        forward=np.tile([True, False], n_flows),
        tcp_flags=np.zeros(2 * n_flows, np.uint8),
        payload_len=sizes.astype(np.uint32),
    )
    frames = build_frames(batch, seed, headroom_bytes=headroom_bytes)
    lengths = sizes.reshape(n_flows, 2) + 42
    flows = FlowTable.from_columns(
        {
            "start": first / 1e9,
            "duration": np.full(n_flows, gap_ns / 4e9),
            "proto": np.full(n_flows, 17),
            "client": [f"10.0.{(i + 1) >> 8}.{(i + 1) & 0xFF}" for i in index],
            "client_port": 20000 + index,
            "server": ["10.1.0.1"] * n_flows,
            "server_port": np.full(n_flows, 53),
            "fwd_packets": np.ones(n_flows),
            "fwd_bytes": lengths[:, 0],
            "bwd_packets": np.ones(n_flows),
            "bwd_bytes": lengths[:, 1],
            "tcp_flags": np.zeros(n_flows),
            "state": ["SF"] * n_flows,
        }
    )
    return Chunk(frames, flows, int(frames.ts_ns[-1]) + 1)


def split_chunk(chunk: Chunk, parts: int) -> list[Chunk]:
    """Cut a chunk into ``parts`` chunks of consecutive frames and their flows."""
    frames, flows = chunk.frames, chunk.flows
    ids, first = np.unique(frames.flow - chunk.first_flow, return_index=True)
    first_at = np.full(len(flows), len(frames))
    first_at[ids] = first
    cuts = np.linspace(0, len(frames), parts + 1).astype(int)
    out = []
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        offsets = frames.offsets[lo : hi + 1]
        part = Frames(
            frames.data[offsets[0] : offsets[-1]],
            offsets - offsets[0],
            frames.ts_ns[lo:hi],
            frames.flow[lo:hi],
            frames.headroom_bytes,
        )
        rows = np.flatnonzero((first_at >= lo) & (first_at < hi))
        end_ns = int(frames.ts_ns[hi]) if hi < len(frames) else chunk.end_ns
        first_flow = chunk.first_flow + int(np.sum(first_at < lo))
        out.append(Chunk(part, flows.take(rows), end_ns, first_flow))
    return out


def tshark_times(path: Path) -> list[str]:
    """Return each packet's epoch time as tshark prints it; fail on any error."""
    run = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "frame.time_epoch"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, (path, run.returncode, run.stderr)
    complaints = [
        line for line in run.stderr.splitlines() if not line.startswith("Running as")
    ]
    assert not complaints, (path, complaints)
    return run.stdout.split()


def capinfos_counts(paths: list[Path]) -> list[int]:
    """Return the packet count capinfos gives for each file; fail on errors."""
    if not paths:
        return []
    run = subprocess.run(
        ["capinfos", "-c", "-M", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and not run.stderr, (paths, run.stderr)
    counts = [int(n) for n in re.findall(r"Number of packets:\s+(\d+)", run.stdout)]
    assert len(counts) == len(paths), run.stdout
    return counts


def capinfos_count(path: Path) -> int:
    """Return the packet count capinfos gives for ``path``; fail on errors."""
    return capinfos_counts([path])[0]


def ring_times(paths: list[Path], scratch: Path) -> list[str]:
    """Return the packet times of files read in turn: capinfos and tshark.

    capinfos checks every file; tshark reads them joined by mergecap (one
    tshark start instead of one per file, a second each).
    """
    capinfos_counts(paths)
    if len(paths) == 1:
        return tshark_times(paths[0])
    joined = scratch / "joined.pcapng"
    subprocess.run(
        ["mergecap", "-a", "-w", str(joined), *map(str, paths)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        return tshark_times(joined)
    finally:
        joined.unlink()


def capinfos_spans(paths: list[Path]) -> list[tuple[float, float]]:
    """Return (first, last) packet times of each file, by capinfos."""
    run = subprocess.run(
        ["capinfos", "-a", "-e", "-S", "-M", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and not run.stderr, (paths, run.stderr)
    first = re.findall(r"First packet time:\s+([\d.]+)", run.stdout)
    last = re.findall(r"Last packet time:\s+([\d.]+)", run.stdout)
    assert len(first) == len(last) == len(paths), run.stdout
    return [(float(a), float(b)) for a, b in zip(first, last, strict=True)]
