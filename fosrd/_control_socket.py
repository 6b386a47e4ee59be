"""The control socket's file and peers: binding it safely, who is calling.

The socket is bound with its mode and group set before it listens (until
``listen()`` a connect is refused, so there is no moment with the umask's
rights), a stale socket left by a dead daemon is replaced but nothing else
is, and the peer of a connection is described by the kernel
(``SO_PEERCRED``, plus ``SO_PEERGROUPS`` for its supplementary groups).
"""

from __future__ import annotations

import errno
import grp
import logging
import os
import platform
import socket
import stat
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fosr.errors import ConfigError

__all__ = [
    "MAX_SOCKET_PATH_BYTES",
    "PeerCredentials",
    "bind_socket",
    "peer_credentials",
    "resolve_group",
]

logger = logging.getLogger(__name__)

#: sun_path is 108 bytes on Linux, one of them the terminating NUL
MAX_SOCKET_PATH_BYTES = 107
#: SO_PEERGROUPS (Linux >= 4.13) is 59 in asm-generic/socket.h, which these
#: machines use; alpha, mips, parisc and sparc number it differently, so
#: elsewhere only the peer's primary gid is checked
_SO_PEERGROUPS = 59
_HAS_PEERGROUPS = platform.machine() in {
    "x86_64",
    "i386",
    "i686",
    "aarch64",
    "armv7l",
    "riscv64",
    "s390x",
    "ppc64le",
}


@dataclass(frozen=True)
class PeerCredentials:
    """Who is at the other end of a Unix socket, as the kernel says.

    ``groups`` holds the supplementary groups when the platform reports
    them (empty otherwise); ``gid`` is the primary one.
    """

    pid: int
    uid: int
    gid: int
    groups: frozenset[int] = frozenset()

    def is_allowed(self, uids: Iterable[int], gids: Iterable[int]) -> bool:
        """Say whether this peer is root, in ``uids``, or in one of ``gids``."""
        if self.uid == 0 or self.uid in set(uids):
            return True
        allowed_gids = set(gids)
        return self.gid in allowed_gids or bool(self.groups & allowed_gids)


def resolve_group(group: str | int) -> int:
    """Return the gid of a group name (or of a number given as text)."""
    if isinstance(group, int):
        return group
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        if group.isdigit():
            return int(group)
        raise ConfigError(f"control socket group {group!r} does not exist") from None


def bind_socket(path: Path, mode: int, gid: int | None) -> socket.socket:
    """Bind a listening-to-be socket at ``path`` with its rights already set."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise ConfigError(
            f"control socket path {path} is too long "
            f"({len(os.fsencode(path))} bytes, at most {MAX_SOCKET_PATH_BYTES})"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_socket(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError as error:
        raise ConfigError(f"control socket {path}: {_reason(error)}") from error

    # not listening yet: until listen(), connecting is refused, so nobody
    # gets in while the file still has the umask's rights
    try:
        sock.bind(os.fspath(path))
        os.chmod(path, mode)
        if gid is not None:
            os.chown(path, -1, gid)
    except OSError as error:
        sock.close()
        if error.errno != errno.EADDRINUSE:
            path.unlink(missing_ok=True)
        raise ConfigError(f"control socket {path}: {_reason(error)}") from error
    return sock


def _remove_stale_socket(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ConfigError(
            f"control socket {path} exists and is not a socket; not replacing it"
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(os.fspath(path))
    except (ConnectionRefusedError, FileNotFoundError):
        logger.info("removing stale control socket %s", path)
        path.unlink(missing_ok=True)
        return
    except OSError:
        pass  # a full backlog or a timeout: someone is there
    finally:
        probe.close()
    raise ConfigError(
        f"control socket {path} is in use: another fosrd is listening on it"
    )


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def peer_credentials(sock: socket.socket) -> PeerCredentials | None:
    """Return who is at the other end of the connected Unix socket ``sock``."""
    # struct ucred: pid_t pid, uid_t uid, gid_t gid
    size = struct.calcsize("iII")
    try:
        pid, uid, gid = struct.unpack(
            "iII", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, size)
        )
    except OSError:
        return None
    return PeerCredentials(pid, uid, gid, _peer_groups(sock))


def _peer_groups(sock: socket.socket) -> frozenset[int]:
    if not _HAS_PEERGROUPS:
        return frozenset()
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, _SO_PEERGROUPS, 4 * 256)
    except OSError:  # ERANGE beyond 256 groups, or an old kernel
        return frozenset()
    count = len(raw) // 4
    return frozenset(struct.unpack(f"{count}I", raw[: 4 * count]))
