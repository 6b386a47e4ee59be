"""Tell systemd how the daemon is doing, without libsystemd.

The protocol (sd_notify(3)): one AF_UNIX datagram per message, sent to the
socket named by ``$NOTIFY_SOCKET``, holding newline-separated
``KEY=VALUE`` assignments.  A name starting with ``@`` is in Linux's
abstract namespace (the ``@`` stands for a leading NUL byte).  When the
variable is unset (not under systemd, or ``Type=simple``) every call does
nothing and returns False.

The daemon's sequence: :meth:`Notifier.extend_timeout` while a big model
loads, :meth:`Notifier.ready` once the model is loaded and every socket is
bound, :meth:`Notifier.status` now and then, :meth:`Notifier.watchdog` from
the loop that sees emission make progress (not from a free-running timer,
so a wedged sender gets restarted), :meth:`Notifier.reloading` then
:meth:`Notifier.ready` around a reload, and :meth:`Notifier.stopping` on the
way out.

A failure to notify is logged once and never raised: losing a status line
must not stop the traffic.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

__all__ = [
    "Notifier",
    "extend_timeout",
    "ready",
    "reloading",
    "status",
    "stopping",
    "watchdog",
    "watchdog_interval",
    "watchdog_timeout",
]

logger = logging.getLogger(__name__)


class Notifier:
    """A client of the service manager's notification socket.

    ``environ`` defaults to ``os.environ`` and is read once, here.  Each
    message goes out on a datagram socket opened for it, as libsystemd
    does: messages are seconds apart, and no descriptor stays open.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ

        # settings
        self.address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_usec = _watchdog_usec(env)

        # state
        self._failed = False

    @property
    def is_enabled(self) -> bool:
        """Say whether a service manager listens."""
        return self.address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=VALUE`` fields in one datagram; return whether it went.

        Keys are upper-cased; newlines inside values become spaces, as the
        protocol has no escaping.
        """
        if self.address is None:
            return False
        message = "\n".join(
            f"{key.upper()}={_one_line(str(value))}" for key, value in fields.items()
        )
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)  # a full queue must not stall the loop
                sock.sendto(message.encode(), self.address)
        except OSError as error:
            if not self._failed:
                logger.warning(
                    "cannot notify the service manager at %r: %s",
                    self.address,
                    error.strerror or error,
                )
            self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Say the daemon is up (or done reloading), with an optional status."""
        if status is None:
            return self.notify(READY=1)
        return self.notify(READY=1, STATUS=status)

    def status(self, text: str) -> bool:
        """Set the line ``systemctl status`` shows."""
        return self.notify(STATUS=text)

    def watchdog(self) -> bool:
        """Ping the watchdog; call it from the loop whose progress it vouches for."""
        if self.watchdog_usec is None:
            return False
        return self.notify(WATCHDOG=1)

    def watchdog_timeout(self) -> float | None:
        """Return the watchdog timeout in seconds, or None when it is off.

        Off also when ``$WATCHDOG_PID`` names another process.
        """
        return None if self.watchdog_usec is None else self.watchdog_usec / 1e6

    def watchdog_interval(self) -> float | None:
        """Return how often to ping, in seconds: half the timeout (sd_notify(3))."""
        timeout = self.watchdog_timeout()
        return None if timeout is None else timeout / 2

    def reloading(self, status: str | None = None) -> bool:
        """Say a reload started; ``MONOTONIC_USEC`` lets systemd match the READY.

        Without it, ``Type=notify-reload`` units wait for a READY newer than
        the reload request and ``systemctl reload`` can hang.
        """
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        if status is None:
            return self.notify(RELOADING=1, MONOTONIC_USEC=now_usec)
        return self.notify(RELOADING=1, MONOTONIC_USEC=now_usec, STATUS=status)

    def stopping(self, status: str | None = None) -> bool:
        """Say the daemon is shutting down."""
        if status is None:
            return self.notify(STOPPING=1)
        return self.notify(STOPPING=1, STATUS=status)

    def extend_timeout(self, usec: int) -> bool:
        """Ask for ``usec`` more microseconds to start, reload or stop."""
        if usec <= 0:
            raise ValueError(f"extend_timeout needs a positive usec, not {usec}")
        return self.notify(EXTEND_TIMEOUT_USEC=usec)


def _socket_address(name: str) -> str | None:
    if name.startswith("@"):
        return "\0" + name[1:]
    if name.startswith("/"):
        return name
    if name:
        # vsock:CID:PORT (systemd >= 254, for VMs) is not supported here
        logger.warning("ignoring NOTIFY_SOCKET=%r: not a Unix socket path", name)
    return None


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    text = env.get("WATCHDOG_USEC", "")
    if not text:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None  # meant for another process, e.g. our parent
    try:
        usec = int(text)
    except ValueError:
        logger.warning("ignoring WATCHDOG_USEC=%r: not an integer", text)
        return None
    return usec if usec > 0 else None


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


# --- module-level helpers, on a notifier built from os.environ -------------

_default: Notifier | None = None


def _notifier() -> Notifier:
    global _default
    if _default is None:
        _default = Notifier()
    return _default


def ready(status: str | None = None) -> bool:
    """Send READY=1 (see :meth:`Notifier.ready`)."""
    return _notifier().ready(status)


def status(text: str) -> bool:
    """Send STATUS= (see :meth:`Notifier.status`)."""
    return _notifier().status(text)


def watchdog() -> bool:
    """Send WATCHDOG=1 when the watchdog is on (see :meth:`Notifier.watchdog`)."""
    return _notifier().watchdog()


def watchdog_timeout() -> float | None:
    """Return the watchdog timeout in seconds, or None."""
    return _notifier().watchdog_timeout()


def watchdog_interval() -> float | None:
    """Return the watchdog ping interval in seconds, or None."""
    return _notifier().watchdog_interval()


def reloading(status: str | None = None) -> bool:
    """Send RELOADING=1 with MONOTONIC_USEC (see :meth:`Notifier.reloading`)."""
    return _notifier().reloading(status)


def stopping(status: str | None = None) -> bool:
    """Send STOPPING=1."""
    return _notifier().stopping(status)


def extend_timeout(usec: int) -> bool:
    """Send EXTEND_TIMEOUT_USEC=."""
    return _notifier().extend_timeout(usec)
