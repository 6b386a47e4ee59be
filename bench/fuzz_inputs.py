"""Fuzz the input readers: bad files must load or give one clean FosrError.

Usage: ``.venv/bin/python bench/fuzz_inputs.py [--target T] [--cases N]
[--seed S] [--timeout-s T]``

``--target`` is ``capture`` (``fosr.capture.read_capture`` and
``read_captures``, pcap and pcapng), ``flows``
(``fosr.flows.readers.read_flow_records``: nfdump / CIDDS-001, UGR'16,
Zeek conn.log as TSV and JSON, fosr's own CSV), ``config``
(``fosrd.config.load_config``), ``topology``
(``fosr.topology.load_topology``) or ``all`` (the default).  Each target
runs ``--cases`` cases (10,000 by default), each a file written to a
scratch folder and then read by its path.  The cases start from valid
seeds made here (captures written with scapy, records in each format, the
repository's ``conf/fosrd.toml`` and ``conf/topology.toml``) and are
mutated: bits flipped, cut at record, block, line and field boundaries,
bytes inserted, deleted or duplicated, length fields set to edge values,
wrong magic, random junk, columns swapped, duplicated or dropped, bad
numbers, values of the wrong type, unknown keys, deep nesting, very long
strings, bytes that are not UTF-8.

A case passes when the file loads, or when the reader raises the target's
own error (InputError for captures and records, ConfigError for the
configuration and the topology) whose message is one line and names the
file.  Anything else is a failure: another exception, a FosrError of the
wrong family, a message on several lines or without the file's name, or a
read taking longer than ``--timeout-s`` (a hang).  A warning logged for a
cut capture is allowed and counted.  Prints one table row per target
(cases, loaded, loaded with a logged warning, failures, seconds taken, the
slowest case in milliseconds, clean errors by class), then the failures with
their tracebacks; exits with status 1 on any failure.  Reproducible: the
same seed gives the same cases.
"""

from __future__ import annotations

import argparse
import collections
import copy
import dataclasses
import datetime as dt
import gzip
import json
import logging
import math
import random
import signal
import struct
import sys
import tempfile
import time
import tomllib
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from fosr.capture import read_capture, read_captures
from fosr.errors import ConfigError, FosrError, InputError
from fosr.flows.readers import read_flow_records, write_flows_csv
from fosr.topology import load_topology
from fosrd.config import load_config

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("capture", "flows", "config", "topology")

Seed = tuple[str, bytes]  # (file suffix, content)
Mutator = Callable[[random.Random, Seed], Seed]
Loader = Callable[[Path, random.Random], object]

# numbers that sit on the edges of length fields, counts and ranges
EDGE_INTS = [
    0, 1, 2, 3, 4, 7, 8, 12, 16, 24, 28, 32, 0x7F, 0xFF, 0xFFFF, 0x10000,
    0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFF,
]  # fmt: skip
# texts that are bad numbers, times or addresses in a record cell
BAD_CELLS = [
    "", " ", "-", "NaN", "nan", "inf", "-inf", "Infinity", "-1", "-0", "1e309",
    "-1e309", "1e-400", "0x1F", "0b101", "1_000", "١٢٣", "18446744073709551616",
    "9" * 400, "1.2.3", "1,5", "3.", ".5", "1e5", "1.2 M", "1.2 G", "99999 T",
    "256.1.1.1", "::g", "1.2.3.4/24", "fe80::1%eth0", "2017-13-45 25:61:61",
    "2017-04-05T00:02:34Z", "1970-01-01 00:00:00", "9999-12-31 23:59:59.999",
    "0000-00-00", "TCP\x00", "\u2028", "\ufeff1", "x" * 5000, '"', '"a,b"',
]  # fmt: skip
# values of every TOML type, edge values and hostile strings
TOML_VALUES: list[Any] = [
    True, False, 0, -1, 1, 2**63 - 1, -(2**63), 0.0, -0.0, 1e308, math.nan,
    math.inf, -math.inf, 1.5, "", " ", "0640", "0999", "-1", "..", "../../etc",
    "/dev/null", "/proc/self/mem", "a/b", ".hidden", "\u00e9t\u00e9", "x" * 4096,
    "\x00", "\n", "\t", "\u202e", "192.168.1.300", "::1", "0.0.0.0/0",
    "tcp/99999", "udp/-1", "icmp/1", "Europe/Nowhere", "../../../../etc/passwd",
    "UTC", "a" * 300, [], [1, "a"], [[]], ["x"] * 200, {}, {"a": 1},
    dt.datetime(1979, 5, 27, 7, 32), dt.date(2024, 2, 29), dt.time(7, 32),
]  # fmt: skip


