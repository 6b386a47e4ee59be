"""The control API, driven through a real Unix socket in a temporary folder."""

from __future__ import annotations

import asyncio
import functools
import grp
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import numpy as np
import pytest

from bench import fuzz_control
from fosr.errors import ConfigError, ModelError
from fosrd.control import (
    DEFAULT_SOCKET,
    MAX_BODY_BYTES,
    ControlServer,
    PeerCredentials,
    find_socket,
    start_control,
)

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def timeout(seconds: float) -> Callable[[F], F]:
    """Fail an async test that runs longer than ``seconds``."""

    def decorate(test: F) -> F:
        @functools.wraps(test)
        async def run(*args: Any, **kwargs: Any) -> Any:
            async with asyncio.timeout(seconds):
                return await test(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate


class Fake:
    """A controller that records calls; ``fail`` makes a method raise."""

    def __init__(self) -> None:
        self.state = "running"
        self.scale = 1.0
        self.factor = 1.0
        self.calls: list[tuple[str, object]] = []
        self.reload_gate: asyncio.Event | None = None
        self.fail: str | None = None

    def _call(self, name: str, arg: object = None) -> None:
        self.calls.append((name, arg))
        if self.fail == name:
            raise RuntimeError(f"{name} exploded")

    def status(self) -> dict[str, object]:
        self._call("status")
        return {"state": self.state, "rate_scale": self.scale, "lag": float("nan")}

    def pause(self) -> None:
        self._call("pause")
        self.state = "paused"

    def resume(self) -> None:
        self._call("resume")
        self.state = "running"

    def set_rate(self, scale: float) -> None:
        self._call("set_rate", scale)
        if scale <= 0:
            raise ValueError(f"must be positive, not {scale:g}")
        self.scale = scale

    def set_speed(self, factor: float) -> None:
        self._call("set_speed", factor)
        if factor <= 0:
            raise ValueError(f"must be positive, not {factor:g}")
        self.factor = factor

    async def reload(self, model: str | None) -> dict[str, object]:
        self._call("reload", model)
        if self.reload_gate is not None:
            await self.reload_gate.wait()
        if model == "/bad.fosr":
            raise ModelError("/bad.fosr: not a model bundle")
        return {"model": model}

    def rotate(self) -> list[str]:
        self._call("rotate")
        return ["var/ring/fosr_00001_20260101000000.pcap"]

    def outputs(self) -> list[dict[str, object]]:
        self._call("outputs")
        return [{"name": "ring", "kind": "ring", "packets": 3}]


@pytest.fixture
def folder() -> Iterator[Path]:
    """A short temporary folder (socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="fosrd-t-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Client:
    """Requests to one socket through aiohttp's UnixConnector."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def call(
        self, method: str, endpoint: str, body: object = None, *, raw: bytes = b""
    ) -> tuple[int, Any]:
        data = raw or (b"" if body is None else json.dumps(body).encode())
        connector = aiohttp.UnixConnector(path=str(self.path))
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.request(
                method, f"http://localhost{endpoint}", data=data
            ) as response:
                return response.status, await response.json(content_type=None)


async def serve(
    folder: Path, controller: Fake | None = None, **kwargs: Any
) -> tuple[ControlServer, Fake, Client]:
    controller = Fake() if controller is None else controller
    path = folder / "run" / "fosrd.sock"
    server = await start_control(controller, path, **kwargs)
    return server, controller, Client(path)


# --- the API -----------------------------------------------------------------


@pytest.mark.asyncio
@timeout(10)
async def test_status_and_outputs_answer_the_controllers_json(folder: Path) -> None:
    server, _, client = await serve(folder)
    try:
        assert await client.call("GET", "/v1/status") == (
            200,
            {"state": "running", "rate_scale": 1.0, "lag": None},  # NaN -> null
        )
        status, answer = await client.call("GET", "/v1/outputs")
        assert (status, answer["outputs"][0]["name"]) == (200, "ring")
    finally:
        await server.close()


