"""Fuzz the control API through its real Unix socket.

Usage: ``.venv/bin/python bench/fuzz_control.py [--cases N] [--seed S]
[--workers W] [--timeout-s T]``

Starts :func:`fosrd.control.start_control` on a temporary socket in front
of :class:`FakeController` (which validates like the daemon does), then
sends ``--cases`` generated requests (10,000 by default) as raw bytes, each
on its own connection, ``--workers`` at a time.  Each case picks a method,
a path, headers and a body from the tables below: valid and invalid
endpoints, JSON of every wrong shape, bodies too large, lying
Content-Length, broken chunked encoding, long and binary header lines,
truncated requests, garbage.  The client half-closes after sending and
reads the answer until the server closes.

A case fails when the server answers 500, answers something that is not
HTTP, answers an API error that is not ``{"error": ...}`` JSON, does not
answer a complete well-formed request, does not close within
``--timeout-s`` (a hang), or logs an error.  After every 1,000 cases and at
the end, ``GET /v1/status`` must still answer 200.  Prints the cases per
kind, the statuses seen, every failure, the time taken, and exits 1 on any
failure.  Reproducible: the same seed gives the same cases.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fosr.errors import BundleError
from fosrd.control import MAX_BODY_BYTES, start_control

# --- the fake daemon ---------------------------------------------------------


class FakeController:
    """A controller that validates and answers like the daemon, in memory."""

    def __init__(self) -> None:
        self.state = "running"
        self.rate_scale = 1.0
        self.speed_factor = 1.0
        self.model = "default.fosr"
        self.rotations = 0
        self.reloads = 0

    def status(self) -> dict[str, object]:
        return {
            "state": self.state,
            "model": {"path": self.model, "sha256": "0" * 64, "version": 1},
            "rate_scale": self.rate_scale,
            "speed_factor": self.speed_factor,
            "packets_per_second": float("nan"),  # no traffic yet
            "outputs": self.outputs(),
        }

    def pause(self) -> None:
        self.state = "paused"

    def resume(self) -> None:
        self.state = "running"

    def set_rate(self, scale: float) -> None:
        if not 0 < scale <= 1000:
            raise ValueError(f"rate scale must be in (0, 1000], not {scale}")
        self.rate_scale = scale

    def set_speed(self, factor: float) -> None:
        if not 0 < factor <= 1e6:
            raise ValueError(f"speed factor must be in (0, 1e6], not {factor}")
        self.speed_factor = factor

    async def reload(self, model: str | None) -> dict[str, object]:
        await asyncio.sleep(0.001)
        if model is not None and not model.endswith(".fosr"):
            raise BundleError("not a model bundle", path=model)
        self.reloads += 1
        self.model = model or self.model
        return {"model": self.model}

    def rotate(self) -> list[str]:
        self.rotations += 1
        return [f"var/ring/fosr_{self.rotations:05d}.pcap"]

    def outputs(self) -> list[dict[str, object]]:
        return [{"name": "ring", "kind": "ring", "packets": 10, "errors": {}}]


# --- the cases ---------------------------------------------------------------

ENDPOINTS = {
    "status": "GET",
    "outputs": "GET",
    "pause": "POST",
    "resume": "POST",
    "rate": "POST",
    "speed": "POST",
    "reload": "POST",
    "rotate": "POST",
}
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "get", "X"]
JSON_VALUES: list[object] = [
    None,
    True,
    0,
    -1,
    1,
    0.5,
    1e308,
    -1e-320,
    10**30,
    "",
    "x",
    "a.fosr",
    "/etc/passwd",
    "\u00e9\u0000",
    [],
    [1],
    {},
    {"a": 1},
]
FIELDS = ["scale", "factor", "model", "x", "", "SCALE", "scale ", "__proto__"]


@dataclass
class Case:
    """Raw request bytes; ``complete`` when a well-formed answer is due."""

    kind: str
    data: bytes
    complete: bool


def request_bytes(
    method: str,
    target: str,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    *,
    length: bool = True,
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: localhost"]
    for name, value in headers or []:
        lines.append(f"{name}: {value}")
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def random_json_body(rng: random.Random) -> bytes:
    shape = rng.randrange(6)
    if shape == 0:
        document: object = rng.choice(JSON_VALUES)
    elif shape <= 3:
        document = {
            rng.choice(FIELDS): rng.choice(JSON_VALUES) for _ in range(rng.randrange(4))
        }
    elif shape == 4:
        depth = rng.choice([10, 900, 3000])
        return b"[" * depth + b"]" * depth
    else:
        raw = rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "-0"])
        return f'{{"{rng.choice(FIELDS)}": {raw}}}'.encode()
    return json.dumps(document).encode()


def case_valid(rng: random.Random) -> Case:
    """A request to a real endpoint with its method and a plausible body."""
    name = rng.choice(list(ENDPOINTS))
    body = b""
    if name == "rate":
        body = json.dumps({"scale": rng.choice([0.5, 1, 2, -1, 0, 5000])}).encode()
    elif name == "speed":
        body = json.dumps({"factor": rng.choice([1, 60, 0, -2, 1e7])}).encode()
    elif name == "reload":
        model = rng.choice([None, "m.fosr", "m.bin", "x/../y.fosr"])
        body = b"" if model is None else json.dumps({"model": model}).encode()
    return Case("valid", request_bytes(ENDPOINTS[name], f"/v1/{name}", body), True)


def case_json(rng: random.Random) -> Case:
    """A real endpoint with a JSON body of any shape."""
    name = rng.choice(list(ENDPOINTS))
    body = random_json_body(rng)
    return Case("json", request_bytes(ENDPOINTS[name], f"/v1/{name}", body), True)


def case_method_path(rng: random.Random) -> Case:
    """Any method on any path, valid or not."""
    method = rng.choice(METHODS)
    path = rng.choice(
        [
            f"/v1/{rng.choice(list(ENDPOINTS))}",
            f"/v1/{rng.choice(list(ENDPOINTS))}/",
            "/v1/status?x=1&x=2",
            "/v2/status",
            "/",
            "//v1//status",
            "/v1/%73tatus",
            "/v1/../v1/status",
            "/v1/" + "a" * rng.choice([10, 1000, 5000]),
            "/v1/st\u00e4tus",
            "*",
        ]
    )
    body = random_json_body(rng) if rng.random() < 0.5 else b""
    complete = len(path) < 4000 and method != "X"
    return Case("method_path", request_bytes(method, path, body), complete)


def case_headers(rng: random.Random) -> Case:
    """Odd headers: content types, encodings, Expect, many or long headers."""
    headers = []
    for _ in range(rng.randrange(1, 6)):
        headers.append(
            rng.choice(
                [
                    ("Content-Type", "application/json"),
                    ("Content-Type", "text/plain; charset=latin-1"),
                    ("Content-Encoding", "gzip"),
                    ("Connection", "keep-alive"),
                    ("Connection", "close"),
                    ("Expect", "100-continue"),
                    ("X-" + "a" * 100, "b" * rng.choice([10, 3000, 9000])),
                    ("Accept", "*/*"),
                ]
            )
        )
    if rng.random() < 0.1:
        headers += [(f"X-{i}", "1") for i in range(200)]
    name = rng.choice(["rate", "pause", "status", "reload"])
    body = json.dumps({"scale": 2}).encode() if name == "rate" else b""
    data = request_bytes(ENDPOINTS[name], f"/v1/{name}", body, headers)
    return Case("headers", data, False)


def case_length(rng: random.Random) -> Case:
    """Content-Length that lies, is huge, negative, doubled, or chunked bodies."""
    name = rng.choice(["rate", "speed", "reload", "pause"])
    body = json.dumps({"scale": 1}).encode()
    choice = rng.randrange(6)
    if choice == 0:
        headers = [("Content-Length", str(len(body) + rng.randrange(1, 100)))]
    elif choice == 1:
        headers = [("Content-Length", str(rng.choice([-1, 10**12, 2**64])))]
    elif choice == 2:
        headers = [("Content-Length", "3"), ("Content-Length", "4")]
    elif choice == 3:
        body = b"x" * rng.choice([MAX_BODY_BYTES + 1, 3 * MAX_BODY_BYTES])
        headers = [("Content-Length", str(len(body)))]
    elif choice == 4:
        hex_size = format(len(body), "x")
        body = rng.choice(
            [
                hex_size.encode() + b"\r\n" + body + b"\r\n0\r\n\r\n",
                b"zz\r\n" + body + b"\r\n0\r\n\r\n",
                b"ffffffff\r\n" + body,
            ]
        )
        headers = [("Transfer-Encoding", "chunked")]
    else:
        headers = [("Content-Length", "abc")]
    data = request_bytes(ENDPOINTS[name], f"/v1/{name}", body, headers, length=False)
    return Case("length", data, False)


def case_bytes(rng: random.Random) -> Case:
    """Bytes: random, a valid request with bytes flipped or cut, bad versions."""
    valid = case_valid(rng).data
    choice = rng.randrange(5)
    if choice == 0:
        data = rng.randbytes(rng.randrange(1, 300))
    elif choice == 1:
        flipped = bytearray(valid)
        for _ in range(rng.randrange(1, 4)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        data = bytes(flipped)
    elif choice == 2:
        data = valid[: rng.randrange(1, len(valid))]
    elif choice == 3:
        data = valid.replace(b"HTTP/1.1", rng.choice([b"HTTP/1.0", b"HTTP/2.0", b"X"]))
    else:
        data = valid.replace(b"\r\n", b"\n")
    return Case("bytes", data, False)


GENERATORS: list[tuple[str, Callable[[random.Random], Case], int]] = [
    ("valid", case_valid, 3),
    ("json", case_json, 4),
    ("method_path", case_method_path, 2),
    ("headers", case_headers, 2),
    ("length", case_length, 2),
    ("bytes", case_bytes, 2),
]


def generate(rng: random.Random) -> Case:
    _, generator, _ = rng.choices(GENERATORS, weights=[w for *_, w in GENERATORS])[0]
    return generator(rng)


# --- running -----------------------------------------------------------------


@dataclass
class Outcome:
    status: int | None  # None: closed without an answer
    problem: str | None


async def send_case(
    path: Path, case: Case, timeout_s: float, idle_s: float = 0.3
) -> Outcome:
    """Send one case on a fresh connection; judge the answer.

    A complete request must be answered within ``timeout_s``.  For the
    others the client gives up after ``idle_s`` of silence: the server may
    rightly wait for the rest of the request (it drops the connection after
    its own keep-alive timeout, which the tests check).
    """
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_unix_connection(str(path))
            try:
                writer.write(case.data)
                await writer.drain()
                answer = await read_answer(
                    reader,
                    None if case.complete else idle_s,
                    head_only=case.data.startswith(b"HEAD "),
                )
            except ConnectionError:
                answer = b""  # the server closed first: judged below
            finally:
                writer.close()
    except TimeoutError:
        return Outcome(None, f"no answer within {timeout_s:g} s (hang)")
    return judge(case, answer)


async def read_answer(
    reader: asyncio.StreamReader, idle_s: float | None, *, head_only: bool
) -> bytes:
    """Read one HTTP answer: up to its Content-Length, EOF or ``idle_s``."""
    data = b""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        while sep and head.startswith(b"HTTP/1.1 100"):  # Expect: 100-continue
            head, sep, body = body.partition(b"\r\n\r\n")
        if sep:
            length = content_length(head)
            if head_only or (length is not None and len(body) >= length):
                return data
        try:
            async with asyncio.timeout(idle_s):
                chunk = await reader.read(65536)
        except TimeoutError:
            return data
        if not chunk:
            return data
        data += chunk


def content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return None


def judge(case: Case, answer: bytes) -> Outcome:
    """Check one raw answer against the rules in the module docstring."""
    if not answer:
        if case.complete:
            return Outcome(None, "a complete request got no answer")
        return Outcome(None, None)
    head, _, body = answer.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 100"):  # Expect: 100-continue
        head, _, body = body.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return Outcome(None, f"not an HTTP answer: {answer[:80]!r}")
    status = int(parts[1])
    if status >= 500 and status not in (503, 505):
        return Outcome(status, f"server error {status}: {body[:200]!r}")
    is_head = case.data.startswith(b"HEAD ")
    if b"application/json" in head.lower() and status >= 400 and not is_head:
        try:
            document = json.loads(body)
        except ValueError:
            return Outcome(status, f"error body is not JSON: {body[:80]!r}")
        if not isinstance(document, dict) or not isinstance(document.get("error"), str):
            return Outcome(status, f"error body has no 'error': {body[:80]!r}")
    return Outcome(status, None)


class ErrorLog(logging.Handler):
    """Collect the records of level ERROR and above that the server logs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}")


