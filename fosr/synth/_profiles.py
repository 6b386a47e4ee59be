"""Operating system profiles: what each OS writes into IP and TCP headers.

Values follow passive fingerprinting signatures, mainly p0f v3's ``p0f.fp``
(TCP SYN and SYN+ACK signatures ``ver:ittl:olen:mss:wsize,scale:olayout:
quirks:pclass``) and the defaults of current kernels:

- Linux 3.11+ (p0f ``*:64:0:*:mss*20,7:mss,sok,ts,nop,ws:df,id+:0``); Linux
  5.x advertises 64240 bytes (44 * 1460) in the SYN with scale 7.  The IP ID
  comes from a per-connection counter with a random start.
- Windows 7-11 (p0f ``*:128:0:*:8192,8:mss,nop,ws,nop,nop,sok:df,id+:0``);
  Windows 10 advertises 64240 with scale 8 and sends no timestamps by
  default.  The IP ID is one global counter per host.
- macOS / iOS (p0f ``*:64:0:*:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1:df,
  id+:0``).
- "iot": lwIP defaults (IP_DEFAULT_TTL 255, TCP_WND 4 * MSS = 5840, only the
  MSS option, no DF).  Chosen as a stand-in for small devices, not fitted to
  any capture.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["OS_PROFILES", "OsProfile", "profile_id"]

# option tokens, in the order an OS writes them
MSS, NOP, WS, SACK_PERM, TS, EOL = "mss", "nop", "ws", "sok", "ts", "eol"


@dataclass(frozen=True)
class OsProfile:
    """What one operating system writes into the headers it sends.

    ``ttl`` is the initial IPv4 TTL and IPv6 hop limit (each of these
    stacks uses one default for both: Linux and macOS 64, Windows 128,
    lwIP 255); ``df`` whether the Don't Fragment bit
    is set; ``syn_window`` the TCP window in SYN and SYN+ACK (never scaled,
    RFC 7323 section 2.2); ``window_bytes`` the receive window advertised
    after the handshake, scaled by ``wscale`` when both sides sent the
    window scale option; ``mss_bytes`` the MSS option value; ``syn_options``
    the option layout of a SYN; ``global_ip_id`` whether the IPv4 ID is one
    counter per host (Windows) rather than per connection (Linux).
    """

    name: str
    ttl: int
    df: bool
    syn_window: int
    window_bytes: int
    wscale: int
    mss_bytes: int
    syn_options: tuple[str, ...]
    global_ip_id: bool

    @property
    def has_timestamps(self) -> bool:
        """Say whether this OS offers TCP timestamps (RFC 7323) in its SYN."""
        return TS in self.syn_options

    def options_offered(self) -> frozenset[str]:
        """Return the option kinds (not NOPs or EOL) of this OS's SYN."""
        return frozenset(self.syn_options) - {NOP, EOL}


OS_PROFILES: tuple[OsProfile, ...] = (
    OsProfile(
        "linux", 64, True, 64240, 64256, 7, 1460, (MSS, SACK_PERM, TS, NOP, WS), False
    ),
    OsProfile(
        "windows",
        128,
        True,
        64240,
        262144,
        8,
        1460,
        (MSS, NOP, WS, NOP, NOP, SACK_PERM),
        True,
    ),
    OsProfile(
        "macos",
        64,
        True,
        65535,
        131072,
        6,
        1460,
        (MSS, NOP, WS, NOP, NOP, TS, SACK_PERM, EOL),
        False,
    ),
    OsProfile("iot", 255, False, 5840, 5840, 0, 1460, (MSS,), False),
)

_BY_NAME = {profile.name: i for i, profile in enumerate(OS_PROFILES)}


def profile_id(name: str) -> int:
    """Return the index in OS_PROFILES of the profile called ``name``.

    Raises ValueError for an unknown name.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(
            f"unknown OS profile {name!r}; known: {sorted(_BY_NAME)}"
        ) from None


@dataclass(frozen=True)
class OptionLayout:
    """The TCP option bytes of one kind of segment, with TSval's place.

    ``data`` is padded to a multiple of 4 bytes; ``ts_at`` is the offset of
    TSval in ``data`` (TSecr follows it), or -1 without timestamps.
    """

    data: bytes
    ts_at: int


def pack_options(
    tokens: tuple[str, ...], profile: OsProfile, mss_bytes: int | None = None
) -> OptionLayout:
    """Write the option ``tokens`` with ``profile``'s MSS and window scale.

    ``mss_bytes`` replaces the profile's MSS (IPv6 flows announce 20 less).
    """
    mss = profile.mss_bytes if mss_bytes is None else mss_bytes
    out = bytearray()
    ts_at = -1
    for token in tokens:
        if token == MSS:
            out += struct.pack("!BBH", 2, 4, mss)
        elif token == NOP:
            out.append(1)
        elif token == WS:
            out += struct.pack("!BBB", 3, 3, profile.wscale)
        elif token == SACK_PERM:
            out += b"\x04\x02"
        elif token == TS:
            ts_at = len(out) + 2
            out += b"\x08\x0a" + bytes(8)
        elif token == EOL:
            out.append(0)
    out += bytes(-len(out) % 4)
    return OptionLayout(bytes(out), ts_at)


def syn_ack_tokens(server: OsProfile, client: OsProfile) -> tuple[str, ...]:
    """Return the options of ``server``'s SYN+ACK to ``client``'s SYN.

    A server answers only the options the SYN offered (RFC 7323 sections
    2.2 and 3.2, RFC 2018 section 2); MSS is always sent.  A NOP run is
    kept when the option after it is kept.  Real stacks sometimes re-pad
    differently (Linux sends ``mss,nop,nop,sok,nop,ws`` without
    timestamps); we deviate knowingly and pad with EOL at the end instead.
    """
    offered = client.options_offered() | {MSS}
    tokens: list[str] = []
    pending: list[str] = []
    for token in server.syn_options:
        if token == NOP:
            pending.append(token)
        elif token == EOL or token in offered:
            tokens += pending + [token]
            pending = []
        else:
            pending = []
    return tuple(tokens)