# ----------------------------------------------------------------- helpers


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """Flip, cut, insert, delete or duplicate bytes of ``data``."""
    damaged = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        action = rng.choice(["flip", "bit", "cut", "insert", "delete", "duplicate"])
        at = rng.randint(0, len(damaged))
        if action == "flip" and damaged:
            damaged[at % len(damaged)] ^= rng.randint(1, 255)
        elif action == "bit" and damaged:
            damaged[at % len(damaged)] ^= 1 << rng.randrange(8)
        elif action == "cut":
            del damaged[at:]
        elif action == "insert":
            damaged[at:at] = rng.randbytes(rng.randint(1, 32))
        elif action == "delete":
            del damaged[at : at + rng.randint(1, 32)]
        else:
            damaged[at:at] = damaged[at : at + rng.randint(1, 64)]
    return bytes(damaged)


def case_random_bytes(rng: random.Random, seed: Seed) -> Seed:
    return seed[0], rng.randbytes(rng.choice([0, 1, 3, 4, 23, 24, 28, 100, 4096]))


def case_damaged_bytes(rng: random.Random, seed: Seed) -> Seed:
    return seed[0], mutate_bytes(rng, seed[1])


def case_cut_anywhere(rng: random.Random, seed: Seed) -> Seed:
    return seed[0], seed[1][: rng.randint(0, len(seed[1]))]


def case_junk_appended(rng: random.Random, seed: Seed) -> Seed:
    return seed[0], seed[1] + rng.randbytes(rng.randint(1, 200))


def case_gzip(rng: random.Random, seed: Seed) -> Seed:
    # gzip files, whole or cut, or damaged inside the compressed stream
    packed = gzip.compress(seed[1], mtime=0)
    roll = rng.random()
    if roll < 0.4:
        packed = packed[: rng.randint(0, len(packed) - 1)]
    elif roll < 0.8:
        packed = mutate_bytes(rng, packed)
    return seed[0] + ".gz", packed


def pick_seed(rng: random.Random, seeds: Sequence[Seed]) -> Seed:
    return rng.choice(seeds)


# ----------------------------------------------------------------- captures


def capture_seeds(scratch: Path) -> list[Seed]:
    """Return small valid captures: pcap (us and ns, both orders) and pcapng."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
    from scapy.layers.l2 import Dot1Q, Ether
    from scapy.utils import PcapNgWriter, PcapWriter

    ether = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    options = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("WScale", 7)]
    packets = [
        ether / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="S", options=options),
        ether / Dot1Q(vlan=3) / IPv6() / UDP(sport=53, dport=5353) / b"ab",
        ether / IPv6() / IPv6ExtHdrFragment(m=1) / TCP(options=[("NOP", None)]),
        ether / IP(options=b"\x94\x04\x00\x00") / ICMP() / b"ping",
        ether / IP() / TCP(flags="PA") / (b"x" * 300),
    ]
    for i, packet in enumerate(packets):
        packet.time = 1_700_000_000 + i / 7
    seeds: list[Seed] = []
    path = scratch / "seed.pcap"
    for nano in (False, True):
        for endian in ("<", ">"):
            with PcapWriter(str(path), nano=nano, endianness=endian) as writer:
                writer.write(packets)
            seeds.append((".pcap", path.read_bytes()))
    with PcapNgWriter(str(path)) as ng_writer:
        ng_writer.write(packets)
    seeds.append((".pcapng", path.read_bytes()))
    return seeds


def pcap_records(data: bytes) -> list[int]:
    """Return the offsets of a valid pcap's record headers."""
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    offsets, at = [], 24
    while at + 16 <= len(data):
        offsets.append(at)
        (caplen,) = struct.unpack_from(order + "I", data, at + 8)
        at += 16 + caplen
    return offsets


def pcapng_blocks(data: bytes) -> list[int]:
    """Return the offsets of a valid little-endian pcapng's blocks."""
    offsets, at = [], 0
    while at + 12 <= len(data):
        offsets.append(at)
        (length,) = struct.unpack_from("<I", data, at + 4)
        at += length
    return offsets


def boundaries(seed: Seed) -> list[int]:
    starts = pcapng_blocks(seed[1]) if seed[0] == ".pcapng" else pcap_records(seed[1])
    return [0, 24, *starts, len(seed[1])]


def case_capture_cut_at_boundary(rng: random.Random, seed: Seed) -> Seed:
    at = rng.choice(boundaries(seed)) + rng.choice([-1, 0, 0, 1, 4, 8, 12, 15, 16])
    return seed[0], seed[1][: max(0, at)]


