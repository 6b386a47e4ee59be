"""Run a reference learner in a forked child under a wall-clock limit.

Shared by the scripts of this folder (they run inside the reference venv
with this folder on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable
from typing import Any


def run_with_timeout(
    target: Callable[[Any, Any], None], args: Any, timeout_s: float
) -> tuple[dict[str, Any], bool, float, int | None]:
    """Run ``target(args, send)`` in a child; it sends exactly one dict.

    Returns the dict (empty if the child died or ran out of time), whether
    it timed out, the elapsed seconds, and the child's exit code.
    """
    receive, send = multiprocessing.Pipe(duplex=False)
    context = multiprocessing.get_context("fork")
    child = context.Process(target=target, args=(args, send))
    began = time.monotonic()
    child.start()
    send.close()

    # the child sends exactly one dict, or dies, or runs out of time
    result: dict[str, Any] = {}
    if receive.poll(timeout_s):
        with contextlib.suppress(EOFError):
            result = receive.recv()
    timed_out = child.is_alive() and not result
    if child.is_alive():
        child.kill()
    child.join()
    return result, timed_out, time.monotonic() - began, child.exitcode
