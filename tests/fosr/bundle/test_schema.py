"""Field: typed access to a document, naming bundle, member and field path."""

from __future__ import annotations

import pytest

from fosr.bundle import Field
from fosr.bundle._json import JSON
from fosr.errors import BundleError

DOCUMENT: JSON = {
    "kind": "flowchronicle",
    "version": 1,
    "patterns": [
        {"support": 12, "weight": 0.25, "rows": [{"cells": "oops"}], "on": True},
        {"support": 0, "weight": 3, "rows": [], "on": None},
    ],
    "odd key": {"x": 1},
}
ROOT = Field(DOCUMENT, member="parts/flow_model.json", bundle="model.fosr")


def message(error: pytest.ExceptionInfo[BundleError]) -> str:
    return str(error.value).removeprefix("model.fosr: parts/flow_model.json: ")


def test_field_reads_typed_values() -> None:
    first = ROOT["patterns"][0]
    assert ROOT["kind"].as_str(choices={"flowchronicle"}) == "flowchronicle"
    assert first["support"].as_int(min=1) == 12
    assert first["weight"].as_float(min=0.0, max=1.0) == 0.25
    assert ROOT["patterns"][1]["weight"].as_float() == 3.0  # an int is a number
    assert first["on"].as_bool() is True
    assert ROOT["patterns"][1]["on"].is_null()
    assert ROOT["patterns"][-1]["support"].path == "patterns[1].support"
    assert [key for key, _ in ROOT["odd key"].items()] == ["x"]
    assert ROOT.keys() == ["kind", "version", "patterns", "odd key"]
    assert ROOT.get("absent") is None
    assert len(ROOT["patterns"].as_list(min_len=2, max_len=2)) == 2


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        (
            lambda: ROOT["patterns"][0]["rows"][0]["cells"].as_list(),
            "field 'patterns[0].rows[0].cells' must be an array, not a string",
        ),
        (
            lambda: ROOT["patterns"][1]["support"].as_int(min=1),
            "field 'patterns[1].support' must be an integer >= 1, not 0",
        ),
        (
            lambda: ROOT["patterns"][0]["weight"].as_float(max=0.1),
            "field 'patterns[0].weight' must be a number <= 0.1, not 0.25",
        ),
        (
            lambda: ROOT["patterns"][0]["on"].as_int(),
            "field 'patterns[0].on' must be an integer, not a boolean",
        ),
        (
            lambda: ROOT["patterns"][1]["on"].as_bool(),
            "field 'patterns[1].on' must be a boolean, not null",
        ),
        (
            lambda: ROOT["kind"].as_str(choices={"a", "b"}),
            "field 'kind' must be one of 'a', 'b', not 'flowchronicle'",
        ),
        (lambda: ROOT["patterns"][2], "field 'patterns' has 2 items, no index 2"),
        (lambda: ROOT["patterns"][0]["x"], "field 'patterns[0]' has no field 'x'"),
        (
            lambda: ROOT["patterns"]["x"],
            "field 'patterns' must be an object, not an array",
        ),
        (
            lambda: ROOT["patterns"].as_list(max_len=1),
            "field 'patterns' must have at most 1 items, not 2",
        ),
        (
            lambda: ROOT["patterns"].as_list(min_len=3, max_len=5),
            "field 'patterns' must have between 3 and 5 items, not 2",
        ),
        (lambda: ROOT[0], "must be an array, not an object"),
        (
            lambda: ROOT["odd key"]["y"],
            "field '[\"odd key\"]' has no field 'y'",
        ),
        (
            lambda: ROOT["patterns"].as_list(min_len=3),
            "field 'patterns' must have at least 3 items, not 2",
        ),
        (
            lambda: ROOT["patterns"][0]["rows"].as_list(min_len=0, max_len=0),
            "field 'patterns[0].rows' must have 0 items, not 1",
        ),
    ],
)
def test_field_error_names_the_path_and_the_value(read: object, expected: str) -> None:
    assert callable(read)
    with pytest.raises(BundleError) as caught:
        read()
    assert message(caught) == expected


def test_field_error_for_semantic_checks_carries_the_facts() -> None:
    weight = ROOT["patterns"][1]["weight"]
    error = weight.error("must sum to 1 with its siblings, sums to 3.25")
    assert (error.path, error.member, error.field) == (
        "model.fosr",
        "parts/flow_model.json",
        "patterns[1].weight",
    )
    assert str(error).endswith(
        "field 'patterns[1].weight' must sum to 1 with its siblings, sums to 3.25"
    )


def test_field_error_at_the_root_names_no_field() -> None:
    with pytest.raises(BundleError) as caught:
        Field([1], member="parts/p.json").as_str()
    assert str(caught.value) == "parts/p.json: must be a string, not an array"


def test_field_error_quotes_a_long_value_on_one_line() -> None:
    with pytest.raises(BundleError) as caught:
        Field("x\n" * 1000, "k").as_str(choices={"a"})
    assert len(str(caught.value)) < 120
    assert "\n" not in str(caught.value)
