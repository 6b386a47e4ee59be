"""Time the default flow evaluation on the shared real data sets.

Usage: ``.venv/bin/python bench/bench_evaluate_flows.py [--repetitions N]
[--sample-size N] [--ugr16] [--no-plots] [--json PATH]``

For CIDDS-001 (and UGR'16 with ``--ugr16``), scores the evaluation split
against the training split with the independent-columns baseline standing
in for a synthetic set: the run ``fosr evaluate flows`` makes with its
defaults (20 repetitions of 10,000 flows, plots on).  Prints the seconds
spent reading, evaluating (wall clock and this process's CPU time, which
other jobs on the machine do not inflate) and writing the report, then the
ranking table.
Reads ``../shared/data`` beside the repository and exits with status 2
when it is absent.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from fosr.evaluate.flows import evaluate_flows, sample_independent_columns
from fosr.evaluate.report import Report
from fosr.flows.readers import read_flow_records

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SETS = {
    "cidds001": ("cidds001-wk3/train.csv", "cidds001-wk3/eval.csv"),
    "ugr16": ("ugr16/train-0800-1200.csv.gz", "ugr16/eval-1200-1400.csv.gz"),
}


def run(name: str, args: argparse.Namespace) -> None:
    """Evaluate one data set and print its timings and ranking."""
    train_name, eval_name = SETS[name]
    started = time.perf_counter()
    train = read_flow_records(SHARED / train_name)
    real = read_flow_records(SHARED / eval_name)
    synthetic = sample_independent_columns(train, len(train), seed=1)
    read_at = time.perf_counter()
    cpu_at = time.process_time()
    report = evaluate_flows(
        real,
        synthetic,
        train=train,
        repetitions=args.repetitions,
        sample_size=args.sample_size,
        plots=not args.no_plots,
        inputs={"real": eval_name, "train": train_name, "synthetic": "(baseline)"},
    )
    evaluated_at = time.perf_counter()
    cpu_s = time.process_time() - cpu_at
    document = report.to_json()
    written_at = time.perf_counter()
    if args.json:
        Path(f"{args.json}.{name}.json").write_text(document)
    print(
        f"{name}: train {len(train):,} flows, eval {len(real):,}, synthetic "
        f"{len(synthetic):,}; {args.repetitions} x {args.sample_size:,} rows; "
        f"read {read_at - started:.1f} s, evaluate {evaluated_at - read_at:.1f} s "
        f"(CPU {cpu_s:.1f} s), JSON {written_at - evaluated_at:.2f} s",
        flush=True,
    )
    print_ranking(report)


def print_ranking(report: Report) -> None:
    """Print the report's ranking table as aligned text."""
    table = report.sections[0].tables[0]
    cells = [table.columns] + [[_text(c) for c in row] for row in table.rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.columns))]
    for row in cells:
        print("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    print(f"  MD flags: {report.results['md_flagged']}", flush=True)


def _text(cell: object) -> str:
    return f"{cell:.4g}" if isinstance(cell, float) else str(cell)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--sample-size", type=int, default=10_000)
    parser.add_argument("--ugr16", action="store_true", help="also UGR'16")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--json", help="write PATH.<set>.json reports")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"shared data not found at {SHARED.resolve()}", file=sys.stderr)
        return 2
    run("cidds001", args)
    if args.ugr16:
        run("ugr16", args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
