"""Judge synthetic packets against real ones: validity, then per-service shape.

:func:`evaluate_packets` reads both sides (each one or several captures),
then compares them in two ways:

- validity: what tshark finds wrong or noteworthy, per 1,000 packets
  (:func:`tshark_validity`); synthetic traffic should look no worse, and
  no better, than the real traffic it imitates;
- shape, per service: packets per flow, packet sizes, inter-arrival times,
  TCP flag sequences and connection states, as distances between the real
  and the synthetic samples (:func:`service_distributions`,
  :func:`compare_samples`).  The services kept are the ``top_services``
  commonest of the real side by flow count; everything else, on both
  sides, is pooled as "other".

The building blocks are public so that other tools (a learning loop, a
benchmark) can use one without the others.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from fosr.capture import read_captures
from fosr.connections import Connections, assemble_connections
from fosr.errors import InputError
from fosr.evaluate._packet_report import add_figures, build_sections
from fosr.evaluate._services import (
    OTHER,
    SEQUENCE_PACKETS,
    ServiceSample,
    bucket_services,
    compare_samples,
    jensen_shannon,
    service_distributions,
    wasserstein,
)
from fosr.evaluate._validity import (
    DEFAULT_TIMEOUT_S,
    TCP_ANALYSIS_FLAGS,
    ValidityCounts,
    tshark_validity,
)
from fosr.evaluate.report import Report

__all__ = [
    "OTHER",
    "TCP_ANALYSIS_FLAGS",
    "ServiceSample",
    "ValidityCounts",
    "bucket_services",
    "compare_samples",
    "evaluate_packets",
    "jensen_shannon",
    "service_distributions",
    "tshark_validity",
    "wasserstein",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
SIDES = ("real", "synthetic")


def evaluate_packets(
    real: PathLike | Sequence[PathLike],
    synthetic: PathLike | Sequence[PathLike],
    *,
    top_services: int = 10,
    plots: bool = True,
    tshark: str = "tshark",
    check_checksums: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Report:
    """Compare synthetic captures with real ones; return the report.

    ``real`` and ``synthetic`` are each a capture path or a sequence of
    them.  ``top_services`` services keep their own rows (0 pools all
    into "other").  ``plots`` adds PNG figures to the report's sections.
    ``tshark``, ``check_checksums`` and ``timeout_s`` go to
    :func:`tshark_validity`.

    Raises ValueError for a negative ``top_services`` or no paths;
    CaptureError for a file that is not a capture; InputError when one side
    holds no packet at all; ToolError when tshark fails.
    """
    if top_services < 0:
        raise ValueError(f"top_services must be 0 or more, not {top_services}")
    paths = {
        "real": _as_paths(real, "real"),
        "synthetic": _as_paths(synthetic, "synthetic"),
    }

    # read and assemble both sides, then let tshark look at the same files
    connections = {side: _read_side(paths[side], side) for side in SIDES}
    validity: dict[str, ValidityCounts] = {}
    for side in SIDES:
        if side == "synthetic" and paths["synthetic"] == paths["real"]:
            validity[side] = validity["real"]  # a capture against itself
            continue
        validity[side] = tshark_validity(
            paths[side],
            tshark=tshark,
            check_checksums=check_checksums,
            timeout_s=timeout_s,
        )

    # sample each service, keep the real side's commonest
    samples = {side: service_distributions(connections[side]) for side in SIDES}
    keep = list(samples["real"])[:top_services]
    buckets = {side: bucket_services(samples[side], keep) for side in SIDES}
    pooled = {side: ServiceSample.merge(samples[side].values()) for side in SIDES}

    results = _results(paths, connections, validity, buckets, pooled, check_checksums)
    report = Report(
        title="Packets: synthetic against real",
        kind="packets",
        inputs={side: _describe(paths[side]) for side in SIDES},
        results=results,
    )
    report.sections = build_sections(results, validity, check_checksums)
    if plots:
        add_figures(report.sections, validity, buckets, check_checksums)
    return report


def _as_paths(value: PathLike | Sequence[PathLike], side: str) -> list[str]:
    """Return one side's paths as strings; raise ValueError for none."""
    if isinstance(value, str | os.PathLike):
        return [os.fspath(value)]
    names = [os.fspath(path) for path in value]
    if not names:
        raise ValueError(f"no {side} captures given")
    return names


def _read_side(paths: Sequence[str], side: str) -> Connections:
    """Read one side's captures and assemble their connections."""
    packets = read_captures(paths)
    if packets.stats.frames == 0:
        if len(paths) == 1:
            raise InputError(f"the {side} capture holds no packets", path=paths[0])
        raise InputError(f"the {len(paths)} {side} captures hold no packets")
    if len(packets) == 0:
        logger.warning(
            "the %s captures hold no TCP, UDP or ICMP packets; only tshark's "
            "findings compare",
            side,
        )
    return assemble_connections(packets)


def _describe(paths: Sequence[str]) -> str:
    """Name one side's captures in a line: the path, or how many and where."""
    if len(paths) == 1:
        return paths[0]
    full = [os.path.abspath(p) for p in paths]
    folder = os.path.commonpath(full)
    names = [os.path.relpath(p, folder) for p in full]
    if len(names) > 3:
        names = [*names[:2], "\u2026", names[-1]]
    return f"{len(paths)} captures under {folder}: {', '.join(names)}"


def _results(
    paths: Mapping[str, list[str]],
    connections: Mapping[str, Connections],
    validity: Mapping[str, ValidityCounts],
    buckets: Mapping[str, Mapping[str, ServiceSample]],
    pooled: Mapping[str, ServiceSample],
    check_checksums: bool,
) -> dict[str, Any]:
    """Return the report's JSON results."""
    services = [
        _service_row("all", pooled["real"], pooled["synthetic"]),
        *(
            _service_row(name, buckets["real"][name], buckets["synthetic"][name])
            for name in buckets["real"]
        ),
    ]
    mix = {
        side: Counter({k: s.flows for k, s in buckets[side].items()}) for side in SIDES
    }
    return {
        "captures": {side: list(paths[side]) for side in SIDES},
        "totals": {
            side: {
                "frames": connections[side].packets.stats.frames,
                "ip_packets": len(connections[side].packets),
                "connections": len(connections[side]),
            }
            for side in SIDES
        },
        "validity": {
            "checksums_checked": check_checksums,
            **{
                side: {
                    "packets": validity[side].packets,
                    "counts": validity[side].counts(),
                    "per_1000": validity[side].per_1000(),
                }
                for side in SIDES
            },
        },
        "services": {
            "top": len(buckets["real"]) - 1,
            "sequence_packets": SEQUENCE_PACKETS,
            "service_mix_js": jensen_shannon(mix["real"], mix["synthetic"]),
            "rows": services,
        },
    }


def _service_row(
    name: str, real: ServiceSample, synthetic: ServiceSample
) -> dict[str, Any]:
    return {
        "service": name,
        "real": real.summary(),
        "synthetic": synthetic.summary(),
        "distances": compare_samples(real, synthetic),
    }
