"""Frames for the interface tests: small real flows built by fosr.synth."""

from __future__ import annotations

import numpy as np

from fosr.flows import FlowTable
from fosr.synth import FlowBatch, Frames, build_frames
from fosrd.outputs import Chunk


def make_frames(
    n_flows: int = 40,
    seed: int = 0,
    max_payload: int = 1400,
    headroom_bytes: int = 0,
) -> Frames:
    """Build the frames of ``n_flows`` small TCP, UDP and ICMP flows.

    Payloads stay at most ``max_payload`` bytes, so that every frame fits a
    1500-byte MTU; one flow in five is on VLAN 7, one in three is IPv6.
    ``headroom_bytes`` leaves scratch space before each frame.
    """
    rng = np.random.default_rng(seed)
    proto = np.array([6, 17, 1, 6, 17], np.uint8)[np.arange(n_flows) % 5]
    counts = np.where(proto == 6, 8, 2)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    n = int(offsets[-1])
    flow = np.repeat(np.arange(n_flows), counts)
    k = np.arange(n) - offsets[flow]
    tcp_flags = np.array([0x02, 0x12, 0x10, 0x18, 0x18, 0x11, 0x11, 0x10], np.uint8)
    flags = np.where(proto[flow] == 6, tcp_flags[np.minimum(k, 7)], 0)
    payload = rng.integers(0, max_payload + 1, n).astype(np.uint32)
    payload[(proto[flow] == 6) & ((k < 3) | (k > 4))] = 0
    base_ns = 1_700_000_000 * 10**9
    ts = base_ns + flow * 1_000_000 + k * 10_000
    return build_frames(
        FlowBatch(
            proto=proto,
            client_ip=(0x0A000001 + np.arange(n_flows)).astype(np.uint32),
            server_ip=(0x0A010001 + np.arange(n_flows)).astype(np.uint32),
            client_port=(40000 + np.arange(n_flows)).astype(np.uint16),
            server_port=np.full(n_flows, 40443, np.uint16),
            client_mac=rng.integers(0, 256, (n_flows, 6), dtype=np.uint8) & 0xFE,
            server_mac=rng.integers(0, 256, (n_flows, 6), dtype=np.uint8) & 0xFE,
            client_os=np.zeros(n_flows, np.uint8),
            server_os=np.ones(n_flows, np.uint8),
            vlan=np.where(np.arange(n_flows) % 5 == 4, 7, -1).astype(np.int16),
            offsets=offsets,
            ts_ns=ts.astype(np.int64),
            forward=k % 2 == 0,
            tcp_flags=flags.astype(np.uint8),
            payload_len=payload,
            ip_version=np.where(np.arange(n_flows) % 3 == 2, 6, 4).astype(np.uint8),
            client_ip6=_ip6(rng, n_flows),
            server_ip6=_ip6(rng, n_flows),
        ),
        seed=seed,
        headroom_bytes=headroom_bytes,
    )


def _ip6(rng: np.random.Generator, n: int) -> np.ndarray:
    """Return ``n`` random addresses of the documentation prefix 2001:db8::/32."""
    addresses = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    addresses[:, :4] = (0x20, 0x01, 0x0D, 0xB8)
    return addresses


def make_chunk(frames: Frames) -> Chunk:
    """Wrap ``frames`` in a chunk with no ground-truth flows."""
    end_ns = int(frames.ts_ns[-1]) + 1 if len(frames) else 0
    return Chunk(frames, FlowTable.empty(), end_ns)


def frame_list(frames: Frames) -> list[bytes]:
    """Return every frame's bytes, in order."""
    return [frames.frame(i) for i in range(len(frames))]