def case_capture_length_field(rng: random.Random, seed: Seed) -> Seed:
    # a record's caplen / origlen or a block's total length set to an edge value
    damaged = bytearray(seed[1])
    start = rng.choice(boundaries(seed)[2:-1])
    if seed[0] == ".pcapng":
        field = rng.choice([4, 4, 8, 12, 20, 24])  # length, then EPB fields
    else:
        field = rng.choice([0, 4, 8, 8, 12])  # ts, ts frac, caplen, origlen
    value = rng.choice([*EDGE_INTS, rng.randrange(0, len(damaged) + 64)])
    order: Literal["little", "big"] = (
        "big" if seed[1][:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d") else "little"
    )
    if start + field + 4 <= len(damaged):
        damaged[start + field : start + field + 4] = value.to_bytes(4, order)
    return seed[0], bytes(damaged)


def case_capture_header_field(rng: random.Random, seed: Seed) -> Seed:
    # magic, version, snaplen, link type, or the pcapng section header fields
    damaged = bytearray(seed[1])
    if seed[0] == ".pcapng" and rng.random() < 0.5:
        idb = boundaries(seed)[3]  # the interface description block
        at = idb + rng.choice([8, 10, 12, 16, 18, 20])  # link type, snaplen, opts
    else:
        at = rng.choice([0, 0, 4, 6, 8, 12, 16, 20])
    width = rng.choice([2, 4])
    value = rng.choice(
        [
            *EDGE_INTS,
            0xA1B2C3D4,
            0xD4C3B2A1,
            0xA1B23C4D,
            0x0A0D0D0A,
            0x1A2B3C4D,
            0x4D3C2B1A,
            rng.choice([1, 9, 12, 14, 50, 101, 105, 113, 127, 228, 229, 276]),
        ]
    )
    value &= (1 << (8 * width)) - 1
    if at + width <= len(damaged):
        damaged[at : at + width] = value.to_bytes(width, rng.choice(["little", "big"]))
    return seed[0], bytes(damaged)


def case_capture_wrong_magic(rng: random.Random, seed: Seed) -> Seed:
    magic = rng.choice(
        [b"", b"\x00\x00\x00\x00", b"PK\x03\x04", b"\x1f\x8b\x08\x00", b"GIF8",
         b"\xd4\xc3\xb2", b"\x0a\x0d\x0d\x0a", b"\xa1\xb2\xc3\xd4", rng.randbytes(4)]
    )  # fmt: skip
    return seed[0], magic + seed[1][4:]


def case_capture_pcapng_block(rng: random.Random, seed: Seed) -> Seed:
    # a block of a random or odd type spliced in, with a plausible length
    kind = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 0x0A0D0D0A, 0x80000001, 0xBAD])
    body = rng.randbytes(rng.choice([0, 1, 3, 4, 8, 20, 28, 64]))
    length = 12 + len(body)
    if rng.random() < 0.3:
        length = rng.choice(EDGE_INTS)
    block = struct.pack("<II", kind, length) + body + struct.pack("<I", length)
    ng = next(s for s in CAPTURE_SEEDS if s[0] == ".pcapng")[1]
    at = rng.choice(pcapng_blocks(ng)[1:] + [len(ng)])
    return ".pcapng", ng[:at] + block + ng[at:]


def case_capture_option(rng: random.Random, seed: Seed) -> Seed:
    # an interface description block with odd options (tsresol, tsoffset)
    code = rng.choice([0, 1, 2, 9, 9, 9, 14, 14, 0xFFFF])
    value = rng.randbytes(rng.choice([0, 1, 2, 8, 9, 300]))
    if code == 9 and rng.random() < 0.7:
        value = bytes([rng.choice([0, 6, 9, 19, 20, 63, 64, 0x80, 0x83, 0xBF, 0xFF])])
    declared = len(value) if rng.random() < 0.8 else rng.choice(EDGE_INTS) & 0xFFFF
    option = struct.pack("<HH", code, declared) + value + bytes(-len(value) % 4)
    body = struct.pack("<HHI", 1, 0, 0) + option + struct.pack("<HH", 0, 0)
    idb = (
        struct.pack("<II", 1, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))
    )
    ng = next(s for s in CAPTURE_SEEDS if s[0] == ".pcapng")[1]
    starts = pcapng_blocks(ng)
    return ".pcapng", ng[: starts[1]] + idb + ng[starts[2] :]


def load_capture(path: Path, rng: random.Random) -> object:
    roll = rng.random()
    if roll < 0.6:
        return read_capture(path, keep_payload=rng.random() < 0.3)
    if roll < 0.8:
        return read_capture(path, strict=True)
    return read_captures([path, path], skip_bad=rng.random() < 0.5)


# ----------------------------------------------------------------- flow records

