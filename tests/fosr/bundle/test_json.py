"""JSON members: dumped strictly, loaded within limits, read back identically."""

from __future__ import annotations

import pytest

from fosr.bundle import Limits
from fosr.bundle._json import JSON, dump_json, json_depth, load_json
from fosr.errors import BundleError

LIMITS = Limits()


def load(data: bytes, limits: Limits = LIMITS) -> JSON:
    return load_json(data, limits, path="model.fosr", member="parts/p.json")


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, -2, 3.5, 1e-300, "ü\u2028\U0001f600", None, True, False]},
        {"": {"x y": [[], {}]}, "big": 2**200},
        [],
        "text",
    ],
)
def test_dump_then_load_gives_the_same_value(value: JSON) -> None:
    assert load(dump_json(value, LIMITS)) == value


def test_dump_sorts_keys_so_equal_documents_are_equal_bytes() -> None:
    assert dump_json({"b": 1, "a": 2}, LIMITS) == dump_json({"a": 2, "b": 1}, LIMITS)
    assert dump_json({"b": 1, "a": 2}, LIMITS, sort_keys=False) == b'{"b":1,"a":2}'


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "not JSON: Expecting value at line 1, column 1"),
        (b'{"a": 1,}', "not JSON: Expecting property name enclosed in double"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b"[-Infinity]", "-Infinity is not a JSON number"),
        (b"[1e999]", "number '1e999' overflows to inf"),
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b"[" + b"9" * 5000 + b"]", "not JSON: Exceeds the limit"),
        (b'{"a": "\xff"}', "not UTF-8 at byte 7"),
        (b'["\\ud800"]', "a string holds a lone UTF-16 surrogate"),
        (b'{"\\udfff": 1}', "a string holds a lone UTF-16 surrogate"),
        (b"\xef\xbb\xbf{}", "not JSON: Unexpected UTF-8 BOM"),
        (nested(65), "JSON nested 65 deep, deeper than max_json_depth=64"),
        (nested(100_000), "JSON nested deeper than max_json_depth=64"),
        (b" " * (LIMITS.max_json_bytes + 1), "exceeds max_json_bytes"),
    ],
    ids=lambda value: value[:20] if isinstance(value, bytes) else None,
)
def test_load_refuses_with_the_position_or_reason(data: bytes, fragment: str) -> None:
    with pytest.raises(BundleError) as caught:
        load(data)
    assert fragment in str(caught.value)
    assert str(caught.value).startswith("model.fosr: parts/p.json: ")
    assert "\n" not in str(caught.value)


def test_load_keeps_a_surrogate_pair() -> None:
    assert load(b'["\\ud83d\\ude00"]') == ["\U0001f600"]


def test_load_at_the_depth_limit_is_accepted() -> None:
    assert json_depth(load(nested(64))) == 64


@pytest.mark.parametrize(
    ("value", "error", "fragment"),
    [
        ({"a": [float("inf")]}, ValueError, "field 'a[0]' is inf"),
        ({"a": {3: 1}}, TypeError, "field 'a' has a key that is not a str: 3"),
        ({"a b": {"c": b"x"}}, TypeError, "field '[\"a b\"].c' is a Python bytes"),
        (float("nan"), ValueError, "the document is nan"),
        (["\ud800"], ValueError, "field '[0]' holds a lone surrogate"),
        ({"\udc00": 1}, ValueError, "has a key with a lone surrogate"),
        ([[[[1]]]], ValueError, "field '[0][0][0]' nests deeper than"),
    ],
)
def test_dump_refuses_what_would_not_read_back(
    value: object, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as caught:
        dump_json(value, Limits(max_json_depth=3))
    assert fragment in str(caught.value)


def test_dump_refuses_a_self_containing_list() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nests deeper"):
        dump_json(loop, LIMITS)


def test_json_depth_counts_containers() -> None:
    assert json_depth(1) == 0
    assert json_depth({}) == 1
    assert json_depth({"a": [1, {"b": []}], "c": 2}) == 4
