"""Quality of generated flows, side by side: fosr, flowchronicle 0.1.0, baseline.

One run per data set (CIDDS-001 week 3, UGR'16):

1. ``fosr flows`` turns the training and the held-out file into flow
   records (``train-flows.csv``, ``eval-flows.csv`` in ``--workdir``), so
   that every generator learns from exactly the same rows.
2. fosr: ``fosr learn`` on the training flows (timed), then as many flows
   as the held-out set has, sampled from the learnt bundle from the
   held-out set's first start onwards (seed ``--seed``).
3. The reference, flowchronicle 0.1.0 (``bench/reference/run_flowchronicle
   .py`` in its own venv; ``make reference`` builds it if missing): on the
   first N training flows for each N of ``--reference-rows`` in turn, each
   run limited to ``--reference-budget`` seconds of search plus
   ``--reference-sample-s`` seconds of generation; the largest N whose
   search finished within the budget generates the flows.  Later sizes are
   not tried once one runs out of time.  It draws about ten flows a second
   (fewer on a busy machine), so ``--reference-max-flows`` can cap its
   output; the evaluation then resamples the smaller set.
4. The independent-columns baseline: each column drawn on its own from the
   training flows' values (``fosr.evaluate.flows.sample_independent_columns``).
5. ``fosr evaluate flows EVAL SYNTH --train TRAIN --json`` on each, and one
   table of the eight metrics of FlowChronicle's quality table (ACF shown
   too, not counted): per metric the better of fosr and the reference.
   Density and coverage: higher is better; MD: closer to the real held-out
   set's MD is better; the rest: lower is better.

``--reuse`` keeps what an earlier run left in ``--workdir`` (flow files,
bundles, generated flows, evaluations) instead of making it again; the
table says nothing about reuse, so use it only with unchanged code.

Run (CIDDS-001, the reference on 128 rows):
``.venv/bin/python bench/bench_flowmodel_quality.py --reference-rows 128``;
UGR'16 as well: ``--datasets cidds ugr16``, with ``--ugr-model BUNDLE`` to
use a bundle already learnt from the UGR'16 training file, or
``--ugr-train-rows N`` to learn every generator from its first N flows.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fosr.evaluate.flows import sample_independent_columns
from fosr.flowmodel import load_flow_model
from fosr.flows import FlowTable, read_flow_records, write_flows_csv

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
FOSR = ROOT / ".venv" / "bin" / "fosr"
REFERENCE_PYTHON = ROOT / "bench" / "reference" / ".venv" / "bin" / "python"
REFERENCE_SETUP = ROOT / "bench" / "reference" / "setup.sh"
RUNNER = ROOT / "bench" / "reference" / "run_flowchronicle.py"

DATASETS = {
    "cidds": (
        "CIDDS-001",
        SHARED / "cidds001-wk3" / "train.csv",
        SHARED / "cidds001-wk3" / "eval.csv",
    ),
    "ugr16": (
        "UGR'16",
        SHARED / "ugr16" / "train-0800-1200.csv.gz",
        SHARED / "ugr16" / "eval-1200-1400.csv.gz",
    ),
}
METRICS = ("density", "cmd", "pcd", "emd", "jsd", "coverage", "dkc", "md")
HIGHER_IS_BETTER = frozenset({"density", "coverage"})
GENERATORS = ("fosr", "reference", "baseline")


@dataclass
class Outcome:
    """What one data set's run produced, for the table."""

    label: str
    notes: list[str] = field(default_factory=list)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    reference_md: float = math.nan


def main() -> int:
    args = parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"$ {' '.join(shlex.quote(a) for a in sys.argv)}")
    status = 0
    for name in args.datasets:
        label, train, held_out = DATASETS[name]
        if not train.is_file() or not held_out.is_file():
            print(f"skipped {label}: {train} or {held_out} is absent", file=sys.stderr)
            status = 2
            continue
        outcome = run_dataset(name, label, train, held_out, args)
        print_table(outcome)
    return status


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", nargs="+", choices=sorted(DATASETS), default=["cidds"]
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("/tmp/fosr-bench-flowmodel-quality")
    )
    parser.add_argument(
        "--reference-rows",
        type=int,
        nargs="+",
        default=[64, 128, 256, 512, 1024, 2048, 4096],
        help="training rows for the reference, tried in this order",
    )
    parser.add_argument(
        "--reference-budget",
        type=float,
        default=1800.0,
        help="seconds of search allowed to the reference (default: 30 minutes)",
    )
    parser.add_argument(
        "--reference-sample-s",
        type=float,
        default=1800.0,
        help="seconds allowed to the reference for generating the flows",
    )
    parser.add_argument(
        "--ugr-reference-rows",
        type=int,
        nargs="*",
        default=[128],
        help="training rows for the reference on UGR'16 (none: skip it)",
    )
    parser.add_argument(
        "--ugr-model", type=Path, help="a bundle learnt from the UGR'16 training file"
    )
    parser.add_argument(
        "--ugr-train-rows",
        type=int,
        help="learn UGR'16 from its first N training flows only (all generators)",
    )
    parser.add_argument(
        "--reference-max-flows",
        type=int,
        help="generate at most N flows with the reference (it draws about ten "
        "flows a second; the evaluation resamples a smaller set)",
    )
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--sample-size", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true")
    return parser.parse_args()