NFDUMP = (
    "Date first seen,Duration,Proto,Src IP Addr,Src Pt,Dst IP Addr,Dst Pt,"
    "Packets,Bytes,Flows,Flags,Tos,class\n"
    "2017-04-05 00:02:34.321,0.003,TCP,192.168.220.16,43771,192.168.100.5,445,"
    "2,174,1,.AP.S.,0,normal\n"
    "2017-04-05 00:02:34.322,0.002,TCP  ,192.168.100.5,445,192.168.220.16,43771,"
    "2,1.2 M,1,.AP...,0,normal\n"
    "2017-04-05 00:03:00.000,0.0,ICMP,192.168.220.16,0,DNS,3.1,1,56,1,......,0,"
    "attacker\n"
    "2017-04-05 00:04:00.5,0.0,UDP,192.168.220.16,5353,10008_251,5353.0,1,147,1,"
    "......,32,normal\n"
)
UGR16_ROWS = (
    "2016-04-11 08:00:01,0.176,158.128.203.66,42.219.158.205,36334,80,TCP,"
    ".AP.SF,0,0,6,1770,background\n"
    "2016-04-11 08:00:01,0.170,42.219.158.205,158.128.203.66,80,36334,TCP,"
    ".AP.SF,0,0,5,4000,background\n"
    "2016-04-11 08:00:02,0.000,42.219.157.7,131.59.212.210,0,2048,ICMP,"
    ".A....,0,0,1,84,background\n"
)
UGR16 = "te,td,sa,da,sp,dp,pr,flg,fwd,stos,pkt,byt,lable\n" + UGR16_ROWS
ZEEK_FIELDS = (
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration "
    "orig_bytes resp_bytes conn_state local_orig local_resp missed_bytes history "
    "orig_pkts orig_ip_bytes resp_pkts resp_ip_bytes tunnel_parents"
).split()
ZEEK_ROWS = [
    "1591367999.305988\tC1\t192.168.4.76\t36844\t192.168.4.1\t53\tudp\tdns\t"
    "0.066851\t62\t141\tSF\t-\t-\t0\tDd\t2\t118\t2\t197\t-",
    "1591368000.000001\tC2\t192.168.4.76\t46378\t31.3.245.133\t80\ttcp\thttp\t"
    "0.254\t77\t295\tSF\t-\t-\t0\tShADadFf\t6\t397\t4\t511\t-",
    "1591368001.5\tC3\t192.168.4.76\t40000\t192.168.4.1\t22\ttcp\t-\t"
    "-\t-\t-\tREJ\t-\t-\t0\tSr\t1\t60\t1\t40\t-",
    "1591368002.25\tC4\tfe80::1\t128\tfe80::2\t0\ticmp\t-\t"
    "1.0\t16\t16\tOTH\t-\t-\t0\t-\t2\t208\t2\t208\t-",
]
ZEEK = "\n".join(
    [
        "#separator \\x09",
        "#set_separator\t,",
        "#empty_field\t(empty)",
        "#unset_field\t-",
        "#path\tconn",
        "#open\t2020-06-05-14-39-59",
        "#fields\t" + "\t".join(ZEEK_FIELDS),
        "#types\t" + "\t".join(["string"] * len(ZEEK_FIELDS)),
        *ZEEK_ROWS,
        "#close\t2020-06-05-14-40-00",
        "",
    ]
)


def zeek_json() -> str:
    lines = []
    for row in ZEEK_ROWS:
        record: dict[str, Any] = {}
        for name, value in zip(ZEEK_FIELDS, row.split("\t"), strict=True):
            if value != "-":
                record[name] = float(value) if name == "ts" else value
        lines.append(json.dumps(record))
    return "\n".join(lines) + "\n"


def flow_seeds(scratch: Path) -> list[Seed]:
    """Return records in every format, fosr's own written by its writer."""
    source = scratch / "seed.csv"
    source.write_text(NFDUMP)
    own = scratch / "own.csv"
    write_flows_csv(read_flow_records(source), own)
    texts = [NFDUMP, UGR16, UGR16_ROWS, ZEEK, zeek_json(), own.read_text()]
    return [(".csv", text.encode()) for text in texts]


def split_lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def separator_of(line: bytes) -> bytes:
    return b"\t" if b"\t" in line else b","


def case_flows_cut_at_boundary(rng: random.Random, seed: Seed) -> Seed:
    # cut at a line end, a separator, or inside a field
    data = seed[1]
    marks = [i for i, byte in enumerate(data) if byte in b"\n,\t"]
    at = rng.choice([0, *marks, len(data)]) + rng.choice([-1, 0, 0, 1])
    return seed[0], data[: max(0, at)]


