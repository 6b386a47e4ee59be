"""The packet evaluation's sections for people: tables, paragraphs, figures.

:func:`build_sections` turns the JSON results of
:func:`~fosr.evaluate.packets.evaluate_packets` into three sections (a
summary over all connections, tshark's findings, then per service) and
:func:`add_figures` draws their plots.  The order follows what a reader
asks first: how far apart are the two sides overall, does the synthetic
traffic look broken, and which services differ.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fosr.evaluate._services import SEQUENCE_PACKETS, ServiceSample
from fosr.evaluate._validity import TCP_ANALYSIS_FLAGS, ValidityCounts
from fosr.evaluate.report import Figure, Section, Table

__all__ = ["add_figures", "build_sections"]

SIDES = ("real", "synthetic")

# What each distance is called in the tables, and its unit.
_DISTANCES: dict[str, tuple[str, str]] = {
    "packets_per_flow_w1": ("Packets per flow", "W1, packets"),
    "packet_size_w1_bytes": ("Packet size", "W1, bytes"),
    "gap_w1_decades": ("Inter-arrival time", "W1, decades"),
    "flag_sequence_js": ("TCP flag sequence", "JS"),
    "state_js": ("Connection state", "JS"),
}
_MEDIANS = {
    "packets_per_flow_w1": "median_packets_per_flow",
    "packet_size_w1_bytes": "median_packet_size_bytes",
    "gap_w1_decades": "median_gap_s",
}

# Figures of flag sequences, one per TCP service, the commonest first.
_FLAG_FIGURES = 3
_MEDIAN_LABELS = {
    "packets_per_flow_w1": "Packets per flow",
    "packet_size_w1_bytes": "Packet size (bytes)",
    "gap_w1_decades": "Inter-arrival time (s)",
}


def build_sections(
    results: Mapping[str, Any],
    validity: Mapping[str, ValidityCounts],
    check_checksums: bool,
) -> list[Section]:
    """Return the report's sections: summary, validity, per service."""
    services = results["services"]
    rows = services["rows"]
    summary = Section(
        "Summary",
        text=_SUMMARY_TEXT,
        tables=[_summary_table(rows[0], services["service_mix_js"])],
    )
    validity_section = Section(
        "Validity by tshark",
        text=_VALIDITY_TEXT
        + ("" if check_checksums else " Checksums were not checked."),
        tables=[_validity_table(validity, check_checksums)],
    )
    per_service = Section(
        "Per service",
        text=_SERVICE_TEXT.format(top=services["top"], k=services["sequence_packets"]),
        tables=[_distance_table(rows[1:]), _median_table(rows[1:])],
    )
    return [summary, validity_section, per_service]


_SUMMARY_TEXT = (
    "Each line compares one feature of all connections, real against "
    "synthetic. Distances are 0 when the two sides agree. JS is the "
    "Jensen-Shannon distance between category shares: 0 for equal shares, "
    "1 for no category in common. W1 is the Wasserstein distance, in the "
    "feature's unit: roughly, how far the values would have to move on "
    "average to turn one distribution into the other. Inter-arrival times "
    "compare on a log scale: a W1 of 1 decade means gaps ten times too long or too "
    "short. The medians give a sense of scale."
)
_VALIDITY_TEXT = (
    "tshark dissects every frame of both sides; the table counts the "
    "packets it marks, per 1,000 packets read (all frames, not only IP). "
    "Expert errors include malformed packets; warnings include, for "
    "instance, DNS retransmissions. The TCP analysis flags are those of "
    "Wireshark's sequence analysis. Synthetic traffic should match the "
    "real rates, not beat them: real networks lose and repeat packets."
)
_SERVICE_TEXT = (
    "A service is a protocol and the server's port (for ICMP, the message "
    "type). The {top} commonest services of the real side by flow count "
    "have their own rows; all other connections of either side are pooled "
    "as \u201cother\u201d. A flag sequence is the flags and direction of a "
    "TCP connection's first {k} packets (\u201c>\u201d client to server). "
    "An empty cell means there is nothing to compare: no flows of that "
    "service on one side, no gaps, or no TCP."
)


def _summary_table(all_row: Mapping[str, Any], mix_js: float | None) -> Table:
    rows: list[list[Any]] = [["Service mix", mix_js, "JS", None, None]]
    for key, (label, unit) in _DISTANCES.items():
        median = _MEDIANS.get(key)
        rows.append(
            [
                _MEDIAN_LABELS.get(key, label),
                all_row["distances"][key],
                unit,
                all_row["real"][median] if median else None,
                all_row["synthetic"][median] if median else None,
            ]
        )
    return Table(
        "Distances over all connections",
        ["Feature", "Distance", "Measure", "Real median", "Synthetic median"],
        rows,
    )