def run_dataset(
    name: str, label: str, train: Path, held_out: Path, args: argparse.Namespace
) -> Outcome:
    """Make the three synthetic sets of one data set and evaluate them."""
    work = args.workdir / name
    work.mkdir(exist_ok=True)
    outcome = Outcome(label)
    train_flows = work / "train-flows.csv"
    eval_flows = work / "eval-flows.csv"
    for source, target in ((train, train_flows), (held_out, eval_flows)):
        if not (args.reuse and target.is_file()):
            run([str(FOSR), "flows", "-q", str(source), "-o", str(target)])
    train_table = read_flow_records(train_flows)
    if name == "ugr16" and args.ugr_train_rows:
        # the first N flows stand for the training file, for every generator
        train_table = train_table.take(
            np.arange(min(args.ugr_train_rows, len(train_table)))
        )
        train_flows = work / f"train-flows-{len(train_table)}.csv"
        if not (args.reuse and train_flows.is_file()):
            write_flows_csv(train_table, train_flows)
    eval_table = read_flow_records(eval_flows)
    count = len(eval_table)
    outcome.notes.append(
        f"{len(train_table):,} training flows, {count:,} held-out flows; "
        f"{count:,} generated by each"
    )

    synthetic: dict[str, Path] = {}
    synthetic["fosr"] = make_fosr(name, train_flows, eval_table, work, args, outcome)
    reference_rows = args.reference_rows if name == "cidds" else args.ugr_reference_rows
    wanted = min(count, args.reference_max_flows or count)
    made = make_reference(train_flows, wanted, reference_rows, work, args, outcome)
    if made is not None:
        synthetic["reference"] = made
    synthetic["baseline"] = make_baseline(train_table, train_flows, count, work, args)

    for generator, path in synthetic.items():
        report = work / f"eval-{generator}-{path.stem}.json"
        if not (args.reuse and report.is_file()):
            began = time.monotonic()
            run([
                str(FOSR), "evaluate", "flows", "-q", str(eval_flows), str(path),
                "--train", str(train_flows), "--json", str(report),
                "--repetitions", str(args.repetitions),
                "--sample-size", str(args.sample_size), "--seed", str(args.seed),
            ])  # fmt: skip
            print(f"  evaluated {generator} in {time.monotonic() - began:.0f} s")
        results = json.loads(report.read_text())["results"]
        metrics = results["metrics"]
        outcome.scores[generator] = {
            metric: float(metrics["synthetic"][metric]["mean"])
            for metric in (*METRICS, "acf")
        }
        outcome.reference_md = float(results["md"]["reference_mean"])
    return outcome


def make_fosr(
    name: str,
    train_flows: Path,
    eval_table: FlowTable,
    work: Path,
    args: argparse.Namespace,
    outcome: Outcome,
) -> Path:
    """Learn with ``fosr learn`` (or take ``--ugr-model``) and sample."""
    bundle = work / f"fosr-{train_flows.stem}.model"
    if name == "ugr16" and args.ugr_model is not None:
        bundle = args.ugr_model
        outcome.notes.append(f"fosr: bundle {bundle} learnt beforehand")
    elif not (args.reuse and bundle.is_file()):
        began = time.monotonic()
        run([str(FOSR), "learn", "-q", str(train_flows), "-o", str(bundle)])
        outcome.notes.append(f"fosr: learnt in {time.monotonic() - began:.1f} s")
    out = work / f"synthetic-fosr-{train_flows.stem}.csv"
    if args.reuse and out.is_file():
        return out
    stored = load_flow_model(bundle)
    sampler = stored.sampler(seed=args.seed)
    parts: list[FlowTable] = []
    total = 0
    began = time.monotonic()
    for batch in sampler.batches(float(eval_table.start.min()), 3600.0):
        parts.append(batch)
        total += len(batch)
        if total >= len(eval_table):
            break
    flows = FlowTable.concat(parts).take(np.arange(len(eval_table)))
    write_flows_csv(flows, out)
    outcome.notes.append(
        f"fosr: {len(stored.model.patterns)} patterns; {len(flows):,} flows "
        f"sampled in {time.monotonic() - began:.1f} s"
    )
    return out