def case_flows_bad_cell(rng: random.Random, seed: Seed) -> Seed:
    # one or more cells of data lines replaced by bad numbers, times, names
    lines = split_lines(seed[1])
    for _ in range(rng.randint(1, 3)):
        index = rng.randrange(len(lines))
        line = lines[index]
        if line.startswith(b"{"):  # a Zeek JSON line
            record = json.loads(line)
            key = rng.choice([*record, "ts", "proto", "x"])
            record[key] = rng.choice(
                [rng.choice(BAD_CELLS), None, [], {}, True, -1, 1e308, 2**70]
            )
            lines[index] = json.dumps(record).encode() + b"\n"
            continue
        separator = separator_of(line)
        cells = line.rstrip(b"\r\n").split(separator)
        cells[rng.randrange(len(cells))] = rng.choice(BAD_CELLS).encode()
        lines[index] = separator.join(cells) + b"\n"
    return seed[0], b"".join(lines)


def case_flows_columns(rng: random.Random, seed: Seed) -> Seed:
    # columns swapped, duplicated or dropped, in the header, the rows or both
    lines = split_lines(seed[1])
    header = next((i for i, line in enumerate(lines) if line.startswith(b"#fields")), 0)
    separator = separator_of(lines[header])
    width = len(lines[header].split(separator))
    action = rng.choice(["swap", "duplicate", "drop"])
    a, b = rng.randrange(width), rng.randrange(width)
    which = rng.choice(["header", "rows", "all"])
    for index, line in enumerate(lines):
        if line.startswith(b"#") and not line.startswith(b"#fields"):
            continue
        if (which == "header") != (index == header) and which != "all":
            continue
        cells = line.rstrip(b"\r\n").split(separator)
        if a >= len(cells) or b >= len(cells):
            continue
        if action == "swap":
            cells[a], cells[b] = cells[b], cells[a]
        elif action == "duplicate":
            cells.insert(b, cells[a])
        else:
            del cells[a]
        lines[index] = separator.join(cells) + b"\n"
    return seed[0], b"".join(lines)


def case_flows_lines(rng: random.Random, seed: Seed) -> Seed:
    # lines dropped, repeated, blanked, reordered, or made very long
    lines = split_lines(seed[1])
    action = rng.choice(["drop", "repeat", "blank", "shuffle", "long", "many"])
    index = rng.randrange(len(lines))
    if action == "drop":
        del lines[index]
    elif action == "repeat":
        lines.insert(index, lines[index])
    elif action == "blank":
        lines[index] = rng.choice([b"\n", b"\r\n", b" \n", b",,,,\n", b"\t\n"])
    elif action == "shuffle":
        rng.shuffle(lines)
    elif action == "long":
        filler = rng.choice([b"x", b"1", b",", b"\t", b'"'])
        lines.insert(index, filler * rng.choice([1000, 140_000, 300_000]) + b"\n")
    else:  # the last data line many times
        lines.extend([lines[-1]] * rng.choice([100, 2000]))
    return seed[0], b"".join(lines)


def case_flows_encoding(rng: random.Random, seed: Seed) -> Seed:
    # not UTF-8, a byte order mark, CR line ends, NUL bytes, other encodings
    data = seed[1]
    action = rng.choice(["latin1", "invalid", "bom", "crlf", "cr", "nul", "utf16"])
    if action == "latin1":
        data = data.replace(b"normal", b"norm\xe9l").replace(b"tcp", b"tc\xff")
    elif action == "invalid":
        at = rng.randint(0, len(data))
        data = data[:at] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80"]) + data[at:]
    elif action == "bom":
        data = b"\xef\xbb\xbf" + data
    elif action == "crlf":
        data = data.replace(b"\n", b"\r\n")
    elif action == "cr":
        data = data.replace(b"\n", b"\r")
    elif action == "nul":
        at = rng.randint(0, len(data))
        data = data[:at] + b"\x00" * rng.randint(1, 8) + data[at:]
    else:
        data = data.decode("utf-8").encode(rng.choice(["utf-16", "utf-32"]))
    return seed[0], data


def case_flows_zeek_header(rng: random.Random, seed: Seed) -> Seed:
    # Zeek's header lines damaged: separator, fields, path, unset markers
    lines = ZEEK.encode().splitlines(keepends=True)
    index = rng.randrange(8)
    replacements = [
        b"#separator \\x2c\n", b"#separator \\xZZ\n", b"#separator\n",
        b"#separator " + b"\\x09" * 50 + b"\n", b"#fields\n", b"#fields\tts\n",
        b"#fields\t" + b"\tts" * 3 + b"\n", b"#path\tdns\n", b"#unset_field\t\n",
        b"#empty_field\t-\n", b"#types\n", b"#\n", b"#close\n",
    ]  # fmt: skip
    lines[index] = rng.choice(replacements)
    if rng.random() < 0.3:
        lines.insert(rng.randrange(len(lines)), rng.choice(replacements))
    return ".log", b"".join(lines)


