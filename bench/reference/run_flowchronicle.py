"""Run the reference FlowChronicle (PyPI flowchronicle 0.1.0) on fosr flows.

Runs inside bench/reference/.venv (see README.md there), never in the
project's own environment.  The input is a CSV in fosr's flow record format
(start,duration,proto,client,client_port,server,server_port,fwd_packets,
fwd_bytes,bwd_packets,bwd_bytes,tcp_flags,state), such as written by
``fosr flows``, so both implementations learn from exactly the same rows.

Conversion to the reference's table (the paper's bidirectional CIDDS
columns, docs METHODS.md §1.1-1.2):

    start        -> Date first seen (later integer ticks of 1/100 s)
    proto        -> Proto
    client       -> Src IP Addr
    server       -> Dst IP Addr
    server_port  -> Dst Pt
    tcp_flags    -> Flags
    fwd_bytes    -> Out Byte      (sent by the client, the artifact's "Out")
    fwd_packets  -> Out Packet
    bwd_bytes    -> In Byte
    bwd_packets  -> In Packet
    duration     -> Duration

client_port and state are dropped, as in the paper.  Discretisation and
integer coding are the reference's own (``dataloader.discretize``, v2:
40 equal-frequency bins, ``dataloader.Dataset``), applied to the first
``--rows`` rows only.

Prints one JSON line on stdout: rows, seconds (search only), timed_out,
patterns (count), multi_row_patterns, model_bits, data_bits, total_bits,
pattern_list (each pattern as the reference's get_real_value_repr, with
the usage in the final cover and continuous bins decoded to their
intervals), and, with
``--sample``, sampled_flows and sample_seconds.  The search runs in a forked
child; after ``--timeout-s`` the child is killed and only rows, seconds and
timed_out=true are printed.  The reference logs at DEBUG level and prints to
stdout from inside its search, so the child's stdout goes to stderr.

With ``--sample N --out FILE`` the learned model generates N flows
(docs METHODS.md §1.7, using the reference's CoverStatistics, temporal
samplers, PatternSampler and FlowSampler) written in fosr's flow format.
Columns the reference does not model are filled with fixed values:
client_port 0 and state "OTH".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from typing import Any

import numpy as np
import pandas as pd
from _timeout import run_with_timeout

COLUMN_MAP = {
    "start": "Date first seen",
    "proto": "Proto",
    "client": "Src IP Addr",
    "server": "Dst IP Addr",
    "server_port": "Dst Pt",
    "tcp_flags": "Flags",
    "bwd_bytes": "In Byte",
    "bwd_packets": "In Packet",
    "fwd_bytes": "Out Byte",
    "fwd_packets": "Out Packet",
    "duration": "Duration",
}
FLOW_COLUMNS = (
    "start,duration,proto,client,client_port,server,server_port,"
    "fwd_packets,fwd_bytes,bwd_packets,bwd_bytes,tcp_flags,state"
).split(",")


def read_reference_table(path: str) -> pd.DataFrame:
    """Read fosr flows and rename them to the reference's columns."""
    flows = pd.read_csv(path, dtype={"client": str, "server": str})
    table = flows[list(COLUMN_MAP)].rename(columns=COLUMN_MAP)

    # the reference asserts a naive datetime64[ns] column (time_to_int)
    start = pd.to_datetime(table["Date first seen"], utc=True)
    table["Date first seen"] = start.dt.tz_convert(None).astype("datetime64[ns]")
    table = table.sort_values("Date first seen", kind="stable")
    return table.reset_index(drop=True)


def build_dataset(table: pd.DataFrame, rows: int) -> Any:
    """Discretise the whole table, then code its first ``rows`` rows.

    Binning the whole file first is what the artifact does before cutting
    it into chunks (load_CIDDS_splitted_dataset).  It is also needed:
    ``discretize`` numbers only as many bins as there are distinct
    occupied ones, so on a few rows, where some of the 40 quantile bins
    stay empty, it leaves Interval objects behind and fails.
    """
    from flowchronicle import dataloader

    coded, cutpoints = dataloader.discretize(table)
    dataset = dataloader.Dataset(coded.iloc[:rows].copy())
    dataset.cont_repr = dataloader.get_CIDDS_cont_repr(table, cutpoints)
    return dataset


