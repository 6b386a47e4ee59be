"""Tests of fosrd.iface: frames sent on one end of a veth arrive on the other.

Every test that sends makes its own pair of namespaces (the ``veth``
fixture) and checks what the peer received, byte for byte.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from iface_frames import frame_list, make_chunk, make_frames
from netns_lab import Capture, VethPair

from fosr.errors import ConfigError
from fosr.synth import Frames
from fosrd import _sendmmsg
from fosrd.iface import (
    CONGESTION_PAUSE_S,
    PACKET_QDISC_BYPASS,
    SOL_PACKET,
    InterfaceOutput,
    _checked_buffer,
)

OpenCapture = Callable[[str, str], Capture]


class FakeClock:
    """A monotonic clock the test moves by hand; records sleeps without sleeping."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


_opened: list[InterfaceOutput] = []


def make_output(pair: VethPair, clock: FakeClock | None = None, **kw: Any) -> Any:
    """Open an output on the sending end; closed after the test."""
    clock = clock or FakeClock()
    out = InterfaceOutput(
        "lab", pair.tx, netns=pair.tx_ns, clock=clock, sleep=clock.sleep, **kw
    )
    _opened.append(out)
    return out


@pytest.fixture(autouse=True)
def close_outputs() -> Iterator[None]:
    """Close every output a test opened, so no socket is left to the GC."""
    yield
    while _opened:
        _opened.pop().close()


# sending


@pytest.mark.root
@pytest.mark.parametrize(
    ("batch_packets", "use_sendmmsg"),
    [(256, True), (7, True), (1, True), (1024, True), (64, False)],
)
def test_emit_frames_arrive_byte_identical(
    veth: VethPair, open_capture: OpenCapture, batch_packets: int, use_sendmmsg: bool
) -> None:
    frames = make_frames(n_flows=60)
    capture = open_capture(veth.rx_ns, veth.rx)
    out = make_output(veth, batch_packets=batch_packets, use_sendmmsg=use_sendmmsg)

    out.emit(make_chunk(frames))

    expected = frame_list(frames)
    assert capture.receive(len(expected)) == expected
    assert out.stats.packets == len(frames) == 264
    assert out.stats.bytes == sum(map(len, expected))
    assert out.stats.dropped_packets == 0
    assert out.stats.errors == {}
    out.close()


@pytest.mark.root
@pytest.mark.parametrize("use_sendmmsg", [True, False])
def test_emit_skips_frame_headroom(
    veth: VethPair, open_capture: OpenCapture, use_sendmmsg: bool
) -> None:
    # frames built with room for pcap record headers before each
    frames = make_frames(n_flows=20, headroom_bytes=16)
    frames.data[frames.offsets[:-1]] = 0xEE  # scratch bytes must not go out
    capture = open_capture(veth.rx_ns, veth.rx)
    out = make_output(veth, batch_packets=16, use_sendmmsg=use_sendmmsg)

    out.emit(make_chunk(frames))

    expected = frame_list(frames)
    assert capture.receive(len(expected)) == expected
    assert out.stats.bytes == sum(map(len, expected))
    assert out.stats.bytes == len(frames.data) - 16 * len(frames)


@pytest.mark.root
def test_emit_sends_short_frames_unpadded(
    veth: VethPair, open_capture: OpenCapture
) -> None:
    # a TCP SYN without options is 54 bytes; a veth delivers it as is
    frame = bytes(range(12)) + b"\x08\x00" + bytes(40)
    frames = single_frames([frame, frame + b"\x01"])
    capture = open_capture(veth.rx_ns, veth.rx)
    out = make_output(veth)

    out.emit(make_chunk(frames))

    assert capture.receive(2) == [frame, frame + b"\x01"]


@pytest.mark.root
def test_emit_many_chunks_keeps_order(
    veth: VethPair, open_capture: OpenCapture
) -> None:
    chunks = [make_frames(n_flows=20, seed=seed) for seed in range(5)]
    capture = open_capture(veth.rx_ns, veth.rx)
    out = make_output(veth, batch_packets=64)

    for frames in chunks:
        out.emit(make_chunk(frames))

    expected = [f for frames in chunks for f in frame_list(frames)]
    assert capture.receive(len(expected)) == expected
    assert out.status()["packets"] == len(expected)


