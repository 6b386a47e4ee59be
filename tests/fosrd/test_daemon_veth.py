"""End to end: fosrd sends onto a veth in a namespace; the peer sees it all.

The daemon runs on a small model with two outputs at once, the interface
(one end of a veth pair, in a namespace the test made) and a pcap ring.
A capture on the peer end must receive exactly the frames the ring holds,
byte for byte and in order, and the ring's ground-truth flow log must
account for every one of them.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from daemon_model import learn_lab_model
from netns_lab import Capture, VethPair

from fosr.flows import read_flow_records
from fosrd.config import parse_config
from fosrd.daemon import Daemon

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return learn_lab_model(tmp_path_factory.mktemp("veth-model"))


def _ring_frames(folder: Path) -> list[bytes]:
    frames: list[bytes] = []
    for path in sorted(folder.glob("fosr_*.pcap")):
        data = path.read_bytes()
        at = 24
        while at + 16 <= len(data):
            caplen = struct.unpack_from("<I", data, at + 8)[0]
            frames.append(data[at + 16 : at + 16 + caplen])
            at += 16 + caplen
    return frames


def _five_tuple(frame: bytes) -> tuple[str, str, int] | None:
    at = 14
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == 0x8100:
        ethertype = struct.unpack_from("!H", frame, 16)[0]
        at = 18
    if ethertype != 0x0800:
        return None
    proto = frame[at + 9]
    a = socket.inet_ntoa(frame[at + 12 : at + 16])
    b = socket.inet_ntoa(frame[at + 16 : at + 20])
    return (min(a, b), max(a, b), proto)


@pytest.mark.asyncio
async def test_the_peer_receives_what_the_ring_records(
    veth: VethPair, open_capture: object, lab_model: Path, tmp_path: Path
) -> None:
    capture: Capture = open_capture(veth.rx_ns, veth.rx)  # type: ignore[operator]
    config = parse_config(
        {
            "model": {"path": str(lab_model), "seed": 5},
            "clock": {"speed": 300.0, "batch_s": 30.0, "lead_s": 0.5},
            "output": [
                {
                    "kind": "iface",
                    "name": "lab",
                    "interface": veth.tx,
                    "netns": veth.tx_ns,
                },
                {
                    "kind": "ring",
                    "name": "ring",
                    "directory": str(tmp_path / "ring"),
                    "max_file_bytes": 1 << 30,
                },
            ],
            "control": {"socket": str(tmp_path / "fosrd.sock")},
            "metrics": {"enabled": False},
        },
        source="test",
    )
    daemon = Daemon(config)
    task = asyncio.create_task(daemon.run())
    received: list[bytes] = []
    loop = asyncio.get_running_loop()
    for _ in range(12):  # about three seconds of traffic, drained as it comes
        received += await loop.run_in_executor(None, capture.receive, 1 << 30, 0.25)
    daemon.stop()
    assert await asyncio.wait_for(task, 10) == 0
    received += capture.receive(1 << 30, 0.5)

    ring = _ring_frames(tmp_path / "ring")
    iface = next(o for o in daemon.sinks if o.kind == "iface")
    assert iface.stats.packets == len(ring) > 100
    assert iface.stats.dropped_packets == 0
    assert received == ring  # every frame, byte for byte, in order

    # the ground truth accounts for every frame's hosts and protocol
    truth = read_flow_records(next((tmp_path / "ring").glob("fosr_*.csv")))
    flows = Counter(
        (min(c, s), max(c, s), int(p))
        for c, s, p in zip(
            truth.client.tolist(),
            truth.server.tolist(),
            truth.proto.tolist(),
            strict=True,
        )
    )
    assert all(_five_tuple(f) in flows for f in received)
    capinfos = subprocess.run(
        ["capinfos", "-c", *map(str, (tmp_path / "ring").glob("*.pcap"))],
        capture_output=True,
        text=True,
    )
    assert capinfos.returncode == 0, capinfos.stderr
