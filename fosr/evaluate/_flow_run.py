"""The machinery of one flow evaluation: its sets, and one repetition.

:func:`prepare_run` encodes every set once (shared vocabularies, the
scaling fitted on the target, the domain rules learned from training, MD's
codes); :func:`repeat_once` draws one round of samples and scores every
candidate on them.  The protocol itself is described in
:mod:`fosr.evaluate.flows`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fosr.evaluate._density import nearest_radii
from fosr.evaluate._domain_rules import RuleContext, build_rule_context, check_rules
from fosr.evaluate._flow_columns import (
    DISCRETE_COLUMNS,
    Array,
    EncodedFlows,
    Vocabulary,
    draw_rows,
    encode_flows,
)
from fosr.evaluate._flow_scoring import (
    Scaling,
    fit_scaling,
    score_density,
    score_divergences,
)
from fosr.evaluate._membership import (
    MD_ROWS,
    MdBins,
    fit_md_bins,
    md_codes,
    membership_disclosure,
)
from fosr.flows.table import FlowTable

__all__ = [
    "FlowRun",
    "MdData",
    "fit_md",
    "md_codes_of",
    "prepare_run",
    "repeat_once",
    "shared_values",
]


@dataclass(frozen=True, eq=False)
class MdData:
    """MD codes of the training and the real set, and of every candidate."""

    train: Array
    real: Array
    candidates: dict[str, Array]


@dataclass(frozen=True, eq=False)
class FlowRun:
    """Everything one evaluation's repetitions share."""

    target_table: FlowTable
    target: EncodedFlows
    candidates: dict[str, EncodedFlows]
    vocabulary: Vocabulary
    scaling: Scaling
    rules: RuleContext
    md: MdData | None
    sample_size: int
    k: int


def prepare_run(
    real: FlowTable,
    synthetic: FlowTable,
    train: FlowTable | None,
    alignment: str,
    sample_size: int,
    k: int,
    independent: FlowTable | None,
) -> FlowRun:
    """Encode every set, fit the scaling, the rules and MD's bins.

    With ``train``, the candidates are the synthetic set, the reference
    (``real``), the ``independent`` baseline and the copy (``train``).
    """
    if train is None:
        (target, candidate), vocabulary = encode_flows([real, synthetic], alignment)
        return FlowRun(
            target_table=real,
            target=target,
            candidates={"synthetic": candidate},
            vocabulary=vocabulary,
            scaling=fit_scaling(target),
            rules=build_rule_context(vocabulary, None),
            md=None,
            sample_size=sample_size,
            k=k,
        )

    assert independent is not None, "a training set comes with its baseline"
    encoded, vocabulary = encode_flows([train, real, synthetic, independent], alignment)
    target, reference, candidate, baseline = encoded
    candidates = {
        "synthetic": candidate,
        "reference": reference,
        "independent": baseline,
        "copy": target,
    }
    bins = fit_md(target, reference)
    md = MdData(
        train=md_codes_of(bins, target),
        real=md_codes_of(bins, reference),
        candidates={
            name: md_codes_of(bins, flows) for name, flows in candidates.items()
        },
    )
    return FlowRun(
        target_table=train,
        target=target,
        candidates=candidates,
        vocabulary=vocabulary,
        scaling=fit_scaling(target),
        rules=build_rule_context(vocabulary, target),
        md=md,
        sample_size=sample_size,
        k=k,
    )


def repeat_once(run: FlowRun, rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """Draw one set of samples and score every candidate on them."""
    target = run.target.take(draw_rows(len(run.target), run.sample_size, rng))
    radii2 = nearest_radii(
        run.scaling.features(target), target.codes, k=run.k, ids=target.ids
    )
    scores: dict[str, dict[str, float]] = {}
    samples: dict[str, EncodedFlows] = {}
    for name, flows in run.candidates.items():
        sample = flows.take(draw_rows(len(flows), run.sample_size, rng))
        samples[name] = sample
        score = score_density(target, sample, run.scaling, k=run.k, radii2=radii2)
        score.update(score_divergences(target, sample, run.scaling))
        rates = check_rules(sample, run.rules, run.vocabulary)
        score["dkc"] = float(np.mean(list(rates.values())))
        score.update({f"dkc:{rule}": rate for rule, rate in rates.items()})
        scores[name] = score
    if run.md is not None:
        _score_md(run.md, samples, scores, run.sample_size, rng)
    return scores


def _score_md(
    md: MdData,
    samples: dict[str, EncodedFlows],
    scores: dict[str, dict[str, float]],
    sample_size: int,
    rng: np.random.Generator,
) -> None:
    """Add MD to ``scores``: the same members and non-members for everyone."""
    members = md.train[draw_rows(len(md.train), MD_ROWS, rng)]
    order = rng.permutation(len(md.real))
    held_out, reference_rows = order[: len(order) // 2], order[len(order) // 2 :]
    non_members = md.real[held_out[draw_rows(len(held_out), MD_ROWS, rng)]]
    for name, sample in samples.items():
        if name == "reference":
            rows = reference_rows[draw_rows(len(reference_rows), sample_size, rng)]
            candidate = md.real[rows]
        else:
            candidate = md.candidates[name][sample.ids]
        scores[name]["md"] = membership_disclosure(members, non_members, candidate)


def fit_md(train: EncodedFlows, held_out: EncodedFlows) -> MdBins:
    """Fit MD's bins on the numeric columns of the real data."""
    numeric = np.concatenate([_md_numeric(train), _md_numeric(held_out)])
    return fit_md_bins(numeric)


def _md_numeric(flows: EncodedFlows) -> Array:
    return np.column_stack([flows.time, flows.values])


def md_codes_of(bins: MdBins, flows: EncodedFlows) -> Array:
    return md_codes(bins, _md_numeric(flows), flows.codes)


def shared_values(run: FlowRun) -> dict[str, dict[str, float]]:
    """Return, per candidate and discrete column, the share of its rows whose
    value the target has too (0 hints at mismatched columns)."""
    shared: dict[str, dict[str, float]] = {}
    for name, flows in run.candidates.items():
        shared[name] = {}
        for c, column in enumerate(DISCRETE_COLUMNS):
            known = np.zeros(run.vocabulary.size(c), dtype=bool)
            known[run.target.codes[:, c]] = True
            shared[name][column] = float(np.mean(known[flows.codes[:, c]]))
    return shared