def load_flows(path: Path, rng: random.Random) -> object:
    roll = rng.random()
    if roll < 0.6:
        return read_flow_records(path)
    if roll < 0.8:
        return read_flow_records(path, skip_bad=True)
    if roll < 0.9:
        return read_flow_records(path, keep_labels={"normal", "background"})
    fmt = rng.choice(["nfdump", "ugr16", "zeek", "flows"])
    return read_flow_records(path, format=fmt, skip_bad=rng.random() < 0.5)


# ----------------------------------------------------------------- TOML files


def toml_key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)


def toml_value(value: Any) -> str:
    """Return ``value`` as an inline TOML value (no surrogates in strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"no TOML for {type(value).__name__}")


def dump_toml(document: dict[str, Any]) -> str:
    """Return ``document`` as TOML: tables, arrays of tables, inline values."""
    head, tail = [], []
    for key, value in document.items():
        if isinstance(value, dict) and value:
            tail.append(f"[{toml_key(key)}]")
            tail += [f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()]
        elif (
            isinstance(value, list)
            and value
            and all(isinstance(v, dict) and v for v in value)
        ):
            for table in value:
                tail.append(f"[[{toml_key(key)}]]")
                tail += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
        else:
            head.append(f"{toml_key(key)} = {toml_value(value)}")
    return "\n".join(head + tail) + "\n"


def random_toml_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.7:
        return copy.deepcopy(rng.choice(TOML_VALUES))  # cases edit what they get
    if roll < 0.85:
        return [random_toml_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {
        rng.choice(["name", "kind", "path", "x", "ip"]): random_toml_value(
            rng, depth + 1
        )
        for _ in range(rng.randint(0, 3))
    }


def case_toml_structure(rng: random.Random, seed: Seed) -> Seed:
    """Parse the seed, damage its structure, write it back as TOML."""
    document = tomllib.loads(seed[1].decode())
    for _ in range(rng.randint(1, 3)):
        target: Any = document
        while True:  # walk down to a random node
            keys = list(target) if isinstance(target, dict) else range(len(target))
            if not keys:
                break
            key = rng.choice(list(keys))
            child = target[key]
            if isinstance(child, dict | list) and child and rng.random() < 0.7:
                target = child
                continue
            action = rng.random()
            if isinstance(target, dict) and action < 0.15:
                del target[key]
            elif isinstance(target, dict) and action < 0.3:
                target["unknown_" + str(rng.randrange(9))] = random_toml_value(rng)
            elif isinstance(target, list) and action < 0.3:
                target.append(copy.deepcopy(rng.choice(target)))  # a duplicate
            else:
                target[key] = random_toml_value(rng)
            break
    try:
        text = dump_toml(document)
    except TypeError:
        text = seed[1].decode()
    return seed[0], text.encode()


def case_toml_deep(rng: random.Random, seed: Seed) -> Seed:
    # deep nesting of arrays or inline tables, as a new key or a known one
    depth = rng.choice([10, 100, 900, 1100, 5000, 50_000])
    if rng.random() < 0.5:
        value = "[" * depth + "]" * depth
    else:
        value = "{a = " * depth + "1" + "}" * depth
    key = rng.choice(["x", "model", "networks", "hosts", "output", "clock"])
    return seed[0], f"{key} = {value}\n".encode() + seed[1]


def case_toml_text(rng: random.Random, seed: Seed) -> Seed:
    # the text damaged: a line dropped or repeated, bytes not UTF-8, a long key
    lines = split_lines(seed[1])
    index = rng.randrange(len(lines))
    action = rng.choice(["drop", "repeat", "invalid", "long", "nul", "bom"])
    if action == "drop":
        del lines[index]
    elif action == "repeat":
        lines.insert(index, lines[index])
    elif action == "invalid":
        lines.insert(index, b'name = "\xff\xfe"\n')
    elif action == "long":
        lines.insert(index, b"k" * rng.choice([300, 70_000]) + b" = 1\n")
    elif action == "nul":
        lines[index] = lines[index].replace(b"=", b"=\x00", 1)
    else:
        lines.insert(0, b"\xef\xbb\xbf")
    return seed[0], b"".join(lines)


def config_seeds() -> list[Seed]:
    text = (ROOT / "conf" / "fosrd.toml").read_text()
    extra = (
        '\n[[output]]\nkind = "iface"\nname = "lab"\ninterface = "veth0"\n'
        '\n[[output]]\nkind = "flowlog"\nname = "log"\npath = "var/flows.csv"\n'
    )
    return [(".toml", text.encode()), (".toml", (text + extra).encode())]


def topology_seeds() -> list[Seed]:
    return [(".toml", (ROOT / "conf" / "topology.toml").read_bytes())]


def load_config_file(path: Path, rng: random.Random) -> object:
    return load_config(path)


def load_topology_file(path: Path, rng: random.Random) -> object:
    return load_topology(path)


# ----------------------------------------------------------------- targets


@dataclasses.dataclass(frozen=True)
class Target:
    """What to fuzz: its seeds, its mutators with weights, how to load a file."""

    seeds: Sequence[Seed]
    mutators: dict[str, tuple[float, Mutator]]
    load: Loader
    family: type[FosrError]  # the clean error for this input


BYTES_MUTATORS: dict[str, tuple[float, Mutator]] = {
    "random bytes": (0.5, case_random_bytes),
    "damaged bytes": (2.0, case_damaged_bytes),
    "cut anywhere": (0.5, case_cut_anywhere),
    "junk appended": (0.3, case_junk_appended),
}
TOML_MUTATORS: dict[str, tuple[float, Mutator]] = {
    **BYTES_MUTATORS,
    "structure": (4.0, case_toml_structure),
    "deep nesting": (0.4, case_toml_deep),
    "text lines": (1.0, case_toml_text),
}
CAPTURE_SEEDS: list[Seed] = []


def make_targets(scratch: Path) -> dict[str, Target]:
    if not CAPTURE_SEEDS:
        CAPTURE_SEEDS.extend(capture_seeds(scratch))
    return {
        "capture": Target(
            CAPTURE_SEEDS,
            {
                **BYTES_MUTATORS,
                "cut at a boundary": (1.5, case_capture_cut_at_boundary),
                "length fields": (2.0, case_capture_length_field),
                "header fields": (1.5, case_capture_header_field),
                "wrong magic": (0.3, case_capture_wrong_magic),
                "pcapng block": (1.0, case_capture_pcapng_block),
                "pcapng options": (0.7, case_capture_option),
                "gzip": (0.2, case_gzip),
            },
            load_capture,
            InputError,
        ),
        "flows": Target(
            flow_seeds(scratch),
            {
                **BYTES_MUTATORS,
                "cut at a boundary": (1.0, case_flows_cut_at_boundary),
                "bad cells": (3.0, case_flows_bad_cell),
                "columns": (1.5, case_flows_columns),
                "lines": (1.0, case_flows_lines),
                "encoding": (0.7, case_flows_encoding),
                "zeek header": (0.5, case_flows_zeek_header),
                "gzip": (0.4, case_gzip),
            },
            load_flows,
            InputError,
        ),
        "config": Target(config_seeds(), TOML_MUTATORS, load_config_file, ConfigError),
        "topology": Target(
            topology_seeds(), TOML_MUTATORS, load_topology_file, ConfigError
        ),
    }


# ----------------------------------------------------------------- running


class Hang(Exception):
    """A case ran past its time limit."""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang


class _Counter(logging.Handler):
    """Counts the warnings the readers log (a cut capture logs one)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@dataclasses.dataclass
