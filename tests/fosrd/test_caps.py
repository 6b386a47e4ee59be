"""Capabilities are dropped once the outputs are open."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import socket, json
from fosrd._caps import capabilities, drop_capabilities
before = capabilities()
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
ok = drop_capabilities()
after = capabilities()
try:
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    second = "opened"
except PermissionError:
    second = "refused"
raw.bind(("lo", 0))  # the socket already open keeps working
raw.send(bytes(60))
print(json.dumps({"before": before, "after": after, "ok": ok, "second": second}))
"""


@pytest.mark.root
def test_dropping_capabilities_refuses_new_raw_sockets_keeps_open_ones() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to hold CAP_NET_RAW in the first place")
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    import json

    report = json.loads(result.stdout)
    assert report["before"]["eff"] != 0
    assert report["ok"] is True
    assert report["after"] == {"inh": 0, "prm": 0, "eff": 0, "amb": 0}
    assert report["second"] == "refused"
