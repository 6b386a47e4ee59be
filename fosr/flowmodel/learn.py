"""Learn a flow model: FlowChronicle's greedy MDL search over patterns.

How this works (METHODS.md §1.4-1.6):

- State: a list of patterns, the structure of each pattern's network, the
  structure of the background network (learnt once on all rows, then
  fixed) and the greedy cover of the table by the patterns.
- Total description length, in bits, L(M) + L(D | M):

  - L(M): :func:`~fosr.flowmodel.mdl.model_cost` of the patterns' costs
    (cells and network structure) and the background structure;
  - per pattern: L_N(usage + 1) for its usage (the reference writes
    L_N(usage), undefined at 0), the timing of each used window
    (:func:`~fosr.flowmodel.mdl.window_time_costs`) and the KT code of the
    windows' free cells under the pattern's structure, counts collected on
    the windows the cover uses;
  - per background row: its start, log2(span + 1), and the KT code of its
    cells under the background structure, counts on the background rows.

- Candidates (:mod:`fosr.flowmodel.candidates`): seeds, extensions of the
  model's patterns and merges, ranked by candidate score; already tested
  patterns are skipped for the rest of the search.
- Testing a candidate: cover the table with the model plus the candidate,
  learn the candidate's network on its used windows; while some of its
  variables are constant, turn those cells into FIX cells (a constant SET
  and its USEs all become that FIX) and cover again.  Accept iff the total
  description length goes down.  A candidate with fewer than two used
  windows is rejected outright: on one window every variable is constant.
- Pruning after an acceptance, the Krimp condition: for each other pattern
  whose usage dropped, largest drop first, remove it iff the total without
  it (covered again) is smaller.  The reference tests the reverse and
  removes nearly every such pattern (METHODS.md §1.6, known issues).
- An iteration tests candidates in decreasing score until one is accepted
  or ``max_rejections`` in a row are not.  When an iteration accepts
  nothing, the search switches from mode 0 to mode 1, which adds
  concatenations of the model's patterns to the candidates; it stops after
  an iteration in mode 1 that accepts nothing.

Left out: concatenations with single-attribute patterns (see
:mod:`fosr.flowmodel.candidates`), network relearning of the
patterns already in the model (their structure stays as learnt at
acceptance; only their counts follow the cover), and chunked training.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.flowmodel.candidates import (
    concatenations,
    extensions,
    merges,
    seed_patterns,
)
from fosr.flowmodel.cover import Cover, WindowCache, build_cover
from fosr.flowmodel.encoding import CodedTable
from fosr.flowmodel.index import OccurrenceIndex
from fosr.flowmodel.mdl import (
    model_cost,
    pattern_cost,
    universal_code_length,
    window_time_costs,
)
from fosr.flowmodel.network import BayesNet, data_bits, fit_counts, learn_network
from fosr.flowmodel.pattern import Cell, CellKind, Pattern
from fosr.flowmodel.windows import candidate_score

__all__ = [
    "FittedPattern",
    "LearnedFlowModel",
    "SearchSettings",
    "TraceStep",
    "free_cells",
    "learn_flow_model",
]

logger = logging.getLogger(__name__)

Array = npt.NDArray[Any]
Structure = tuple[tuple[int, ...], ...]

# Entries of the window-bits cache before it starts over: a few MB of keys
# on the CIDDS benchmark; bounds memory on long searches.
_MAX_CACHED = 20_000


@dataclass(frozen=True)
class SearchSettings:
    """Knobs of the search; the defaults are chosen, not tuned."""

    max_gap_s: float | None = 60.0
    """Longest delay between consecutive rows of a window, in seconds
    (None: unlimited, as in the reference).  60 s keeps a pattern's rows
    within a minute, which a streaming generator can wait for."""

    min_support: int = 5
    """Fewest rows (seeds) or windows (FIX extensions) behind a candidate."""

    max_seeds: int = 200
    """Most two-FIX seeds kept, by support."""

    max_rows: int = 4
    """Most rows a pattern grows to by appending."""

    max_rejections: int = 20
    """Consecutive rejected candidates that end an iteration (reference)."""

    max_iterations: int = 500
    """Most iterations; each accepts at most one candidate."""

    max_constant_rounds: int = 4
    """Most rounds of turning constant variables into FIX cells."""


@dataclass(frozen=True, eq=False)
class FittedPattern:
    """A pattern of the learnt model with what generation needs.

    - ``variables``: (row, column) of each network variable (free cells);
    - ``network``: counts from the windows of the final cover;
    - ``start_ticks``: int64, first tick of each used window;
    - ``delays_ticks``: int64 (usage x gaps), delays between its rows.
    """

    pattern: Pattern
    variables: tuple[tuple[int, int], ...]
    network: BayesNet
    start_ticks: Array
    delays_ticks: Array

    @property
    def usage(self) -> int:
        """Return the number of windows the final cover uses."""
        return len(self.start_ticks)


@dataclass(frozen=True)
class TraceStep:
    """The description length after one iteration of the search, in bits."""

    iteration: int
    n_patterns: int
    model_bits: float
    data_bits: float
    elapsed_s: float

    @property
    def total_bits(self) -> float:
        """Return model plus data bits."""
        return self.model_bits + self.data_bits


@dataclass(frozen=True, eq=False)
class LearnedFlowModel:
    """The outcome of :func:`learn_flow_model`.

    - ``background``: the background network, learnt again (structure and
      counts) on the uncovered rows, for generation (METHODS.md §1.5; the
      description length uses the structure learnt on all rows);
      ``background_start_ticks``: the uncovered rows' ticks;
    - ``model_bits`` and ``data_bits``: the final description length;
      ``empty_bits``: the total of the model without patterns;
    - ``trace``: one step per iteration, the first before any pattern;
    - ``n_tested``: candidates tested.
    """

    patterns: tuple[FittedPattern, ...]
    background: BayesNet
    background_start_ticks: Array
    model_bits: float
    data_bits: float
    empty_bits: float
    trace: tuple[TraceStep, ...]
    n_tested: int

    @property
    def total_bits(self) -> float:
        """Return model plus data bits."""
        return self.model_bits + self.data_bits


@dataclass(frozen=True, eq=False)
class _State:
    patterns: tuple[Pattern, ...]
    structures: tuple[Structure, ...]
    cover: Cover
    model_bits: float
    data_bits: float

    @property
    def total_bits(self) -> float:
        return self.model_bits + self.data_bits


def free_cells(pattern: Pattern, n_columns: int) -> tuple[tuple[int, int], ...]:
    """Return (row, column) of the cells a pattern's network models.

    Every cell that is neither FIX nor USE in its row: free and SET cells.
    """
    return tuple(
        (i, c)
        for i, row in enumerate(pattern.rows)
        for c in range(n_columns)
        if (cell := row.get(c)) is None or cell.kind is CellKind.SET
    )


def learn_flow_model(
    table: CodedTable, settings: SearchSettings | None = None
) -> LearnedFlowModel:
    """Learn patterns, networks and cover statistics from ``table``.

    Raises ValueError on a table without rows or columns.
    """
    if len(table) == 0 or not table.columns:
        raise ValueError(f"cannot learn from a table of shape {table.codes.shape}")
    return _Search(table, settings or SearchSettings()).run()


class _Search:
    def __init__(self, table: CodedTable, settings: SearchSettings) -> None:
        # settings
        self.table = table
        self.settings = settings
        self.n_columns = len(table.columns)
        self.n_states = [max(size, 1) for size in table.observed_sizes]
        self.addresses = table.address_columns
        gap = settings.max_gap_s
        max_gap_ticks = None if gap is None else round(gap / table.tick_s)

        # fixed parts: index, window cache, background structure
        self.cache = WindowCache(
            OccurrenceIndex.from_table(table), max_gap_ticks=max_gap_ticks
        )
        self.codes = table.codes.astype(np.int64)
        self.background = learn_network(self.codes, self.n_states)
        self.background_bits = self.background.structure_bits
        self.start_bits = math.log2(table.span_ticks + 1)

        # search state
        self.tested: set[object] = set()
        self.n_tested = 0
        self._window_bits_cache: dict[object, float] = {}
        self._scores: dict[object, float] = {}

    def run(self) -> LearnedFlowModel:
        began = time.perf_counter()
        state = self._state((), ())
        empty_bits = state.total_bits
        trace = [self._step(0, state, began)]
        seeds = seed_patterns(
            self.table.codes,
            self.addresses,
            min_support=self.settings.min_support,
            max_seeds=self.settings.max_seeds,
        )
        mode = 0
        for iteration in range(1, self.settings.max_iterations + 1):
            accepted = self._iterate(state, seeds, mode)
            if accepted is None:
                if mode == 1:
                    break
                mode = 1
                continue
            state = accepted
            trace.append(self._step(iteration, state, began))
            logger.debug(
                "iteration %d: %d patterns, %.1f bits",
                iteration,
                len(state.patterns),
                state.total_bits,
            )
        return self._result(state, empty_bits, trace)

    def _iterate(
        self, state: _State, seeds: Sequence[Pattern], mode: int
    ) -> _State | None:
        """Test candidates best first; return the state after an acceptance."""
        rejections = 0
        for candidate in self._ranked(state, seeds, mode):
            self.tested.add(candidate.key)
            self.n_tested += 1
            accepted = self._test(state, candidate)
            if accepted is not None:
                return self._prune(state, accepted)
            rejections += 1
            if rejections >= self.settings.max_rejections:
                break
        return None

    def _ranked(
        self, state: _State, seeds: Sequence[Pattern], mode: int
    ) -> list[Pattern]:
        """Return the untested candidates with a positive score, best first."""
        pool: dict[object, Pattern] = {}
        for p in self._candidates(state, seeds, mode):
            if p.key not in self.tested and p.key not in pool:
                pool[p.key] = p
        present = {p.key for p in state.patterns}
        scored = [(self._score(p), p) for key, p in pool.items() if key not in present]
        scored = [(s, p) for s, p in scored if s > 0]
        scored.sort(key=lambda item: -item[0])
        return [p for _, p in scored]

    def _score(self, pattern: Pattern) -> float:
        """Return the candidate score of ``pattern``, computed once."""
        score = self._scores.get(pattern.key)
        if score is None:
            score = candidate_score(pattern, self.cache.windows(pattern))
            self._scores[pattern.key] = score
        return score

    def _candidates(
        self, state: _State, seeds: Sequence[Pattern], mode: int
    ) -> Iterable[Pattern]:
        yield from seeds
        for p, windows in zip(state.patterns, state.cover.windows, strict=True):
            yield from extensions(
                p,
                windows,
                self.table.codes,
                self.addresses,
                min_support=self.settings.min_support,
                max_rows=self.settings.max_rows,
            )
        yield from merges(state.patterns)
        if mode == 1:
            yield from concatenations(
                state.patterns, self.addresses, max_rows=self.settings.max_rows
            )

    def _test(self, state: _State, candidate: Pattern) -> _State | None:
        """Return the state with ``candidate`` if it shortens the total."""
        present = {p.key for p in state.patterns}
        for _ in range(self.settings.max_constant_rounds):
            cover = build_cover(state.patterns + (candidate,), self.cache)
            windows = cover.windows[-1]
            if len(windows) < 2:
                return None
            variables = free_cells(candidate, self.n_columns)
            network = learn_network(
                self._cells(windows, variables), self._states_of(variables)
            )
            constants = network.constants
            if not constants:
                break
            candidate = _fixed(candidate, variables, constants)
            if candidate.key in present:
                return None
            self.tested.add(candidate.key)
        else:
            # still constants after the last round: give up on it
            return None
        new = self._state(
            state.patterns + (candidate,),
            state.structures + (network.parents,),
            cover,
        )
        return new if new.total_bits < state.total_bits else None

    def _prune(self, before: _State, after: _State) -> _State:
        """Remove patterns whose removal shortens the total (Krimp)."""
        drops = [
            (old - new, p.key)
            for p, old, new in zip(
                before.patterns, before.cover.usage, after.cover.usage, strict=False
            )
            if new < old
        ]
        for _, key in sorted(drops, key=lambda item: -item[0]):
            keep = [i for i, p in enumerate(after.patterns) if p.key != key]
            if len(keep) == len(after.patterns):
                continue
            without = self._state(
                tuple(after.patterns[i] for i in keep),
                tuple(after.structures[i] for i in keep),
            )
            if without.total_bits < after.total_bits:
                logger.debug("pruned a pattern, %.1f bits", without.total_bits)
                after = without
        return after

    def _state(
        self,
        patterns: tuple[Pattern, ...],
        structures: tuple[Structure, ...],
        cover: Cover | None = None,
    ) -> _State:
        """Cover the table (unless given) and add up the description length."""
        if cover is None:
            cover = build_cover(patterns, self.cache)
        costs = [
            pattern_cost(
                p,
                domain_sizes=self.n_states,
                parent_counts=[len(ps) for ps in structure],
            )
            for p, structure in zip(patterns, structures, strict=True)
        ]
        model = model_cost(costs, self.background_bits)

        # pattern windows: usage, timing, free cells
        data = 0.0
        for p, structure, windows in zip(
            patterns, structures, cover.windows, strict=True
        ):
            data += universal_code_length(len(windows) + 1)
            if len(windows):
                data += self._window_bits(p, structure, windows)

        # background rows
        background = cover.background
        data += len(background) * self.start_bits
        data += data_bits(
            self.codes[background], self.background.parents, self.n_states
        )
        return _State(patterns, structures, cover, model, data)

    def _window_bits(
        self, pattern: Pattern, structure: Structure, windows: Array
    ) -> float:
        """Return the timing and free-cell bits of a pattern's used windows.

        Cached: adding a candidate leaves most patterns' windows unchanged.
        """
        key = (pattern.key, structure, windows.tobytes())
        bits = self._window_bits_cache.get(key)
        if bits is None:
            ticks, span = self.table.ticks, self.table.span_ticks
            variables = free_cells(pattern, self.n_columns)
            bits = float(window_time_costs(ticks[windows], span).sum())
            bits += data_bits(
                self._cells(windows, variables), structure, self._states_of(variables)
            )
            if len(self._window_bits_cache) >= _MAX_CACHED:
                self._window_bits_cache.clear()
            self._window_bits_cache[key] = bits
        return bits

    def _cells(self, windows: Array, variables: Sequence[tuple[int, int]]) -> Array:
        """Return the codes of ``variables`` in each window."""
        if not variables:
            return np.zeros((len(windows), 0), dtype=np.int64)
        rows = np.array([r for r, _ in variables], dtype=np.int64)
        columns = np.array([c for _, c in variables], dtype=np.int64)
        cells: Array = self.codes[windows[:, rows], columns]
        return cells

    def _states_of(self, variables: Sequence[tuple[int, int]]) -> list[int]:
        return [self.n_states[c] for _, c in variables]

    def _step(self, iteration: int, state: _State, began: float) -> TraceStep:
        return TraceStep(
            iteration=iteration,
            n_patterns=len(state.patterns),
            model_bits=state.model_bits,
            data_bits=state.data_bits,
            elapsed_s=time.perf_counter() - began,
        )

    def _result(
        self, state: _State, empty_bits: float, trace: list[TraceStep]
    ) -> LearnedFlowModel:
        ticks = self.table.ticks
        fitted = []
        for p, structure, windows in zip(
            state.patterns, state.structures, state.cover.windows, strict=True
        ):
            variables = free_cells(p, self.n_columns)
            network = fit_counts(
                self._cells(windows, variables), structure, self._states_of(variables)
            )
            window_ticks = ticks[windows]
            fitted.append(
                FittedPattern(
                    pattern=p,
                    variables=variables,
                    network=network,
                    start_ticks=window_ticks[:, 0].astype(np.int64),
                    delays_ticks=np.diff(window_ticks, axis=1).astype(np.int64),
                )
            )
        background = state.cover.background
        return LearnedFlowModel(
            patterns=tuple(fitted),
            background=learn_network(self.codes[background], self.n_states),
            background_start_ticks=ticks[background].astype(np.int64),
            model_bits=state.model_bits,
            data_bits=state.data_bits,
            empty_bits=empty_bits,
            trace=tuple(trace),
            n_tested=self.n_tested,
        )


def _fixed(
    pattern: Pattern,
    variables: Sequence[tuple[int, int]],
    constants: dict[int, int],
) -> Pattern:
    """Return ``pattern`` with its constant variables as FIX cells.

    A constant SET cell becomes FIX and so does every USE of it.
    """
    rows = [dict(row.cells) for row in pattern.rows]
    for v, code in constants.items():
        i, c = variables[v]
        cell = rows[i].get(c)
        if cell is not None and cell.kind is CellKind.SET:
            for row in rows:
                for column, other in list(row.items()):
                    if other == Cell.use(cell.value):
                        row[column] = Cell.fix(code)
        rows[i][c] = Cell.fix(code)
    return Pattern.of(rows)
