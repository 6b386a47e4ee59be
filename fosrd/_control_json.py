"""Bodies and answers of the control API: strict JSON in, one-line errors out.

A request body is a JSON object holding only the fields its endpoint
knows; anything else is a :class:`BadRequest` whose message names the
field, which the server answers as ``{"error": "..."}``.  Answers are
JSON with numpy scalars, paths and non-finite floats (as null) tamed.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import Mapping

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

__all__ = [
    "BODY_TIMEOUT_S",
    "MAX_BODY_BYTES",
    "BadRequest",
    "error_response",
    "http_error_response",
    "json_response",
    "number_field",
    "path_field",
    "read_fields",
]

#: the largest request body accepted: the biggest legitimate one is a
#: reload naming a model path (PATH_MAX is 4096 bytes on Linux)
MAX_BODY_BYTES = 8192
#: how long a client may take to send a body it announced
BODY_TIMEOUT_S = 5.0


class BadRequest(Exception):
    """A request we refuse; the message is the one line the client sees."""

    def __init__(
        self, message: str, status: int = 400, *, incomplete: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.incomplete = incomplete


# --- bodies ------------------------------------------------------------------


async def read_fields(
    request: web.Request, *, allowed: tuple[str, ...]
) -> dict[str, object]:
    """Read the body as a JSON object holding only ``allowed`` fields.

    An empty body is an empty object.
    """
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            body = await request.read()
    except TimeoutError:
        raise BadRequest(
            f"the body did not arrive within {BODY_TIMEOUT_S:g} s", 408
        ) from None
    except (HttpProcessingError, ConnectionError) as error:
        # the client announced more than it sent, or left
        raise BadRequest(f"the body is incomplete: {error}", incomplete=True) from None
    if body.strip() == b"":
        return {}
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text") from None
    except (ValueError, RecursionError) as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise BadRequest(f"the body must be a JSON object, not {_json_type(document)}")
    for name in document:
        if name not in allowed:
            expected = ", ".join(repr(a) for a in allowed) or "none"
            raise BadRequest(f"unknown field {name!r} (expected: {expected})")
    return document


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def number_field(fields: Mapping[str, object], name: str) -> float:
    """Return the required finite number ``name`` (booleans are not numbers)."""
    if name not in fields:
        raise BadRequest(f"field {name!r} is missing")
    value = fields[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"field {name!r} must be a number, not {_json_type(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise BadRequest(f"field {name!r} is out of range") from None
    if not math.isfinite(number):
        raise BadRequest(f"field {name!r} must be finite, not {number}")
    return number


def path_field(fields: Mapping[str, object], name: str) -> str | None:
    """Return the optional path ``name``: None when absent or null."""
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(
            f"field {name!r} must be a path string, not {_json_type(value)}"
        )
    if value == "" or "\x00" in value:
        raise BadRequest(f"field {name!r} must be a non-empty path without NUL")
    return value


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# --- answers -----------------------------------------------------------------


def json_response(document: object, status: int = 200) -> web.Response:
    """Answer ``document`` as JSON; numpy scalars, paths and NaN are tamed."""
    text = json.dumps(_jsonable(document), allow_nan=False) + "\n"
    return web.Response(text=text, status=status, content_type="application/json")


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return _jsonable(tolist())
    raise TypeError(f"{type(value).__name__} value {value!r} is not JSON")


def error_response(status: int, message: str) -> web.Response:
    """Answer ``{"error": message}``, the message folded onto one line."""
    return json_response({"error": " ".join(message.split())}, status)


_HTTP_MESSAGES = {
    404: "no such endpoint: {method} {path}",
    405: "method {method} is not allowed on {path}",
    413: "the body is larger than {limit} bytes",
}


def http_error_response(request: web.Request, error: web.HTTPException) -> web.Response:
    """Answer one of aiohttp's HTTP exceptions (404, 405, 413...) as JSON."""
    template = _HTTP_MESSAGES.get(error.status, error.reason)
    message = template.format(
        path=request.path, method=request.method, limit=MAX_BODY_BYTES
    )
    response = error_response(error.status, message)
    allow = error.headers.get("Allow")
    if allow is not None:
        response.headers["Allow"] = allow
    if error.status == 413:
        response.force_close()  # the rest of the body is still coming
    return response
