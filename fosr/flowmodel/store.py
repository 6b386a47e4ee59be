"""Save a learnt flow model in a bundle, and load it back with every check.

The part is the document ``flow_model`` (kind ``flowchronicle``, version 1)
and its arrays, all named ``flow_model.*``.  It holds model parameters only,
never flow rows:

- ``columns``, ``tick_s``, ``origin_s`` (the start of the training data,
  Unix seconds) and ``codebooks``: per column its ``kind``,
  ``is_address``, ``is_integer``, and for a categorical column its
  ``values`` (a JSON list of strings or integers); the arrays
  ``flow_model.codebook{i}.counts`` (int64) and, for a binned column,
  ``flow_model.codebook{i}.edges`` (float64);
- ``patterns``: per pattern its ``rows`` (lists of cells
  ``{"column": name, "kind": "fix", "code": c}`` or ``{"column": name,
  "kind": "set"|"use", "placeholder": k}``), its ``variables`` ((row,
  column name) of the free cells), its ``usage`` and its ``network``;
- ``background``: the background network and its ``usage``;
- a network is ``{"variables": [{"n_states", "states", "configs",
  "parents"}], "order"}``, where ``states`` and ``configs`` count the
  variable's entries in the arrays ``flow_model.{net}.states``,
  ``.configs`` and ``.counts`` (each variable's entries laid end to end;
  counts row-major, configs x states), ``{net}`` being ``background`` or
  ``pattern{i}``.  One array per network and role, not per variable,
  keeps large models under the bundle's limit of 4096 members;
- ``timing``: ``timezone``, ``max_gap_s``; arrays
  ``flow_model.timing.rates_per_s``, ``.extrapolated``, ``.weights`` and
  ``.delays{i}`` (pattern i's delay quantiles);
- ``bits`` (model, data and empty-model description lengths) and
  ``n_tested``, for ``fosr model show``.

Loading checks every field and array (types, codes within their codebook,
parents valid and acyclic in the given order, counts shaped configs x
states, finite and non-negative) and raises one BundleError naming the
field or array.  What is not stored: the windows' start ticks and delays
(raw timing of the training data) and the search trace.
"""

from __future__ import annotations

import math
import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from fosr.bundle import Bundle, Field, Provenance, read_bundle, write_bundle
from fosr.flowmodel.codebook import Codebook, ColumnKind
from fosr.flowmodel.encoding import CodedTable
from fosr.flowmodel.learn import FittedPattern, LearnedFlowModel, free_cells
from fosr.flowmodel.network import BayesNet
from fosr.flowmodel.pattern import Cell, CellKind, Pattern, RowPattern
from fosr.flowmodel.sampler import FlowSampler
from fosr.flowmodel.timing import BINS_PER_DAY, N_QUANTILES, FlowTiming

__all__ = [
    "PART",
    "StoredFlowModel",
    "flow_model_members",
    "load_flow_model",
    "save_flow_model",
]

Array = npt.NDArray[Any]

PART = "flow_model"
"""Name of the flow model's part in a bundle."""

_KIND, _VERSION = "flowchronicle", 1
_CELL_KINDS = {"fix": CellKind.FIX, "set": CellKind.SET, "use": CellKind.USE}
_NO_TICKS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class StoredFlowModel:
    """A flow model as loaded from a bundle: what generation needs.

    ``model`` has no start ticks nor delays (not stored): its patterns'
    ``usage`` reads 0, so use ``usages`` (per pattern) and
    ``background_usage``.  ``origin_s`` is the start of the training data
    in Unix seconds; ``provenance`` comes from the bundle's manifest.
    """

    model: LearnedFlowModel
    timing: FlowTiming
    columns: tuple[str, ...]
    codebooks: tuple[Codebook, ...]
    tick_s: float
    origin_s: float
    usages: tuple[int, ...]
    background_usage: int
    provenance: Provenance

    def sampler(
        self, *, seed: int, shard: int = 0, shards: int = 1, rate_scale: float = 1.0
    ) -> FlowSampler:
        """Return a :class:`FlowSampler` of this model (see its arguments)."""
        return FlowSampler(
            self.model,
            self.timing,
            self.columns,
            self.codebooks,
            seed=seed,
            shard=shard,
            shards=shards,
            rate_scale=rate_scale,
        )


