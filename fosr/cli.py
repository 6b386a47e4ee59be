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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fosr import __version__
from fosr._cli_common import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OUTPUT,
    OutputError,
    load_flows,
    output,
    say,
    say_error,
    seconds,
)
from fosr._cli_evaluate import add_evaluate_commands
from fosr._cli_model import (
    add_generate_command,
    add_learn_command,
    add_model_commands,
)
from fosr.errors import FosrError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fosr`` command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # the command as typed, for the provenance of what it writes
    args.argv = ["fosr", *(sys.argv[1:] if argv is None else argv)]
    _configure_logging(args.quiet, args.verbose)
    try:
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except FosrError as error:
        say_error(str(error))
        return EXIT_INPUT
    except OutputError as error:
        say_error(str(error))
        return EXIT_OUTPUT
    except KeyboardInterrupt:
        say_error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader of our standard output went away (``| head``)
        _silence_stdout()
        return EXIT_OK
    except Exception as error:  # the one place a bug becomes an exit code
        if args.debug:
            raise
        say_error(
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
    add_learn_command(commands, common)
    add_generate_command(commands, common)
    add_evaluate_commands(commands, common)
    add_model_commands(commands, common)
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
        type=seconds,
        metavar="S",
        help="idle timeout for every protocol, in seconds "
        "(default: TCP 300, UDP and ICMP 60, as Zeek)",
    )
    flows.add_argument(
        "--active-timeout",
        type=seconds,
        metavar="S",
        default=3600.0,
        help="cut connections longer than this, in seconds; "
        "0 never cuts (default: 3600)",
    )
    flows.add_argument(
        "--session-gap",
        type=seconds,
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


def _run_flows(args: argparse.Namespace) -> int:
    from fosr.flows.readers import write_flows_csv

    table = load_flows(
        args.inputs,
        idle_timeout_s=args.idle_timeout,
        active_timeout_s=args.active_timeout or None,
        session_gap_s=args.session_gap,
        skip_bad=args.skip_bad,
        quiet=args.quiet,
    )
    with output(args.output) as stream:
        write_flows_csv(table, stream)
    if not args.quiet and args.output != "-":
        say(f"wrote {len(table):,} flows to {args.output}")
    return EXIT_OK


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


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
