"""Judge synthetic traffic against real traffic: metrics and reports.

``evaluate_flows`` and ``evaluate_packets`` are loaded on first use: they
bring in matplotlib and scipy, which the rest of fosr does not need.
"""

from typing import Any

from fosr.evaluate.report import Figure, Report, Section, Table

__all__ = ["Figure", "Report", "Section", "Table", "evaluate_flows", "evaluate_packets"]


def __getattr__(name: str) -> Any:
    if name == "evaluate_flows":
        from fosr.evaluate.flows import evaluate_flows

        return evaluate_flows
    if name == "evaluate_packets":
        from fosr.evaluate.packets import evaluate_packets

        return evaluate_packets
    raise AttributeError(f"module 'fosr.evaluate' has no attribute {name!r}")
