"""sd_notify: datagrams received on a real socket standing in for systemd."""

from __future__ import annotations

import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fosrd import notify
from fosrd.notify import Notifier


class Manager:
    """A DGRAM socket that plays the service manager."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(2.0)

    def receive(self) -> dict[str, str]:
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.split("\n"))


@pytest.fixture
def path_manager() -> Iterator[tuple[str, Manager]]:
    folder = tempfile.mkdtemp(prefix="fosrd-n-")
    address = os.path.join(folder, "notify")
    manager = Manager(address)
    yield address, manager
    manager.sock.close()
    os.unlink(address)
    os.rmdir(folder)


def test_ready_status_stopping_reach_the_manager(
    path_manager: tuple[str, Manager],
) -> None:
    address, manager = path_manager
    notifier = Notifier({"NOTIFY_SOCKET": address})
    assert notifier.is_enabled

    assert notifier.ready("emitting\n12 kpps")
    assert manager.receive() == {"READY": "1", "STATUS": "emitting 12 kpps"}
    assert notifier.status("ring 3/16")
    assert manager.receive() == {"STATUS": "ring 3/16"}
    assert notifier.extend_timeout(30_000_000)
    assert manager.receive() == {"EXTEND_TIMEOUT_USEC": "30000000"}
    assert notifier.stopping()
    assert manager.receive() == {"STOPPING": "1"}


def test_reloading_sends_the_monotonic_clock(
    path_manager: tuple[str, Manager],
) -> None:
    address, manager = path_manager
    notifier = Notifier({"NOTIFY_SOCKET": address})
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    message = manager.receive()
    assert message["RELOADING"] == "1"
    assert before <= int(message["MONOTONIC_USEC"]) <= after


def test_abstract_socket_address() -> None:
    name = f"fosrd-test-{uuid.uuid4().hex}"
    manager = Manager("\0" + name)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert manager.receive() == {"READY": "1"}
    finally:
        manager.sock.close()


def test_watchdog_follows_usec_and_pid(path_manager: tuple[str, Manager]) -> None:
    address, manager = path_manager
    mine = Notifier(
        {
            "NOTIFY_SOCKET": address,
            "WATCHDOG_USEC": "20000000",
            "WATCHDOG_PID": str(os.getpid()),
        }
    )
    assert mine.watchdog_timeout() == 20.0
    assert mine.watchdog_interval() == 10.0
    assert mine.watchdog()
    assert manager.receive() == {"WATCHDOG": "1"}

    # meant for another process, or not a number, or off: no pings
    for env in (
        {"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"},
        {"WATCHDOG_USEC": "soon"},
        {"WATCHDOG_USEC": "0"},
        {},
    ):
        other = Notifier({"NOTIFY_SOCKET": address, **env})
        assert other.watchdog_interval() is None
        assert not other.watchdog()
    manager.sock.settimeout(0.05)
    with pytest.raises(TimeoutError):
        manager.receive()


def test_unset_socket_makes_every_call_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.is_enabled
    assert not notifier.ready("x")
    assert not notifier.status("x")
    assert not notifier.reloading()
    assert not notifier.stopping()
    assert not notifier.watchdog()
    assert notifier.watchdog_interval() is None


def test_vanished_manager_is_logged_once_and_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert not notifier.status("a")
    assert not notifier.status("b")
    assert caplog.text.count("cannot notify the service manager") == 1


def test_unsupported_address_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notifier.is_enabled
    assert "not a Unix socket path" in caplog.text


def test_extend_timeout_needs_a_positive_value() -> None:
    with pytest.raises(ValueError, match="positive usec, not 0"):
        Notifier({}).extend_timeout(0)


def test_module_helpers_read_the_environment(
    path_manager: tuple[str, Manager], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, manager = path_manager
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.setattr(notify, "_default", None)
    assert notify.ready("up")
    assert manager.receive() == {"READY": "1", "STATUS": "up"}
    assert notify.watchdog_interval() == 2.0
    assert notify.watchdog()
    assert manager.receive() == {"WATCHDOG": "1"}
    monkeypatch.setattr(notify, "_default", None)
