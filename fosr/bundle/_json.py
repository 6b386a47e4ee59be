"""JSON members: strict dumping and bounded loading.

Python's json module is lenient in ways a format shared between programs
must not be: it writes and reads NaN and Infinity (not JSON), reads 1e999
as infinity, keeps the last of two equal keys, and turns int keys into
strings on the way out.  Dumping here refuses all of that up front, and
loading refuses it with the member and the position, so a document reads
back exactly as it was written.
"""

from __future__ import annotations

import json
import math
import re
from typing import TypeAlias

from fosr.bundle._limits import Limits
from fosr.errors import BundleError

JSON: TypeAlias = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None
"""A JSON value as json.loads returns it."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# longest value repr quoted in a message: enough to recognise it, short
# enough that a hostile megabyte string keeps the message on one line
_QUOTE_CHARS = 60


def child_path(path: str, key: str | int) -> str:
    """Return the field path of ``key`` below ``path``: ``a.b``, ``a[3]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not _IDENTIFIER.fullmatch(key):
        # JSON's double quotes, so the path still reads inside repr's single
        text = json.dumps(key)
        if len(text) > _QUOTE_CHARS:
            text = text[: _QUOTE_CHARS - 4] + '..."'
        return f"{path}[{text}]"
    return f"{path}.{key}" if path else key


def quote(value: object) -> str:
    """Return a short one-line repr of ``value`` for an error message."""
    text = repr(value)
    if len(text) > _QUOTE_CHARS:
        text = text[: _QUOTE_CHARS - 3] + "..."
    return text


def type_name(value: object) -> str:
    """Return the JSON name of the type of ``value``, with its article."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a Python {type(value).__name__}"


def dump_json(
    value: object, limits: Limits, *, indent: int | None = None, sort_keys: bool = True
) -> bytes:
    """Encode ``value`` as ASCII JSON, its keys sorted unless told otherwise.

    Sorted keys make equal documents equal bytes, whatever order their dicts
    were filled in.

    Raises TypeError for a value JSON cannot hold exactly (a non-str key, a
    numpy scalar, a set) and ValueError for NaN or an infinity, a nesting
    deeper than ``limits.max_json_depth`` or a text longer than
    ``limits.max_json_bytes``; both name the field path.
    """
    _check_tree(value, limits.max_json_depth)
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(
        value,
        ensure_ascii=True,
        allow_nan=False,
        sort_keys=sort_keys,
        indent=indent,
        separators=separators,
    )
    data = text.encode("ascii")
    if len(data) > limits.max_json_bytes:
        raise ValueError(
            f"JSON text of {len(data)} bytes exceeds "
            f"max_json_bytes={limits.max_json_bytes}"
        )
    return data


def load_json(data: bytes, limits: Limits, *, path: str | None, member: str) -> JSON:
    """Decode one JSON member; raise BundleError naming what is wrong.

    Refused: more than ``limits.max_json_bytes``, bytes that are not UTF-8,
    syntax errors (with line and column), NaN, infinities and numbers that
    overflow to them, duplicate keys, integers beyond Python's digit limit
    and nesting deeper than ``limits.max_json_depth``.
    """

    def damaged(reason: str) -> BundleError:
        return BundleError(reason, path=path, member=member)

    if len(data) > limits.max_json_bytes:
        raise damaged(
            f"JSON member of {len(data)} bytes exceeds "
            f"max_json_bytes={limits.max_json_bytes}"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise damaged(f"not UTF-8 at byte {error.start}") from None

    # the C decoder stops nesting at the interpreter's recursion limit, long
    # before the C stack runs out; our own depth limit is checked after
    try:
        value: JSON = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as error:
        raise damaged(
            f"not JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    except RecursionError:
        raise damaged(
            f"JSON nested deeper than max_json_depth={limits.max_json_depth}"
        ) from None
    except ValueError as error:  # our hooks, and int() beyond its digit limit
        raise damaged(f"not JSON: {error}") from None

    depth = json_depth(value)
    if depth > limits.max_json_depth:
        raise damaged(
            f"JSON nested {depth} deep, deeper than "
            f"max_json_depth={limits.max_json_depth}"
        )
    # a lone surrogate can only come from a \uD800-\uDFFF escape; such a
    # string reads in Python but cannot be written as UTF-8 again (a log
    # line, a metric label), so refuse it here rather than there
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise damaged("a string holds a lone UTF-16 surrogate (\\uD800-\\uDFFF)")
    return value


def json_depth(value: object) -> int:
    """Return how deep arrays and objects nest in ``value`` (a scalar is 0)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = list(item)
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _has_lone_surrogate(value: object) -> bool:
    """Return True if a string or key in ``value`` holds a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _check_tree(value: object, max_depth: int) -> None:
    """Refuse what json.dumps would write but not read back identically."""
    stack: list[tuple[object, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        where = f"field {path!r}" if path else "the document"
        if isinstance(item, dict | list | tuple) and depth >= max_depth:
            raise ValueError(f"{where} nests deeper than max_json_depth={max_depth}")
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise TypeError(f"{where} has a key that is not a str: {key!r}")
                if _SURROGATE.search(key):
                    raise ValueError(f"{where} has a key with a lone surrogate")
                stack.append((child, child_path(path, key), depth + 1))
        elif isinstance(item, list | tuple):
            for index, child in enumerate(item):
                stack.append((child, child_path(path, index), depth + 1))
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"{where} is {item!r}, which JSON cannot hold")
        elif isinstance(item, str):
            if _SURROGATE.search(item):
                raise ValueError(f"{where} holds a lone surrogate: {quote(item)}")
        elif item is not None and not isinstance(item, str | int):
            raise TypeError(f"{where} is {type_name(item)}, which JSON cannot hold")


def _unique_keys(pairs: list[tuple[str, JSON]]) -> dict[str, JSON]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {quote(key)}")
            seen.add(key)
    return result


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {quote(text)} overflows to {number}")
    return number
