"""``fosr model show``: a flow model in words a security analyst reads.

Each pattern becomes one sentence built from its cells, step by step: the
protocol, server port and server of FIX cells ("asks DNS (UDP/53 to
192.168.100.3)"), SET and USE placeholders as "the same client" or "the
server of step 1", and the median delay between steps from the timing's
quantiles.  Then comes the rate profile as 24 hourly bars, and the
provenance of the bundle.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

import numpy as np

from fosr.bundle import DataFile
from fosr.flowmodel.pattern import Cell, CellKind, Pattern
from fosr.flowmodel.store import StoredFlowModel
from fosr.flowmodel.timing import BINS_PER_DAY

__all__ = ["describe_model", "describe_pattern"]

# Well-known services by (protocol number, server port), IANA names.
_SERVICES = {
    (17, 53): "DNS",
    (6, 53): "DNS",
    (6, 80): "HTTP",
    (6, 443): "HTTPS",
    (17, 443): "QUIC",
    (6, 22): "SSH",
    (6, 25): "SMTP",
    (6, 587): "SMTP",
    (6, 993): "IMAPS",
    (6, 445): "SMB",
    (6, 139): "NetBIOS",
    (17, 137): "NetBIOS",
    (17, 138): "NetBIOS",
    (17, 123): "NTP",
    (17, 67): "DHCP",
    (17, 5353): "mDNS",
    (6, 3389): "RDP",
    (6, 8080): "HTTP",
}
_PROTOCOLS = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMPv6"}
# the columns a step's sentence says in words; the others follow as "with"
_SPOKEN = ("proto", "client", "server", "server_port")
_BLOCKS = " ▏▎▍▌▋▊▉█"
_BAR_CHARS = 32


def describe_model(stored: StoredFlowModel) -> str:
    """Return the patterns, the rate profile and the provenance, as text."""
    columns = ", ".join(stored.columns)
    lines = [f"flow model: {len(stored.usages)} patterns over {columns}"]
    lines.append("")
    lines.append("patterns, by usage (instances in the training data):")
    ranked = sorted(range(len(stored.usages)), key=lambda i: (-stored.usages[i], i))
    for i in ranked:
        text = describe_pattern(stored, i)
        lines.append(f"{stored.usages[i]:>9,}  {text}")
    lines.append(
        f"{stored.background_usage:>9,}  single flows of the background "
        "network (no pattern)"
    )
    lines.append("")
    lines.extend(_rate_chart(stored))
    lines.append("")
    lines.extend(_provenance(stored))
    return "\n".join(lines) + "\n"


def describe_pattern(stored: StoredFlowModel, index: int) -> str:
    """Return one sentence for pattern ``index``, its steps joined by delays."""
    pattern = stored.model.patterns[index].pattern
    quantiles = stored.timing.delay_quantiles_s[index]
    text = _step(stored, pattern, 0)
    for row in range(1, len(pattern)):
        median_s = float(np.median(quantiles[row - 1]))
        text += f", then within {_duration(median_s)} {_step(stored, pattern, row)}"
    return text


def _step(stored: StoredFlowModel, pattern: Pattern, row: int) -> str:
    """Return the words of one row: who, what service, to whom, with what."""
    columns = stored.columns
    cells = dict(pattern.rows[row].cells)
    fixed = {
        columns[c]: stored.codebooks[c].values[cell.value]
        for c, cell in cells.items()
        if cell.kind is CellKind.FIX and not stored.codebooks[c].is_continuous
    }

    # who opens the flow, and with what protocol and port
    who = _party(stored, pattern, row, "client") or "a client"
    proto = int(fixed["proto"]) if "proto" in fixed else None
    port = int(fixed["server_port"]) if "server_port" in fixed else None
    name = _PROTOCOLS.get(proto, f"protocol {proto}") if proto is not None else ""

    # the service: "asks DNS (UDP/53 to a)", "opens TCP/22", "sends UDP"
    service = _SERVICES.get((proto, port)) if proto and port is not None else None
    if name and port is not None:
        where = f"{name}/{port}"
    else:
        where = name or (f"port {port}" if port is not None else "a flow")
    server = _party(stored, pattern, row, "server")
    if server is None and "server" in fixed:
        server = str(fixed["server"])
    to = f" to {server}" if server else ""
    what = f"{service} ({where}{to})" if service else f"{where}{to}"
    verb = "asks" if service == "DNS" else "opens" if proto == 6 else "sends"
    extra = _others(stored, cells)
    return f"{who} {verb} {what}{extra}"


def _party(
    stored: StoredFlowModel, pattern: Pattern, row: int, column: str
) -> str | None:
    """Return who stands in ``column``: a placeholder in words, or None."""
    if column not in stored.columns:
        return None
    c = stored.columns.index(column)
    cell = pattern.rows[row].get(c)
    if cell is None or cell.kind is CellKind.FIX:
        return None
    if cell.kind is CellKind.SET:
        return f"a {column}" if column == "client" else None
    for earlier, other in enumerate(pattern.rows[:row]):
        for oc, ocell in other.cells:
            if ocell.kind is CellKind.SET and ocell.value == cell.value:
                source = stored.columns[oc]
                if source == column:
                    return f"the same {column}"
                return f"the {source} of step {earlier + 1}"
    return None


def _others(stored: StoredFlowModel, cells: dict[int, Cell]) -> str:
    """Return ", with state SF, bytes (100, 200]" for the other FIX cells."""
    words = []
    for c, cell in sorted(cells.items()):
        name = stored.columns[c]
        book = stored.codebooks[c]
        if name == "tcp_flags" and not book.is_continuous:
            if int(book.values[cell.value]) == 0:
                continue  # no flags: UDP and ICMP, nothing to say
        if cell.kind is CellKind.FIX and name not in _SPOKEN:
            words.append(f"{name} {stored.codebooks[c].describe(cell.value)}")
    return f", with {', '.join(words)}" if words else ""


def _duration(seconds: float) -> str:
    if seconds < 1.0:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def _rate_chart(stored: StoredFlowModel) -> list[str]:
    """Return 24 hourly bars of the rate profile, averaged over the days."""
    timing = stored.timing
    per_hour = BINS_PER_DAY // 24
    rates = timing.rates_per_s.reshape(-1, 24, per_hour).mean(axis=(0, 2)) * 3600
    guessed = np.asarray(timing.extrapolated.reshape(-1, 24, per_hour).all(axis=(0, 2)))
    top = float(rates.max()) if len(rates) else 0.0
    days = "each weekday averaged" if timing.is_weekly else "every day alike"
    lines = [f"rate profile (instances per hour, {timing.timezone}, {days}):"]
    for hour, (rate, is_guess) in enumerate(zip(rates, guessed.tolist(), strict=True)):
        bar = _bar(float(rate) / top if top > 0 else 0.0)
        mark = "  extrapolated" if is_guess else ""
        lines.append(f"  {hour:02d}h {bar} {rate:>10,.0f}{mark}")
    busiest = int(np.argmax(rates))
    lines.append(
        f"busiest hour: {busiest:02d}:00-{busiest + 1:02d}:00, "
        f"{rates[busiest]:,.0f} instances"
    )
    if guessed.any():
        lines.append(
            "extrapolated: hours the training data did not cover, given the mean rate"
        )
    return lines


def _bar(fraction: float) -> str:
    """Return a bar of ``_BAR_CHARS`` cells, in eighths of a block."""
    eighths = round(fraction * _BAR_CHARS * 8)
    full, rest = divmod(eighths, 8)
    bar = _BLOCKS[-1] * full + (_BLOCKS[rest] if rest else "")
    return bar.ljust(_BAR_CHARS)


def _provenance(stored: StoredFlowModel) -> list[str]:
    origin = stored.provenance
    lines = [
        f"learnt: {origin.created:%Y-%m-%d %H:%M:%S} UTC",
        f"command: {shlex.join(origin.command) if origin.command else '(unknown)'}",
    ]
    lines.extend(_data_files(origin.data))
    return lines


def _data_files(files: Sequence[DataFile]) -> list[str]:
    if not files:
        return ["data: (not recorded)"]
    lines = ["data:"]
    for file in files:
        lines.append(
            f"  {file.path}  sha256 {file.sha256[:12]}  {file.size_bytes:,} bytes"
        )
    return lines
