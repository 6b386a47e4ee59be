"""Tests of fosr.flowmodel.store: saving and loading flow models."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fosr.bundle import Provenance, read_bundle, write_bundle
from fosr.errors import BundleError
from fosr.flowmodel.encoding import CodedTable
from fosr.flowmodel.learn import LearnedFlowModel, SearchSettings, learn_flow_model
from fosr.flowmodel.sampler import FlowSampler
from fosr.flowmodel.store import PART, load_flow_model, save_flow_model
from fosr.flowmodel.timing import FlowTiming, fit_timing
from fosr.flows.table import FLOW_COLUMNS
from tests.fosr.flowmodel._planted import planted_table

Learnt = tuple[CodedTable, LearnedFlowModel, FlowTiming]
PROVENANCE = Provenance(created=datetime(2026, 1, 2, tzinfo=UTC), command=("t",))
START_S = 1_709_510_400.0


@pytest.fixture(scope="module")
def learnt() -> Learnt:
    table = planted_table()
    model = learn_flow_model(table, SearchSettings(max_gap_s=1.0))
    return table, model, fit_timing(model, table, max_gap_s=1.0)


@pytest.fixture
def saved(learnt: Learnt, tmp_path: Path) -> Path:
    path = tmp_path / "model.fosr"
    save_flow_model(path, learnt[1], learnt[2], learnt[0], PROVENANCE)
    return path


def test_load_gives_a_sampler_drawing_the_same_flows(
    learnt: Learnt, saved: Path
) -> None:
    table, model, timing = learnt
    assert model.patterns, "the planted table should give a pattern"
    original = FlowSampler(
        model, timing, table.columns, table.codebooks, seed=3, rate_scale=5.0
    )
    loaded = load_flow_model(saved)
    again = loaded.sampler(seed=3, rate_scale=5.0)
    a = original.sample(START_S, START_S + 3600)
    b = again.sample(START_S, START_S + 3600)
    assert len(a) > 100
    for name in FLOW_COLUMNS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), name)


def test_load_keeps_usage_origin_and_provenance(learnt: Learnt, saved: Path) -> None:
    table, model, _ = learnt
    loaded = load_flow_model(saved)
    assert loaded.usages == tuple(p.usage for p in model.patterns)
    assert loaded.background_usage == len(model.background_start_ticks)
    assert loaded.origin_s == table.origin_s
    assert loaded.provenance.command == ("t",)
    assert loaded.model.empty_bits == model.empty_bits


def test_saved_bundle_holds_no_flow_rows(saved: Path) -> None:
    names = read_bundle(saved).array_names
    assert not any("tick" in name for name in names)


def rewrite(path: Path, change_document: Any = None, change_arrays: Any = None) -> None:
    """Write the bundle at ``path`` again with a changed document or arrays."""
    bundle = read_bundle(path)
    document = json.loads(json.dumps(bundle.document(PART)))
    arrays = {name: np.array(bundle.array(name)) for name in bundle.array_names}
    if change_document:
        change_document(document)
    if change_arrays:
        change_arrays(arrays)
    write_bundle(path, documents={PART: document}, arrays=arrays, provenance=PROVENANCE)


def first_fix(document: dict[str, Any]) -> dict[str, Any]:
    for pattern in document["patterns"]:
        for row in pattern["rows"]:
            for cell in row:
                if cell["kind"] == "fix":
                    return cell  # type: ignore[no-any-return]
    raise AssertionError("no FIX cell")


def set_field(keys: list[Any], value: Any) -> Any:
    def change(document: Any) -> None:
        for key in keys[:-1]:
            document = document[key]
        document[keys[-1]] = value

    return change


def make_cyclic(document: dict[str, Any]) -> None:
    variables = document["background"]["network"]["variables"]
    variables[0]["parents"] = [1]
    variables[1]["parents"] = [0]


def wrong_shape(arrays: dict[str, Any]) -> None:
    arrays["flow_model.timing.rates_per_s"] = np.zeros((2, 96))


@pytest.mark.parametrize(
    ("document", "arrays", "named"),
    [
        (set_field(["tick_s"], "fast"), None, "'tick_s' must be a number"),
        (set_field(["version"], 2), None, "'version' must be 1"),
        (
            lambda d: first_fix(d).update(code=99),
            None,
            ".code' must be an integer <= ",
        ),
        (make_cyclic, None, "'background.network.order' puts variable"),
        (set_field(["timing", "timezone"], "Mars/Olympus"), None, "timezone"),
        (
            None,
            wrong_shape,
            "arrays/flow_model.timing.rates_per_s.npy: has shape (2, 96)",
        ),
        (
            None,
            lambda a: a.update(  # the background is empty here
                {"flow_model.pattern0.counts": -a["flow_model.pattern0.counts"]}
            ),
            "arrays/flow_model.pattern0.counts.npy: holds negative values",
        ),
    ],
    ids=["type", "version", "code", "cyclic", "zone", "shape", "negative"],
)
def test_load_refuses_a_damaged_model_naming_the_field(
    saved: Path, document: Any, arrays: Any, named: str
) -> None:
    rewrite(saved, document, arrays)
    with pytest.raises(BundleError) as caught:
        load_flow_model(saved)
    message = str(caught.value)
    assert message.startswith(f"{saved}: "), message
    assert named in message, message


def test_load_refuses_a_file_that_is_no_bundle(tmp_path: Path) -> None:
    path = tmp_path / "model.fosr"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(BundleError, match="model.fosr"):
        load_flow_model(path)