def _validity_table(
    validity: Mapping[str, ValidityCounts], check_checksums: bool
) -> Table:
    real, synthetic = validity["real"], validity["synthetic"]
    rates = (real.per_1000(), synthetic.per_1000())
    counts = (real.counts(), synthetic.counts())
    rows: list[list[Any]] = [
        ["Packets read", None, None, real.packets, synthetic.packets]
    ]
    absent = []
    for key, label in _validity_labels(check_checksums).items():
        if key.startswith("tcp_") and not (counts[0][key] or counts[1][key]):
            absent.append(label.removeprefix("TCP: "))
            continue
        rows.append(
            [label, rates[0][key], rates[1][key], counts[0][key], counts[1][key]]
        )
    note = "A packet with several findings of one kind counts once for it."
    if absent:
        note += (
            " No packet on either side had these TCP flags: " + ", ".join(absent) + "."
        )
    return Table(
        "Packets tshark marks",
        [
            "Finding",
            "Real per 1,000",
            "Synthetic per 1,000",
            "Real packets",
            "Synthetic packets",
        ],
        rows,
        note=note,
    )


def _validity_labels(check_checksums: bool) -> dict[str, str]:
    """Return the validity keys shown to people, with their labels."""
    labels = {"malformed": "Malformed"}
    if check_checksums:
        labels["bad_checksum"] = "Bad checksum"
    labels |= {
        "expert_error": "Expert: errors",
        "expert_warning": "Expert: warnings",
        "expert_note": "Expert: notes",
    }
    labels |= {
        f"tcp_{flag}": "TCP: " + flag.replace("_", " ") for flag in TCP_ANALYSIS_FLAGS
    }
    return labels


def _distance_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    columns = ["Service", "Real flows", "Synthetic flows"]
    columns += [f"{label} ({unit})" for label, unit in _DISTANCES.values()]
    body = [
        [row["service"], row["real"]["flows"], row["synthetic"]["flows"]]
        + [row["distances"][key] for key in _DISTANCES]
        for row in rows
    ]
    return Table("Distances per service", columns, body)


def _median_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    columns = ["Service"]
    keys = list(_MEDIANS.values())
    for label in _MEDIAN_LABELS.values():
        columns += [f"{label}, real", f"{label}, synthetic"]
    body = [
        [row["service"]] + [row[side][key] for key in keys for side in SIDES]
        for row in rows
    ]
    return Table("Medians per service", columns, body)


def add_figures(
    sections: list[Section],
    validity: Mapping[str, ValidityCounts],
    buckets: Mapping[str, Mapping[str, ServiceSample]],
    check_checksums: bool,
) -> None:
    """Draw the plots into the validity and per-service sections.

    ``sections`` are those :func:`build_sections` returned, in order.
    matplotlib is imported here, so that a report without plots never
    loads it.
    """
    from fosr.evaluate import _packet_plots as plots
    from fosr.evaluate._plots import plot_category_bars

    # validity: only the findings either side has
    labels = _validity_labels(check_checksums)
    rates = {side: validity[side].per_1000() for side in SIDES}
    shown = [k for k in labels if rates["real"][k] or rates["synthetic"][k]]
    if shown:
        sections[1].figures.append(
            plots.plot_validity(
                {labels[k]: rates["real"][k] for k in shown},
                {labels[k]: rates["synthetic"][k] for k in shown},
                caption="Findings that neither side has are left out.",
            )
        )

    real, synthetic = buckets["real"], buckets["synthetic"]
    present = [k for k, sample in real.items() if sample.flows]
    figures: list[Figure] = []
    if present:
        figures.append(
            plots.plot_distributions(
                {k: real[k].packet_sizes_bytes for k in present},
                {k: synthetic[k].packet_sizes_bytes for k in present},
                title="Packet sizes per service",
                xlabel="IP bytes",
                caption="Cumulative share of packets up to each size.",
            )
        )
        figures.append(
            plots.plot_distributions(
                {k: real[k].gaps_s for k in present},
                {k: synthetic[k].gaps_s for k in present},
                title="Inter-arrival times per service",
                xlabel="seconds (log scale)",
                caption="Cumulative share of gaps up to each length, between "
                "consecutive packets of a connection.",
                log_x=True,
            )
        )
    # flag sequences of the commonest TCP services, one figure each
    tcp = [k for k, sample in real.items() if sample.flag_sequences][:_FLAG_FIGURES]
    for name in tcp:
        figures.append(
            plot_category_bars(
                _elements(real[name].flag_sequences),
                _elements(synthetic[name].flag_sequences),
                title=f"TCP flag sequences: {name}",
                xlabel="share of connections",
                top=8,
                caption=f"The first {SEQUENCE_PACKETS} packets of each connection "
                "(\u201c>\u201d client to server), the real side's commonest "
                "sequences first.",
            )
        )
    sections[2].figures.extend(figures)


def _elements(counts: Counter[str]) -> Any:
    """Return the categories of ``counts`` as a numpy array of strings."""
    return np.array(list(counts.elements()), dtype=str)
