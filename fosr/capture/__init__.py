"""Read pcap and pcapng captures into a table of decoded IP packets.

The reader walks each file's records in Python and decodes the headers of
all frames of all files at once with numpy; see the ``_formats`` and
``_decode`` modules for how.  Supported: pcap (micro- and nanosecond, both
byte orders), pcapng (several sections and interfaces, EPB, SPB and the
obsolete Packet Block, if_tsresol, if_tsoffset); link types Ethernet (1),
Linux cooked v1 (113) and v2 (276), raw IP (101, 228, 229, and 12 and 14 as
old DLT_RAW values), BSD loopback (0, 108) and PPP (9, 50); 802.1Q and
802.1ad VLAN tags; IPv4 with options, IPv6 with hop-by-hop, routing,
fragment, destination options and AH headers; TCP, UDP, ICMP and ICMPv6.
"""

from fosr.capture._link import SUPPORTED_LINK_TYPES
from fosr.capture._reader import read_capture, read_captures
from fosr.capture._table import (
    PACKET_COLUMNS,
    PacketTable,
    ReadStats,
    format_address,
    format_addresses,
)

__all__ = [
    "PACKET_COLUMNS",
    "SUPPORTED_LINK_TYPES",
    "PacketTable",
    "ReadStats",
    "format_address",
    "format_addresses",
    "read_capture",
    "read_captures",
]
