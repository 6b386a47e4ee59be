"""The ``fosrctl`` command: talk to a running fosrd over its control socket.

``fosrctl [--config FILE | --socket PATH] [--json] COMMAND [ARGS]`` with
the commands ``status``, ``outputs``, ``pause``, ``resume``, ``rate X``,
``speed X``, ``reload [MODEL]`` and ``rotate``.  It finds the socket with
:func:`fosrd.control.find_socket`, exactly as the daemon does, and speaks
HTTP/1.1 with the standard library only (``http.client`` over AF_UNIX), so
it works in a minimal environment and from ``ExecReload=``.

Exit codes: 0 done, 1 the daemon refused or failed the request, 2 usage
(bad arguments, unreadable ``--config``), 3 the daemon cannot be reached
(no socket, nobody listening, permission denied, no answer in time).
Every error is one line on stderr naming the socket.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from fosr import __version__
from fosr.errors import ConfigError
from fosrd.control import API_PREFIX, SOCKET_ENV, find_socket

__all__ = ["EXIT_DAEMON", "EXIT_OK", "EXIT_UNREACHABLE", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_DAEMON = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

#: seconds to wait for an answer; a reload loads a model and may take long,
#: and under ``ExecReload=`` systemd's own TimeoutSec bounds it anyway
DEFAULT_TIMEOUT_S = 10.0
RELOAD_TIMEOUT_S = 300.0

# command -> (HTTP method, endpoint)
ENDPOINTS: dict[str, tuple[str, str]] = {
    "status": ("GET", "status"),
    "outputs": ("GET", "outputs"),
    "pause": ("POST", "pause"),
    "resume": ("POST", "resume"),
    "rate": ("POST", "rate"),
    "speed": ("POST", "speed"),
    "reload": ("POST", "reload"),
    "rotate": ("POST", "rotate"),
}


class UnreachableError(Exception):
    """The daemon cannot be reached; the message says why, naming the socket."""


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection to a Unix socket instead of a TCP port."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(os.fspath(self.socket_path))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fosrctl`` and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        path = find_socket(args.config, args.socket)
    except ConfigError as error:
        print(f"fosrctl: error: {error}", file=sys.stderr)
        return EXIT_USAGE

    method, endpoint = ENDPOINTS[args.command]
    body = request_body(args)
    timeout = args.timeout
    if timeout is None:
        timeout = RELOAD_TIMEOUT_S if args.command == "reload" else DEFAULT_TIMEOUT_S

    try:
        status, answer = request(path, method, endpoint, body, timeout)
    except UnreachableError as error:
        print(f"fosrctl: error: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if status != 200:
        message = answer.get("error") if isinstance(answer, dict) else None
        print(
            f"fosrctl: error: fosrd at {path} answered {status}: "
            f"{message or 'no reason given'}",
            file=sys.stderr,
        )
        return EXIT_DAEMON

    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        print(format_answer(args.command, answer))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``fosrctl``."""
    parser = argparse.ArgumentParser(
        prog="fosrctl",
        description="Control a running fosrd through its control socket.",
        epilog=(
            "the socket is --socket, else the [control] socket of --config, "
            f"else ${SOCKET_ENV}, else var/run/fosrd.sock (relative paths "
            "from the current folder, as the daemon reads them); exit codes: "
            "0 done, 1 refused by the daemon, 2 usage, 3 cannot connect"
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--config", metavar="FILE", help="the daemon's fosrd.toml")
    where.add_argument("--socket", metavar="PATH", help="the control socket")
    parser.add_argument(
        "--json", action="store_true", help="print the daemon's JSON answer as is"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help=f"wait this long for an answer (default {DEFAULT_TIMEOUT_S:g}, "
        f"reload {RELOAD_TIMEOUT_S:g})",
    )

    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("status", help="state, model, rates and counters")
    commands.add_parser("outputs", help="each output and its counters")
    commands.add_parser("pause", help="stop emitting until resume")
    commands.add_parser("resume", help="emit again")
    rate = commands.add_parser("rate", help="scale the learned volume")
    rate.add_argument("scale", type=_finite_float, help="e.g. 0.5 for half")
    speed = commands.add_parser("speed", help="run model time faster than real")
    speed.add_argument("factor", type=_finite_float, help="e.g. 60 for 1 h/min")
    reload = commands.add_parser("reload", help="load a model; wait until done")
    reload.add_argument("model", nargs="?", help="bundle (default: configured)")
    commands.add_parser("rotate", help="finish the ring files now")
    return parser


def request_body(args: argparse.Namespace) -> dict[str, object] | None:
    """Return the JSON body the command sends, or None."""
    if args.command == "rate":
        return {"scale": args.scale}
    if args.command == "speed":
        return {"factor": args.factor}
    if args.command == "reload" and args.model is not None:
        # the daemon resolves paths against its own working folder
        return {"model": os.path.abspath(args.model)}
    return None


def request(
    path: Path,
    method: str,
    endpoint: str,
    body: dict[str, object] | None,
    timeout: float,
) -> tuple[int, object]:
    """Send one request; return the HTTP status and the decoded JSON answer.

    Raise :class:`UnreachableError` when the daemon cannot be reached or
    does not answer with JSON.
    """
    connection = UnixHTTPConnection(path, timeout)
    payload = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json"}
    if payload is not None:
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, f"{API_PREFIX}/{endpoint}", payload, headers)
        response = connection.getresponse()
        status, raw = response.status, response.read()
    except FileNotFoundError:
        raise UnreachableError(f"{path}: no such socket (is fosrd running?)") from None
    except ConnectionRefusedError:
        raise UnreachableError(
            f"{path}: connection refused (fosrd is not running; the socket is stale)"
        ) from None
    except PermissionError:
        raise UnreachableError(
            f"{path}: permission denied (join the socket's group, or use sudo)"
        ) from None
    except TimeoutError:
        raise UnreachableError(f"{path}: no answer within {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise UnreachableError(f"{path}: {reason}") from None
    finally:
        connection.close()

    try:
        return status, json.loads(raw)
    except ValueError:
        raise UnreachableError(
            f"{path}: answered {status} with something that is not JSON "
            "(is it a fosrd control socket?)"
        ) from None


# --- printing ----------------------------------------------------------------


def format_answer(command: str, answer: object) -> str:
    """Return the answer as lines for a person to read."""
    if command == "outputs" and isinstance(answer, dict):
        outputs = answer.get("outputs")
        if isinstance(outputs, list):
            return format_outputs(outputs)
    if command == "rotate" and isinstance(answer, dict):
        finished = answer.get("finished")
        if isinstance(finished, list):
            if not finished:
                return "no file was being written"
            return "\n".join(f"finished {name}" for name in finished)
    return "\n".join(_format_value(answer, indent=0))


OUTPUT_COLUMNS = ("name", "kind", "packets", "bytes", "flows", "dropped_packets")


def format_outputs(outputs: Sequence[object]) -> str:
    """Return one row per output, its counters in columns, errors at the end."""
    if not outputs:
        return "no outputs"
    rows = [[column.replace("_packets", "") for column in OUTPUT_COLUMNS] + ["errors"]]
    for output in outputs:
        if not isinstance(output, dict):
            rows.append([_scalar(output)])
            continue
        row = [_scalar(output.get(column, "")) for column in OUTPUT_COLUMNS]
        errors = output.get("errors")
        if isinstance(errors, dict) and errors:
            row.append(", ".join(f"{k}={_scalar(v)}" for k, v in errors.items()))
        else:
            row.append("-")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(7)]
    return "\n".join(
        "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=False)
        ).rstrip()
        for row in rows
    )


def _format_value(value: object, indent: int) -> list[str]:
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(_format_value(item, indent + 1))
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, dict) and item:
                nested = _format_value(item, indent + 1)
                lines.append(f"{pad}- {nested[0].lstrip()}")
                lines.extend(nested[1:])
            else:
                lines.append(f"{pad}- {_scalar(item)}")
        return lines
    return [f"{pad}{_scalar(value)}"]


def _scalar(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(round(value, 6))  # keeps Unix times whole, trims noise
    if isinstance(value, dict | list) and not value:
        return "-"
    return str(value)


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


if __name__ == "__main__":
    sys.exit(main())
