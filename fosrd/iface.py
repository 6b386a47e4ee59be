"""Send the generated frames out of a network interface.

How this works
--------------
:class:`InterfaceOutput` holds one long-lived ``AF_PACKET``/``SOCK_RAW``
socket bound to the interface (protocol 0, so it receives nothing) and
sends each chunk's frames as they are, in ``sendmmsg`` batches (see
:mod:`fosrd._sendmmsg`).  Frames go out unpadded: the kernel accepts any
frame of at least an Ethernet header, a veth delivers it as is, and a
physical NIC's driver pads it to the 60-byte minimum (IEEE 802.3 clause
4.2.3.3) on the wire.

The constructor checks the link with pyroute2: it exists (or is created as
one end of a veth pair when ``create_veth`` names the peer) and is up (or is
brought up when ``bring_up`` is set).  With ``netns`` the link and the
socket live in that named network namespace; the socket is made there by a
short-lived child process, so the calling thread never changes namespace.
The socket lives as long as the output: after a lost link it is bound
again by name, which needs no capability, so the daemon may drop
CAP_NET_RAW once the constructor returns and still recover.

Failures while sending fall in three classes, by errno:

========================  ==============================================
congestion                ``ENOBUFS`` (a qdisc or the driver dropped),
                          ``EAGAIN`` (the send buffer stayed full for
                          ``SEND_TIMEOUT_S``): sleep, doubling from
                          ``CONGESTION_PAUSE_S``, and resend the unsent
                          rest; after ``send_retries`` pauses in a row,
                          drop the rest of the chunk.
link lost                 ``ENXIO``, ``ENODEV`` (the interface is gone),
                          ``ENETDOWN`` (it is down), and any other errno:
                          drop the rest of the chunk, then whole chunks
                          until a rebind is due; the wait doubles from
                          ``rebind_backoff_s`` up to ``max_backoff_s`` with
                          every failed rebind or send, and starts over
                          once a send works.  A re-created interface of
                          the same name is picked up by the rebind.
bad frame                 ``EMSGSIZE`` (longer than the MTU), ``EINVAL``
                          (shorter than a header): drop that frame only.
========================  ==============================================

Each failed system call counts one error under its errno name; every frame
not sent counts in ``dropped_packets``.  :meth:`InterfaceOutput.emit` raises
nothing for any of this.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

from fosr.errors import ConfigError
from fosrd._sendmmsg import MAX_BATCH, FrameSender
from fosrd.outputs import Chunk, Output

__all__ = ["InterfaceOutput"]

Array = npt.NDArray[Any]

logger = logging.getLogger(__name__)

# linux/if_packet.h, linux/socket.h and linux/if.h: not in the socket module
SOL_PACKET = 263
PACKET_QDISC_BYPASS = 20
SO_SNDBUFFORCE = 32
IFF_UP = 0x1
IFNAMSIZ = 16

# Chosen, not tuned: short enough that a stalled device holds the sender
# thread for well under the scheduler's catch-up window, long enough to ride
# out a full transmit queue at gigabit rates.
SEND_TIMEOUT_S = 0.05
# Chosen, not tuned: the first pause after ENOBUFS; with the default eight
# retries the pauses of one stall add up to 25.5 ms before frames drop.
CONGESTION_PAUSE_S = 0.0001

CONGESTION = frozenset({errno.ENOBUFS, errno.EAGAIN})
BAD_FRAME = frozenset({errno.EMSGSIZE, errno.EINVAL})


class InterfaceOutput(Output):
    """Send frames out of interface ``ifname`` through a packet socket.

    ``qdisc_bypass`` hands frames straight to the driver
    (``PACKET_QDISC_BYPASS``): faster, but traffic shaping is skipped and a
    capture on ``ifname`` itself no longer sees them (capture on the peer
    or a switch mirror).  ``batch_packets`` (1-1024, default 256) frames go
    per system call.  ``netns`` names the network namespace of the link.
    ``create_veth`` names a peer: when ``ifname`` is missing, create the
    veth pair ``ifname``-``create_veth`` and bring both ends up.
    ``bring_up`` brings a down ``ifname`` up instead of refusing it.
    ``sndbuf_bytes`` sets the socket's send buffer (None keeps the kernel
    default).  ``send_retries`` bounds the pauses of a congested send,
    ``rebind_backoff_s`` and ``max_backoff_s`` the wait before binding
    again to a lost link.  ``clock`` and ``sleep`` (monotonic seconds) are for tests.
    ``stats.flows`` counts the flows of every chunk of which at least one
    frame went out.

    Raises ConfigError, naming the interface, when the namespace or the
    interface is missing, the interface is down, or the socket cannot be
    opened (no CAP_NET_RAW).  Needs CAP_NET_ADMIN to create or bring up a
    link.
    """

    kind = "iface"

    def __init__(
        self,
        name: str,
        ifname: str,
        *,
        qdisc_bypass: bool = False,
        batch_packets: int = 256,
        netns: str | None = None,
        create_veth: str | None = None,
        bring_up: bool = False,
        sndbuf_bytes: int | None = None,
        send_retries: int = 8,
        rebind_backoff_s: float = 0.1,
        max_backoff_s: float = 30.0,
        use_sendmmsg: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(name)
        if not 1 <= batch_packets <= MAX_BATCH:
            raise ConfigError(
                f"output {name!r}: batch_packets must be 1 to {MAX_BATCH}, "
                f"not {batch_packets}"
            )
        if not _is_valid_ifname(ifname):
            raise ConfigError(f"output {name!r}: bad interface name {ifname!r}")
        if send_retries < 0 or rebind_backoff_s <= 0 or max_backoff_s <= 0:
            raise ConfigError(
                f"output {name!r}: send_retries must be >= 0 and backoffs > 0"
            )

        # settings
        self.ifname = ifname
        self.netns = netns
        self.qdisc_bypass = qdisc_bypass
        self.sndbuf_bytes = sndbuf_bytes
        self.send_retries = send_retries
        self.rebind_backoff_s = rebind_backoff_s
        self.max_backoff_s = max_backoff_s
        self._clock = clock
        self._sleep = sleep
        self._log = _OutputLog(logger, {"output": name})

        # state
        self._sender = FrameSender(batch_packets, use_sendmmsg)
        self._sock: socket.socket | None = None
        self._closed = False
        self._is_bound = True
        self._is_link_up = True
        self._warned: set[str] = set()

        # timers
        self._backoff_s = rebind_backoff_s
        self._rebind_at = 0.0

        prepare_link(ifname, netns, create_veth=create_veth, bring_up=bring_up)
        try:
            self._sock = self._open_socket()
        except OSError as exc:
            raise ConfigError(
                f"output {name!r}: cannot open a packet socket on "
                f"{self._where()}: {exc.strerror or exc}"
            ) from exc
        self._log.info("sending on %s", self._where())

    def emit(self, chunk: Chunk) -> None:
        """Send every frame of ``chunk``; count what could not be sent.

        Raises ValueError only for a malformed ``chunk.frames`` (offsets
        outside its data), never for trouble with the link.
        """
        frames = chunk.frames
        n = len(frames)
        if self._closed:
            raise ValueError(f"output {self.name!r} is closed")
        if n == 0:
            return
        headroom = frames.headroom_bytes
        data, offsets = _checked_buffer(frames.data, frames.offsets, n, headroom)

        # after a lost link, drop whole chunks until a rebind is due
        if not self._is_bound and not self._try_rebind():
            self.stats.dropped_packets += n
            return

        sent = self._send_frames(data, offsets, n, headroom)
        self.stats.dropped_packets += n - sent
        if sent:
            self.stats.flows += len(chunk.flows)

    def close(self) -> None:
        """Close the socket; calling it twice is harmless."""
        if self._closed:
            return
        self._closed = True
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._log.info("closed %s", self._where())

    def status(self) -> dict[str, object]:
        """Return the counters, the interface and whether the link is usable."""
        out = super().status()
        out.update(
            ifname=self.ifname,
            netns=self.netns,
            qdisc_bypass=self.qdisc_bypass,
            link="up" if self._is_link_up else "down",
            batch_packets=self._sender.batch_packets,
            sendmmsg=self._sender.uses_sendmmsg,
        )
        return out

    # sending

    def _send_frames(self, data: Array, offsets: Array, n: int, headroom: int) -> int:
        """Send frames 0..n-1 in batches; return how many went out."""
        sock = self._sock
        assert sock is not None, "_send_frames needs an open socket"
        sent_total = 0
        first = 0
        pauses = 0
        while first < n:
            try:
                sent = self._sender.send(
                    sock, data, offsets, first, n - first, headroom
                )
            except OSError as exc:
                code = exc.errno or 0
                self._count_error(code)
                if code in CONGESTION and pauses < self.send_retries:
                    self._sleep(CONGESTION_PAUSE_S * 2**pauses)
                    pauses += 1
                    continue
                if code in CONGESTION:
                    break
                if code in BAD_FRAME:
                    first += 1
                    continue
                self._lose_link(exc)
                break

            # a send worked: the link is healthy again
            self.stats.packets += sent
            span = int(offsets[first + sent] - offsets[first])
            self.stats.bytes += span - sent * headroom
            sent_total += sent
            first += sent
            pauses = 0
            if not self._is_link_up:
                self._is_link_up = True
                self._backoff_s = self.rebind_backoff_s
                self._log.info("sending on %s again", self._where())
        return sent_total

    def _count_error(self, code: int) -> None:
        kind = errno.errorcode.get(code, f"errno{code}")
        self.stats.count_error(kind)
        if kind not in self._warned:
            self._warned.add(kind)
            self._log.warning(
                "sending on %s failed: %s (%s); counting and carrying on",
                self._where(),
                kind,
                os.strerror(code),
            )

    # binding again

    def _lose_link(self, exc: OSError) -> None:
        """Note a link-level error; schedule a rebind."""
        self._is_bound = False
        self._rebind_at = self._clock() + self._backoff_s
        log = self._log.warning if self._is_link_up else self._log.debug
        log(
            "lost %s (%s); dropping frames, binding again in %.2f s",
            self._where(),
            exc.strerror or exc,
            self._backoff_s,
        )
        self._is_link_up = False
        self._backoff_s = min(self._backoff_s * 2, self.max_backoff_s)

    def _try_rebind(self) -> bool:
        """Bind the socket to the interface again when due; return True if bound."""
        assert self._sock is not None, "the socket lives until close"
        if self._clock() < self._rebind_at:
            return False
        try:
            self._sock.bind((self.ifname, 0))
        except OSError as exc:
            self._count_error(exc.errno or 0)
            self._lose_link(exc)
            return False
        self._is_bound = True
        self._log.debug("bound to %s again", self._where())
        return True

    def _open_socket(self) -> socket.socket:
        """Open, tune and bind a packet socket on the interface."""
        if self.netns is None:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        else:
            # flags=0: never create the namespace (pyroute2 would by default)
            sock = netns.create_socket(
                self.netns, socket.AF_PACKET, socket.SOCK_RAW, 0, flags=0
            )
        try:
            timeout = struct.pack("@ll", 0, int(SEND_TIMEOUT_S * 1e6))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout)
            if self.qdisc_bypass:
                sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
            if self.sndbuf_bytes is not None:
                _set_sndbuf(sock, self.sndbuf_bytes)
            sock.bind((self.ifname, 0))
        except OSError:
            sock.close()
            raise
        return sock

    def _where(self) -> str:
        if self.netns is None:
            return f"interface {self.ifname!r}"
        return f"interface {self.ifname!r} in netns {self.netns!r}"


class _OutputLog(logging.LoggerAdapter[logging.Logger]):
    """Prefix every message with the output's name."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['output'] if self.extra else '?'}] {msg}", kwargs


