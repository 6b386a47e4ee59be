"""Network namespaces joined by a veth pair, and a capture on the peer."""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from dataclasses import dataclass

import pytest

ETH_P_ALL = 0x0003
# linux/socket.h and linux/if_packet.h; not in the socket module
SO_RCVBUFFORCE = 33
SOL_PACKET, PACKET_AUXDATA = 263, 8
TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = 0x10, 0x40
# struct tpacket_auxdata: status, len, snaplen, mac, net, vlan_tci, vlan_tpid
AUXDATA = struct.Struct("=IIIHHHH")


# capability bits (linux/capability.h) needed to make namespaces and links
# and to open packet sockets
NEEDED_CAPS = {"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21}


def require_netns() -> None:
    """Skip the calling test unless this process may create namespaces."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces and veth pairs")
    if not os.path.exists("/proc/self/ns/net"):
        pytest.skip("this kernel has no network namespaces")
    missing = [name for name, bit in NEEDED_CAPS.items() if not _has_cap(bit)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} to create network namespaces")


def _has_cap(bit: int) -> bool:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> bit & 1)
    return False


def quiet_namespace(ns: str) -> None:
    """Turn IPv6 off in ``ns``, so that its kernel sends nothing on its own.

    Without this, bringing a link up sends IPv6 router solicitations and
    MLD reports, which a capture would mix with the frames under test.
    """
    from pyroute2 import netns

    # /proc/sys/net shows the namespace of the thread that opens it
    netns.pushns(ns)
    try:
        for scope in ("all", "default"):
            path = f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6"
            if os.path.exists(path):
                with open(path, "w") as knob:
                    knob.write("1")
    finally:
        netns.popns()


@dataclass
class VethPair:
    """A veth pair from ``tx`` in namespace ``tx_ns`` to ``rx`` in ``rx_ns``."""

    tx_ns: str
    rx_ns: str
    tx: str
    rx: str

    def create_link(self) -> None:
        """Create the pair (again) and bring both ends up."""
        from pyroute2 import IPRoute

        with IPRoute(netns=self.tx_ns, flags=0) as ipr:
            peer = {"ifname": self.rx, "net_ns_fd": self.rx_ns}
            ipr.link("add", ifname=self.tx, kind="veth", peer=peer)
            ipr.link("set", index=ipr.link_lookup(ifname=self.tx)[0], state="up")
        with IPRoute(netns=self.rx_ns, flags=0) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=self.rx)[0], state="up")

    def delete_link(self) -> None:
        """Delete the pair (both ends go)."""
        from pyroute2 import IPRoute

        with IPRoute(netns=self.tx_ns, flags=0) as ipr:
            ipr.link("del", index=ipr.link_lookup(ifname=self.tx)[0])

    def set_tx_state(self, state: str) -> None:
        """Set the sending end "up" or "down"."""
        from pyroute2 import IPRoute

        with IPRoute(netns=self.tx_ns, flags=0) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=self.tx)[0], state=state)

    def shape_tx(self, rate: str = "8kbit", burst_bytes: int = 2000) -> None:
        """Shape the sending end with a token bucket: beyond a burst, frames drop."""
        from pyroute2 import IPRoute

        with IPRoute(netns=self.tx_ns, flags=0) as ipr:
            index = ipr.link_lookup(ifname=self.tx)[0]
            ipr.tc(
                "add",
                "tbf",
                index=index,
                handle=0x10000,
                rate=rate,
                burst=burst_bytes,
                latency="1ms",
            )


class Capture:
    """Receive the test's frames arriving on one interface of a namespace."""

    def __init__(self, ns: str, ifname: str) -> None:
        from pyroute2 import netns

        self._sock = netns.create_socket(
            ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL), flags=0
        )
        self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        self._sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        self._sock.bind((ifname, ETH_P_ALL))
        self._sock.setblocking(False)

    def receive(self, count: int, timeout_s: float = 3.0) -> list[bytes]:
        """Return the frames received, once ``count`` came or the time is up.

        After ``count`` frames it waits a little more, so that extra frames
        show up in the result instead of being missed.
        """
        frames: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if len(frames) >= count:
                left = min(left, 0.05)
            if left <= 0 or not select.select([self._sock], [], [], left)[0]:
                return frames
            frames.extend(self._drain())

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()

    def _drain(self) -> list[bytes]:
        frames: list[bytes] = []
        while True:
            try:
                data, ancillary, _, address = self._sock.recvmsg(65536, 64)
            except BlockingIOError:
                return frames
            data = _restore_vlan_tag(data, ancillary)
            if address[2] != socket.PACKET_OUTGOING:
                frames.append(data)


def _restore_vlan_tag(data: bytes, ancillary: list[tuple[int, int, bytes]]) -> bytes:
    """Put back the 802.1Q tag the receive path moved into the metadata.

    A veth (like most NICs) strips the tag on receive; the packet socket
    reports it in a PACKET_AUXDATA message, as libpcap reads it.
    """
    for level, kind, raw in ancillary:
        if level != SOL_PACKET or kind != PACKET_AUXDATA:
            continue
        status, _, _, _, _, tci, tpid = AUXDATA.unpack_from(raw)
        if not status & TP_STATUS_VLAN_VALID:
            continue
        if not status & TP_STATUS_VLAN_TPID_VALID:
            tpid = 0x8100
        return data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
    return data
