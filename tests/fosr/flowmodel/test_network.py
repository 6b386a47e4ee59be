"""Bayesian networks: structure, KT data cost, constants, ancestral sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from fosr.flowmodel.network import BayesNet, data_bits, fit_counts, learn_network


def kt_by_hand(values: list[int], r: int) -> float:
    """Return the prequential KT bits of ``values``, one symbol at a time."""
    counts: dict[int, int] = {}
    bits = 0.0
    for t, v in enumerate(values):
        p = (counts.get(v, 0) + 0.5) / (t + r / 2)
        bits -= math.log2(p)
        counts[v] = counts.get(v, 0) + 1
    return bits


def dependent_data(n: int, seed: int = 0) -> np.ndarray:
    """Return records where variable 1 copies variable 0 90 % of the time."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, n)
    b = np.where(rng.random(n) < 0.9, a, rng.integers(0, 4, n))
    c = rng.integers(0, 3, n)
    return np.stack([a, b, c], axis=1)


def test_climb_finds_the_dependency_and_leaves_noise_alone() -> None:
    net = learn_network(dependent_data(2000), [4, 4, 3])
    assert net.parents[0] == (1,) or net.parents[1] == (0,)
    assert net.parents[2] == ()
    assert set(net.order[:1]) <= {0, 1}


def test_kt_data_cost_equals_the_sequential_code() -> None:
    data = dependent_data(300, seed=1)
    net = learn_network(data, [6, 6, 5])
    expected = 0.0
    for v, parents in enumerate(net.parents):
        # one sequential KT code per parent configuration
        keys = [tuple(row) for row in data[:, list(parents)]]
        for key in set(keys):
            values = [int(x) for x, k in zip(data[:, v], keys, strict=True) if k == key]
            expected += kt_by_hand(values, net.n_states[v])
    assert data_bits(data, net.parents, net.n_states) == pytest.approx(expected)


def test_constants_are_reported_and_stay_unconnected() -> None:
    data = dependent_data(500)
    data[:, 2] = 7
    net = learn_network(data, [4, 4, 8])
    assert net.constants == {2: 7}
    assert net.parents[2] == ()
    assert all(2 not in ps for ps in net.parents)
    assert np.all(net.sample(100, np.random.default_rng(0))[:, 2] == 7)


def test_sampling_frequencies_match_the_smoothed_tables() -> None:
    data = dependent_data(1000, seed=2)
    net = fit_counts(data, [(), (0,), ()], [4, 4, 3])
    samples = net.sample(200_000, np.random.default_rng(3))

    # root: marginal of the smoothed counts
    expected = net.probabilities(0)[0] * len(samples)
    observed = np.bincount(samples[:, 0], minlength=4)
    assert stats.chisquare(observed, expected).pvalue > 0.001

    # child given parent state 2 (configuration key 2)
    row = int(np.searchsorted(net.configs[1], 2))
    given = samples[samples[:, 0] == net.states[0][2], 1]
    expected = net.probabilities(1)[row] * len(given)
    observed = np.bincount(given, minlength=4)
    assert stats.chisquare(observed, expected).pvalue > 0.001


def test_unseen_parent_configuration_draws_from_the_marginal() -> None:
    net = fit_counts(np.array([[0, 0], [0, 0], [1, 1]]), [(), (0,)], [2, 2])
    forced = BayesNet(
        n_states=net.n_states,
        states=net.states,
        parents=net.parents,
        order=net.order,
        configs=(net.configs[0], net.configs[1][:1]),
        counts=(net.counts[0], net.counts[1][:1]),
    )
    samples = forced.sample(50_000, np.random.default_rng(0))
    child = samples[samples[:, 0] == 1, 1]
    marginal = forced.probabilities(1)[-1]
    assert np.mean(child == 0) == pytest.approx(marginal[0], abs=0.02)


def test_sampled_codes_are_the_training_codes() -> None:
    data = np.array([[10, 3], [12, 3], [10, 5]])
    net = learn_network(data, [20, 6])
    samples = net.sample(1000, np.random.default_rng(0))
    assert set(samples[:, 0].tolist()) <= {10, 12}
    assert set(samples[:, 1].tolist()) <= {3, 5}


def test_empty_inputs() -> None:
    net = learn_network(np.zeros((0, 2), dtype=np.int64), [3, 3])
    assert net.sample(4, np.random.default_rng(0)).shape == (4, 2)
    assert data_bits(np.zeros((0, 2)), net.parents, net.n_states) == 0.0
    assert len(learn_network(np.zeros((5, 0)), [])) == 0
    with pytest.raises(ValueError, match="shape"):
        learn_network(np.zeros((5, 2)), [3])


def test_structure_respects_the_in_degree() -> None:
    rng = np.random.default_rng(0)
    root = rng.integers(0, 2, (3000, 1))
    data = np.hstack([root ^ (rng.random((3000, 1)) < 0.05) for _ in range(6)])
    net = learn_network(data.astype(np.int64), [2] * 6, max_indegree=2)
    assert max(net.parent_counts) <= 2
    assert net.structure_bits > 0


def test_sampling_from_uniforms_draws_each_record_from_its_own_row() -> None:
    data = dependent_data(1000, seed=4)
    net = fit_counts(data, [(), (0,), ()], [4, 4, 3])
    u = np.random.default_rng(5).random((50_000, 3))
    whole = net.sample_uniforms(u)
    assert np.array_equal(net.sample_uniforms(u[1000:1010]), whole[1000:1010])
    # the dependency survives: variable 1 copies variable 0 most of the time
    assert np.mean(whole[:, 0] == whole[:, 1]) > 0.85
    expected = net.probabilities(2)[0] * len(whole)
    observed = np.bincount(whole[:, 2], minlength=3)
    assert stats.chisquare(observed, expected).pvalue > 0.001
    with pytest.raises(ValueError, match="uniforms of shape"):
        net.sample_uniforms(u[:, :2])


def test_smoothing_leaves_a_well_seen_configuration_nearly_empirical() -> None:
    # 80 states (bins of bytes); given parent state 0 the child is always 0
    parent = np.repeat([0, 1], 100)
    child = np.where(parent == 0, 0, np.arange(200) % 80)
    net = fit_counts(np.stack([parent, child], axis=1), [(), (0,)], [2, 80])
    table = net.probabilities(1)
    assert table.shape == (3, 80)
    assert table[0, 0] > 0.99  # add-one smoothing would give 100 / 180
    np.testing.assert_allclose(table.sum(axis=1), 1.0)
