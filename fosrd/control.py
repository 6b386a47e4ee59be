"""The control socket: a small versioned JSON API over HTTP on a Unix socket.

The daemon hands :func:`start_control` an object that implements
:class:`Controller`; this module turns requests into calls on it and its
answers (or exceptions) into JSON.  Endpoints, all under ``/v1``:

=======  ===============  ===========================  =========================
method   path             body                         answer
=======  ===============  ===========================  =========================
GET      /v1/status       --                           the controller's status
GET      /v1/outputs      --                           {"outputs": [...]}
POST     /v1/pause        none or {}                   status after the change
POST     /v1/resume       none or {}                   status after the change
POST     /v1/rate         {"scale": number}            status after the change
POST     /v1/speed        {"factor": number}           status after the change
POST     /v1/reload       none, {} or {"model": path}  the controller's answer
POST     /v1/rotate       none or {}                   {"finished": [paths]}
=======  ===============  ===========================  =========================

Every error is ``{"error": "one line"}`` with a status that says whose fault
it is: 400 a malformed request (the line names the field), 403 a peer not on
the allow-list, 404/405 a wrong path or method, 408 a body that never came,
409 a reload while another one runs, 413 a body over
:data:`MAX_BODY_BYTES`, 503 too many requests at once, 505 an HTTP version
other than 1.x, 500 a failure inside the daemon (logged with its
traceback; the server keeps serving).  Requests aiohttp's parser refuses
(no Host header, a bad request line) get its plain-text 400.

Who may talk to it is checked twice: by the file (mode 0660 and a group,
set before the socket listens, so there is no window with looser rights)
and by the kernel's word on the peer (``SO_PEERCRED``, and the peer's
supplementary groups through ``SO_PEERGROUPS`` where the platform has it)
against an allow-list.  Root, the daemon's own uid and the socket file's
group are always allowed.

``curl --unix-socket var/run/fosrd.sock http://localhost/v1/status`` works,
and so does ``fosrctl`` (:mod:`fosrd.ctl`), which finds the socket with
:func:`find_socket`, the same function the daemon uses.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tomllib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from fosr.errors import ConfigError, FosrError
from fosrd._control_json import (
    MAX_BODY_BYTES,
    BadRequest,
    error_response,
    http_error_response,
    json_response,
    number_field,
    path_field,
    read_fields,
)
from fosrd._control_socket import (
    PeerCredentials,
    bind_socket,
    peer_credentials,
    resolve_group,
)

__all__ = [
    "API_PREFIX",
    "DEFAULT_SOCKET",
    "MAX_BODY_BYTES",
    "SOCKET_ENV",
    "ControlServer",
    "Controller",
    "PeerCredentials",
    "find_socket",
    "start_control",
]

logger = logging.getLogger(__name__)

#: where the daemon listens when neither a flag, the configuration nor
#: FOSRD_SOCKET says otherwise; relative to the working folder, so the
#: shipped configuration runs without root
DEFAULT_SOCKET = "var/run/fosrd.sock"
#: environment variable naming the socket, below --socket and the config
SOCKET_ENV = "FOSRD_SOCKET"
API_PREFIX = "/v1"

#: how long a connection may stay silent, new or between requests
KEEPALIVE_TIMEOUT_S = 5.0
#: requests handled at once before answering 503; chosen, not tuned: every
#: handler but reload answers without waiting, so this only bounds slow
#: clients that announce a body and trickle it
DEFAULT_MAX_REQUESTS = 64
#: pending connections the kernel queues for us (capped by
#: net.core.somaxconn, 4096 on Linux >= 5.4); large so that a burst of
#: clients waits in the queue instead of being refused
DEFAULT_BACKLOG = 1024


class Controller(Protocol):
    """What the control API drives: the daemon's engine, or a fake in tests."""

    def status(self) -> dict[str, object]:
        """Return a JSON-ready status: state, model, rates, counters, outputs."""
        ...

    def pause(self) -> None:
        """Stop emitting until :meth:`resume`; harmless when paused."""
        ...

    def resume(self) -> None:
        """Emit again after :meth:`pause`; harmless when running."""
        ...

    def set_rate(self, scale: float) -> None:
        """Scale the learned volume; raise ValueError with a message if bad."""
        ...

    def set_speed(self, factor: float) -> None:
        """Run model time ``factor`` times the wall clock; ValueError if bad."""
        ...

    async def reload(self, model: str | None) -> dict[str, object]:
        """Swap in a model (the configured one when None).

        Raise :class:`fosr.errors.FosrError` on failure; the old model keeps
        running then.
        """
        ...

    def rotate(self) -> list[str]:
        """Finish the files being written now; return their paths."""
        ...

    def outputs(self) -> list[dict[str, object]]:
        """Return each output's ``status()``."""
        ...


