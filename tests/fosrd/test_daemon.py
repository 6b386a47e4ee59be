"""The daemon as a whole: control API, metrics, rotation, reload, signals.

Each test runs a real :class:`fosrd.daemon.Daemon` (or the ``fosrd``
command in a child process) on a small model learnt from a synthesised lab
capture, writing a real pcap ring that capinfos reads back.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from daemon_model import learn_lab_model

from fosr.errors import BundleError
from fosrd.config import parse_config
from fosrd.daemon import Daemon

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lab_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return learn_lab_model(tmp_path_factory.mktemp("model"))


def _config(folder: Path, model: Path, **clock: object) -> object:
    speed = clock.get("speed", 600.0)
    return parse_config(
        {
            "model": {"path": str(model), "seed": 1},
            "clock": {"speed": speed, "batch_s": 60.0, "lead_s": 0.5},
            "output": [
                {
                    "kind": "ring",
                    "directory": str(folder / "ring"),
                    "max_file_seconds": 600.0,
                    "max_files": 50,
                }
            ],
            "control": {"socket": str(folder / "run" / "fosrd.sock")},
            "metrics": {"enabled": True, "port": 0},
        },
        source="test",
    )


def _packets(path: Path) -> int:
    out = subprocess.run(
        ["capinfos", "-c", "-M", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return int(out.strip().splitlines()[-1].split()[-1])


async def _request(
    sock: Path, method: str, path: str, body: object = None
) -> tuple[int, dict[str, object]]:
    connector = aiohttp.UnixConnector(path=str(sock))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.request(method, f"http://fosrd{path}", json=body) as r:
            return r.status, await r.json()


async def _started(daemon: Daemon) -> asyncio.Task[int]:
    task = asyncio.create_task(daemon.run())
    for _ in range(200):
        if daemon.state == "running":
            return task
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    raise AssertionError("the daemon did not start")


@pytest.mark.asyncio
async def test_control_api_drives_the_running_daemon(
    tmp_path: Path, lab_model: Path
) -> None:
    daemon = Daemon(_config(tmp_path, lab_model))  # type: ignore[arg-type]
    task = await _started(daemon)
    sock = tmp_path / "run" / "fosrd.sock"
    try:
        await asyncio.sleep(1.5)
        status, body = await _request(sock, "GET", "/v1/status")
        assert status == 200 and body["state"] == "running"
        assert int(body["packets"]) > 0  # type: ignore[call-overload]

        status, _ = await _request(sock, "POST", "/v1/pause")
        assert status == 200 and daemon.state == "paused"
        await asyncio.sleep(0.3)
        held = daemon.status()["packets"]
        await asyncio.sleep(0.7)
        assert daemon.status()["packets"] == held

        status, _ = await _request(sock, "POST", "/v1/resume")
        assert status == 200
        status, _ = await _request(sock, "POST", "/v1/rate", {"scale": 2.0})
        assert status == 200 and daemon.rate_scale == 2.0
        status, body = await _request(sock, "POST", "/v1/speed", {"factor": -1})
        assert status == 400 and "factor" in str(body["error"])

        status, body = await _request(sock, "POST", "/v1/rotate")
        assert status == 200
        await asyncio.sleep(0.5)
        files = sorted((tmp_path / "ring").glob("fosr_*.pcap"))
        assert len(files) >= 2
        assert sum(_packets(f) for f in files) > 0
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 10) == 0


@pytest.mark.asyncio
async def test_metrics_count_what_the_ring_wrote(
    tmp_path: Path, lab_model: Path
) -> None:
    daemon = Daemon(_config(tmp_path, lab_model))  # type: ignore[arg-type]
    task = await _started(daemon)
    try:
        await asyncio.sleep(1.5)
        port = daemon.metrics_port
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                text = await r.text()
        line = next(
            x
            for x in text.splitlines()
            if x.startswith("fosrd_packets_emitted_total{") and 'output="ring"' in x
        )
        assert float(line.split()[-1]) > 0
        assert "fosrd_schedule_lag_seconds_bucket" in text
        assert "fosrd_model_info" in text
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 10) == 0


@pytest.mark.asyncio
async def test_reload_swaps_a_good_model_and_keeps_the_old_on_a_bad_one(
    tmp_path: Path, lab_model: Path
) -> None:
    daemon = Daemon(_config(tmp_path, lab_model))  # type: ignore[arg-type]
    task = await _started(daemon)
    sock = tmp_path / "run" / "fosrd.sock"
    damaged = tmp_path / "damaged.fosr"
    data = bytearray(lab_model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    try:
        await asyncio.sleep(0.5)
        status, body = await _request(
            sock, "POST", "/v1/reload", {"model": str(damaged)}
        )
        assert status == 400 and str(damaged) in str(body["error"])
        assert daemon.model is not None and daemon.model.info["path"] == str(lab_model)
        before = daemon.status()["packets"]
        await asyncio.sleep(1.0)
        assert daemon.status()["packets"] != before  # still emitting

        with pytest.raises(BundleError):
            await daemon.reload(str(damaged))
        status, body = await _request(sock, "POST", "/v1/reload", {})
        assert status == 200 and daemon.reloads == 1
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 10) == 0


def test_sigterm_closes_every_file_and_exits_zero(
    tmp_path: Path, lab_model: Path
) -> None:
    config = tmp_path / "fosrd.toml"
    config.write_text(
        f"""
[model]
path = "{lab_model}"
[clock]
speed = 600.0
batch_s = 60.0
[[output]]
kind = "ring"
directory = "ring"
max_file_bytes = 20000
max_files = 100
[metrics]
enabled = false
"""
    )
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "fosrd", "--config", str(config)],
            cwd=tmp_path,
            stderr=stderr,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(list((tmp_path / "ring").glob("fosr_*.pcap"))) >= 3:
                break
            assert child.poll() is None, log.read_text()
            time.sleep(0.2)
        child.send_signal(signal.SIGTERM)
        began = time.monotonic()
        code = child.wait(10)
        took = time.monotonic() - began
    finally:
        if child.poll() is None:
            child.kill()
    assert code == 0, log.read_text()
    assert took < 5.0
    files = sorted((tmp_path / "ring").glob("fosr_*.pcap"))
    assert len(files) >= 3
    for path in files:  # every file, the last one included, reads cleanly
        result = subprocess.run(
            ["capinfos", "-c", str(path)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert "cut short" not in result.stderr
    logs = sorted((tmp_path / "ring").glob("fosr_*.csv"))
    assert len(logs) == len(files)


def test_bad_config_is_one_line_and_exit_two(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[clock]\nspeed = 'fast'\n")
    result = subprocess.run(
        [sys.executable, "-m", "fosrd", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"fosrd: error: {config}: clock.speed = 'fast': must be a number"]


def test_check_validates_and_reports(tmp_path: Path, lab_model: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fosrd", "--model", str(lab_model), "--check"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "configuration and model are valid" in result.stdout
    status = json.dumps(result.stdout)
    assert "lab.fosr" in status
