"""Judge captures by what tshark finds wrong in them.

How this works
--------------
tshark dissects every frame of a capture and attaches *expert items* to what
looks wrong or noteworthy: each has a severity (error, warning, note, chat)
and a group (malformed, checksum, sequence, protocol, ...).  Its TCP
analysis also marks segments with flags such as "retransmission" or
"previous segment not captured".  Counting them per 1,000 packets, real
beside synthetic, shows whether generated traffic would look wrong to the
tool people open captures with.

tshark runs once per capture (state such as TCP sequence analysis and DNS
retransmission detection must not leak from one file into the next) and
prints one line per frame with numeric fields only::

    frame.number  _ws.expert.severity  _ws.expert.group  tcp.analysis.<flag>...

Severities and groups come as comma-separated codes, one per expert item;
a flag field is non-empty when the frame carries the flag.  No free text
is read, so no message can break the columns.  A frame counts as
*malformed* when one of its expert items is in the malformed group: tshark
adds its hidden ``_ws.malformed`` field for exactly those items, so this is
what the display filter ``_ws.malformed`` selects.  Counts are of frames
(a frame with two warnings counts once) and of all frames, IP or not.

Checksums are not validated by default, as in Wireshark: captures taken on
a sending host hold that host's packets with checksums left to the network
card, and counting those as errors would blame the capture, not the traffic
(the IoT Sentinel captures show it: the gateway's own packets).
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from fosr.errors import CaptureError, ToolError

__all__ = ["TCP_ANALYSIS_FLAGS", "ValidityCounts", "tshark_validity"]

logger = logging.getLogger(__name__)

# The FT_NONE flag fields of tshark's TCP analysis (tcp.analysis.<name>),
# as ``tshark -G fields`` lists them in Wireshark 3.6 to 4.4.
TCP_ANALYSIS_FLAGS: tuple[str, ...] = (
    "retransmission",
    "fast_retransmission",
    "spurious_retransmission",
    "out_of_order",
    "lost_segment",
    "ack_lost_segment",
    "duplicate_ack",
    "zero_window",
    "zero_window_probe",
    "zero_window_probe_ack",
    "window_full",
    "window_update",
    "keep_alive",
    "keep_alive_ack",
    "reused_ports",
    "tfo_syn",
    "tfo_ack",
    "tfo_ignored",
)

# Severity and group codes of expert items (epan/proto.h, PI_* constants).
_SEVERITIES: dict[int, str] = {
    0x00800000: "error",
    0x00600000: "warning",
    0x00400000: "note",
    0x00200000: "chat",
}
_GROUP_CHECKSUM = 0x01000000
_GROUP_MALFORMED = 0x07000000
SEVERITY_NAMES: tuple[str, ...] = tuple(_SEVERITIES.values())

# Per capture; tshark reads a few MB per second, so this is far above what
# the captures we compare need.  Chosen, not tuned.
DEFAULT_TIMEOUT_S = 600.0

_PCAP_MAGICS = {
    bytes.fromhex(m) for m in ("a1b2c3d4", "d4c3b2a1", "a1b23c4d", "4d3cb2a1")
}
_PCAPNG_MAGIC = bytes.fromhex("0a0d0d0a")


@dataclass(frozen=True)
class ValidityCounts:
    """What tshark found in one or more captures, as frame counts.

    ``packets`` is the number of frames tshark read (all link-layer frames,
    not only IP).  ``malformed`` counts frames with an expert item in the
    malformed group, ``bad_checksum`` those with one in the checksum group
    (always 0 unless checksums were checked), ``expert`` maps a severity
    ("error", "warning", "note", "chat") to the frames with at least one
    item of that severity, and ``tcp_analysis`` maps each name of
    :data:`TCP_ANALYSIS_FLAGS` to the frames carrying that flag.
    """

    packets: int = 0
    captures: int = 0
    malformed: int = 0
    bad_checksum: int = 0
    expert: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(SEVERITY_NAMES, 0)
    )
    tcp_analysis: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(TCP_ANALYSIS_FLAGS, 0)
    )

    def __add__(self, other: ValidityCounts) -> ValidityCounts:
        """Return the counts of both, as if their captures were one set."""
        return ValidityCounts(
            packets=self.packets + other.packets,
            captures=self.captures + other.captures,
            malformed=self.malformed + other.malformed,
            bad_checksum=self.bad_checksum + other.bad_checksum,
            expert={k: v + other.expert[k] for k, v in self.expert.items()},
            tcp_analysis={
                k: v + other.tcp_analysis[k] for k, v in self.tcp_analysis.items()
            },
        )

    def counts(self) -> dict[str, int]:
        """Return every count under one flat key, in a fixed order.

        Keys: ``malformed``, ``bad_checksum``, ``expert_<severity>``, then
        ``tcp_<flag>`` for each TCP analysis flag.
        """
        flat = {"malformed": self.malformed, "bad_checksum": self.bad_checksum}
        flat.update({f"expert_{k}": v for k, v in self.expert.items()})
        flat.update({f"tcp_{k}": v for k, v in self.tcp_analysis.items()})
        return flat

    def per_1000(self) -> dict[str, float]:
        """Return :meth:`counts` per 1,000 packets (all 0.0 with no packets)."""
        scale = 1000.0 / self.packets if self.packets else 0.0
        return {key: count * scale for key, count in self.counts().items()}


def tshark_validity(
    paths: Sequence[str | os.PathLike[str]],
    *,
    tshark: str = "tshark",
    check_checksums: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    workers: int | None = None,
) -> ValidityCounts:
    """Run tshark on each capture of ``paths`` and add up what it finds.

    ``tshark`` is the program to run (a name on PATH or a path).  With
    ``check_checksums`` the IPv4, TCP and UDP checksums are verified and bad
    ones count in ``bad_checksum`` and as expert errors.  Each run may take
    ``timeout_s`` seconds; ``workers`` runs go at once (default: one per
    CPU).

    Raises CaptureError when a path is not a pcap or pcapng file (tshark
    would read some text files as captures), and ToolError when tshark is
    missing, fails, times out or prints what this module cannot read.  A
    capture cut short in the middle of a packet keeps the frames before the
    cut and logs a warning, as the capture reader does.
    """
    if isinstance(paths, str | bytes | os.PathLike):
        raise TypeError("tshark_validity takes a sequence of paths")
    names = [os.fspath(path) for path in paths]
    for name in names:
        _check_magic(name)
    workers = max(1, min(workers or os.cpu_count() or 1, len(names)))
    total = ValidityCounts()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        runs = [
            pool.submit(_validity_of, name, tshark, check_checksums, timeout_s)
            for name in names
        ]
        try:
            for run in runs:
                total = total + run.result()
        except BaseException:
            # one failure is enough: do not start tshark on the rest
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return total


def _check_magic(path: str) -> None:
    """Raise CaptureError unless ``path`` starts like a pcap or pcapng file."""
    try:
        with open(path, "rb") as file:
            magic = file.read(4)
    except OSError as exc:
        raise CaptureError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    if magic not in _PCAP_MAGICS and magic != _PCAPNG_MAGIC:
        raise CaptureError(
            f"not a pcap or pcapng file (starts with {magic.hex() or 'nothing'})",
            path=path,
        )


def _validity_of(
    path: str, tshark: str, check_checksums: bool, timeout_s: float
) -> ValidityCounts:
    """Run tshark on one capture and count its output."""
    output = _run_tshark(path, tshark, check_checksums, timeout_s)
    return _count_lines(output.splitlines(), path, tshark)


def _tshark_command(path: str, tshark: str, check_checksums: bool) -> list[str]:
    """Return the command line: fields output, defaults pinned down."""
    checksums = "TRUE" if check_checksums else "FALSE"
    # name every preference the counts depend on, so that a user's
    # Wireshark profile cannot change them
    preferences = [
        "tcp.analyze_sequence_numbers:TRUE",
        "tcp.desegment_tcp_streams:TRUE",
        f"ip.check_checksum:{checksums}",
        f"tcp.check_checksum:{checksums}",
        f"udp.check_checksum:{checksums}",
    ]
    fields = ["frame.number", "_ws.expert.severity", "_ws.expert.group"]
    fields += [f"tcp.analysis.{flag}" for flag in TCP_ANALYSIS_FLAGS]
    command = [tshark, "-r", path, "-n", "-T", "fields", "-E", "separator=/t"]
    for preference in preferences:
        command += ["-o", preference]
    for name in fields:
        command += ["-e", name]
    return command


def _run_tshark(path: str, tshark: str, check_checksums: bool, timeout_s: float) -> str:
    """Return tshark's output on ``path``; raise ToolError when it fails."""
    command = _tshark_command(path, tshark, check_checksums)
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ToolError(
            "not found; install Wireshark's command-line tools (Debian: tshark)",
            tool=tshark,
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolError(
            f"took longer than {timeout_s:g} s", tool=tshark, path=path
        ) from exc
    except OSError as exc:
        raise ToolError(f"cannot run: {exc.strerror or exc}", tool=tshark) from exc

    # tshark exits with 2 on a capture cut short, after printing every frame
    # before the cut
    message = _last_message(done.stderr)
    if done.returncode != 0:
        if "cut short in the middle of a packet" in done.stderr:
            logger.warning(
                "%s: tshark found the capture cut short in the middle of a "
                "packet; kept the frames before the cut",
                path,
            )
        else:
            raise ToolError(
                message or f"exit status {done.returncode}",
                tool=tshark,
                path=path,
                returncode=done.returncode,
            )
    return done.stdout


def _last_message(stderr: str) -> str:
    """Return tshark's last stderr line, leaving out the running-as-root notice."""
    lines = [
        line.strip()
        for line in stderr.splitlines()
        if line.strip() and "could be dangerous" not in line
    ]
    return lines[-1] if lines else ""


def _count_lines(lines: Sequence[str], path: str, tshark: str) -> ValidityCounts:
    """Count expert items and TCP analysis flags in tshark's field lines."""
    width = 3 + len(TCP_ANALYSIS_FLAGS)
    expert = dict.fromkeys(SEVERITY_NAMES, 0)
    flags = [0] * len(TCP_ANALYSIS_FLAGS)
    malformed = bad_checksum = 0
    for number, line in enumerate(lines, 1):
        parts = line.split("\t")
        try:
            if len(parts) != width or not parts[0].isdigit():
                raise ValueError("wrong number of fields")
            severities = {int(s) for s in parts[1].split(",") if s}
            groups = {int(g) for g in parts[2].split(",") if g}
        except ValueError as exc:
            raise ToolError(
                f"unexpected output line {number}: {line[:80]!r}",
                tool=tshark,
                path=path,
            ) from exc
        for code in severities:
            name = _SEVERITIES.get(code)
            if name is not None:
                expert[name] += 1
        malformed += _GROUP_MALFORMED in groups
        bad_checksum += _GROUP_CHECKSUM in groups
        for i, value in enumerate(parts[3:]):
            if value:
                flags[i] += 1
    return ValidityCounts(
        packets=len(lines),
        captures=1,
        malformed=malformed,
        bad_checksum=bad_checksum,
        expert=expert,
        tcp_analysis=dict(zip(TCP_ANALYSIS_FLAGS, flags, strict=True)),
    )
