"""Send many frames per system call on a packet socket.

The standard library has ``sendmsg`` but not ``sendmmsg(2)``, which hands the
kernel up to ``UIO_MAXIOV`` (1024) messages at once.  :class:`FrameSender`
calls it through ctypes.  Its ``struct mmsghdr`` and ``struct iovec`` arrays
are numpy arrays allocated once: every message points at its own iovec for
good, so sending a batch only writes the frames' addresses and lengths into
the iovecs, two vectorised assignments, and makes one call.  Frames are
never copied: the iovecs point into the caller's buffer.

Per-packet Python work, not the system call, bounds a Python sender once
calls are batched (PLATFORM.md section 2.2); this keeps it out of the loop.
Where libc has no ``sendmmsg`` (or when asked), the sender falls back to one
``socket.send`` per frame, with the same results.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["MAX_BATCH", "FrameSender", "has_sendmmsg"]

Array = npt.NDArray[Any]

#: the kernel's UIO_MAXIOV: sendmmsg sends at most this many messages per call
MAX_BATCH = 1024


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


def _load_sendmmsg() -> Any:
    """Return libc's sendmmsg as a ctypes function, or None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        function = libc.sendmmsg
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_SENDMMSG = _load_sendmmsg()


def has_sendmmsg() -> bool:
    """Return True when libc provides sendmmsg(2)."""
    return _SENDMMSG is not None


class FrameSender:
    """Send consecutive frames of one buffer, up to ``batch_packets`` per call.

    ``batch_packets`` is 1 to :data:`MAX_BATCH`.  ``use_sendmmsg`` False
    forces the one-``send``-per-frame fallback; None uses sendmmsg when libc
    has it.
    """

    def __init__(self, batch_packets: int, use_sendmmsg: bool | None = None) -> None:
        if not 1 <= batch_packets <= MAX_BATCH:
            raise ValueError(
                f"batch_packets must be 1 to {MAX_BATCH}, not {batch_packets}"
            )
        if use_sendmmsg and _SENDMMSG is None:
            raise ValueError("this libc has no sendmmsg")
        self.batch_packets = batch_packets
        self.uses_sendmmsg = _SENDMMSG is not None and use_sendmmsg is not False

        # message i always points at iovec i; only the iovecs change per call
        self._iov = np.zeros(batch_packets, np.dtype(_Iovec))
        self._msgs = np.zeros(batch_packets, np.dtype(_Mmsghdr))
        iov_at = self._iov.ctypes.data + np.arange(batch_packets) * self._iov.itemsize
        self._msgs["msg_hdr"]["msg_iov"] = iov_at
        self._msgs["msg_hdr"]["msg_iovlen"] = 1

    def send(
        self,
        sock: socket.socket,
        data: Array,
        offsets: Array,
        first: int,
        count: int,
        headroom_bytes: int = 0,
    ) -> int:
        """Send frames ``first`` to ``first + count - 1`` of ``data``; return how many.

        Frame ``i`` is ``data[offsets[i] + headroom_bytes : offsets[i + 1]]``
        (see :class:`fosr.synth.Frames`); ``data`` must be a C-contiguous
        uint8 array and ``offsets`` int64 within it (the caller checks, since
        the kernel reads the memory they point at).  At most
        ``batch_packets`` frames go per call.  The count returned is at least
        1; when the first frame cannot be sent, raise OSError with its errno.
        """
        count = min(count, self.batch_packets)
        if not self.uses_sendmmsg:
            return _send_each(sock, data, offsets, first, count, headroom_bytes)
        starts = offsets[first : first + count] + headroom_bytes
        iov = self._iov[:count]
        iov["iov_base"] = data.ctypes.data + starts
        iov["iov_len"] = offsets[first + 1 : first + count + 1] - starts
        while True:
            sent = int(_SENDMMSG(sock.fileno(), self._msgs.ctypes.data, count, 0))
            if sent >= 0:
                return sent
            code = ctypes.get_errno()
            if code != errno.EINTR:
                raise OSError(code, os.strerror(code))


def _send_each(
    sock: socket.socket,
    data: Array,
    offsets: Array,
    first: int,
    count: int,
    headroom_bytes: int,
) -> int:
    """Send frames one ``send`` at a time; stop at the first error after one."""
    view = data.data
    bounds = offsets[first : first + count + 1].tolist()
    for k in range(count):
        try:
            sock.send(view[bounds[k] + headroom_bytes : bounds[k + 1]])
        except OSError:
            if k == 0:
                raise
            return k
    return count
