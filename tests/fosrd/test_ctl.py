"""fosrctl against a real control socket served in the same test."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.fuzz_control import FakeController
from fosrd import ctl
from fosrd.control import start_control


@pytest.fixture
def folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fosrd-c-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def run_ctl(*argv: str) -> int:
    """Run fosrctl in a thread so that the loop keeps serving."""
    return await asyncio.to_thread(ctl.main, list(argv))


@pytest.mark.asyncio
async def test_commands_print_and_exit_0(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeController()
    path = folder / "c.sock"
    server = await start_control(fake, path)
    try:
        async with asyncio.timeout(20):
            assert await run_ctl("--socket", str(path), "status") == 0
            out = capsys.readouterr().out
            assert "state: running" in out
            assert "rate_scale: 1.0\n" in out
            assert "packets_per_second: -" in out  # NaN came as null

            assert await run_ctl("--socket", str(path), "--json", "status") == 0
            assert json.loads(capsys.readouterr().out)["state"] == "running"

            assert await run_ctl("--socket", str(path), "pause") == 0
            assert fake.state == "paused"
            assert await run_ctl("--socket", str(path), "resume") == 0
            assert await run_ctl("--socket", str(path), "rate", "0.25") == 0
            assert await run_ctl("--socket", str(path), "speed", "60") == 0
            assert (fake.state, fake.rate_scale, fake.speed_factor) == (
                "running",
                0.25,
                60.0,
            )
            capsys.readouterr()

            assert await run_ctl("--socket", str(path), "outputs") == 0
            lines = capsys.readouterr().out.splitlines()
            assert lines[0].split() == [
                "name", "kind", "packets", "bytes", "flows", "dropped", "errors"
            ]  # fmt: skip
            assert lines[1].split()[:3] == ["ring", "ring", "10"]

            assert await run_ctl("--socket", str(path), "rotate") == 0
            assert capsys.readouterr().out == ("finished var/ring/fosr_00001.pcap\n")

            # a relative model path is sent absolute: the daemon's folder differs
            assert await run_ctl("--socket", str(path), "reload", "m.fosr") == 0
            assert fake.model == os.path.abspath("m.fosr")
    finally:
        await server.close()


@pytest.mark.asyncio
async def test_daemon_refusals_exit_1_with_one_line(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = folder / "c.sock"
    server = await start_control(FakeController(), path)
    try:
        async with asyncio.timeout(20):
            assert await run_ctl("--socket", str(path), "rate", "-1") == 1
            err = capsys.readouterr().err
            assert err == (
                f"fosrctl: error: fosrd at {path} answered 400: field 'scale': "
                "rate scale must be in (0, 1000], not -1.0\n"
            )
            assert await run_ctl("--socket", str(path), "reload", "/x.bin") == 1
            err = capsys.readouterr().err
            assert "reload failed, the running model is kept: /x.bin" in err
            assert err.count("\n") == 1
    finally:
        await server.close()


def test_missing_socket_exits_3_naming_it(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = folder / "none.sock"
    assert ctl.main(["--socket", str(path), "status"]) == 3
    assert capsys.readouterr().err == (
        f"fosrctl: error: {path}: no such socket (is fosrd running?)\n"
    )


def test_stale_socket_exits_3(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = folder / "stale.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()
    assert ctl.main(["--socket", str(path), "status"]) == 3
    assert "connection refused (fosrd is not running" in capsys.readouterr().err


@pytest.mark.root
def test_permission_denied_exits_3(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # root ignores file modes; run the check as nobody in a child process
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another user")
    path = folder / "p.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen()
    path.chmod(0o600)
    folder.chmod(0o755)
    pid = os.fork()
    if pid == 0:  # the child: become nobody, report by exit status only
        code = 99
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            with open(os.devnull, "w") as sink:
                os.dup2(sink.fileno(), 2)
            code = ctl.main(["--socket", str(path), "status"])
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    listener.close()
    assert os.waitstatus_to_exitcode(status) == 3


def test_not_a_fosrd_socket_exits_3(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = folder / "other.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen()
    listener.settimeout(5)

    def answer_garbage() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        conn.close()

    thread = threading.Thread(target=answer_garbage)
    thread.start()
    try:
        assert ctl.main(["--socket", str(path), "status"]) == 3
    finally:
        thread.join()
        listener.close()
    assert "is it a fosrd control socket?" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["rate"],
        ["rate", "fast"],
        ["speed", "nan"],
        ["--timeout", "0", "status"],
        ["--socket", "a", "--config", "b", "status"],
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        ctl.main(argv)
    assert raised.value.code == 2
    assert capsys.readouterr().err.startswith("usage: fosrctl")


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "fosrd.toml"
    config.write_text("[control]\nsocket = 7\n")
    assert ctl.main(["--config", str(config), "status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fosrctl: error: {config}: field 'control.socket'")


@pytest.mark.asyncio
async def test_socket_found_through_config_and_env(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await start_control(FakeController(), folder / "var/run/fosrd.sock")
    config = folder / "fosrd.toml"
    config.write_text('[control]\nsocket = "var/run/fosrd.sock"\n')
    try:
        async with asyncio.timeout(20):
            monkeypatch.chdir(folder)  # relative to the working folder
            monkeypatch.delenv("FOSRD_SOCKET", raising=False)
            assert await run_ctl("--config", str(config), "status") == 0
            assert await run_ctl("status") == 0  # the default, var/run/fosrd.sock
            monkeypatch.chdir("/")
            monkeypatch.setenv("FOSRD_SOCKET", str(server.path))
            assert await run_ctl("status") == 0
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"a": 1, "b": {"c": 0.5, "d": []}}, "a: 1\nb:\n  c: 0.5\n  d: -"),
        ({"outs": [{"n": "x", "k": 2}]}, "outs:\n  - n: x\n    k: 2"),
        ({"ok": True, "none": None}, "ok: yes\nnone: -"),
        ({"t": 1796320939.4616048, "lag": 0.1 + 0.2}, "t: 1796320939.461605\nlag: 0.3"),
    ],
)
def test_format_answer(answer: Any, expected: str) -> None:
    assert ctl.format_answer("status", answer) == expected