@pytest.mark.root
def test_status_reports_link_and_counters(veth: VethPair) -> None:
    frames = make_frames(n_flows=5)
    out = make_output(veth, qdisc_bypass=True, batch_packets=32)
    out.emit(make_chunk(frames))

    status = out.status()

    assert status["kind"] == "iface"
    assert status["name"] == "lab"
    assert status["ifname"] == veth.tx
    assert status["netns"] == veth.tx_ns
    assert status["link"] == "up"
    assert status["qdisc_bypass"] is True
    assert status["batch_packets"] == 32
    assert status["sendmmsg"] is True
    assert status["packets"] == len(frames)
    assert status["bytes"] == len(frames.data)
    assert status["dropped_packets"] == 0
    out.close()
    out.close()  # harmless twice


@pytest.mark.root
def test_sndbuf_is_set_beyond_wmem_max(veth: VethPair) -> None:
    out = make_output(veth, sndbuf_bytes=8 << 20)
    # the kernel doubles the value for its bookkeeping (socket(7))
    assert out._sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 16 << 20


# qdisc bypass and congestion


@pytest.mark.root
def test_qdisc_bypass_skips_shaping_qdisc(
    veth: VethPair, open_capture: OpenCapture
) -> None:
    # a token bucket on the sender drops most of a burst with ENOBUFS; with
    # the bypass the frames skip it and all arrive
    veth.shape_tx()
    frames = make_frames(n_flows=100)
    capture = open_capture(veth.rx_ns, veth.rx)
    out = make_output(veth, qdisc_bypass=True)
    sock = out._sock
    assert sock.getsockopt(SOL_PACKET, PACKET_QDISC_BYPASS) == 1

    out.emit(make_chunk(frames))

    assert capture.receive(len(frames)) == frame_list(frames)
    assert out.stats.errors == {}
    assert out.stats.dropped_packets == 0


@pytest.mark.root
def test_qdisc_bypass_hides_frames_from_a_sender_tap(
    veth: VethPair, open_capture: OpenCapture
) -> None:
    frames = make_frames(n_flows=10)
    peer = open_capture(veth.rx_ns, veth.rx)
    tap = open_capture(veth.tx_ns, veth.tx)
    out = make_output(veth, qdisc_bypass=True)

    out.emit(make_chunk(frames))

    assert peer.receive(len(frames)) == frame_list(frames)
    assert tap.receive(1, timeout_s=0.2) == []


@pytest.mark.root
def test_enobufs_from_qdisc_is_retried_then_dropped(
    veth: VethPair, open_capture: OpenCapture
) -> None:
    veth.shape_tx()
    frames = make_frames(n_flows=100)
    capture = open_capture(veth.rx_ns, veth.rx)
    clock = FakeClock()
    out = make_output(veth, clock, send_retries=3)

    out.emit(make_chunk(frames))

    # the fake sleep does not wait, so the bucket never refills: after the
    # burst, three pauses then the rest of the chunk is dropped
    s = out.stats
    assert 0 < s.packets < len(frames)
    assert s.dropped_packets == len(frames) - s.packets
    assert s.errors == {"ENOBUFS": 4}
    assert clock.sleeps == [CONGESTION_PAUSE_S * 2**k for k in range(3)]
    assert capture.receive(s.packets) == frame_list(frames)[: s.packets]
    assert out.status()["link"] == "up"