def prepare_link(
    ifname: str,
    netns_name: str | None,
    *,
    create_veth: str | None = None,
    bring_up: bool = False,
) -> None:
    """Check that ``ifname`` exists and is up; create or bring it up if asked.

    Raises ConfigError naming the interface (and namespace) otherwise.
    """
    where = f"interface {ifname!r}"
    if netns_name is not None:
        where += f" in netns {netns_name!r}"
        if netns_name not in netns.listnetns():
            raise ConfigError(f"network namespace {netns_name!r} does not exist")
    try:
        with IPRoute(netns=netns_name, flags=0) as ipr:
            _prepare_link(ipr, ifname, where, create_veth, bring_up)
    except NetlinkError as exc:
        raise ConfigError(f"{where}: {exc.args[-1]} (netlink)") from exc
    except OSError as exc:
        raise ConfigError(f"{where}: {exc.strerror or exc}") from exc


def _prepare_link(
    ipr: Any, ifname: str, where: str, create_veth: str | None, bring_up: bool
) -> None:
    found = ipr.link_lookup(ifname=ifname)
    if not found and create_veth is None:
        raise ConfigError(f"{where} does not exist")
    if not found:
        assert create_veth is not None, "checked above"
        ipr.link("add", ifname=ifname, kind="veth", peer=create_veth)
        for end in (ifname, create_veth):
            ipr.link("set", index=ipr.link_lookup(ifname=end)[0], state="up")
        logger.info("created veth pair %s-%s", ifname, create_veth)
        return

    link = ipr.get_links(found[0])[0]
    if link["flags"] & IFF_UP:
        return
    if not bring_up:
        raise ConfigError(f"{where} is down (bring it up, or set bring_up)")
    ipr.link("set", index=found[0], state="up")
    logger.info("brought %s up", where)


