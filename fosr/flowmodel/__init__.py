"""The flow model: FlowChronicle's patterns over coded flow tables.

Building blocks, in pipeline order: :func:`encode_flows` codes a
:class:`~fosr.flows.FlowTable` (:class:`CodedTable`, one :class:`Codebook`
per column); :class:`OccurrenceIndex` lists rows per column value;
:class:`Pattern` is the pattern language and :func:`find_windows` finds its
occurrences; :mod:`fosr.flowmodel.mdl` holds the code lengths of the MDL
score.  Learning: :func:`build_cover` covers a table with patterns,
:func:`learn_network` fits a :class:`BayesNet` to free cells, and
:func:`learn_flow_model` runs the greedy MDL search.  Generation:
:func:`fit_timing` fits a :class:`FlowTiming` (rate profile, delays) and
:class:`FlowSampler` draws flows over any range of time, sharded.
Storage: :func:`save_flow_model` writes a model bundle and
:func:`load_flow_model` reads it back, checked.
"""

from fosr.flowmodel.codebook import UNSEEN, Codebook, ColumnKind
from fosr.flowmodel.cover import Cover, WindowCache, build_cover
from fosr.flowmodel.encoding import (
    ADDRESS_COLUMNS,
    DEFAULT_BINS,
    DEFAULT_COLUMNS,
    DEFAULT_TICK_S,
    MINABLE_COLUMNS,
    CodedTable,
    encode_flows,
)
from fosr.flowmodel.index import NO_ROW, OccurrenceIndex
from fosr.flowmodel.learn import (
    FittedPattern,
    LearnedFlowModel,
    SearchSettings,
    TraceStep,
    learn_flow_model,
)
from fosr.flowmodel.network import BayesNet, learn_network
from fosr.flowmodel.pattern import Cell, CellKind, Pattern, RowPattern
from fosr.flowmodel.sampler import EPHEMERAL_PORTS, FlowSampler, fill_codes
from fosr.flowmodel.store import StoredFlowModel, load_flow_model, save_flow_model
from fosr.flowmodel.timing import FlowTiming, fit_timing
from fosr.flowmodel.windows import (
    SKIP_PENALTY,
    Windows,
    candidate_score,
    find_windows,
    select_disjoint,
    window_scores,
)

__all__ = [
    "ADDRESS_COLUMNS",
    "DEFAULT_BINS",
    "DEFAULT_COLUMNS",
    "DEFAULT_TICK_S",
    "EPHEMERAL_PORTS",
    "MINABLE_COLUMNS",
    "NO_ROW",
    "SKIP_PENALTY",
    "UNSEEN",
    "BayesNet",
    "Cell",
    "CellKind",
    "CodedTable",
    "Codebook",
    "ColumnKind",
    "Cover",
    "FittedPattern",
    "FlowSampler",
    "FlowTiming",
    "LearnedFlowModel",
    "OccurrenceIndex",
    "Pattern",
    "RowPattern",
    "SearchSettings",
    "StoredFlowModel",
    "TraceStep",
    "WindowCache",
    "Windows",
    "build_cover",
    "candidate_score",
    "encode_flows",
    "fill_codes",
    "find_windows",
    "fit_timing",
    "learn_flow_model",
    "learn_network",
    "load_flow_model",
    "save_flow_model",
    "select_disjoint",
    "window_scores",
]