def save_flow_model(
    path: str | os.PathLike[str],
    model: LearnedFlowModel,
    timing: FlowTiming,
    coded: CodedTable,
    provenance: Provenance,
) -> None:
    """Write ``model`` and ``timing`` as a bundle at ``path``, atomically.

    ``coded`` is the table the model was learnt from: only its columns,
    codebooks, tick and origin are kept.  Raises ValueError if the timing
    belongs to another model; OSError passes through.
    """
    documents: dict[str, Any] = {}
    arrays: dict[str, Array] = {}
    flow_model_members(model, timing, coded, documents, arrays)
    write_bundle(path, documents=documents, arrays=arrays, provenance=provenance)


def flow_model_members(
    model: LearnedFlowModel,
    timing: FlowTiming,
    coded: CodedTable,
    documents: MutableMapping[str, Any],
    arrays: MutableMapping[str, Array],
) -> None:
    """Add the flow model's document and arrays to a bundle's members.

    The mappings are later handed to :func:`fosr.bundle.write_bundle`,
    possibly with other parts (the packet model, the hosts).  Raises
    ValueError if the timing belongs to another model or the part is
    already there.
    """
    if PART in documents:
        raise ValueError(f"the bundle's members already hold {PART!r}")
    if len(timing.weights) != len(model.patterns) + 1:
        raise ValueError("timing fitted on another model")
    columns = list(coded.columns)

    # codebooks
    books: list[dict[str, object]] = []
    for i, book in enumerate(coded.codebooks):
        books.append(_dump_codebook(book))
        arrays[f"flow_model.codebook{i}.counts"] = np.asarray(book.counts, np.int64)
        if book.is_continuous:
            arrays[f"flow_model.codebook{i}.edges"] = np.asarray(book.edges, np.float64)

    # patterns and networks
    patterns = []
    for i, fitted in enumerate(model.patterns):
        patterns.append(
            {
                "rows": [_dump_row(row, columns) for row in fitted.pattern.rows],
                "variables": [[r, columns[c]] for r, c in fitted.variables],
                "usage": fitted.usage,
                "network": _dump_network(fitted.network, f"pattern{i}", arrays),
            }
        )
    background = {
        "usage": len(model.background_start_ticks),
        "network": _dump_network(model.background, "background", arrays),
    }

    # timing
    arrays["flow_model.timing.rates_per_s"] = timing.rates_per_s.astype(np.float64)
    arrays["flow_model.timing.extrapolated"] = timing.extrapolated.astype(bool)
    arrays["flow_model.timing.weights"] = timing.weights.astype(np.float64)
    for i, quantiles in enumerate(timing.delay_quantiles_s):
        arrays[f"flow_model.timing.delays{i}"] = quantiles.astype(np.float64)
    document = {
        "kind": _KIND,
        "version": _VERSION,
        "columns": columns,
        "tick_s": coded.tick_s,
        "origin_s": coded.origin_s,
        "codebooks": books,
        "patterns": patterns,
        "background": background,
        "bits": {
            "model": model.model_bits,
            "data": model.data_bits,
            "empty": model.empty_bits,
        },
        "n_tested": model.n_tested,
        "timing": {"timezone": timing.timezone, "max_gap_s": timing.max_gap_s},
    }
    documents[PART] = document


def load_flow_model(path: str | os.PathLike[str]) -> StoredFlowModel:
    """Read the flow model of the bundle at ``path``, checking every field.

    Raises BundleError naming the file, member and field (or array) of the
    first problem: a damaged or foreign file, a missing part, a value of
    the wrong type or out of range.
    """
    return flow_model_of(read_bundle(path))