class Result:
    """The outcome of one target's run."""

    target: str
    cases: int = 0
    loaded: int = 0
    warned: int = 0
    errors: collections.Counter[str] = dataclasses.field(
        default_factory=collections.Counter
    )
    per_mutator: collections.Counter[str] = dataclasses.field(
        default_factory=collections.Counter
    )
    failures: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)
    elapsed_s: float = 0.0
    slowest_s: float = 0.0


def run_case(target: Target, path: Path, rng: random.Random, timeout_s: float) -> str:
    """Load ``path``; return "" if it loaded, the error class, or raise a failure.

    Failures are raised as AssertionError with the reason (the traceback of
    an unexpected exception, a bad message, a hang).
    """
    old_handler = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            target.load(path, rng)
    except Hang:
        raise AssertionError(f"no answer after {timeout_s} s") from None
    except FosrError as error:
        signal.setitimer(signal.ITIMER_REAL, 0)
        message = str(error)
        if not isinstance(error, target.family):
            raise AssertionError(
                f"{type(error).__name__} where {target.family.__name__} "
                f"was expected: {message}"
            ) from None
        if "\n" in message or "\r" in message or str(path) not in message:
            raise AssertionError(f"malformed message: {message!r}") from None
        return type(error).__name__
    except Exception:  # the point of the run: nothing else may escape
        signal.setitimer(signal.ITIMER_REAL, 0)
        raise AssertionError(traceback.format_exc()) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
    for warning in caught:
        # numpy overflow or a deprecation on bad input is a bug too: the
        # test suite turns every warning into an error
        where = f"{Path(warning.filename).parent.name}/{Path(warning.filename).name}"
        raise AssertionError(
            f"warning: {warning.category.__name__}: {warning.message} "
            f"at {where}:{warning.lineno}"
        )
    return ""


