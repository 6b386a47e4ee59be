"""Do tools believe generated traffic?  An hour of it against real captures.

Generates one hour of traffic from a model bundle (default: the one
bundled with fosrd) with ``fosr generate -o``, then in the same run:

- tshark over the generated capture and over the real IoT Sentinel
  evaluation captures (fosr's packet evaluation): malformed packets,
  expert errors and warnings, and each TCP analysis flag, per 1,000
  packets, side by side (goal: generated no higher than real, and no
  malformed packet at all);
- ``fosr flows`` on the generated capture against the ground-truth flow log
  written beside it: the share of flows recovered with the same endpoints,
  ports, packet and byte counts in both directions (goal: all of them);
- tshark's dissection of DNS, HTTP, TLS, NTP and SMTP in the generated
  capture: packets per protocol and those with an expert error.

    .venv/bin/python bench/bench_generated_validity.py [--model M] [--duration 1h]

Reads ``../shared/data`` beside the repository for the real side and exits
with status 2 when it or tshark is absent.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from fosr.cli import main as fosr_main
from fosr.evaluate.packets import evaluate_packets
from fosr.flows import FlowTable, read_flow_records

REPO = Path(__file__).resolve().parents[1]
IOT = REPO / ".." / "shared" / "data" / "iot-sentinel"
DEFAULT_MODEL = REPO / "fosrd" / "data" / "default.fosr"
PROTOCOLS = ("dns", "http", "tls", "ntp", "smtp")


def eval_captures() -> list[Path]:
    with open(IOT / "splits.csv", newline="") as file:
        return [
            IOT / "pcaps" / row["f"]
            for row in csv.DictReader(file)
            if row["split"] == "eval"
        ]


def flow_keys(table: FlowTable) -> Counter[tuple[object, ...]]:
    return Counter(
        zip(
            table.proto.tolist(),
            table.client.tolist(),
            table.client_port.tolist(),
            table.server.tolist(),
            table.server_port.tolist(),
            table.fwd_packets.tolist(),
            table.fwd_bytes.tolist(),
            table.bwd_packets.tolist(),
            table.bwd_bytes.tolist(),
            strict=True,
        )
    )


def dissected(capture: Path) -> dict[str, tuple[int, int]]:
    """Return, per protocol, (packets, packets with an expert error).

    One tshark pass over the capture, reading each frame's protocol stack
    and the severities of its expert items.
    """
    result = subprocess.run(
        [
            "tshark",
            "-r",
            str(capture),
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-e",
            "frame.protocols",
            "-e",
            "_ws.expert.severity",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    packets: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for line in result.stdout.splitlines():
        stack, _, severities = line.partition("\t")
        layers = set(stack.split(":"))
        # tshark prints severities as numbers: 8388608 is "error"
        error = "8388608" in severities.split(",")
        for proto in PROTOCOLS:
            if proto in layers:
                packets[proto] += 1
                errors[proto] += error
    return {proto: (packets[proto], errors[proto]) for proto in PROTOCOLS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--duration", default="1h")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--keep", type=Path, help="keep the capture in this folder")
    args = parser.parse_args()
    if not IOT.is_dir() or shutil.which("tshark") is None:
        print("needs ../shared/data/iot-sentinel and tshark", file=sys.stderr)
        return 2

    folder = Path(tempfile.mkdtemp(prefix="fosr-validity-", dir=args.keep))
    capture = folder / "generated.pcap"
    began = time.perf_counter()
    code = fosr_main(
        [
            "generate",
            str(args.model),
            "--duration",
            args.duration,
            "--seed",
            args.seed,
            "-o",
            str(capture),
            "--quiet",
        ]
    )
    if code != 0:
        return code
    generated_s = time.perf_counter() - began

    # tshark on both sides, in the same run
    report = evaluate_packets(eval_captures(), capture, plots=False)
    results = report.results
    totals = results["totals"]
    rates = {s: results["validity"][s]["per_1000"] for s in ("real", "synthetic")}
    print(
        f"generated {totals['synthetic']['frames']:,} frames of {args.duration} in "
        f"{generated_s:.1f} s from {args.model.name}; real: IoT Sentinel eval, "
        f"{totals['real']['frames']:,} frames"
    )
    print(f"{'per 1,000 packets':34} {'real':>9} {'generated':>10}  ok")
    worse = 0
    for key, real_rate in rates["real"].items():
        if key == "bad_checksum":
            continue
        mine = rates["synthetic"][key]
        ok = mine <= real_rate and not (key == "malformed" and mine > 0)
        worse += not ok
        print(f"{key:34} {real_rate:9.3f} {mine:10.3f}  {'yes' if ok else 'NO'}")

    # the ground truth against what fosr flows reads back
    recovered_csv = folder / "recovered.csv"
    fosr_main(["flows", str(capture), "-o", str(recovered_csv), "--quiet"])
    truth = flow_keys(read_flow_records(folder / "generated.flows.csv"))
    recovered = flow_keys(read_flow_records(recovered_csv))
    same = sum((truth & recovered).values())
    total = sum(truth.values())
    print(
        f"ground truth: {total:,} flows; fosr flows recovers {same:,} exactly "
        f"({100 * same / max(total, 1):.2f} %), and reads {sum(recovered.values()):,}"
    )

    # protocol dissection
    for proto, (packets, errors) in dissected(capture).items():
        print(
            f"tshark sees {packets:>8,} {proto.upper():5} packets, "
            f"{errors:,} with an expert error"
        )
    print(f"capture kept in {folder}" if args.keep else "")
    if not args.keep:
        shutil.rmtree(folder)
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
