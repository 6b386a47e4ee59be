"""Tests of fosr.synth._fields: the same fields whatever the flow blocks."""

from __future__ import annotations

import numpy as np
import pytest
from synth_builders import T0, clean_flows, make_batch, tcp_session

from fosr.synth import _fields
from fosr.synth._fields import compute_fields


@pytest.mark.parametrize("block_packets", [1, 3, 17])
def test_compute_fields_ignores_the_block_size(
    monkeypatch: pytest.MonkeyPatch, block_packets: int
) -> None:
    flows = clean_flows()
    flows += [tcp_session(T0 + i, client_os="windows") for i in range(3)]
    for i, flow in enumerate(flows[-3:]):
        flow.client_port += i
    batch = make_batch(flows)
    whole = compute_fields(batch, np.random.default_rng(5))
    monkeypatch.setattr(_fields, "BLOCK_PACKETS", block_packets)
    assert len(_fields._blocks(batch)) > 1
    blocked = compute_fields(batch, np.random.default_rng(5))
    for name in whole.__dataclass_fields__:
        assert np.array_equal(getattr(whole, name), getattr(blocked, name)), name