def find_socket(
    config_path: str | os.PathLike[str] | None,
    socket_path: str | os.PathLike[str] | None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """Return the control socket path the way both the daemon and fosrctl do.

    The first of these wins: ``socket_path`` (the ``--socket`` flag); the
    ``[control] socket`` key of the TOML file ``config_path``; the
    ``FOSRD_SOCKET`` environment variable; :data:`DEFAULT_SOCKET`.  A
    relative path stays relative to the current working folder (the
    daemon's rule for every path in its configuration).  Raise
    :class:`ConfigError` when the configuration cannot be read or the key
    is not a non-empty string.
    """
    if socket_path is not None and os.fspath(socket_path) != "":
        return Path(socket_path)
    if config_path is not None:
        configured = _read_socket_key(Path(config_path))
        if configured is not None:
            return Path(configured)
    env = os.environ if environ is None else environ
    if env.get(SOCKET_ENV):
        return Path(env[SOCKET_ENV])
    return Path(DEFAULT_SOCKET)


class ControlServer:
    """A running control socket; :meth:`close` stops it and removes the file."""

    def __init__(self, runner: web.AppRunner, path: Path, inode: tuple[int, int]):
        self.runner = runner
        self.path = path
        self._inode = inode
        self._closed = False

    async def close(self) -> None:
        """Stop serving and remove the socket file; calling twice is harmless.

        The file is removed only if it is still the one this server bound,
        so a successor that already replaced it keeps its socket.
        """
        if self._closed:
            return
        self._closed = True
        await self.runner.cleanup()
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if (st.st_dev, st.st_ino) == self._inode:
            self.path.unlink(missing_ok=True)


async def start_control(
    controller: Controller,
    path: str | os.PathLike[str],
    *,
    mode: int = 0o660,
    group: str | int | None = None,
    allow_uids: Iterable[int] = (),
    allow_gids: Iterable[int] = (),
    max_requests: int = DEFAULT_MAX_REQUESTS,
    backlog: int = DEFAULT_BACKLOG,
) -> ControlServer:
    """Serve the control API for ``controller`` on the Unix socket ``path``.

    Create the parent folder if needed, replace a stale socket left by a
    dead daemon (never a file of another type, nor a socket someone still
    listens on), give the file ``mode`` and ``group`` (a name or a gid)
    before listening.  Peers must be root, the daemon's own uid, in
    ``allow_uids``, or have the file's group (``group``, else the daemon's)
    or one of ``allow_gids`` among their groups.  At most ``max_requests``
    are handled at once; more get 503.  Raise :class:`ConfigError`, naming
    the path, when the socket cannot be set up.
    """
    if max_requests < 1:
        raise ValueError(f"max_requests must be at least 1, not {max_requests}")
    path = Path(path)
    gid = None if group is None else resolve_group(group)
    sock = bind_socket(path, mode, gid)
    st = os.lstat(path)

    # who may talk to us: the file's group is allowed in any case, be it
    # ``group`` or the daemon's own group the file was created with, so
    # that the kernel's check and ours agree
    uids = {0, os.geteuid(), *allow_uids}
    gids = {st.st_gid, *allow_gids}
    api = _Api(
        controller,
        uids=frozenset(uids),
        gids=frozenset(gids),
        max_requests=max_requests,
    )

    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[api.errors_as_json, api.check_peer, api.limit_requests],
    )
    api.add_routes(app)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=2.0,
        keepalive_timeout=KEEPALIVE_TIMEOUT_S,
        logger=_http_logger,
        # after an early answer (413, 408), read what is left of the body for
        # at most this long before closing, not aiohttp's 10 s
        lingering_time=1.0,
        max_line_size=4096,
        max_field_size=4096,
        auto_decompress=False,  # a compressed body is refused, never inflated
    )
    try:
        await runner.setup()
        site = web.SockSite(runner, sock, backlog=backlog)
        await site.start()
    except BaseException:
        await runner.cleanup()
        sock.close()
        path.unlink(missing_ok=True)
        raise
    logger.info("control socket listening on %s", path)
    return ControlServer(runner, path, (st.st_dev, st.st_ino))