@pytest.mark.asyncio
@timeout(10)
async def test_commands_reach_the_controller(folder: Path) -> None:
    server, fake, client = await serve(folder)
    try:
        assert (await client.call("POST", "/v1/pause"))[1]["state"] == "paused"
        assert (await client.call("POST", "/v1/resume", {}))[1]["state"] == "running"
        assert (await client.call("POST", "/v1/rate", {"scale": 2}))[0] == 200
        assert (await client.call("POST", "/v1/speed", {"factor": 60.5}))[0] == 200
        assert await client.call("POST", "/v1/reload") == (200, {"model": None})
        assert await client.call("POST", "/v1/reload", {"model": "/m.fosr"}) == (
            200,
            {"model": "/m.fosr"},
        )
        status, answer = await client.call("POST", "/v1/rotate")
        assert (status, answer) == (
            200,
            {"finished": ["var/ring/fosr_00001_20260101000000.pcap"]},
        )
        actions = [call for call in fake.calls if call[0] != "status"]
        assert actions == [
            ("pause", None),
            ("resume", None),
            ("set_rate", 2.0),
            ("set_speed", 60.5),
            ("reload", None),
            ("reload", "/m.fosr"),
            ("rotate", None),
        ]
        assert (fake.scale, fake.factor) == (2.0, 60.5)
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("endpoint", "body", "expected"),
    [
        ("/v1/rate", b'{"scale": -1}', "field 'scale': must be positive, not -1"),
        ("/v1/rate", b"{}", "field 'scale' is missing"),
        ("/v1/rate", b'{"scale": "2"}', "field 'scale' must be a number"),
        ("/v1/rate", b'{"scale": true}', "field 'scale' must be a number"),
        ("/v1/rate", b'{"scale": 1e999}', "field 'scale' must be finite"),
        ("/v1/rate", b'{"scale": NaN}', "not valid JSON: NaN is not a JSON number"),
        ("/v1/rate", b'{"scale": 1, "x": 2}', "unknown field 'x'"),
        ("/v1/speed", b'{"scale": 1}', "unknown field 'scale'"),
        ("/v1/speed", b'{"factor": 0}', "field 'factor': must be positive"),
        ("/v1/speed", b"[1]", "must be a JSON object, not an array"),
        ("/v1/pause", b'{"now": true}', "unknown field 'now' (expected: none)"),
        ("/v1/reload", b'{"model": 3}', "field 'model' must be a path string"),
        ("/v1/reload", b'{"model": ""}', "field 'model' must be a non-empty path"),
        ("/v1/reload", b"{", "not valid JSON"),
        ("/v1/reload", b"\xff\xfe", "not UTF-8"),
        ("/v1/rate", b"[" * 5000, "not valid JSON"),  # deeper than json recurses
    ],
)
@pytest.mark.asyncio
@timeout(10)
async def test_bad_bodies_get_400_naming_the_field(
    folder: Path, endpoint: str, body: bytes, expected: str
) -> None:
    server, fake, client = await serve(folder)
    try:
        status, answer = await client.call("POST", endpoint, raw=body)
        assert status == 400
        assert expected in answer["error"]
        assert "\n" not in answer["error"]
        assert fake.state == "running" and fake.scale == 1.0
    finally:
        await server.close()


@pytest.mark.asyncio
@timeout(10)
async def test_wrong_path_method_and_size_get_json_errors(folder: Path) -> None:
    server, _, client = await serve(folder)
    try:
        assert await client.call("GET", "/v1/nope") == (
            404,
            {"error": "no such endpoint: GET /v1/nope"},
        )
        assert await client.call("GET", "/v1/pause") == (
            405,
            {"error": "method GET is not allowed on /v1/pause"},
        )
        status, answer = await client.call(
            "POST", "/v1/reload", raw=b"x" * (MAX_BODY_BYTES + 1)
        )
        assert (status, answer) == (
            413,
            {"error": f"the body is larger than {MAX_BODY_BYTES} bytes"},
        )
    finally:
        await server.close()