def make_reference(
    train_flows: Path,
    count: int,
    sizes: list[int],
    work: Path,
    args: argparse.Namespace,
    outcome: Outcome,
) -> Path | None:
    """Run the reference on growing prefixes; generate with the largest."""
    if not sizes:
        outcome.notes.append("reference: not run (no sizes given)")
        return None
    if not REFERENCE_PYTHON.is_file():
        run(["sh", str(REFERENCE_SETUP)])
    best: tuple[int, Path, dict[str, object]] | None = None
    for rows in sizes:
        out = work / f"synthetic-reference-{train_flows.stem}-{rows}.csv"
        log = work / f"reference-{train_flows.stem}-{rows}.json"
        if not (args.reuse and log.is_file() and out.is_file()):
            command = [
                str(REFERENCE_PYTHON), str(RUNNER), str(train_flows),
                "--rows", str(rows), "--sample", str(count), "--out", str(out),
                "--seed", str(args.seed),
                "--timeout-s", str(args.reference_budget + args.reference_sample_s),
            ]  # fmt: skip
            with open(log.with_suffix(".err"), "w") as errors:
                done = subprocess.run(
                    command, stdout=subprocess.PIPE, stderr=errors, text=True
                )
            log.write_text(done.stdout)
        line = json.loads(log.read_text().strip().splitlines()[-1])
        seconds = float(line.get("seconds", math.nan))
        within = not line.get("timed_out") and seconds <= args.reference_budget
        if not within or "error" in line:
            outcome.notes.append(
                f"reference: {rows} rows did not finish within "
                f"{args.reference_budget:.0f} s of search ({seconds:.0f} s)"
            )
            break
        best = (rows, out, line)
    if best is None:
        return None
    rows, out, line = best
    outcome.notes.append(
        f"reference: {rows} training rows, search {float(line['seconds']):.0f} s "  # type: ignore[arg-type]
        f"(budget {args.reference_budget:.0f} s), {line['patterns']} patterns; "
        f"{line['sampled_flows']} flows generated in "
        f"{float(line['sample_seconds']):.0f} s"  # type: ignore[arg-type]
    )
    return out


def make_baseline(
    train_table: FlowTable,
    train_flows: Path,
    count: int,
    work: Path,
    args: argparse.Namespace,
) -> Path:
    """Draw every column on its own from the training values."""
    out = work / f"synthetic-baseline-{train_flows.stem}.csv"
    if not (args.reuse and out.is_file()):
        flows = sample_independent_columns(train_table, count, seed=args.seed)
        write_flows_csv(flows, out)
    return out


def print_table(outcome: Outcome) -> None:
    """Print the metrics side by side and who wins each."""
    print(f"\n{outcome.label}")
    for note in outcome.notes:
        print(f"- {note}")
    present = [g for g in GENERATORS if g in outcome.scores]
    print("\n| metric | " + " | ".join(present) + " | better (fosr vs reference) |")
    print("|---" * (len(present) + 2) + "|")
    wins = 0
    for metric in (*METRICS, "acf"):
        values = {g: outcome.scores[g][metric] for g in present}
        cells = " | ".join(f"{values[g]:.4g}" for g in present)
        verdict = "-"
        if "reference" in values:
            ours = badness(metric, values["fosr"], outcome.reference_md)
            theirs = badness(metric, values["reference"], outcome.reference_md)
            verdict = "fosr" if ours < theirs else "reference"
            verdict = "tie" if ours == theirs else verdict
            if metric in METRICS and verdict == "fosr":
                wins += 1
        name = metric if metric in METRICS else f"{metric} (not counted)"
        print(f"| {name} | {cells} | {verdict} |")
    print(f"\nreal held-out MD (the target for md): {outcome.reference_md:.4g}")
    if "reference" in outcome.scores:
        print(f"fosr better on {wins} of {len(METRICS)} metrics")


def badness(metric: str, value: float, reference_md: float) -> float:
    """Return a number where lower is better for every metric."""
    if metric in HIGHER_IS_BETTER:
        return -value
    if metric == "md":
        return abs(value - reference_md)
    return value


def run(command: list[str]) -> None:
    """Run a command, echoing it; stop the benchmark if it fails."""
    print(f"  $ {' '.join(shlex.quote(c) for c in command)}", flush=True)
    subprocess.run(command, check=True)


if __name__ == "__main__":
    sys.exit(main())