# --- the configuration file ----------------------------------------------


def _read_socket_key(config_path: Path) -> str | None:
    try:
        with config_path.open("rb") as f:
            document = tomllib.load(f)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(f"{config_path}: cannot read: {reason}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{config_path}: not valid TOML: {error}") from error
    section = document.get("control")
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError(f"{config_path}: field 'control' must be a table")
    value = section.get("socket")
    if value is None:
        return None
    if not isinstance(value, str) or value == "":
        raise ConfigError(
            f"{config_path}: field 'control.socket' must be a non-empty path, "
            f"not {value!r}"
        )
    return value


# --- the requests ------------------------------------------------------------


class _OneLineHttpErrors(logging.Filter):
    """Log a malformed HTTP request as one WARNING line, not an ERROR traceback.

    aiohttp logs what its parser refuses with ``logger.exception``; a
    client's garbage is not our failure (aiohttp's own bugs keep theirs).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = "refused a malformed HTTP request: %s"
            record.args = (" ".join(str(error).split()),)
            record.exc_info = None
            record.exc_text = None
            record.levelno = logging.WARNING
            record.levelname = logging.getLevelName(logging.WARNING)
        return True


_http_logger = logging.getLogger(f"{__name__}.http")
_http_logger.addFilter(_OneLineHttpErrors())

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


_PEER = web.RequestKey("peer", PeerCredentials)


class _Api:
    """The handlers and middlewares, around one controller."""

    def __init__(
        self,
        controller: Controller,
        *,
        uids: frozenset[int],
        gids: frozenset[int],
        max_requests: int,
    ) -> None:
        # settings
        self.controller = controller
        self.uids = uids
        self.gids = gids
        self.max_requests = max_requests

        # state
        self.active_requests = 0
        self.reloading = False

    def add_routes(self, app: web.Application) -> None:
        v1 = API_PREFIX
        app.router.add_get(f"{v1}/status", self.handle_status)
        app.router.add_get(f"{v1}/outputs", self.handle_outputs)
        app.router.add_post(f"{v1}/pause", self.handle_pause)
        app.router.add_post(f"{v1}/resume", self.handle_resume)
        app.router.add_post(f"{v1}/rate", self.handle_rate)
        app.router.add_post(f"{v1}/speed", self.handle_speed)
        app.router.add_post(f"{v1}/reload", self.handle_reload)
        app.router.add_post(f"{v1}/rotate", self.handle_rotate)

    # middlewares, outermost first

    @web.middleware
    async def errors_as_json(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        """Turn every failure into a JSON error; nothing escapes as a 500 page."""
        try:
            major, minor = request.version
            if major != 1:
                raise BadRequest(f"HTTP/{major}.{minor} is not supported", 505)
            return await handler(request)
        except BadRequest as error:
            # TODO: one WARNING per refused request, not rate-limited: a peer
            # that floods the socket with bad requests floods the journal too
            logger.warning("refused %s %s: %s", request.method, request.path, error)
            response = error_response(error.status, str(error))
            if error.status in (408, 505) or error.incomplete:
                response.force_close()  # what is left of the request is unusable
            return response
        except web.HTTPException as error:
            return http_error_response(request, error)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.exception(
                "control request %s %s failed", request.method, request.path
            )
            return error_response(
                500, f"internal error: {type(error).__name__}: {error}"
            )

    @web.middleware
    async def check_peer(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        """Answer 403 unless the peer is on the allow-list."""
        transport = request.transport
        sock = None if transport is None else transport.get_extra_info("socket")
        peer = None if sock is None else peer_credentials(sock)
        if peer is None:
            raise BadRequest("peer credentials are unavailable", 403)
        if not peer.is_allowed(self.uids, self.gids):
            raise BadRequest(
                f"uid {peer.uid} gid {peer.gid} is not allowed to use the "
                "control socket",
                403,
            )
        request[_PEER] = peer
        return await handler(request)

    @web.middleware
    async def limit_requests(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        """Answer 503 when :attr:`max_requests` are already being handled."""
        if self.active_requests >= self.max_requests:
            response = error_response(
                503, f"busy: {self.active_requests} requests in progress, retry"
            )
            response.force_close()
            return response
        self.active_requests += 1
        try:
            return await handler(request)
        finally:
            self.active_requests -= 1

    # handlers

    async def handle_status(self, request: web.Request) -> web.Response:
        return json_response(self.controller.status())

    async def handle_outputs(self, request: web.Request) -> web.Response:
        return json_response({"outputs": self.controller.outputs()})

    async def handle_pause(self, request: web.Request) -> web.Response:
        await read_fields(request, allowed=())
        self.controller.pause()
        _log_action(request, "pause")
        return json_response(self.controller.status())

    async def handle_resume(self, request: web.Request) -> web.Response:
        await read_fields(request, allowed=())
        self.controller.resume()
        _log_action(request, "resume")
        return json_response(self.controller.status())

    async def handle_rate(self, request: web.Request) -> web.Response:
        fields = await read_fields(request, allowed=("scale",))
        scale = number_field(fields, "scale")
        try:
            self.controller.set_rate(scale)
        except ValueError as error:
            raise BadRequest(f"field 'scale': {error}") from error
        _log_action(request, f"rate scale {scale}")
        return json_response(self.controller.status())

    async def handle_speed(self, request: web.Request) -> web.Response:
        fields = await read_fields(request, allowed=("factor",))
        factor = number_field(fields, "factor")
        try:
            self.controller.set_speed(factor)
        except ValueError as error:
            raise BadRequest(f"field 'factor': {error}") from error
        _log_action(request, f"speed factor {factor}")
        return json_response(self.controller.status())

    async def handle_reload(self, request: web.Request) -> web.Response:
        fields = await read_fields(request, allowed=("model",))
        model = path_field(fields, "model")
        if self.reloading:
            raise BadRequest("a reload is already in progress", 409)
        self.reloading = True
        try:
            _log_action(request, f"reload {model or '(configured model)'}")
            answer = await self.controller.reload(model)
        except FosrError as error:
            raise BadRequest(
                f"reload failed, the running model is kept: {error}"
            ) from error
        finally:
            self.reloading = False
        return json_response(answer)

    async def handle_rotate(self, request: web.Request) -> web.Response:
        await read_fields(request, allowed=())
        finished = self.controller.rotate()
        _log_action(request, "rotate")
        return json_response({"finished": finished})


def _log_action(request: web.Request, action: str) -> None:
    peer = request.get(_PEER)
    uid = "?" if peer is None else peer.uid
    logger.info("control: %s (uid %s)", action, uid)