def _is_valid_ifname(ifname: str) -> bool:
    """Return True for a name the kernel accepts (dev_valid_name)."""
    if not 0 < len(ifname) < IFNAMSIZ or ifname in (".", ".."):
        return False
    return not any(c in "/:" or c.isspace() for c in ifname)


def _set_sndbuf(sock: socket.socket, size: int) -> None:
    """Set the send buffer, beyond wmem_max when CAP_NET_ADMIN allows."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


def _checked_buffer(
    data: Array, offsets: Array, n: int, headroom: int = 0
) -> tuple[Array, Array]:
    """Return ``data`` as contiguous uint8 and ``offsets`` as int64, checked.

    The kernel reads the memory the offsets point at, so they must lie
    inside ``data`` and rise by at least ``headroom`` per frame.
    """
    data = np.ascontiguousarray(data, np.uint8)
    offsets = np.ascontiguousarray(offsets, np.int64)
    if len(offsets) != n + 1:
        raise ValueError(f"frames have {n} timestamps but {len(offsets)} offsets")
    if headroom < 0:
        raise ValueError(f"headroom_bytes must not be negative, not {headroom}")
    if offsets[0] < 0 or offsets[-1] > len(data) or np.any(np.diff(offsets) < headroom):
        raise ValueError("frame offsets must rise within the frame data")
    return data, offsets
