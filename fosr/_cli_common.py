"""Helpers shared by the ``fosr`` subcommands: inputs, outputs, messages."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from fosr.errors import InputError
from fosr.flows.table import FlowTable

if TYPE_CHECKING:
    from fosr.connections import Connections

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_OUTPUT, EXIT_UNAVAILABLE = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130


CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")
_CAPTURE_MAGICS = (
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
    b"\x0a\x0d\x0d\x0a",
)


class OutputError(Exception):
    """An output file could not be written (exit code 3)."""


def load_flows(
    inputs: Sequence[Path],
    *,
    idle_timeout_s: float | None = None,
    active_timeout_s: float | None = 3600.0,
    session_gap_s: float = 120.0,
    skip_bad: bool = False,
    quiet: bool = False,
) -> FlowTable:
    """Read captures, folders of captures and flow record files as flows.

    Captures are assembled into connections (Zeek-like idle timeouts unless
    ``idle_timeout_s`` sets one for all protocols); one-way records are
    paired with ``session_gap_s``.  The flows come back ordered by start.
    """
    flows, _ = load_traffic(
        inputs,
        idle_timeout_s=idle_timeout_s,
        active_timeout_s=active_timeout_s,
        session_gap_s=session_gap_s,
        skip_bad=skip_bad,
        quiet=quiet,
    )
    return flows


def load_traffic(
    inputs: Sequence[Path],
    *,
    idle_timeout_s: float | None = None,
    active_timeout_s: float | None = 3600.0,
    session_gap_s: float = 120.0,
    skip_bad: bool = False,
    quiet: bool = False,
) -> tuple[FlowTable, Connections | None]:
    """Read inputs as :func:`load_flows` does; also return the connections.

    The connections are those of the captures among the inputs (None when
    there are none), for learning the packet model.
    """
    from fosr.capture import read_captures
    from fosr.connections import Timeouts, assemble_connections
    from fosr.flows.readers import ReadReport, read_flow_records

    captures, records = classify_inputs(inputs)
    if idle_timeout_s is None:
        timeouts = Timeouts(Timeouts.default().idle_s, active_timeout_s)
    else:
        timeouts = Timeouts.uniform(idle_timeout_s, active_timeout_s)
    tables: list[FlowTable] = []
    connections = None

    if captures:
        with progress(len(captures), "reading captures", quiet) as advance:
            packets = read_captures(captures, progress=advance, skip_bad=skip_bad)
        connections = assemble_connections(packets, timeouts)
        tables.append(connections.flows)
        summarise_captures(packets.stats, len(connections), quiet)
    for path in records:
        report = ReadReport()
        flows = read_flow_records(
            path, session_gap_s=session_gap_s, skip_bad=skip_bad, report=report
        )
        tables.append(flows)
        if not quiet:
            # skipped rows were already reported by the reader's warning
            say(
                f"{path}: {report.records:,} {report.format} records, "
                f"{len(flows):,} flows"
            )
    return FlowTable.concat(tables).sorted_by_start(), connections


def classify_inputs(inputs: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """Split inputs into captures and flow record files, expanding folders."""
    captures: list[Path] = []
    records: list[Path] = []
    for path in inputs:
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.name.lower().endswith(CAPTURE_SUFFIXES)
            )
            if not found:
                raise InputError("no capture files in this folder", path=path)
            captures.extend(found)
            continue
        try:
            with open(path, "rb") as stream:
                magic = stream.read(4)
        except OSError as error:
            raise InputError(f"cannot read: {error.strerror}", path=path) from error
        (captures if magic in _CAPTURE_MAGICS else records).append(path)
    return captures, records


def summarise_captures(stats: Any, n_connections: int, quiet: bool) -> None:
    if quiet:
        return
    say(
        f"read {stats.frames:,} frames, {stats.decoded:,} IP packets, "
        f"{n_connections:,} connections"
    )
    if stats.skipped:
        counts = sorted(stats.skipped.items(), key=lambda item: -item[1])
        say("skipped: " + ", ".join(f"{reason} {n:,}" for reason, n in counts))


@contextmanager
def progress(
    total: int, label: str, quiet: bool, *, unit: str = "file"
) -> Iterator[Callable[[int], None]]:
    """Yield a callback that advances a progress bar by ``n`` items."""
    from tqdm import tqdm

    # tqdm hides itself when standard error is no terminal (disable=None)
    bar = tqdm(
        total=total,
        desc=label,
        unit=unit,
        disable=True if quiet else None,
        leave=False,
    )
    try:

        def advance(n: int) -> None:
            bar.update(n)

        yield advance
    finally:
        bar.close()


@contextmanager
def output(target: str, *, binary: bool = False) -> Iterator[IO[Any]]:
    """Open ``target`` for writing text (or bytes), atomically replacing a file.

    The data goes to a temporary file beside the target and is renamed over
    it only when complete, so a failure never leaves a half-written file nor
    destroys an earlier one.
    """
    if target == "-":
        yield sys.stdout.buffer if binary else sys.stdout
        return
    folder = os.path.dirname(os.path.abspath(target))
    try:
        fd, temporary = tempfile.mkstemp(prefix=".fosr-", dir=folder)
    except OSError as error:
        raise OutputError(f"{target}: cannot write: {error.strerror}") from error
    try:
        with os.fdopen(
            fd, "wb" if binary else "w", newline=None if binary else ""
        ) as stream:
            yield stream
        os.replace(temporary, target)
    except OSError as error:
        os.unlink(temporary)
        raise OutputError(f"{target}: cannot write: {error.strerror}") from error
    except BaseException:
        os.unlink(temporary)
        raise


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {text!r}")
    return value


def say(message: str) -> None:
    print(f"fosr: {message}", file=sys.stderr)


def say_error(message: str) -> None:
    print(f"fosr: error: {message}", file=sys.stderr)
