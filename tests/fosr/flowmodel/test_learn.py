"""The greedy MDL search on tables with planted patterns."""

from __future__ import annotations

import numpy as np
import pytest

from fosr.flowmodel import learn as learn_module
from fosr.flowmodel.learn import (
    SearchSettings,
    free_cells,
    learn_flow_model,
)
from fosr.flowmodel.mdl import pattern_cost
from fosr.flowmodel.pattern import Cell, CellKind, Pattern
from tests.fosr.flowmodel._planted import (
    CLIENT,
    DNS_PORT,
    DNS_SERVER,
    HTTPS_PORT,
    PORT,
    PROTO,
    SERVER,
    TCP,
    UDP,
    coded,
    planted_table,
)

FIX, SET, USE = Cell.fix, Cell.set, Cell.use
SETTINGS = SearchSettings(max_gap_s=1.0)
DNS_THEN_HTTPS = Pattern.of(
    [
        {PROTO: FIX(UDP), PORT: FIX(DNS_PORT), CLIENT: SET(0)},
        {PROTO: FIX(TCP), PORT: FIX(HTTPS_PORT), CLIENT: USE(0)},
    ]
)


def test_search_finds_the_planted_two_row_pattern() -> None:
    table = planted_table()
    model = learn_flow_model(table, SETTINGS)

    found = [f for f in model.patterns if len(f.pattern) == 2]
    assert found, [f.pattern.describe(table.codebooks) for f in model.patterns]
    best = max(found, key=lambda f: f.usage)
    first, second = best.pattern.rows
    assert first.get(CLIENT) == SET(0) and second.get(CLIENT) == USE(0)
    assert first.get(PORT) == FIX(DNS_PORT) and second.get(PORT) == FIX(HTTPS_PORT)
    # most pairs; a few may go to a longer pattern (two pairs in a row)
    assert best.usage >= 150
    assert np.all(best.delays_ticks <= 10)
    assert model.total_bits < model.empty_bits


def test_trace_goes_down_and_ends_at_the_result() -> None:
    model = learn_flow_model(planted_table(n_pairs=60, n_noise=200), SETTINGS)
    totals = [step.total_bits for step in model.trace]
    assert totals[0] == pytest.approx(model.empty_bits)
    assert all(b < a for a, b in zip(totals, totals[1:], strict=False))
    assert totals[-1] == pytest.approx(model.total_bits)
    assert model.trace[-1].n_patterns == len(model.patterns)


def test_cover_statistics_add_up() -> None:
    table = planted_table(n_pairs=60, n_noise=200)
    model = learn_flow_model(table, SETTINGS)
    covered = sum(f.usage * len(f.pattern) for f in model.patterns)
    assert covered + len(model.background_start_ticks) == len(table)
    for f in model.patterns:
        assert f.delays_ticks.shape == (f.usage, len(f.pattern) - 1)
        assert len(f.network) == len(f.variables)
        assert f.network.sample(3, np.random.default_rng(0)).shape == (
            3,
            len(f.variables),
        )
    assert len(model.background) == len(table.columns)


def test_constant_cells_become_fix() -> None:
    # every DNS query goes to the same server: its cell must not stay free
    table = planted_table(n_pairs=100, n_noise=100)
    search = learn_module._Search(table, SETTINGS)
    empty = search._state((), ())
    candidate = (
        Pattern.of([{PROTO: FIX(UDP), PORT: FIX(DNS_PORT)}, {PROTO: FIX(TCP)}])
        .with_cell(0, CLIENT, SET(0))
        .with_cell(1, CLIENT, USE(0))
    )
    accepted = search._test(empty, candidate)
    assert accepted is not None
    (pattern,) = accepted.patterns
    assert pattern.rows[0].get(SERVER) == FIX(DNS_SERVER)
    assert pattern.rows[1].get(PORT) == FIX(HTTPS_PORT)
    assert (0, SERVER) not in free_cells(pattern, len(table.columns))


def test_constant_placeholder_turns_its_uses_into_fix() -> None:
    records = np.array(
        [(t, UDP, 3, DNS_SERVER, DNS_PORT) for t in range(0, 400, 4)]
        + [(t + 0.05, TCP, 3, 21, HTTPS_PORT) for t in range(0, 400, 4)]
        + [
            (t + 1.5, TCP, h % 20, 22, 2)
            for h, t in zip(range(100), range(0, 400, 4), strict=True)
        ]
    )
    table = coded(records[np.argsort(records[:, 0], kind="stable")])
    search = learn_module._Search(table, SETTINGS)
    accepted = search._test(search._state((), ()), DNS_THEN_HTTPS)
    assert accepted is not None
    (pattern,) = accepted.patterns
    assert pattern.n_placeholders == 0
    assert pattern.rows[0].get(CLIENT) == FIX(3)
    assert pattern.rows[1].get(CLIENT) == FIX(3)


def test_prune_removes_a_redundant_pattern_the_krimp_way() -> None:
    table = planted_table()
    search = learn_module._Search(table, SETTINGS)
    dns = Pattern.of([{PROTO: FIX(UDP), PORT: FIX(DNS_PORT)}])
    https = Pattern.of([{PROTO: FIX(TCP), PORT: FIX(HTTPS_PORT)}])
    pair = DNS_THEN_HTTPS

    def state(*patterns: Pattern) -> learn_module._State:
        structures = tuple(
            tuple(() for _ in free_cells(p, len(table.columns))) for p in patterns
        )
        return search._state(patterns, structures)

    before = state(dns, https)
    after = state(dns, https, pair)
    pruned = search._prune(before, after)

    # every DNS query is in a pair: the single-row DNS pattern is redundant;
    # TCP/443 noise flows keep the other pattern worth its cost
    assert after.cover.usage[0] == 0
    assert [p.key for p in pruned.patterns] == [https.key, pair.key]
    assert pruned.total_bits < after.total_bits
    kept_without = state(pair)
    assert kept_without.total_bits > pruned.total_bits
    # the reference's reversed test, L(D | P - p) + L(p) > L(D | P), would
    # have removed it
    https_bits = pattern_cost(https, domain_sizes=search.n_states)
    assert kept_without.data_bits + https_bits > pruned.data_bits


def test_rejects_an_empty_table() -> None:
    table = planted_table(n_pairs=1, n_noise=0)
    empty = coded(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="shape"):
        learn_flow_model(empty)
    assert learn_flow_model(table).patterns == ()


def test_free_cells_are_free_and_set_cells() -> None:
    pattern = Pattern.of([{0: FIX(1), 1: SET(0)}, {1: USE(0)}])
    assert free_cells(pattern, 3) == ((0, 1), (0, 2), (1, 0), (1, 2))
    assert all(
        pattern.rows[r].get(c) is None or pattern.rows[r].get(c).kind is CellKind.SET  # type: ignore[union-attr]
        for r, c in free_cells(pattern, 3)
    )
