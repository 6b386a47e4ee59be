"""The ``fosr`` command: read traffic, learn models, generate and judge traffic.

Exit codes (also in ``fosr --help``):

- 0: done;
- 1: an internal error (a bug; ``--debug`` shows the traceback);
- 2: bad input or usage: a capture, record file, model or option is wrong;
- 3: an output could not be written;
- 4: the command is not available in this version;
- 130: interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from fosr import __version__
from fosr.errors import FosrError, InputError

__all__ = ["main"]

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_OUTPUT, EXIT_UNAVAILABLE = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130

logger = logging.getLogger("fosr.cli")

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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fosr`` command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.quiet, args.verbose)
    try:
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except FosrError as error:
        _say_error(str(error))
        return EXIT_INPUT
    except OutputError as error:
        _say_error(str(error))
        return EXIT_OUTPUT
    except KeyboardInterrupt:
        _say_error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader of our standard output went away (``| head``)
        _silence_stdout()
        return EXIT_OK
    except Exception as error:  # the one place a bug becomes an exit code
        if args.debug:
            raise
        _say_error(
            f"internal error: {type(error).__name__}: {error} "
            "(run with --debug for the traceback)"
        )
        return EXIT_INTERNAL


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``fosr`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="fosr",
        description="Learn models of benign network traffic, generate new "
        "traffic from them, and judge synthetic traffic against real traffic.",
        epilog="exit codes: 0 done, 1 internal error, 2 bad input or usage, "
        "3 output not written, 4 not available in this version, 130 "
        "interrupted",
    )
    parser.add_argument("--version", action="version", version=f"fosr {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print errors only: no progress bars, no summary",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", help="print debugging messages"
    )
    common.add_argument(
        "--debug", action="store_true", help="show the traceback of internal errors"
    )
    parser.set_defaults(quiet=False, verbose=False, debug=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_flows_command(commands, common)
    _add_unavailable(
        commands,
        common,
        "learn",
        "learn a model bundle from captures or flow records",
        "the flow and packet models",
    )
    _add_unavailable(
        commands,
        common,
        "generate",
        "generate flows or a capture from a model bundle",
        "the generators",
    )
    evaluate = commands.add_parser(
        "evaluate", help="judge synthetic traffic against real traffic"
    )
    evaluate_kinds = evaluate.add_subparsers(dest="kind", required=True, metavar="KIND")
    _add_unavailable(
        evaluate_kinds,
        common,
        "flows",
        "compare synthetic flow records with real ones",
        "the flow metrics",
    )
    _add_unavailable(
        evaluate_kinds,
        common,
        "packets",
        "compare a synthetic capture with a real one",
        "the packet metrics",
    )
    model = commands.add_parser("model", help="inspect a model bundle")
    model_actions = model.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add_unavailable(
        model_actions,
        common,
        "show",
        "describe a model bundle in words",
        "the model bundle",
    )
    return parser


def _add_flows_command(commands: Any, common: argparse.ArgumentParser) -> None:
    flows = commands.add_parser(
        "flows",
        parents=[common],
        help="turn captures or flow records into bidirectional flow records",
        description="Read captures (pcap, pcapng; folders are searched for "
        "*.pcap, *.pcapng and *.cap) or flow record files (nfdump or "
        "CIDDS-001 CSV, UGR'16 CSV, Zeek conn.log, fosr CSV) and write one "
        "bidirectional record per connection.",
    )
    flows.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        type=Path,
        help="capture, flow record file or folder of captures",
    )
    flows.add_argument(
        "-o",
        "--output",
        default="-",
        help="flow records to write (CSV); '-' for standard output (default)",
    )
    flows.add_argument(
        "--idle-timeout",
        type=_seconds,
        metavar="S",
        help="idle timeout for every protocol, in seconds "
        "(default: TCP 300, UDP and ICMP 60, as Zeek)",
    )
    flows.add_argument(
        "--active-timeout",
        type=_seconds,
        metavar="S",
        default=3600.0,
        help="cut connections longer than this, in seconds; "
        "0 never cuts (default: 3600)",
    )
    flows.add_argument(
        "--session-gap",
        type=_seconds,
        metavar="S",
        default=120.0,
        help="pair one-way records into one flow while their "
        "gap is below this, in seconds (default: 120)",
    )
    flows.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip and count malformed records and corrupt "
        "capture files instead of stopping",
    )
    flows.set_defaults(handler=_run_flows)


def _add_unavailable(
    commands: Any,
    common: argparse.ArgumentParser,
    name: str,
    text: str,
    missing: str,
) -> None:
    command = commands.add_parser(name, parents=[common], help=text, description=text)
    command.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def handler(args: argparse.Namespace) -> int:
        _say_error(
            f"{command.prog}: not available in fosr {__version__}: "
            f"{missing} are not built yet"
        )
        return EXIT_UNAVAILABLE

    command.set_defaults(handler=handler)


def _run_flows(args: argparse.Namespace) -> int:
    from fosr.capture import read_captures
    from fosr.connections import Timeouts, assemble_connections
    from fosr.flows.readers import ReadReport, read_flow_records, write_flows_csv
    from fosr.flows.table import FlowTable

    captures, records = _classify_inputs(args.inputs)
    active = args.active_timeout or None
    timeouts = (
        Timeouts.default()
        if args.idle_timeout is None
        else Timeouts.uniform(args.idle_timeout, active)
    )
    if args.idle_timeout is None:
        timeouts = Timeouts(timeouts.idle_s, active)
    tables: list[FlowTable] = []

    if captures:
        with _progress(len(captures), "reading captures", args.quiet) as advance:
            packets = read_captures(captures, progress=advance, skip_bad=args.skip_bad)
        connections = assemble_connections(packets, timeouts)
        tables.append(connections.flows)
        _summarise_captures(packets.stats, len(connections), args.quiet)
    for path in records:
        report = ReadReport()
        flows = read_flow_records(
            path,
            session_gap_s=args.session_gap,
            skip_bad=args.skip_bad,
            report=report,
        )
        tables.append(flows)
        if not args.quiet:
            # skipped rows were already reported by the reader's warning
            _say(
                f"{path}: {report.records:,} {report.format} records, "
                f"{len(flows):,} flows"
            )

    table = FlowTable.concat(tables).sorted_by_start()
    with _output(args.output) as stream:
        write_flows_csv(table, stream)
    if not args.quiet and args.output != "-":
        _say(f"wrote {len(table):,} flows to {args.output}")
    return EXIT_OK


def _classify_inputs(inputs: Sequence[Path]) -> tuple[list[Path], list[Path]]:
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


def _summarise_captures(stats: Any, n_connections: int, quiet: bool) -> None:
    if quiet:
        return
    _say(
        f"read {stats.frames:,} frames, {stats.decoded:,} IP packets, "
        f"{n_connections:,} connections"
    )
    if stats.skipped:
        counts = sorted(stats.skipped.items(), key=lambda item: -item[1])
        _say("skipped: " + ", ".join(f"{reason} {n:,}" for reason, n in counts))


@contextmanager
def _progress(total: int, label: str, quiet: bool) -> Iterator[Callable[[int], None]]:
    """Yield a callback that advances a progress bar by ``n`` items."""
    from tqdm import tqdm

    # tqdm hides itself when standard error is no terminal (disable=None)
    bar = tqdm(
        total=total,
        desc=label,
        unit="file",
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
def _output(target: str) -> Iterator[IO[str]]:
    """Open ``target`` for writing text, atomically replacing a file.

    The data goes to a temporary file beside the target and is renamed over
    it only when complete, so a failure never leaves a half-written file nor
    destroys an earlier one.
    """
    if target == "-":
        yield sys.stdout
        return
    folder = os.path.dirname(os.path.abspath(target))
    try:
        fd, temporary = tempfile.mkstemp(prefix=".fosr-", dir=folder)
    except OSError as error:
        raise OutputError(f"{target}: cannot write: {error.strerror}") from error
    try:
        with os.fdopen(fd, "w", newline="") as stream:
            yield stream
        os.replace(temporary, target)
    except OSError as error:
        os.unlink(temporary)
        raise OutputError(f"{target}: cannot write: {error.strerror}") from error
    except BaseException:
        os.unlink(temporary)
        raise


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {text!r}")
    return value


def _configure_logging(quiet: bool, verbose: bool) -> None:
    level = logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger("fosr")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = (
            "fosr: "
            if record.levelno < logging.WARNING
            else (f"fosr: {record.levelname.lower()}: ")
        )
        return prefix + record.getMessage()


def _say(message: str) -> None:
    print(f"fosr: {message}", file=sys.stderr)


def _say_error(message: str) -> None:
    print(f"fosr: error: {message}", file=sys.stderr)


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
