"""The MDL learner on hand-made words: merges, memory, deletion, splits."""

from __future__ import annotations

import numpy as np

from fosr.packetmodel import BINARY, Symbol
from fosr.packetmodel._learn import LearnOptions, learn_automaton
from fosr.packetmodel._sample import sample_paths
from fosr.packetmodel._symbols import Words

# X > ; W > ; Y < ; Z > ; V > ; Q <  (distinct flags make distinct symbols)
SYMBOLS = tuple(
    Symbol(bool(f), flags, BINARY)
    for f, flags in [(1, 1), (1, 2), (0, 3), (1, 4), (1, 5), (0, 6)]
)
X, W, Y, Z, V, Q = range(6)


def words_of(sequences: list[list[int]], rng: np.random.Generator) -> Words:
    offsets = np.concatenate(([0], np.cumsum([len(s) for s in sequences])))
    symbol = np.concatenate([np.asarray(s) for s in sequences]).astype(np.int64)
    gap = np.where(np.isin(np.arange(len(symbol)), offsets[:-1]), 0.0, 30.0)
    gap = gap + rng.normal(0, 1, len(symbol)) * (gap > 0)
    size = np.where(symbol == Y, 500, 60) + rng.integers(-5, 6, len(symbol))
    return Words(SYMBOLS, offsets.astype(np.int64), symbol, gap, size.astype(np.int64))


def bits(automaton: object, words: Words) -> float:
    total = 0.0
    for i in range(len(words)):
        lo, hi = words.offsets[i], words.offsets[i + 1]
        total += automaton.word_bits(  # type: ignore[attr-defined]
            words.symbol[lo:hi], words.gap[lo:hi], words.size[lo:hi]
        )
    return total


def test_memory_learns_what_the_previous_symbol_implies() -> None:
    rng = np.random.default_rng(0)
    # after Y, Z follows X and V follows W: one symbol of memory decides
    # (X is also followed by Q, so that X and W are not one state)
    train = words_of([[X, Y, Z]] * 200 + [[W, Y, V]] * 200 + [[X, Q]] * 200, rng)
    held = words_of([[X, Y, Z]] * 20 + [[W, Y, V]] * 20, rng)
    plain = learn_automaton(train, 6, LearnOptions(memory=False))
    memory = learn_automaton(train, 6, LearnOptions(memory=True))
    assert bits(memory, held) < bits(plain, held) - 20

    # sampled words of the memory model are training words only
    offsets, edges, _, _ = sample_paths(
        memory, np.full(500, 2), np.full(500, 1), np.random.default_rng(1)
    )
    words = {
        tuple(memory.symbol[edges[offsets[i] : offsets[i + 1]]]) for i in range(500)
    }
    assert words == {(X, Y, Z), (W, Y, V)}
    # the plain model mixes them
    offsets, edges, _, _ = sample_paths(
        plain, np.full(500, 2), np.full(500, 1), np.random.default_rng(1)
    )
    words = {
        tuple(plain.symbol[edges[offsets[i] : offsets[i + 1]]]) for i in range(500)
    }
    assert (X, Y, V) in words


def test_merges_fold_repeated_structure_into_few_states() -> None:
    rng = np.random.default_rng(1)
    # request/response pairs repeated 1 to 5 times: a loop of two states
    sequences = [[X, Y] * int(k) for k in rng.integers(1, 6, 200)]
    automaton = learn_automaton(words_of(sequences, rng), 6)
    assert automaton.n_states <= 4
    assert automaton.p_add < 0.02


def test_rare_edges_are_deleted_and_paid_as_noise() -> None:
    rng = np.random.default_rng(2)
    sequences = [[X, Y, Z]] * 300 + [[X, V, Y, Z]]  # V once, in the middle
    automaton = learn_automaton(words_of(sequences, rng), 6)
    assert V not in automaton.symbol.tolist()
    assert 0 < automaton.p_add < 0.01


def test_edge_splits_model_two_sizes_apart() -> None:
    rng = np.random.default_rng(3)
    words = words_of([[X, Y]] * 200, rng)
    sizes = np.where(rng.random(len(words.size)) < 0.5, 100, 1400)
    words = Words(words.symbols, words.offsets, words.symbol, words.gap, sizes)
    automaton = learn_automaton(words, 6)
    y_edges = np.flatnonzero(automaton.symbol == Y)
    assert len(y_edges) >= 2
    assert sorted(np.rint(automaton.mean[y_edges, 1]).tolist())[0] < 200
    assert sorted(np.rint(automaton.mean[y_edges, 1]).tolist())[-1] > 1300