@pytest.mark.asyncio
@timeout(10)
async def test_failed_reload_is_400_and_a_second_reload_meanwhile_is_409(
    folder: Path,
) -> None:
    server, fake, client = await serve(folder)
    try:
        status, answer = await client.call("POST", "/v1/reload", {"model": "/bad.fosr"})
        assert status == 400
        assert answer["error"] == (
            "reload failed, the running model is kept: /bad.fosr: not a model bundle"
        )

        # the first reload waits on the gate; the second arrives meanwhile
        fake.reload_gate = asyncio.Event()
        first = asyncio.create_task(client.call("POST", "/v1/reload"))
        while ("reload", None) not in fake.calls:
            await asyncio.sleep(0.01)
        assert await client.call("POST", "/v1/reload") == (
            409,
            {"error": "a reload is already in progress"},
        )
        fake.reload_gate.set()
        assert await first == (200, {"model": None})
        assert (await client.call("POST", "/v1/reload"))[0] == 200
    finally:
        await server.close()


@pytest.mark.asyncio
@timeout(10)
async def test_controller_failure_is_500_and_the_server_keeps_serving(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, fake, client = await serve(folder)
    try:
        fake.fail = "rotate"
        assert await client.call("POST", "/v1/rotate") == (
            500,
            {"error": "internal error: RuntimeError: rotate exploded"},
        )
        assert "control request POST /v1/rotate failed" in caplog.text
        fake.fail = None
        assert (await client.call("GET", "/v1/status"))[0] == 200
    finally:
        await server.close()


class NumpyFake(Fake):
    """A status with the types a daemon's counters really hold."""

    def status(self) -> dict[str, object]:
        return {
            "packets": np.int64(7),
            "lag": np.float32(0.5),
            "ring": Path("var/ring"),
            "per_hour": np.arange(3),
            "inf": float("inf"),
            "bad": object() if self.fail == "status" else None,
        }


@pytest.mark.asyncio
@timeout(10)
async def test_numpy_values_and_paths_become_json(folder: Path) -> None:
    server, fake, client = await serve(folder, NumpyFake())
    try:
        assert await client.call("GET", "/v1/status") == (
            200,
            {
                "packets": 7,
                "lag": 0.5,
                "ring": "var/ring",
                "per_hour": [0, 1, 2],
                "inf": None,
                "bad": None,
            },
        )
        fake.fail = "status"  # a value JSON cannot carry: 500, not a crash
        status, answer = await client.call("GET", "/v1/status")
        assert status == 500
        assert answer["error"].startswith("internal error: TypeError: object value")
        fake.fail = None
        assert (await client.call("GET", "/v1/status"))[0] == 200
    finally:
        await server.close()


async def raw_exchange(path: Path, data: bytes, wait_s: float = 10.0) -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), wait_s)
    finally:
        writer.close()


