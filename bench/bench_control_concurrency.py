"""Many control clients at once: how they are answered, and how fast.

Usage: ``.venv/bin/python bench/bench_control_concurrency.py [--clients N]
[--rounds R] [--reload-share F]``

Serves the control API in a child process (its own event loop, in front of
the fuzz bench's fake controller), then opens ``--clients`` connections at
once from this process, each sending one request (``GET /v1/status``, or
``POST /v1/reload`` for a ``--reload-share`` of them) with
``Connection: close``, and reads the answer.  Repeats ``--rounds`` times and
prints, per round, the answers by kind (200, 409, 503, refused at connect)
and the time to answer: wall time for the whole round, median, p99 and
max per client.  Exits 1 if any client got something else or no answer
within 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SERVE = """
import asyncio, logging, sys
sys.path.insert(0, ".")
logging.getLogger("fosrd.control").setLevel(logging.ERROR)  # 409s by design
from bench.fuzz_control import FakeController
from fosrd.control import start_control

async def main():
    server = await start_control(FakeController(), sys.argv[1])
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.close()

asyncio.run(main())
"""
STATUS = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
RELOAD = (
    b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    b"Content-Length: 0\r\n\r\n"
)
EXPECTED = {"200", "409", "503", "refused"}


async def one(path: Path, request: bytes) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
        try:
            writer.write(request)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 30)
        finally:
            writer.close()
    except (ConnectionRefusedError, ConnectionResetError, BlockingIOError):
        return "refused", time.perf_counter() - started
    except TimeoutError:
        return "hang", time.perf_counter() - started
    parts = answer.split(b" ", 2)
    kind = parts[1].decode() if len(parts) > 1 else f"garbage {answer[:20]!r}"
    return kind, time.perf_counter() - started


async def run_round(
    path: Path, clients: int, reload_share: float
) -> tuple[collections.Counter[str], float, np.ndarray]:
    every = max(1, round(1 / reload_share)) if reload_share > 0 else 0
    requests = [RELOAD if every and i % every == 0 else STATUS for i in range(clients)]
    started = time.perf_counter()
    results = await asyncio.gather(*(one(path, r) for r in requests))
    wall = time.perf_counter() - started
    kinds = collections.Counter(kind for kind, _ in results)
    return kinds, wall, np.array([seconds for _, seconds in results])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reload-share", type=float, default=0.1)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="fosrd-bench-"))
    path = folder / "control.sock"
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdin is not None
    if server.stdout.readline().strip() != "ready":
        print("the server did not start", file=sys.stderr)
        return 1

    print(f"command: .venv/bin/python {' '.join(sys.argv)}")
    print(
        f"{'round':>5} {'clients':>7} {'answers':<34} {'wall s':>7} "
        f"{'median ms':>9} {'p99 ms':>7} {'max ms':>7}"
    )
    failed = False
    try:
        for round_ in range(1, args.rounds + 1):
            kinds, wall, seconds = asyncio.run(
                run_round(path, args.clients, args.reload_share)
            )
            answers = " ".join(f"{k}:{v}" for k, v in sorted(kinds.items()))
            ms = seconds * 1000
            print(
                f"{round_:>5} {args.clients:>7} {answers:<34} {wall:>7.2f} "
                f"{np.median(ms):>9.0f} {np.percentile(ms, 99):>7.0f} "
                f"{ms.max():>7.0f}"
            )
            failed |= not set(kinds) <= EXPECTED
    finally:
        server.stdin.close()
        server.wait(timeout=10)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
