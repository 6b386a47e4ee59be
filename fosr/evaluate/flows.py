"""Judge synthetic flow records against real ones (``fosr evaluate flows``).

How an evaluation runs.  It follows the protocol of FlowChronicle's quality
table (METHODS.md §2), with the reference implementation's bugs fixed:

1. Roles.  With a training set, every candidate is scored against the
   training set (the *target*), as the paper does: the synthetic set; the
   *reference*, the real held-out set treated as if a generator had made
   it, which marks "as good as real data"; and two baselines, *independent*
   (each column drawn on its own from the training set's values) and
   *copy* (rows of the training set).  The copy is perfect on every
   distribution metric; MD is there to catch it.  Without a training set
   the synthetic set is scored against the real one, and the reference,
   the baselines, MD and the domain rules learned from training are left
   out (the report says so).
2. Repetitions.  Each draws ``sample_size`` rows from the target and from
   every candidate (with replacement from a set smaller than that; the
   report says which) and computes density and coverage (k = 5), CMD, PCD,
   EMD, JSD and DKC.  MD draws 500 members from the training set and 500
   non-members from one half of the real set, picked at random each time;
   the reference's rows for MD come from the other half, so that they are
   never the non-members themselves.  Tables give the mean and standard
   deviation over the repetitions.
3. The temporal metric (ACF of per-second sums) needs the flows in their
   real order, which sampling destroys: it is computed once, on whole sets.
4. Ranking.  Per metric (density and coverage: higher is better; MD: the
   distance to the reference's MD; the others: lower is better), then the
   average rank, as the paper's table.  The reference is ranked too: a
   generator ranked above it beats real data on that metric.  A candidate
   is *flagged* by MD when its MD exceeds the reference's by more than
   max(1, 3 x their combined standard deviation): it gives its training
   flows away.

Start times take part in density, coverage and MD as the paper has it, but
the sets cover different periods: they are compared as times of day when
every real set spans a day or more, else as positions within each set's
own span (``time_alignment``; the reasons are in ``_flow_columns``).

Metric definitions and where they deviate from the reference: JSD, CMD,
EMD, PCD and the ACF in ``_flow_metrics``, density and coverage in
``_density``, DKC in ``_domain_rules``, MD in ``_membership``, the columns
and the alignment of start times in ``_flow_columns``.  The run itself is
in ``_flow_run``, ranking in ``_flow_summary``, the page in
``_flow_report``.  Density and coverage are computed with numpy, not
scikit-learn: categorical columns make most of the 10⁸ pairwise distances
unnecessary, which a generic nearest-neighbour search cannot exploit (see
``_density``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

import numpy as np

from fosr.evaluate._domain_rules import build_rule_context, check_rules
from fosr.evaluate._flow_columns import (
    EncodedFlows,
    Vocabulary,
    check_flows,
    choose_time_alignment,
    draw_rows,
    encode_flows,
)
from fosr.evaluate._flow_report import RunFacts, build_report
from fosr.evaluate._flow_run import (
    fit_md,
    md_codes_of,
    prepare_run,
    repeat_once,
    shared_values,
)
from fosr.evaluate._flow_scoring import (
    compare_temporal,
    fit_scaling,
    score_density,
    score_divergences,
)
from fosr.evaluate._flow_summary import summarise
from fosr.evaluate._membership import MD_ROWS, membership_disclosure
from fosr.evaluate.report import Report
from fosr.flows.table import FLOW_COLUMNS, FlowTable

__all__ = [
    "DEFAULT_K",
    "evaluate_flows",
    "measure_cmd",
    "measure_density_coverage",
    "measure_dkc",
    "measure_emd",
    "measure_jsd",
    "measure_md",
    "measure_pcd",
    "measure_temporal",
    "sample_independent_columns",
]

logger = logging.getLogger(__name__)

DEFAULT_K = 5
"""Neighbours per ball in density and coverage, as the paper (Naeem et al.)."""

Progress = Callable[[int], object]


def evaluate_flows(
    real: FlowTable,
    synthetic: FlowTable,
    *,
    train: FlowTable | None = None,
    repetitions: int = 20,
    sample_size: int = 10_000,
    seed: int = 0,
    plots: bool = True,
    progress: Progress | None = None,
    k: int = DEFAULT_K,
    time_alignment: str = "auto",
    inputs: Mapping[str, str | os.PathLike[str]] | None = None,
) -> Report:
    """Score ``synthetic`` against real flows and return the report.

    ``real`` is real held-out data, ``train`` the data the generator learned
    from (without it: no reference row, no baselines, no MD).  Every metric
    is averaged over ``repetitions`` samples of ``sample_size`` rows;
    the same ``seed`` gives the same numbers.  ``progress`` is called with
    1 after each repetition (a tqdm bar's ``update`` fits).  ``plots=False``
    leaves the figures out.  ``time_alignment`` is ``"auto"``, ``"day"`` or
    ``"span"`` (see ``fosr.evaluate._flow_columns``).  ``inputs`` maps the
    roles "real", "synthetic" and "train" to the files they were read from;
    errors and the report name them.

    Raises InputError (naming the file) if a set has fewer than k + 1 flows,
    non-finite times or durations, or an address column empty in every
    row; ValueError if repetitions, sample_size or k are out of range.
    """
    _check_settings(repetitions, sample_size, k)
    paths = {role: os.fspath(path) for role, path in (inputs or {}).items()}
    roles = {"real": real, "synthetic": synthetic}
    if train is not None:
        roles["train"] = train
    for role, table in roles.items():
        check_flows(table, role, min_rows=k + 1, path=paths.get(role))
    alignment = choose_time_alignment(
        time_alignment, [real] if train is None else [real, train]
    )

    seeds = np.random.SeedSequence(seed).spawn(repetitions + 1)
    independent = None
    if train is not None:
        n_rows = max(len(train), sample_size)
        independent = sample_independent_columns(train, n_rows, seed=seeds[0])
    run = prepare_run(real, synthetic, train, alignment, sample_size, k, independent)
    per_repetition = []
    for i, child in enumerate(seeds[1:]):
        per_repetition.append(repeat_once(run, np.random.default_rng(child)))
        logger.debug("flow evaluation: repetition %d of %d done", i + 1, repetitions)
        if progress is not None:
            progress(1)
    temporal = compare_temporal(run.target, run.candidates)

    facts = RunFacts(
        sizes={role: len(table) for role, table in roles.items()},
        has_training=train is not None,
        repetitions=repetitions,
        sample_size=sample_size,
        seed=seed,
        k=k,
        md_rows=MD_ROWS,
        time_alignment=alignment,
        paths=paths,
        shared_values=shared_values(run),
    )
    summary = summarise(per_repetition, temporal)
    plot_sets = (run.target_table, synthetic) if plots else None
    return build_report(facts, summary, temporal, plot_sets)


def sample_independent_columns(
    train: FlowTable,
    n_rows: int,
    *,
    seed: int | np.random.SeedSequence | np.random.Generator = 0,
) -> FlowTable:
    """Return ``n_rows`` flows whose columns are drawn independently.

    Each column's values are drawn with replacement from ``train``'s, so
    every marginal distribution is kept and every dependency between
    columns is lost: the "independent columns" baseline.  Rows are ordered
    by start time.  Raises ValueError if ``train`` is empty.
    """
    if not len(train):
        raise ValueError("cannot sample columns of an empty table")
    rng = np.random.default_rng(seed)
    columns = {
        name: getattr(train, name)[rng.integers(0, len(train), n_rows)]
        for name in FLOW_COLUMNS
    }
    return FlowTable.from_columns(columns).sorted_by_start()


def measure_density_coverage(
    real: FlowTable,
    synthetic: FlowTable,
    *,
    k: int = DEFAULT_K,
    time_alignment: str = "auto",
) -> tuple[float, float]:
    """Return (density, coverage) of all of ``synthetic`` against ``real``.

    Higher is better for both; a set against itself has coverage 1 and a
    density of about 1 (each ball holds its centre and k - 1 neighbours;
    the k-th lies on its edge, which is outside).  Raises InputError if
    ``real`` has fewer than k + 1 flows.
    """
    check_flows(real, "real", min_rows=k + 1)
    alignment = choose_time_alignment(time_alignment, [real])
    (target, candidate), _ = _encode(real, synthetic, alignment)
    scores = score_density(target, candidate, fit_scaling(target), k=k)
    return scores["density"], scores["coverage"]


def measure_jsd(real: FlowTable, synthetic: FlowTable) -> float:
    """Return the mean JS distance over the five discrete columns (0 is best)."""
    return _distribution_score(real, synthetic, "jsd")


def measure_cmd(real: FlowTable, synthetic: FlowTable) -> float:
    """Return the mean contingency-table difference over the ten pairs of
    discrete columns (0 is best)."""
    return _distribution_score(real, synthetic, "cmd")


def measure_pcd(real: FlowTable, synthetic: FlowTable) -> float:
    """Return the correlation difference of the continuous columns (0 is best)."""
    return _distribution_score(real, synthetic, "pcd")


def measure_emd(real: FlowTable, synthetic: FlowTable) -> float:
    """Return the mean scaled Wasserstein distance of the continuous columns
    (0 is best)."""
    return _distribution_score(real, synthetic, "emd")


def measure_dkc(
    synthetic: FlowTable, *, train: FlowTable | None = None
) -> tuple[float, dict[str, float]]:
    """Return DKC (0 is best) and each applied rule's violation rate.

    The rules learned from training data are applied only with ``train``.
    """
    check_flows(synthetic, "synthetic", min_rows=1)
    tables = [synthetic] if train is None else [synthetic, train]
    encoded, vocabulary = encode_flows(tables, "span")
    context = build_rule_context(vocabulary, None if train is None else encoded[1])
    rates = check_rules(encoded[0], context, vocabulary)
    return float(np.mean(list(rates.values()))), rates


def measure_md(
    train: FlowTable,
    held_out: FlowTable,
    synthetic: FlowTable,
    *,
    rows: int = MD_ROWS,
    seed: int = 0,
    time_alignment: str = "auto",
) -> float:
    """Return MD, membership disclosure (0 to 15), of all of ``synthetic``.

    ``rows`` members are drawn from ``train`` and as many non-members from
    ``held_out``.  Compare the result with ``measure_md(train, held_out,
    other_held_out)`` rather than with 0: real data scores well above 0.
    """
    for role, table in (("train", train), ("held-out", held_out)):
        check_flows(table, role, min_rows=1)
    check_flows(synthetic, "synthetic", min_rows=1)
    alignment = choose_time_alignment(time_alignment, [train, held_out])
    encoded, _ = encode_flows([train, held_out, synthetic], alignment)
    bins = fit_md(encoded[0], encoded[1])
    codes = [md_codes_of(bins, flows) for flows in encoded]
    rng = np.random.default_rng(seed)
    members = codes[0][draw_rows(len(train), rows, rng)]
    non_members = codes[1][draw_rows(len(held_out), rows, rng)]
    return membership_disclosure(members, non_members, codes[2])


def measure_temporal(real: FlowTable, synthetic: FlowTable) -> float:
    """Return the mean ACF difference of the continuous columns' per-second
    sums (0 is best)."""
    check_flows(real, "real", min_rows=1)
    check_flows(synthetic, "synthetic", min_rows=1)
    (target, candidate), _ = _encode(real, synthetic, "span")
    comparisons = compare_temporal(target, {"synthetic": candidate})["synthetic"]
    return float(np.mean([c.score for c in comparisons.values()]))


def _encode(
    real: FlowTable, synthetic: FlowTable, alignment: str
) -> tuple[list[EncodedFlows], Vocabulary]:
    return encode_flows([real, synthetic], alignment)


def _distribution_score(real: FlowTable, synthetic: FlowTable, metric: str) -> float:
    """Return one distribution metric of all of ``synthetic`` against ``real``."""
    check_flows(real, "real", min_rows=1)
    check_flows(synthetic, "synthetic", min_rows=1)
    (target, candidate), _ = _encode(real, synthetic, "span")
    return score_divergences(target, candidate, fit_scaling(target))[metric]


def _check_settings(repetitions: int, sample_size: int, k: int) -> None:
    if repetitions < 1:
        raise ValueError(f"repetitions must be at least 1, not {repetitions}")
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    if sample_size < k + 1:
        raise ValueError(
            f"sample_size must be at least k + 1 = {k + 1}, not {sample_size}"
        )