@pytest.mark.root
def test_enobufs_then_recovery_sends_everything(
    veth: VethPair, open_capture: OpenCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = make_frames(n_flows=40)
    capture = open_capture(veth.rx_ns, veth.rx)
    clock = FakeClock()
    out = make_output(veth, clock, batch_packets=50)
    real_send = _sendmmsg.FrameSender.send
    calls = {"n": 0}

    def flaky_send(self: Any, sock: Any, *args: Any) -> int:
        # fail the 2nd, 3rd and 5th calls
        calls["n"] += 1
        if calls["n"] in (2, 3, 5):
            raise OSError(errno.ENOBUFS, "No buffer space available")
        return real_send(self, sock, *args)

    monkeypatch.setattr(_sendmmsg.FrameSender, "send", flaky_send)
    out.emit(make_chunk(frames))

    assert capture.receive(len(frames)) == frame_list(frames)
    assert out.stats.errors == {"ENOBUFS": 3}
    assert out.stats.dropped_packets == 0
    # pauses double within a stall and start over after progress
    assert clock.sleeps == [1e-4, 2e-4, 1e-4]


@pytest.mark.root
def test_oversized_frame_is_dropped_alone(
    veth: VethPair, open_capture: OpenCapture
) -> None:
    good = bytes(range(12)) + b"\x08\x00" + bytes(100)
    big = bytes(range(12)) + b"\x08\x00" + bytes(3000)
    frames = single_frames([good, good, big, good])
    capture = open_capture(veth.rx_ns, veth.rx)
    out = make_output(veth)

    out.emit(make_chunk(frames))

    assert capture.receive(3) == [good, good, good]
    assert out.stats.errors == {"EMSGSIZE": 1}
    assert out.stats.dropped_packets == 1
    assert out.stats.packets == 3


# a vanished interface


@pytest.mark.root
def test_interface_removed_then_recreated_recovers(
    veth: VethPair, open_capture: OpenCapture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "fosrd.iface")
    clock = FakeClock()
    out = make_output(veth, clock, rebind_backoff_s=1.0, max_backoff_s=4.0)
    frames = make_frames(n_flows=10)
    out.emit(make_chunk(frames))
    assert out.stats.packets == len(frames)
    sock = out._sock

    # gone: the chunk is dropped and counted, the socket closed
    veth.delete_link()
    out.emit(make_chunk(frames))
    assert out.stats.errors == {"ENXIO": 1}
    assert out.stats.dropped_packets == len(frames)
    assert out.status()["link"] == "down"
    assert f"[lab] lost interface '{veth.tx}'" in caplog.text

    # before the rebind is due: dropped without trying
    clock.now += 0.5
    out.emit(make_chunk(frames))
    assert out.stats.errors == {"ENXIO": 1}
    assert out.stats.dropped_packets == 2 * len(frames)

    # due, still gone: the rebind fails and the next wait doubles
    clock.now += 0.6
    out.emit(make_chunk(frames))
    assert out.stats.errors == {"ENXIO": 1, "ENODEV": 1}
    clock.now += 1.9
    out.emit(make_chunk(frames))
    assert out.stats.errors == {"ENXIO": 1, "ENODEV": 1}
    assert out.stats.dropped_packets == 4 * len(frames)

    # re-created: sending resumes on the new link
    veth.create_link()
    capture = open_capture(veth.rx_ns, veth.rx)
    clock.now += 0.2
    out.emit(make_chunk(frames))
    assert capture.receive(len(frames)) == frame_list(frames)
    assert out.stats.packets == 2 * len(frames)
    assert out.status()["link"] == "up"
    assert out._backoff_s == 1.0
    # the same socket, bound again: no capability needed to recover
    assert out._sock is sock
    assert caplog.messages[-1].startswith(f"[lab] sending on interface '{veth.tx}'")
    assert caplog.messages[-1].endswith("again")


@pytest.mark.root
def test_interface_down_then_up_recovers(
    veth: VethPair, open_capture: OpenCapture
) -> None:
    clock = FakeClock()
    out = make_output(veth, clock, rebind_backoff_s=1.0)
    frames = make_frames(n_flows=10)

    veth.set_tx_state("down")
    out.emit(make_chunk(frames))
    assert out.stats.errors == {"ENETDOWN": 1}
    assert out.stats.dropped_packets == len(frames)

    veth.set_tx_state("up")
    capture = open_capture(veth.rx_ns, veth.rx)
    clock.now += 1.0
    out.emit(make_chunk(frames))
    assert capture.receive(len(frames)) == frame_list(frames)
    assert out.stats.packets == len(frames)


# configuration


@pytest.mark.root
def test_missing_interface_is_config_error(veth: VethPair) -> None:
    with pytest.raises(ConfigError, match="interface 'nosuch0' in netns .* does not"):
        InterfaceOutput("lab", "nosuch0", netns=veth.tx_ns)


def test_missing_host_interface_is_config_error() -> None:
    # only reads the host's links; sends nothing
    with pytest.raises(ConfigError, match="interface 'fosrnosuch0' does not exist"):
        InterfaceOutput("lab", "fosrnosuch0")


def test_missing_netns_is_config_error() -> None:
    with pytest.raises(ConfigError, match="'fosrt-nosuch' does not exist"):
        InterfaceOutput("lab", "eth0", netns="fosrt-nosuch")


@pytest.mark.root
def test_down_interface_is_config_error_unless_bring_up(
    veth: VethPair, open_capture: OpenCapture
) -> None:
    veth.set_tx_state("down")
    with pytest.raises(ConfigError, match=f"interface '{veth.tx}' .* is down"):
        make_output(veth)

    out = make_output(veth, bring_up=True)
    capture = open_capture(veth.rx_ns, veth.rx)
    frames = make_frames(n_flows=5)
    out.emit(make_chunk(frames))
    assert capture.receive(len(frames)) == frame_list(frames)


@pytest.mark.root
def test_create_veth_makes_a_pair(veth: VethPair, open_capture: OpenCapture) -> None:
    out = InterfaceOutput("lab", "fa0", netns=veth.tx_ns, create_veth="fa1")
    _opened.append(out)
    capture = open_capture(veth.tx_ns, "fa1")
    frames = make_frames(n_flows=5)

    out.emit(make_chunk(frames))

    assert capture.receive(len(frames)) == frame_list(frames)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ifname": ""}, "bad interface name"),
        ({"ifname": "x" * 16}, "bad interface name"),
        ({"ifname": "eth 0"}, "bad interface name"),
        ({"ifname": "a/b"}, "bad interface name"),
        ({"batch_packets": 0}, "batch_packets must be 1 to 1024"),
        ({"batch_packets": 2000}, "batch_packets must be 1 to 1024"),
    ],
)
def test_bad_settings_are_config_errors(kwargs: dict[str, Any], match: str) -> None:
    args = {"ifname": "eth0"} | kwargs
    with pytest.raises(ConfigError, match=match):
        InterfaceOutput("lab", **args)


