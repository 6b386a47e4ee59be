"""Learn the same CIDDS-001 rows with fosr and with flowchronicle 0.1.0.

One run, one machine: both learners get the first N flows of the CIDDS-001
training file (paired by ``fosr flows``), with the same ten columns (the
paper's: Proto, Src IP, Dst IP, Dst Pt, Flags, bytes and packets each way,
Duration).  The reference runs in its own venv (``make reference``) under a
wall-clock limit.  Printed: seconds, patterns, and each side's total
description length as it computes it.

The two description lengths are not the same code: the reference bins the
continuous columns on the whole file before taking the rows and charges
L_N(usage), we bin the rows learnt and charge L_N(usage + 1); read them side
by side, not as a strict ranking.

Run: ``.venv/bin/python bench/bench_flowmodel_vs_reference.py --rows 128``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fosr.flowmodel import SearchSettings, encode_flows, learn_flow_model
from fosr.flows import read_flow_records, write_flows_csv

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / ".." / "shared" / "data" / "cidds001-wk3" / "train.csv"
REFERENCE_PYTHON = ROOT / "bench" / "reference" / ".venv" / "bin" / "python"
RUNNER = ROOT / "bench" / "reference" / "run_flowchronicle.py"
PAPER_COLUMNS = (
    "proto", "client", "server", "server_port", "tcp_flags", "fwd_bytes",
    "bwd_bytes", "fwd_packets", "bwd_packets", "duration",
)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[128])
    parser.add_argument("--timeout-s", type=float, default=900.0)
    args = parser.parse_args()
    if not TRAIN.is_file():
        print(f"CIDDS-001 not found at {TRAIN}", file=sys.stderr)
        return 2
    if not REFERENCE_PYTHON.is_file():
        print("the reference venv is missing: run `make reference`", file=sys.stderr)
        return 2

    flows = read_flow_records(TRAIN)
    with tempfile.TemporaryDirectory() as folder:
        csv_path = Path(folder) / "cidds-train-flows.csv"
        with open(csv_path, "w", newline="") as stream:
            write_flows_csv(flows, stream)
        print("| rows | reference s | fosr s | speed-up | reference patterns "
              "| fosr patterns | reference bits | fosr bits |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        for rows in args.rows:
            theirs = run_reference(csv_path, rows, args.timeout_s)
            ours = run_ours(flows.take(slice(0, rows)))
            ref_s = theirs.get("seconds", float("nan"))
            timed_out = bool(theirs.get("timed_out"))
            speed = f"> {ref_s / ours['seconds']:.0f}x" if timed_out else (
                f"{ref_s / ours['seconds']:.0f}x")  # fmt: skip
            ref_time = f"> {ref_s:.0f}" if timed_out else f"{ref_s:.1f}"
            print(
                f"| {rows} | {ref_time} | {ours['seconds']:.2f} | {speed} "
                f"| {theirs.get('patterns', '-')} | {ours['patterns']} "
                f"| {_bits(theirs.get('total_bits'))} | {_bits(ours['total_bits'])} |"
            )
    return 0


def run_reference(csv_path: Path, rows: int, timeout_s: float) -> dict[str, object]:
    """Run the reference learner in its venv; return its JSON line."""
    command = [str(REFERENCE_PYTHON), str(RUNNER), str(csv_path), "--rows",
               str(rows), "--timeout-s", str(timeout_s)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True,
                          timeout=timeout_s + 120, check=False)  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"reference failed: {done.stderr[-2000:]}")
    result: dict[str, object] = json.loads(lines[-1])
    return result


def run_ours(flows: object) -> dict[str, float]:
    """Learn the rows with fosr; return seconds, patterns and bits."""
    started = time.perf_counter()
    coded = encode_flows(flows, columns=PAPER_COLUMNS)  # type: ignore[arg-type]
    model = learn_flow_model(coded, SearchSettings())
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "patterns": len(model.patterns),
            "total_bits": model.total_bits}  # fmt: skip


def _bits(value: object) -> str:
    return f"{value:,.0f}" if isinstance(value, int | float) else "-"


if __name__ == "__main__":
    sys.exit(main())