async def send_limited(
    semaphore: asyncio.Semaphore, path: Path, case: Case, timeout_s: float
) -> Outcome:
    async with semaphore:
        return await send_case(path, case, timeout_s)


async def check_alive(path: Path) -> str | None:
    case = Case("alive", request_bytes("GET", "/v1/status"), True)
    outcome = await send_case(path, case, 5.0)
    if outcome.status != 200:
        return f"GET /v1/status answered {outcome.status}: {outcome.problem}"
    return None


@dataclass
class Report:
    cases: int
    kinds: collections.Counter[str]
    statuses: collections.Counter[str]
    failures: list[str]
    seconds: float


async def run(
    cases: int, seed: int, workers: int = 32, timeout_s: float = 10.0
) -> Report:
    """Run the fuzz campaign; return what happened."""
    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix="fosrd-fuzz-"))
    socket_path = folder / "control.sock"
    errors = ErrorLog()
    logging.getLogger("fosrd").addHandler(errors)
    logging.getLogger("aiohttp").addHandler(errors)
    quiet = logging.getLogger("fosrd.control")
    previous_level = quiet.level
    quiet.setLevel(logging.ERROR)  # refused requests log warnings by design
    server = await start_control(FakeController(), socket_path)

    kinds: collections.Counter[str] = collections.Counter()
    statuses: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    started = time.perf_counter()
    try:
        done = 0
        while done < cases:
            batch = [generate(rng) for _ in range(min(1000, cases - done))]
            semaphore = asyncio.Semaphore(workers)
            outcomes = await asyncio.gather(
                *(
                    send_limited(semaphore, socket_path, case, timeout_s)
                    for case in batch
                )
            )
            for case, outcome in zip(batch, outcomes, strict=True):
                kinds[case.kind] += 1
                statuses[str(outcome.status or "closed")] += 1
                if outcome.problem is not None:
                    failures.append(
                        f"{case.kind}: {outcome.problem}: {case.data[:120]!r}"
                    )
            done += len(batch)
            alive = await check_alive(socket_path)
            if alive is not None:
                failures.append(f"after {done} cases: {alive}")
                break
    finally:
        await server.close()
        quiet.setLevel(previous_level)
        logging.getLogger("fosrd").removeHandler(errors)
        logging.getLogger("aiohttp").removeHandler(errors)
        shutil.rmtree(folder, ignore_errors=True)
    failures += [f"logged: {record}" for record in errors.records]
    return Report(done, kinds, statuses, failures, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--timeout-s", type=float, default=10.0)
    args = parser.parse_args(argv)

    report = asyncio.run(run(args.cases, args.seed, args.workers, args.timeout_s))
    print(f"command: {' '.join(['.venv/bin/python', *sys.argv])}")
    print(f"{'kind':<14}{'cases':>8}")
    for kind, count in sorted(report.kinds.items()):
        print(f"{kind:<14}{count:>8}")
    print(f"{'total':<14}{report.cases:>8}")
    print(
        "answers: " + ", ".join(f"{k} x{v}" for k, v in sorted(report.statuses.items()))
    )
    print(f"time: {report.seconds:.1f} s ({report.cases / report.seconds:.0f} cases/s)")
    print(f"failures: {len(report.failures)}")
    for failure in report.failures[:50]:
        print(f"  {failure}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