def flow_model_of(bundle: Bundle) -> StoredFlowModel:
    """Return the flow model of a bundle already read; see load_flow_model."""
    root = bundle.fields(PART)
    root["kind"].as_str(choices=[_KIND])
    if root["version"].as_int() != _VERSION:
        raise root["version"].error(f"must be {_VERSION}, not {root['version'].value}")
    columns = _load_columns(root["columns"])
    reader = _Reader(bundle, columns)

    books = tuple(
        reader.codebook(i, name, field)
        for i, (name, field) in enumerate(
            zip(
                columns,
                root["codebooks"].as_list(min_len=len(columns), max_len=len(columns)),
                strict=True,
            )
        )
    )
    reader.sizes = [book.size for book in books]
    patterns = tuple(
        reader.pattern(i, field) for i, field in enumerate(root["patterns"].as_list())
    )
    background = root["background"]
    background_net = reader.network(
        background["network"], "background", [(0, c) for c in range(len(columns))]
    )
    timing = reader.timing(root["timing"], [len(p.pattern) for p, _ in patterns])

    bits = root["bits"]
    model = LearnedFlowModel(
        patterns=tuple(p for p, _ in patterns),
        background=background_net,
        background_start_ticks=_NO_TICKS,
        model_bits=bits["model"].as_float(min=0),
        data_bits=bits["data"].as_float(min=0),
        empty_bits=bits["empty"].as_float(min=0),
        trace=(),
        n_tested=root["n_tested"].as_int(min=0),
    )
    return StoredFlowModel(
        model=model,
        timing=timing,
        columns=columns,
        codebooks=books,
        tick_s=root["tick_s"].as_float(min=1e-9),
        origin_s=root["origin_s"].as_float(min=0),
        usages=tuple(u for _, u in patterns),
        background_usage=background["usage"].as_int(min=0),
        provenance=bundle.provenance,
    )


def _load_columns(field: Field) -> tuple[str, ...]:
    names = tuple(f.as_str() for f in field.as_list(min_len=1))
    if len(set(names)) != len(names):
        raise field.error(f"must not repeat a column, not {list(names)}")
    return names


def _dump_codebook(book: Codebook) -> dict[str, object]:
    values = [v if isinstance(v, str) else int(v) for v in book.values.tolist()]
    out: dict[str, object] = {
        "kind": book.kind.value,
        "is_address": book.is_address,
        "is_integer": book.is_integer,
    }
    if not book.is_continuous:
        out["values"] = values
    return out


def _dump_row(row: RowPattern, columns: list[str]) -> list[dict[str, object]]:
    cells: list[dict[str, object]] = []
    for c, cell in row.cells:
        argument = "code" if cell.kind is CellKind.FIX else "placeholder"
        kind = cell.kind.name.lower()
        cells.append({"column": columns[c], "kind": kind, argument: cell.value})
    return cells


def _dump_network(
    net: BayesNet, name: str, arrays: MutableMapping[str, Array]
) -> object:
    arrays[f"flow_model.{name}.states"] = _joined(net.states, np.int64)
    arrays[f"flow_model.{name}.configs"] = _joined(net.configs, np.int64)
    arrays[f"flow_model.{name}.counts"] = _joined(
        [c.ravel() for c in net.counts], np.float64
    )
    variables = [
        {
            "n_states": net.n_states[v],
            "states": len(net.states[v]),
            "configs": len(net.configs[v]),
            "parents": list(net.parents[v]),
        }
        for v in range(len(net))
    ]
    return {"variables": variables, "order": list(net.order)}


def _joined(parts: Any, dtype: type[Any]) -> Array:
    if not len(parts):
        return np.zeros(0, dtype=dtype)
    return np.concatenate([np.asarray(p, dtype=dtype).ravel() for p in parts])


