"""``fosr evaluate flows|packets``: judge synthetic traffic against real traffic."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fosr._cli_common import (
    EXIT_OK,
    classify_inputs,
    load_flows,
    output,
    progress,
    say,
)
from fosr.errors import InputError
from fosr.evaluate.report import Report, Table

__all__ = ["add_evaluate_commands"]


def add_evaluate_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``evaluate flows`` and ``evaluate packets`` to the ``fosr`` parser."""
    evaluate = commands.add_parser(
        "evaluate",
        help="judge synthetic traffic against real traffic",
        description="Judge synthetic traffic against real traffic: metrics, "
        "a JSON report for machines and an HTML page for people.",
    )
    kinds = evaluate.add_subparsers(dest="kind", required=True, metavar="KIND")

    flows = kinds.add_parser(
        "flows",
        parents=[common],
        help="compare synthetic flow records with real ones",
        description="Score synthetic flows against real held-out flows with the "
        "eight metrics of the FlowChronicle paper, the temporal metric and "
        "the domain-knowledge checks, beside a reference row (real held-out "
        "against real training data) and two baselines (independent "
        "columns, a copy of the training data). Inputs are flow record "
        "files or captures.",
    )
    flows.add_argument(
        "real",
        type=Path,
        metavar="REAL",
        help="real held-out flows (never what a model learned from)",
    )
    flows.add_argument(
        "synthetic", type=Path, metavar="SYNTH", help="synthetic flows to judge"
    )
    flows.add_argument(
        "--train",
        type=Path,
        metavar="TRAIN",
        help="the real flows the generator learned from: needed "
        "for the reference row, the baselines and MD",
    )
    flows.add_argument(
        "--repetitions",
        type=_positive,
        default=20,
        metavar="N",
        help="samples per metric (default: 20)",
    )
    flows.add_argument(
        "--sample-size",
        type=_positive,
        default=10_000,
        metavar="N",
        help="rows per sample (default: 10000)",
    )
    flows.add_argument(
        "--seed", type=int, default=0, help="seed of the sampling (default: 0)"
    )
    _add_report_options(flows)
    flows.set_defaults(handler=_run_evaluate_flows)

    packets = kinds.add_parser(
        "packets",
        parents=[common],
        help="compare synthetic captures with real ones",
        description="Compare synthetic captures with real ones: validity by "
        "tshark (malformed packets, expert errors and warnings, TCP analysis "
        "flags per 1,000 packets) and, per service, packets per flow, "
        "packet sizes, gaps, flag sequences and connection states. REAL and "
        "SYNTH are captures or folders of captures.",
    )
    packets.add_argument(
        "real", type=Path, metavar="REAL", help="real capture or folder of captures"
    )
    packets.add_argument(
        "synthetic",
        type=Path,
        metavar="SYNTH",
        help="synthetic capture or folder of captures",
    )
    packets.add_argument(
        "--top-services",
        type=int,
        default=10,
        metavar="N",
        help="services compared one by one, the rest pooled (default: 10)",
    )
    packets.add_argument(
        "--check-checksums",
        action="store_true",
        help="have tshark verify IP, TCP and UDP checksums "
        "(off by default: captures of offloading cards "
        "carry wrong ones)",
    )
    _add_report_options(packets)
    packets.set_defaults(handler=_run_evaluate_packets)


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", type=Path, metavar="OUT.json", help="write the results as JSON"
    )
    parser.add_argument(
        "--html",
        type=Path,
        metavar="OUT.html",
        help="write the report as a self-contained HTML page",
    )


def _run_evaluate_flows(args: argparse.Namespace) -> int:
    from fosr.evaluate.flows import evaluate_flows

    real = load_flows([args.real], quiet=args.quiet)
    synthetic = load_flows([args.synthetic], quiet=args.quiet)
    train = None if args.train is None else load_flows([args.train], quiet=args.quiet)
    inputs = {"real": str(args.real), "synthetic": str(args.synthetic)}
    if args.train is not None:
        inputs["train"] = str(args.train)
    with progress(args.repetitions, "scoring", args.quiet, unit="sample") as advance:
        report = evaluate_flows(
            real,
            synthetic,
            train=train,
            repetitions=args.repetitions,
            sample_size=args.sample_size,
            seed=args.seed,
            plots=args.html is not None,
            progress=advance,
            inputs=inputs,
        )
    _emit(report, args)
    return EXIT_OK


def _run_evaluate_packets(args: argparse.Namespace) -> int:
    from fosr.evaluate.packets import evaluate_packets

    real, synthetic = _captures(args.real), _captures(args.synthetic)
    if not args.quiet:
        say(f"running tshark over {len(real) + len(synthetic):,} captures")
    report = evaluate_packets(
        real,
        synthetic,
        top_services=args.top_services,
        plots=args.html is not None,
        check_checksums=args.check_checksums,
    )
    _emit(report, args)
    return EXIT_OK


def _captures(path: Path) -> list[Path]:
    captures, others = classify_inputs([path])
    if others:
        raise InputError("not a pcap or pcapng capture", path=others[0])
    return captures


def _emit(report: Report, args: argparse.Namespace) -> None:
    """Print the first tables, and write the JSON and HTML files asked for."""
    if not args.quiet:
        for table in _summary_tables(report):
            print(format_table(table), file=sys.stdout)
            print(file=sys.stdout)
    for target, text in ((args.json, report.to_json), (args.html, report.to_html)):
        if target is None:
            continue
        with output(str(target)) as stream:
            stream.write(text())
        if not args.quiet:
            say(f"wrote {target}")


def _summary_tables(report: Report) -> list[Table]:
    """Return the tables a terminal shows: the first one of each section."""
    return [section.tables[0] for section in report.sections if section.tables][:2]


def format_table(table: Table) -> str:
    """Render a report table as aligned plain text."""
    cells = [[_cell(value) for value in row] for row in table.rows]
    widths = [
        max([len(header)] + [len(row[i]) for row in cells if i < len(row)])
        for i, header in enumerate(table.columns)
    ]
    lines = [table.title, ""]
    lines.append(
        "  ".join(h.ljust(w) for h, w in zip(table.columns, widths, strict=True))
    )
    lines.append("  ".join("-" * w for w in widths))
    for raw, row in zip(table.rows, cells, strict=True):
        padded = row + [""] * (len(widths) - len(row))
        numeric = [isinstance(value, int | float) for value in raw]
        numeric += [False] * (len(widths) - len(numeric))
        lines.append(
            "  ".join(
                text.rjust(width) if is_number else text.ljust(width)
                for text, width, is_number in zip(padded, widths, numeric, strict=True)
            ).rstrip()
        )
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {text!r}")
    return value