def describe_model(model: Any, dataset: Any) -> dict[str, Any]:
    """Return the pattern count, code lengths and readable patterns."""
    model_bits = float(model.get_model_length())
    data_bits = float(model.cover.compute_data_length())
    usage = model.cover.get_pattern_usage()
    patterns = [
        {
            "usage": int(usage.get(p, 0)),
            "rows": [describe_row(row, dataset) for row in p.pattern],
        }
        for p in model.get_patterns()
    ]
    return {
        "patterns": len(patterns),
        "multi_row_patterns": sum(len(p["rows"]) > 1 for p in patterns),
        "model_bits": model_bits,
        "data_bits": data_bits,
        "total_bits": model_bits + data_bits,
        "pattern_list": patterns,
    }


def describe_row(row: Any, dataset: Any) -> dict[str, str]:
    """Decode one row pattern: values, bins as intervals, placeholders."""
    bins = dataset.cont_repr.get_cutpoints()
    cells = {}
    for column, value in sorted(row.pattern.items()):
        name = dataset.col_name_map[column]
        shown = value.get_real_value_repr(column, dataset)
        # the reference shows a bin's code; bin 0 is the value 0 itself
        if name in bins and isinstance(shown, int | np.integer) and shown:
            shown = f"bin {shown} {bins[name][shown]}"
        cells[name] = str(shown)
    return cells


def sample_flows(model: Any, dataset: Any, count: int) -> pd.DataFrame:
    """Draw pattern instances until at least ``count`` flows, keep ``count``."""
    from flowchronicle.temporal_sampling import FlowSampler, PatternSampler

    cover = model.cover
    stats = cover.get_cover_stats()  # appends the empty pattern
    cover.fit_temporal_samplers(cover.pattern_set)
    chooser = PatternSampler(stats.get_pattern_usage())

    # one instance at a time: a pattern instance yields one or more flows
    parts, total = [], 0
    while total < count:
        _, (pattern,) = chooser.sample(1)
        sampler = FlowSampler(
            pattern,
            dataset.col_name_map,
            dataset.column_value_dict,
            dataset.cont_repr,
            dataset.time_stamps,
        )
        flows = sampler.get_flows()
        parts.append(flows)
        total += len(flows)
    generated = pd.concat(parts, ignore_index=True)
    generated = generated.sort_values("Date first seen", kind="stable")
    return generated.iloc[:count].reset_index(drop=True)


def write_fosr_flows(generated: pd.DataFrame, path: str) -> None:
    """Write reference-format flows back in fosr's flow record format."""
    back = {ref: ours for ours, ref in COLUMN_MAP.items()}
    flows = generated.rename(columns=back)
    start = pd.to_datetime(flows["start"])
    flows["start"] = start.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    flows["duration"] = flows["duration"].astype(float).map("{:.6f}".format)
    flows["server_port"] = flows["server_port"].astype(float).astype(int)
    # not modelled by the reference: fixed placeholder values
    flows["client_port"] = 0
    flows["state"] = "OTH"
    flows[FLOW_COLUMNS].to_csv(path, index=False)


def run_child(args: argparse.Namespace, send: Any) -> None:
    """Search (and sample) in the child; send the result dict back."""
    with contextlib.redirect_stdout(sys.stderr):
        from flowchronicle.search import search

        logging.getLogger().setLevel(logging.WARNING)
        np.random.seed(args.seed)
        dataset = build_dataset(read_reference_table(args.flows), args.rows)
        began = time.monotonic()
        model = search(dataset)
        result = {"seconds": time.monotonic() - began}
        result.update(describe_model(model, dataset))
        if args.sample:
            began = time.monotonic()
            generated = sample_flows(model, dataset, args.sample)
            write_fosr_flows(generated, args.out)
            result["sampled_flows"] = len(generated)
            result["sample_seconds"] = time.monotonic() - began
    send.send(result)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("flows", help="fosr flow CSV (e.g. from `fosr flows`)")
    parser.add_argument("--rows", type=int, default=128, help="first N rows")
    parser.add_argument("--timeout-s", type=float, default=600.0)
    parser.add_argument("--sample", type=int, default=0, help="flows to draw")
    parser.add_argument("--out", help="CSV for --sample (fosr flow format)")
    parser.add_argument("--seed", type=int, default=0, help="numpy seed")
    args = parser.parse_args(argv)
    if args.sample and not args.out:
        parser.error("--sample needs --out")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the search with a wall-clock limit and print one JSON line."""
    args = parse_args(argv)
    result, timed_out, elapsed_s, exitcode = run_with_timeout(
        run_child, args, args.timeout_s
    )

    line = {"rows": args.rows, "timed_out": timed_out}
    line.setdefault("seconds", elapsed_s)
    line.update(result)
    if not result and not timed_out:
        line["error"] = f"child exited with code {exitcode}"
    print(json.dumps(line))
    return 0 if result else 1


if __name__ == "__main__":
    sys.exit(main())
