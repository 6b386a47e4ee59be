"""The packet model in a bundle: round trip, and damaged bundles refused."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from packetmodel_helpers import flows, small_automaton

from fosr.bundle import (
    BundleError,
    Provenance,
    pack_bundle,
    read_bundle,
    unpack_bundle,
)
from fosr.packetmodel import (
    PacketModel,
    load_packet_model,
    save_packet_model,
    write_packet_model,
)
from fosr.packetmodel._model import generic_automaton

PROVENANCE = Provenance(
    created=datetime(2024, 5, 1, tzinfo=UTC),
    command=("test",),
    data=(),
    host=None,
    notes="",
)


def model() -> PacketModel:
    return PacketModel(
        {(17, 9999): small_automaton()},
        {6: generic_automaton(6)},
        ["UDP services with fewer than 20 connections use the fallback: 7 (3)"],
    )


def members() -> tuple[dict[str, Any], dict[str, Any]]:
    documents: dict[str, Any] = {}
    arrays: dict[str, Any] = {}
    save_packet_model(model(), documents, arrays)
    return documents, arrays


def test_round_trip_keeps_the_model_and_its_samples(tmp_path: Path) -> None:
    path = tmp_path / "model.fosr"
    write_packet_model(path, model(), PROVENANCE)
    loaded = load_packet_model(read_bundle(path))
    assert loaded is not None
    assert loaded.summary() == model().summary()
    table = flows(
        [{"fwd_packets": 3, "bwd_packets": 2, "fwd_bytes": 600}] * 20
        + [{"proto": 6, "server_port": 22, "fwd_packets": 4, "fwd_bytes": 600}] * 5
    )
    a = model().sample(table, np.random.default_rng(9))
    b = loaded.sample(table, np.random.default_rng(9))
    for name in (
        "offsets",
        "forward",
        "tcp_flags",
        "payload_len",
        "gap_ns",
        "adjusted",
    ):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_members_sit_beside_a_flow_model() -> None:
    documents: dict[str, Any] = {"flow_model": {"kind": "flowchronicle", "version": 1}}
    arrays: dict[str, Any] = {"flow_model.x": np.zeros(2)}
    save_packet_model(model(), documents, arrays)
    bundle = unpack_bundle(
        pack_bundle(documents=documents, arrays=arrays, provenance=PROVENANCE)
    )
    assert set(bundle.parts) == {"flow_model", "packet_model"}
    assert load_packet_model(bundle) is not None
    with pytest.raises(ValueError, match="packet_model"):
        save_packet_model(model(), documents, arrays)


def test_a_bundle_without_packet_model_gives_none() -> None:
    bundle = unpack_bundle(
        pack_bundle(
            documents={"flow_model": {"kind": "flowchronicle", "version": 1}},
            arrays={},
            provenance=PROVENANCE,
        )
    )
    assert load_packet_model(bundle) is None


def edited(edit: Any) -> bytes:
    documents, arrays = members()
    documents = copy.deepcopy(documents)
    arrays = {k: np.array(v) for k, v in arrays.items()}
    edit(documents["packet_model"], arrays)
    return pack_bundle(documents=documents, arrays=arrays, provenance=PROVENANCE)


def set_path(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d, a: set_path(d, ("version",), 2), "made by a newer fosr"),
        (lambda d, a: set_path(d, ("kind",), "hmm"), "kind"),
        (lambda d, a: set_path(d, ("automata", 0, "p_add"), 2.0), "automata[0].p_add"),
        (
            lambda d, a: set_path(d, ("automata", 1, "n_states"), 0),
            "automata[1].n_states",
        ),
        (lambda d, a: set_path(d, ("automata", 0, "n_edges"), 3), "packet_model.edges"),
        (
            lambda d, a: set_path(
                d, ("automata", 0, "symbols", 1, "token"), "GET /\\r\\n"
            ),
            "automata[0].symbols[1].token",
        ),
        (
            lambda d, a: set_path(d, ("automata", 0, "symbols", 0, "flags"), 300),
            "automata[0].symbols[0].flags",
        ),
        (lambda d, a: a["packet_model.edges"].__setitem__((0, 1), 7), "outside 0..2"),
        (
            lambda d, a: a["packet_model.edges"].__setitem__((2, 2), -1),
            "symbol outside",
        ),
        (lambda d, a: a["packet_model.guards"].__setitem__((0, 2), 0.0), "variance"),
        (lambda d, a: a["packet_model.guards"].__setitem__((0, 0), np.nan), "NaN"),
        (
            lambda d, a: a["packet_model.ends"].__setitem__(slice(0, 3), 0.0),
            "accepting",
        ),
        (lambda d, a: a["packet_model.sizes"].__setitem__((0, 0), 9999), "smallest"),
        (lambda d, a: a.__setitem__("packet_model.counts", np.zeros(3)), "shape"),
        (lambda d, a: d["automata"].append(copy.deepcopy(d["automata"][0])), "edges"),
    ],
)
def test_damaged_bundles_are_refused_naming_the_field(edit: Any, message: str) -> None:
    data = edited(edit)
    bundle = unpack_bundle(data, path="model.fosr")
    with pytest.raises(BundleError, match="model.fosr") as caught:
        load_packet_model(bundle)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