def run_target(
    name: str,
    cases: int,
    seed: int,
    timeout_s: float = 5.0,
    scratch: Path | None = None,
) -> Result:
    """Run ``cases`` cases against target ``name``; the same seed, the same cases."""
    with tempfile.TemporaryDirectory(prefix="fosr-fuzz-", dir=scratch) as folder:
        base = Path(folder)
        target = make_targets(base)[name]
        rng = random.Random(f"{seed}:{name}")
        names = list(target.mutators)
        weights = [target.mutators[n][0] for n in names]
        result = Result(name)
        counter = _Counter()
        fosr_logger = logging.getLogger("fosr")
        old_level, old_propagate = fosr_logger.level, fosr_logger.propagate
        fosr_logger.addHandler(counter)
        fosr_logger.setLevel(logging.WARNING)
        fosr_logger.propagate = False  # the counter sees them, the console not
        started = time.perf_counter()
        try:
            for index in range(cases):
                mutator = rng.choices(names, weights)[0]
                result.per_mutator[mutator] += 1
                suffix, data = target.mutators[mutator][1](
                    rng, pick_seed(rng, target.seeds)
                )
                path = base / f"case{suffix}"
                path.write_bytes(data)
                warned_before = counter.count
                case_started = time.perf_counter()
                try:
                    kind = run_case(target, path, rng, timeout_s)
                except AssertionError as failure:
                    result.failures.append((index, mutator, str(failure)))
                    kind = "failure"
                result.slowest_s = max(
                    result.slowest_s, time.perf_counter() - case_started
                )
                result.cases += 1
                if kind == "":
                    result.loaded += 1
                    result.warned += counter.count > warned_before
                elif kind != "failure":
                    result.errors[kind] += 1
        finally:
            fosr_logger.removeHandler(counter)
            fosr_logger.setLevel(old_level)
            fosr_logger.propagate = old_propagate
        result.elapsed_s = time.perf_counter() - started
    return result


def failure_kind(text: str) -> str:
    """Return a failure's kind: its last line and the innermost project frame."""
    lines = text.strip().splitlines()
    frames = [
        line.strip()
        for line in lines
        if line.strip().startswith('File "')
        and "/fosr" in line
        and "fuzz_inputs" not in line
    ]
    where = ""
    if frames:
        file, line_number = frames[-1].split('"')[1], frames[-1].split(", ")[1]
        where = f" at {Path(file).parent.name}/{Path(file).name}:{line_number[5:]}"
    last = lines[-1] if lines else ""
    return (last[:100] + where) if frames else last[:140]


def print_table(results: Sequence[Result]) -> None:
    print(
        f"{'target':<9} {'cases':>6} {'loaded':>7} {'warned':>7} "
        f"{'failures':>8} {'s':>6} {'max ms':>6}  clean errors by class"
    )
    for r in results:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(r.errors.items())) or "-"
        print(
            f"{r.target:<9} {r.cases:6d} {r.loaded:7d} {r.warned:7d} "
            f"{len(r.failures):8d} {r.elapsed_s:6.1f} {r.slowest_s * 1e3:6.0f}  "
            f"{errors}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    parser.add_argument("--cases", type=int, default=10_000, help="cases per target")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--timeout-s", type=float, default=5.0, help="seconds before a case is a hang"
    )
    parser.add_argument(
        "--mutators", action="store_true", help="also print the cases per mutator"
    )
    args = parser.parse_args()

    names = TARGETS if args.target == "all" else (args.target,)
    results = [run_target(n, args.cases, args.seed, args.timeout_s) for n in names]
    print(f"fuzz_inputs: seed {args.seed}, time limit {args.timeout_s} s per case\n")
    print_table(results)
    if args.mutators:
        for r in results:
            print(f"\n{r.target}: cases per mutator")
            for mutator, count in r.per_mutator.most_common():
                print(f"  {count:7d}  {mutator}")
    for r in results:
        if r.failures:
            kinds = collections.Counter(failure_kind(t) for _, _, t in r.failures)
            print(f"\n{r.target}: {len(r.failures)} failures, by kind:")
            for kind, count in kinds.most_common():
                print(f"  {count:7d}  {kind}")
    for r in results:
        for index, mutator, text in r.failures[:20]:
            print(f"--- case {index} ({mutator})\n{text}")
    print(f"\ncommand: {' '.join(sys.argv)}")
    return 1 if any(r.failures for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
