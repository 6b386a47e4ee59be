"""Turn the flow evaluation's scores into results (JSON) and a report.

``build_report`` writes the notes a reader needs (missing training set,
resampled sets, time alignment, columns with nothing in common, what MD
flags) and lays out the tables and figures; the numbers come from
``_flow_summary``.

Layout of ``Report.results``::

    settings   repetitions, sample_size, seed, k, md_rows, time_alignment,
               target ("train" or "real"), max_acf_lag_s
    sets       per role: flows, path, resampled (bool)
    metrics    per candidate, per metric: {mean, std}
    columns    per candidate: jsd, emd and acf per column (means)
    dkc_rules  per candidate, per rule: mean violation rate
    ranks      per candidate: rank per metric, and "average"
    ranking    candidates from best to worst average rank
    md         reference_mean, and per candidate {distance, margin, flagged}
    md_flagged the candidates MD flags
    notes      sentences, also shown on the page
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fosr.evaluate._domain_rules import RULES
from fosr.evaluate._flow_columns import CONTINUOUS_COLUMNS, DISCRETE_COLUMNS
from fosr.evaluate._flow_figures import draw_acf_figures, draw_figures
from fosr.evaluate._flow_metrics import MAX_LAG_S, AcfComparison
from fosr.evaluate._flow_summary import (
    CANDIDATE_LABELS,
    METRICS,
    Stat,
    Summary,
    judge_md,
    rank_candidates,
)
from fosr.evaluate.report import Cell, Report, Section, Table
from fosr.flows.table import FlowTable

__all__ = ["RunFacts", "build_report"]


@dataclass(frozen=True)
class RunFacts:
    """What the report says about the run besides the scores."""

    sizes: dict[str, int]
    has_training: bool
    repetitions: int
    sample_size: int
    seed: int
    k: int
    md_rows: int
    time_alignment: str
    paths: dict[str, str]
    shared_values: dict[str, dict[str, float]]


def build_report(
    facts: RunFacts,
    summary: Summary,
    temporal: Mapping[str, Mapping[str, AcfComparison]],
    plot_sets: tuple[FlowTable, FlowTable] | None,
) -> Report:
    """Return the flow evaluation's report: results, tables and figures.

    ``plot_sets`` are the target and the synthetic set to draw, or None
    for no figures.
    """
    ranks = rank_candidates(summary)
    md = judge_md(summary)
    notes = _notes(facts, md)
    results: dict[str, Any] = {
        "settings": {
            "repetitions": facts.repetitions,
            "sample_size": facts.sample_size,
            "seed": facts.seed,
            "k": facts.k,
            "md_rows": facts.md_rows,
            "time_alignment": facts.time_alignment,
            "target": "train" if facts.has_training else "real",
            "max_acf_lag_s": MAX_LAG_S,
        },
        "sets": {
            role: {
                "flows": n,
                "path": facts.paths.get(role),
                "resampled": n < facts.sample_size,
            }
            for role, n in facts.sizes.items()
        },
        "metrics": {
            name: {key: _stat_json(stats[key]) for key, _, _ in METRICS if key in stats}
            for name, stats in summary.items()
        },
        "columns": {name: _columns_json(stats) for name, stats in summary.items()},
        "dkc_rules": {
            name: {
                key[4:]: stat.mean
                for key, stat in stats.items()
                if key.startswith("dkc:")
            }
            for name, stats in summary.items()
        },
        "ranks": ranks,
        "ranking": sorted(ranks, key=lambda name: ranks[name]["average"]),
        "md": md,
        "md_flagged": [n for n, v in md.get("candidates", {}).items() if v["flagged"]],
        "notes": notes,
    }
    sections = [
        _ranking_section(summary, ranks, facts),
        Section("Notes", " ".join(notes)),
        _rules_section(summary, facts),
        _md_section(summary, md),
        _columns_section(summary),
        _temporal_section(summary, temporal, plot_sets is not None),
    ]
    if plot_sets is not None:
        real_label = "the training set" if facts.has_training else "the real set"
        sections.append(
            Section(
                "Distributions: real against synthetic",
                f"'real' is {real_label}, the set every row is scored against; "
                "numeric columns are on a logarithmic axis (linear below 1).",
                figures=draw_figures(*plot_sets, facts.time_alignment, seed=facts.seed),
            )
        )
    inputs = {role: facts.paths.get(role, "(in memory)") for role in facts.sizes}
    return Report(
        title="Synthetic flows against real flows",
        kind="flows",
        inputs=inputs,
        results=results,
        sections=sections,
    )


def _notes(facts: RunFacts, md: Mapping[str, Any]) -> list[str]:
    """Return the sentences a reader needs to read the numbers right."""
    notes = []
    if facts.has_training:
        notes.append(
            "Every row is scored against the training set, as in FlowChronicle's "
            "table; the real set is the reference and supplies MD's non-members."
        )
    else:
        notes.append(
            "No training set was given: the synthetic set is scored against the "
            "real set, and the reference row, the baselines (independent "
            "columns, copy of training), MD and the domain rules learned from "
            "training are left out."
        )
    for role, n in facts.sizes.items():
        if n < facts.sample_size:
            notes.append(
                f"The {role} set has {n:,} flows, fewer than the sample size "
                f"({facts.sample_size:,}): its samples are drawn with replacement "
                "(copies of one flow are not each other's neighbours in density "
                "and coverage)."
            )
    if facts.time_alignment == "day":
        notes.append("Start times are compared as times of day (UTC).")
    else:
        notes.append(
            "Start times are compared as positions within each set's own span "
            "(a real set covers less than a day)."
        )
    notes.append(
        "The ACF is computed once on whole sets (sampling would break the order "
        "of flows), so its standard deviation is 0."
    )
    for name, columns in facts.shared_values.items():
        for column, share in columns.items():
            if share == 0.0:
                notes.append(
                    f"No {column} value of the {CANDIDATE_LABELS[name]} set occurs "
                    "in the set it is scored against: are both written alike "
                    "(anonymised addresses, port numbers)?"
                )
    for name, verdict in md.get("candidates", {}).items():
        if verdict["flagged"]:
            notes.append(
                f"MD flags the {CANDIDATE_LABELS[name]} set: its MD is "
                f"{verdict['distance']:.2f} above the reference's, so an attacker "
                "can tell training flows by it."
            )
    return notes


def _ranking_section(
    summary: Summary, ranks: Mapping[str, Mapping[str, float]], facts: RunFacts
) -> Section:
    order = sorted(summary, key=lambda name: ranks[name]["average"])
    keys = [(k, h) for k, h, _ in METRICS if any(k in summary[n] for n in order)]
    means: list[list[Cell]] = [
        [CANDIDATE_LABELS[n]]
        + [_mean(summary[n], k) for k, _ in keys]
        + [ranks[n]["average"]]
        for n in order
    ]
    rank_rows: list[list[Cell]] = [
        [CANDIDATE_LABELS[n]]
        + [_int_or_none(ranks[n].get(k)) for k, _ in keys]
        + [ranks[n]["average"]]
        for n in order
    ]
    spread_columns = ["metric"]
    for name in order:
        spread_columns += [CANDIDATE_LABELS[name], "± std"]
    spread: list[list[Cell]] = []
    for key, heading in keys:
        row: list[Cell] = [heading]
        for name in order:
            row += [_mean(summary[name], key), _std(summary[name], key)]
        spread.append(row)
    headings = ["candidate"] + [h for _, h in keys]
    plural = "" if facts.repetitions == 1 else "s"
    text = (
        f"Means over {facts.repetitions} repetition{plural} of "
        f"{facts.sample_size:,} flows. ↑: higher is better, ↓: lower is better; "
        "MD is best closest to the reference's. The reference is real held-out "
        "data: a candidate ranked above it on a metric does better than real "
        "data there."
    )
    return Section(
        "Ranking",
        text,
        tables=[
            Table("Ranking", headings + ["average rank"], means),
            Table("Rank per metric", headings + ["average rank"], rank_rows),
            Table("Mean and standard deviation", spread_columns, spread),
        ],
    )


def _rules_section(summary: Summary, facts: RunFacts) -> Section:
    names = list(summary)
    rows: list[list[Cell]] = []
    for rule in RULES:
        key = f"dkc:{rule.name}"
        if key in summary[names[0]]:
            rows.append([rule.name, rule.text] + [summary[n][key].mean for n in names])
    note = (
        ""
        if facts.has_training
        else ("Rules learned from the training set are skipped: no training set.")
    )
    return Section(
        "Domain knowledge checks",
        "Fraction of flows breaking each rule (means over the repetitions); DKC "
        "is their mean. Real data breaks some rules too: compare with the "
        "reference.",
        tables=[
            Table(
                "Violations per rule",
                ["rule", "meaning"] + [CANDIDATE_LABELS[n] for n in names],
                rows,
                note=note,
            )
        ],
    )


def _md_section(summary: Summary, md: Mapping[str, Any]) -> Section:
    if not md:
        return Section("Membership disclosure", "Not computed: no training set.")
    rows: list[list[Cell]] = []
    for name, stats in summary.items():
        verdict = md["candidates"].get(name)
        rows.append(
            [
                CANDIDATE_LABELS[name],
                stats["md"].mean,
                stats["md"].std,
                None if verdict is None else verdict["distance"],
                "reference"
                if verdict is None
                else ("yes" if verdict["flagged"] else "no"),
            ]
        )
    return Section(
        "Membership disclosure",
        "Sum of an attacker's F1 over 15 Hamming radii (0 to 15) when telling "
        "training flows from held-out ones by their nearest candidate flow. A "
        "candidate well above the reference gives its training flows away.",
        tables=[
            Table(
                "MD",
                ["candidate", "MD", "± std", "distance to reference", "flagged"],
                rows,
            )
        ],
    )


def _columns_section(summary: Summary) -> Section:
    names = list(summary)
    rows: list[list[Cell]] = []
    for metric, columns in (("jsd", DISCRETE_COLUMNS), ("emd", CONTINUOUS_COLUMNS)):
        for column in columns:
            key = f"{metric}:{column}"
            rows.append(
                [metric.upper(), column] + [summary[n][key].mean for n in names]
            )
    return Section(
        "Per column",
        "JSD per discrete column and EMD per continuous column (means).",
        tables=[
            Table(
                "Per column",
                ["metric", "column"] + [CANDIDATE_LABELS[n] for n in names],
                rows,
            )
        ],
    )


def _temporal_section(
    summary: Summary,
    temporal: Mapping[str, Mapping[str, AcfComparison]],
    with_figures: bool,
) -> Section:
    names = list(summary)
    rows: list[list[Cell]] = []
    for column in CONTINUOUS_COLUMNS:
        row: list[Cell] = [column, len(temporal[names[0]][column].lags)]
        rows.append(row + [summary[n][f"acf:{column}"].mean for n in names])
    figures = draw_acf_figures(temporal["synthetic"]) if with_figures else []
    return Section(
        "Temporal dependency",
        "Per-second sums of each column; mean absolute difference between the "
        "real and the candidate's autocorrelation at the lags (up to "
        f"{MAX_LAG_S:,} s) where the real one is significant (Bartlett, 95 %).",
        tables=[
            Table(
                "ACF difference",
                ["column", "significant lags"] + [CANDIDATE_LABELS[n] for n in names],
                rows,
            )
        ],
        figures=figures,
    )


def _stat_json(stat: Stat) -> dict[str, float]:
    return {"mean": stat.mean, "std": stat.std}


def _columns_json(stats: Mapping[str, Stat]) -> dict[str, dict[str, float]]:
    columns: dict[str, dict[str, float]] = {"jsd": {}, "emd": {}, "acf": {}}
    for key, stat in stats.items():
        metric, _, column = key.partition(":")
        if column and metric in columns:
            columns[metric][column] = stat.mean
    return columns


def _mean(stats: Mapping[str, Stat], key: str) -> Cell:
    return stats[key].mean if key in stats else None


def _std(stats: Mapping[str, Stat], key: str) -> Cell:
    return stats[key].std if key in stats else None


def _int_or_none(value: float | None) -> Cell:
    return None if value is None else int(value)