@pytest.mark.asyncio
@timeout(20)
async def test_silent_clients_are_dropped_and_slow_bodies_get_408(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fosrd._control_json.BODY_TIMEOUT_S", 0.2)
    monkeypatch.setattr("fosrd.control.KEEPALIVE_TIMEOUT_S", 0.5)
    server, _, _ = await serve(folder)
    try:
        # the keep-alive timeout also ends connections that say nothing
        started = asyncio.get_running_loop().time()
        assert await raw_exchange(server.path, b"GET /v1/sta") == b""
        assert asyncio.get_running_loop().time() - started < 3
        answer = await raw_exchange(
            server.path,
            b"POST /v1/rate HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{",
        )
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b'{"error": "the body did not arrive within 0.2 s"}' in answer
    finally:
        await server.close()


@pytest.mark.asyncio
@timeout(20)
async def test_requests_beyond_the_limit_get_503(folder: Path) -> None:
    server, _, client = await serve(folder, max_requests=2)
    stalled = []
    try:
        # two requests announce a body and hold their slot while it trickles
        for _ in range(2):
            reader, writer = await asyncio.open_unix_connection(str(server.path))
            writer.write(
                b"POST /v1/rate HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n{"
            )
            await writer.drain()
            stalled.append(writer)
        await asyncio.sleep(0.2)
        status, answer = await client.call("GET", "/v1/status")
        assert (status, answer) == (
            503,
            {"error": "busy: 2 requests in progress, retry"},
        )
        for writer in stalled:
            writer.close()
        await asyncio.sleep(0.2)
        assert (await client.call("GET", "/v1/status"))[0] == 200
    finally:
        await server.close()


@pytest.mark.asyncio
@timeout(60)
async def test_a_thousand_concurrent_clients_are_answered_or_refused_cleanly(
    folder: Path,
) -> None:
    server, fake, _ = await serve(folder)
    fake.reload_gate = asyncio.Event()
    fake.reload_gate.set()

    async def one(i: int) -> str:
        request = (
            b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            if i % 2
            else b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
        try:
            answer = await raw_exchange(server.path, request, wait_s=30)
        except (ConnectionRefusedError, ConnectionResetError, BlockingIOError):
            return "refused"
        return answer.split(b"\r\n", 1)[0].decode()

    try:
        results = await asyncio.gather(*(one(i) for i in range(1000)))
        allowed = {
            "HTTP/1.1 200 OK",
            "HTTP/1.1 409 Conflict",
            "HTTP/1.1 503 Service Unavailable",
            "refused",
        }
        assert set(results) <= allowed, set(results) - allowed
        # the queue holds 1,024: nearly everyone gets in, every status is 200
        assert results.count("refused") <= 100
        assert results.count("HTTP/1.1 200 OK") >= 400
        status, _ = await Client(server.path).call("GET", "/v1/status")
        assert status == 200
    finally:
        await server.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.asyncio
@timeout(20)
async def test_curl_unix_socket_works(folder: Path) -> None:
    server, fake, _ = await serve(folder)
    try:
        process = await asyncio.create_subprocess_exec(
            "curl", "-sS", "--unix-socket", str(server.path),
            "-X", "POST", "-d", '{"scale": 0.5}',
            "http://localhost/v1/rate",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await process.communicate()
        assert json.loads(out)["rate_scale"] == 0.5
        assert fake.scale == 0.5
    finally:
        await server.close()


# --- the socket file ---------------------------------------------------------


@pytest.mark.asyncio
@timeout(10)
async def test_socket_file_has_mode_and_group_and_is_removed_on_close(
    folder: Path,
) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    if os.geteuid() == 0:
        group = grp.getgrgid(1).gr_name  # root may give it any group
    server, _, _ = await serve(folder, mode=0o660, group=group)
    st = os.stat(server.path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert grp.getgrgid(st.st_gid).gr_name == group
    await server.close()
    assert not server.path.exists()
    await server.close()  # harmless twice


@pytest.mark.asyncio
@timeout(10)
async def test_stale_socket_is_replaced(folder: Path) -> None:
    path = folder / "run" / "fosrd.sock"
    path.parent.mkdir()
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: a crashed daemon's
    server, _, client = await serve(folder)
    try:
        assert (await client.call("GET", "/v1/status"))[0] == 200
    finally:
        await server.close()


@pytest.mark.asyncio
@timeout(10)
async def test_live_socket_and_other_files_are_not_replaced(folder: Path) -> None:
    server, _, client = await serve(folder)
    try:
        with pytest.raises(ConfigError, match="is in use: another fosrd"):
            await start_control(Fake(), server.path)
        assert (await client.call("GET", "/v1/status"))[0] == 200
    finally:
        await server.close()

    plain = folder / "plain"
    plain.write_text("keep me")
    with pytest.raises(ConfigError, match="exists and is not a socket"):
        await start_control(Fake(), plain)
    assert plain.read_text() == "keep me"


@pytest.mark.asyncio
@timeout(10)
async def test_bad_socket_settings_raise_config_error(folder: Path) -> None:
    with pytest.raises(ConfigError, match="too long"):
        await start_control(Fake(), folder / ("x" * 120))
    with pytest.raises(ConfigError, match="group 'no-such-group-x' does not exist"):
        await start_control(Fake(), folder / "s.sock", group="no-such-group-x")
    assert not (folder / "s.sock").exists()


# --- who may connect ---------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "uids", "gids", "allowed"),
    [
        (PeerCredentials(1, 0, 0), (), (), True),  # root always
        (PeerCredentials(1, 1000, 1000), (), (), False),
        (PeerCredentials(1, 1000, 1000), (1000,), (), True),
        (PeerCredentials(1, 1000, 1000), (), (1000,), True),
        (PeerCredentials(1, 1000, 1000, frozenset({27, 998})), (), (998,), True),
        (PeerCredentials(1, 1000, 1000, frozenset({27})), (1001,), (998,), False),
    ],
)
def test_peer_allow_list(
    peer: PeerCredentials, uids: tuple[int, ...], gids: tuple[int, ...], allowed: bool
) -> None:
    assert peer.is_allowed(uids, gids) is allowed


NOBODY = 65534
DAEMON_GID = 1  # Debian's "daemon" group: neither ours nor nobody's


@pytest.mark.root
@pytest.mark.parametrize(
    ("allow_uids", "extra_groups", "allowed"),
    [
        ((), [], False),
        ((NOBODY,), [], True),
        # a supplementary group of the peer's (SO_PEERGROUPS) opens the door
        ((), [DAEMON_GID], True),
    ],
)
@pytest.mark.asyncio
@timeout(20)
async def test_peer_check_as_another_user(
    folder: Path, allow_uids: tuple[int, ...], extra_groups: list[int], allowed: bool
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to connect as another user")
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed (it connects as the other user)")
    folder.chmod(0o755)
    server, _, _ = await serve(
        folder, mode=0o666, group=DAEMON_GID, allow_uids=allow_uids
    )
    (folder / "run").chmod(0o755)
    try:
        process = await asyncio.create_subprocess_exec(
            curl, "-sS", "-i", "--unix-socket", str(server.path),
            "http://localhost/v1/status",
            user=NOBODY, group=NOBODY, extra_groups=extra_groups,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await process.communicate()
        head, body = out.decode().split("\r\n\r\n", 1)
        status_line = head.split("\r\n", 1)[0]
        if allowed:
            assert status_line == "HTTP/1.1 200 OK"
        else:
            assert status_line == "HTTP/1.1 403 Forbidden"
            assert json.loads(body) == {
                "error": f"uid {NOBODY} gid {NOBODY} is not allowed to use the "
                "control socket"
            }
    finally:
        await server.close()


# --- finding the socket ------------------------------------------------------


def test_find_socket_order(tmp_path: Path) -> None:
    config = tmp_path / "fosrd.toml"
    config.write_text('[control]\nsocket = "run/x.sock"\n')
    bare = tmp_path / "bare.toml"
    bare.write_text("[metrics]\nport = 1\n")
    env = {"FOSRD_SOCKET": "/env.sock"}

    assert find_socket(config, "/flag.sock", environ=env) == Path("/flag.sock")
    # relative to the working folder, like every path the daemon reads
    assert find_socket(config, None, environ=env) == Path("run/x.sock")
    assert find_socket(bare, None, environ=env) == Path("/env.sock")
    assert find_socket(None, None, environ=env) == Path("/env.sock")
    assert find_socket(None, None, environ={}) == Path(DEFAULT_SOCKET)
    assert DEFAULT_SOCKET == "var/run/fosrd.sock"


def test_find_socket_reads_the_shipped_configuration() -> None:
    shipped = Path(__file__).resolve().parents[2] / "conf" / "fosrd.toml"
    if not shipped.is_file():
        pytest.skip(f"{shipped} is not there yet")
    assert find_socket(shipped, None, environ={}) == Path(DEFAULT_SOCKET)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[control\n", "not valid TOML"),
        ("control = 3\n", "field 'control' must be a table"),
        ("[control]\nsocket = 3\n", "field 'control.socket' must be a non-empty path"),
        ('[control]\nsocket = ""\n', "field 'control.socket' must be a non-empty path"),
    ],
)
def test_find_socket_bad_configuration(
    tmp_path: Path, text: str, expected: str
) -> None:
    config = tmp_path / "fosrd.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        find_socket(config, None, environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        find_socket(tmp_path / "missing.toml", None, environ={})


# --- fuzzing, short --------------------------------------------------------


@pytest.mark.asyncio
@timeout(60)
async def test_fuzz_control_short_run_finds_no_failure() -> None:
    report = await fuzz_control.run(cases=200, seed=7)
    assert report.cases == 200
    assert report.failures == []
    # the run really exercised refusals, not only happy paths
    assert {"200", "400", "404"} <= set(report.statuses)
