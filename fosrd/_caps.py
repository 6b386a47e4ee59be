"""Drop every Linux capability once the outputs are open.

The interface output needs CAP_NET_RAW only to open its AF_PACKET socket
(and CAP_NET_ADMIN only to create a veth pair or bring a link up); binding
the open socket again after the interface comes back needs neither.  So
once the outputs are open the daemon gives up all capabilities, permitted,
effective, inheritable and ambient, with ``capset(2)`` through libc: a flaw
in the control API or a model parser then cannot open raw sockets.

A process running as root keeps root's other powers (uid 0 owns the files
it can write); under systemd the unit runs fosrd as its own user with
ambient CAP_NET_RAW, which this drops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

__all__ = ["capabilities", "drop_capabilities"]

log = logging.getLogger(__name__)

_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def capabilities() -> dict[str, int]:
    """Return this process's capability sets as bit masks (from /proc)."""
    sets: dict[str, int] = {}
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith(("CapEff:", "CapPrm:", "CapInh:", "CapAmb:")):
                name, value = line.split(":")
                sets[name[3:].lower()] = int(value, 16)
    return sets


def drop_capabilities() -> bool:
    """Clear every capability set of the calling process (all its threads).

    Returns True when done, False (with a warning logged) when the kernel
    refused; the daemon runs on either way.  Affects the thread that calls
    it: call it before starting threads, or from the main thread of a
    process whose other threads hold no capability of their own.
    """
    libc = _libc()
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()  # all zero: no capability in any set
    if libc.capset(ctypes.byref(header), data) != 0:
        error = ctypes.get_errno()
        log.warning("could not drop capabilities: %s", os.strerror(error))
        return False
    log.info("dropped every capability: outputs are open")
    return True