class _Reader:
    """Checks and builds the parts of one flow model document."""

    def __init__(self, bundle: Bundle, columns: tuple[str, ...]) -> None:
        self.bundle = bundle
        self.columns = columns
        self.sizes: list[int] = []

    def array(self, name: str, dtype: type[Any], ndim: int = 1) -> Array:
        """Return array ``name`` of ``dtype``, finite and non-negative."""
        array = self.bundle.array(name, dtype=dtype, shape=(None,) * ndim)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise self.bundle.array_error(name, "holds NaN or infinite values")
        if array.dtype.kind in "if" and array.size and array.min() < 0:
            raise self.bundle.array_error(
                name, f"holds negative values, down to {array.min()}"
            )
        return array

    def column(self, field: Field) -> int:
        """Return the index of the column named by ``field``."""
        name = field.as_str(choices=self.columns)
        return self.columns.index(name)

    def codebook(self, i: int, name: str, field: Field) -> Codebook:
        kind = ColumnKind(field["kind"].as_str(choices=["categorical", "continuous"]))
        counts = self.array(f"flow_model.codebook{i}.counts", np.int64)
        if kind is ColumnKind.CATEGORICAL:
            values = _values(field["values"])
            edges = np.zeros(0, dtype=np.float64)
            size = len(values)
        else:
            values = np.zeros(0, dtype=object)
            edges = self.array(f"flow_model.codebook{i}.edges", np.float64)
            if np.any(np.diff(edges) < 0):
                raise self.bundle.array_error(
                    f"flow_model.codebook{i}.edges", "must be ascending"
                )
            size = max(len(edges), 1)
        if len(counts) != size:
            raise self.bundle.array_error(
                f"flow_model.codebook{i}.counts",
                f"has {len(counts)} counts for {size} codes",
            )
        return Codebook(
            name=name,
            kind=kind,
            is_address=field["is_address"].as_bool(),
            values=values,
            edges=np.array(edges),
            is_integer=field["is_integer"].as_bool(),
            counts=np.array(counts),
        )

    def pattern(self, i: int, field: Field) -> tuple[FittedPattern, int]:
        rows = [self.row(f) for f in field["rows"].as_list(min_len=1)]
        try:
            pattern = Pattern(tuple(rows))
        except ValueError as error:
            raise field["rows"].error(f"break a placeholder rule: {error}") from None
        if pattern.rows != tuple(rows):
            raise field["rows"].error("must number placeholders in order of their SET")
        expected = free_cells(pattern, len(self.columns))
        variables_field = field["variables"]
        variables = tuple(
            (
                v[0].as_int(min=0, max=len(rows) - 1),
                self.column(v[1]),
            )
            for v in (
                f.as_list(min_len=2, max_len=2) for f in variables_field.as_list()
            )
        )
        if variables != expected:
            raise variables_field.error(
                f"must list the free cells {[list(v) for v in expected]}"
            )
        network = self.network(field["network"], f"pattern{i}", list(variables))
        fitted = FittedPattern(pattern, variables, network, _NO_TICKS, _NO_TICKS)
        return fitted, field["usage"].as_int(min=0)

    def row(self, field: Field) -> RowPattern:
        cells: dict[int, Cell] = {}
        for cell_field in field.as_list(min_len=1):
            c = self.column(cell_field["column"])
            if c in cells:
                raise cell_field["column"].error("appears twice in the row")
            kind = _CELL_KINDS[cell_field["kind"].as_str(choices=list(_CELL_KINDS))]
            if kind is CellKind.FIX:
                value = cell_field["code"].as_int(min=0, max=self.sizes[c] - 1)
            else:
                value = cell_field["placeholder"].as_int(min=0)
            cells[c] = Cell(kind, value)
        return RowPattern.of(cells)

    def network(
        self, field: Field, name: str, variables: list[tuple[int, int]]
    ) -> BayesNet:
        """Return the network ``name`` whose variables model ``variables``."""
        specs = field["variables"].as_list(
            min_len=len(variables), max_len=len(variables)
        )
        states_all = self.array(f"flow_model.{name}.states", np.int64)
        configs_all = self.array(f"flow_model.{name}.configs", np.int64)
        counts_all = self.array(f"flow_model.{name}.counts", np.float64)
        n_states, states, parents, configs, counts = [], [], [], [], []
        at_states = at_configs = at_counts = 0
        for v, spec in enumerate(specs):
            size = self.sizes[variables[v][1]]
            n_states.append(spec["n_states"].as_int(min=0, max=size))
            k = spec["states"].as_int(min=0, max=size)
            m = spec["configs"].as_int(min=0)
            mine = spec["parents"]
            parents.append(
                tuple(p.as_int(min=0, max=len(specs) - 1) for p in mine.as_list())
            )
            if v in parents[-1] or list(parents[-1]) != sorted(set(parents[-1])):
                raise mine.error(f"must be ascending and not {v} itself")
            states.append(np.array(states_all[at_states : at_states + k]))
            configs.append(np.array(configs_all[at_configs : at_configs + m]))
            counts.append(
                np.array(counts_all[at_counts : at_counts + m * k]).reshape(-1, k)
                if k
                else np.zeros((m, 0))
            )
            if (
                len(states[-1]) != k
                or len(configs[-1]) != m
                or counts[-1].size != m * k
            ):
                raise self.bundle.array_error(
                    f"flow_model.{name}.states", f"is too short for variable {v}"
                )
            if k and states[-1].max() >= size:
                raise spec.error(f"has a state code >= {size}, the codebook's size")
            if np.any(np.diff(states[-1]) <= 0) or np.any(np.diff(configs[-1]) <= 0):
                raise spec.error("must have ascending states and configurations")
            at_states, at_configs, at_counts = (
                at_states + k,
                at_configs + m,
                at_counts + m * k,
            )
        for array, used in (
            ("states", at_states),
            ("configs", at_configs),
            ("counts", at_counts),
        ):
            found = len(self.bundle.array(f"flow_model.{name}.{array}"))
            if found != used:
                raise self.bundle.array_error(
                    f"flow_model.{name}.{array}",
                    f"has {found} entries, the variables use {used}",
                )
        order = _order(field["order"], parents)

        # a configuration key is a mixed-radix number over the parents' states
        for v, spec in enumerate(specs):
            n_keys = math.prod(len(states[p]) for p in parents[v])
            if len(configs[v]) and configs[v][-1] >= n_keys:
                raise spec["configs"].error(
                    f"has a configuration key >= {n_keys}, beyond its parents' states"
                )
        return BayesNet(
            n_states=tuple(n_states),
            states=tuple(states),
            parents=tuple(parents),
            order=order,
            configs=tuple(configs),
            counts=tuple(counts),
        )

    def timing(self, field: Field, rows: list[int]) -> FlowTiming:
        zone = field["timezone"]
        try:
            ZoneInfo(zone.as_str())
        except (ValueError, OSError, LookupError):
            raise zone.error(f"is no known time zone: {zone.value!r}") from None
        rates = self.array("flow_model.timing.rates_per_s", np.float64, 2)
        if rates.shape[0] not in (1, 7) or rates.shape[1] != BINS_PER_DAY:
            raise self.bundle.array_error(
                "flow_model.timing.rates_per_s",
                f"has shape {rates.shape}, expected (1 or 7, {BINS_PER_DAY})",
            )
        extrapolated = self.bundle.array(
            "flow_model.timing.extrapolated", dtype=bool, shape=rates.shape
        )
        weights = self.array("flow_model.timing.weights", np.float64)
        if len(weights) != len(rows) + 1 or not math.isclose(
            float(weights.sum()), 1.0, rel_tol=1e-6
        ):
            raise self.bundle.array_error(
                "flow_model.timing.weights",
                f"must hold {len(rows) + 1} shares summing to 1",
            )
        delays = []
        for i, n_rows in enumerate(rows):
            name = f"flow_model.timing.delays{i}"
            quantiles = self.array(name, np.float64, 2)
            if quantiles.shape != (n_rows - 1, N_QUANTILES):
                raise self.bundle.array_error(
                    name,
                    f"has shape {quantiles.shape}, expected ({n_rows - 1}, "
                    f"{N_QUANTILES})",
                )
            delays.append(np.array(quantiles))
        return FlowTiming(
            timezone=zone.as_str(),
            rates_per_s=np.array(rates),
            extrapolated=np.array(extrapolated),
            weights=np.array(weights),
            delay_quantiles_s=tuple(delays),
            max_gap_s=field["max_gap_s"].as_float(min=0),
        )


def _values(field: Field) -> Array:
    """Return categorical values: all strings (object) or all integers."""
    items = field.as_list()
    if all(isinstance(f.value, str) for f in items):
        return np.array([f.value for f in items] or [], dtype=object)
    ints = [f.as_int() for f in items]
    if len(set(ints)) != len(ints):
        raise field.error("must not repeat a value")
    return np.array(ints, dtype=np.int64)


def _order(field: Field, parents: list[tuple[int, ...]]) -> tuple[int, ...]:
    """Return the topological order; refuse one that puts a child first."""
    n = len(parents)
    order = tuple(f.as_int(min=0, max=max(n - 1, 0)) for f in field.as_list())
    if sorted(order) != list(range(n)):
        raise field.error(f"must list each of the {n} variables once")
    placed: set[int] = set()
    for v in order:
        if not set(parents[v]) <= placed:
            raise field.error(
                f"puts variable {v} before its parents {list(parents[v])}: "
                "the parents are cyclic or out of order"
            )
        placed.add(v)
    return order