# helpers without a network


def test_checked_buffer_refuses_offsets_outside_data() -> None:
    data = np.zeros(10, np.uint8)
    with pytest.raises(ValueError, match="within the frame data"):
        _checked_buffer(data, np.array([0, 5, 11]), 2)
    with pytest.raises(ValueError, match="within the frame data"):
        _checked_buffer(data, np.array([0, 6, 5]), 2)
    with pytest.raises(ValueError, match="3 offsets"):
        _checked_buffer(data, np.array([0, 5, 10]), 3)
    with pytest.raises(ValueError, match="within the frame data"):
        _checked_buffer(data, np.array([0, 5, 10]), 2, headroom=6)


class FakeSocket:
    """Records sends; raises an OSError from send number ``fail_at`` on."""

    def __init__(self, fail_at: int) -> None:
        self.sent: list[bytes] = []
        self.fail_at = fail_at

    def send(self, data: memoryview) -> int:
        if len(self.sent) >= self.fail_at:
            raise OSError(errno.ENOBUFS, "No buffer space available")
        self.sent.append(bytes(data))
        return len(data)


def test_send_fallback_stops_at_first_error() -> None:
    data = np.arange(30, dtype=np.uint8)
    offsets = np.array([0, 10, 20, 30], np.int64)
    sender = _sendmmsg.FrameSender(8, use_sendmmsg=False)

    sock: Any = FakeSocket(fail_at=2)
    assert sender.send(sock, data, offsets, 0, 3) == 2
    assert sock.sent == [bytes(range(10)), bytes(range(10, 20))]
    with pytest.raises(OSError, match="No buffer space"):
        sender.send(sock, data, offsets, 2, 1)


@pytest.mark.parametrize("batch", [0, 1025])
def test_frame_sender_refuses_bad_batch(batch: int) -> None:
    with pytest.raises(ValueError, match="batch_packets"):
        _sendmmsg.FrameSender(batch)


def single_frames(frames: list[bytes]) -> Frames:
    """Wrap hand-made frames in a Frames record."""
    offsets = np.cumsum([0] + [len(f) for f in frames]).astype(np.int64)
    return Frames(
        np.frombuffer(b"".join(frames), np.uint8).copy(),
        offsets,
        np.arange(len(frames), dtype=np.int64),
        np.zeros(len(frames), np.int64),
    )
