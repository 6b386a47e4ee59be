"""``fosr learn``, ``fosr generate`` and ``fosr model show``.

``learn`` writes a model bundle: the flow model, the packet model (when
captures are among the inputs) and the hosts with their roles.
``generate`` draws flow records from it, or a whole capture with its
ground-truth flow log beside it; ``model show`` describes the model in
words.
"""

from __future__ import annotations

import argparse
import io
import logging
import re
import sys
import time
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, cast
from zoneinfo import ZoneInfo

import numpy as np

from fosr._cli_common import (
    EXIT_OK,
    OutputError,
    classify_inputs,
    load_traffic,
    output,
    say,
    seconds,
)
from fosr.errors import InputError
from fosr.pipeline import take_frames

__all__ = [
    "MIN_FLOWS",
    "add_generate_command",
    "add_learn_command",
    "add_model_commands",
    "parse_duration",
]

MIN_FLOWS = 20
"""Fewest flows ``fosr learn`` accepts (chosen, not tuned: below it no
pattern reaches the search's minimum support of 5 with any margin)."""

# one hour per batch: bounds memory on long runs (a day of CIDDS-001 is
# a few million flows) without changing the stream (see FlowSampler.batches)
_BATCH_S = 3600.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}


def add_learn_command(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``learn`` to the ``fosr`` parser."""
    learn = commands.add_parser(
        "learn",
        parents=[common],
        help="learn a model bundle from captures or flow records",
        description="Learn a flow model (FlowChronicle patterns, Bayesian "
        "networks and a rate profile) from captures or flow record files, "
        "and from captures a packet model (TADAM timed automata per "
        "service), and write them as one model bundle. Arguments may be "
        "read from a file named with @, one per line.",
        fromfile_prefix_chars="@",
    )
    learn.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        type=Path,
        help="capture, flow record file or folder of captures",
    )
    learn.add_argument(
        "-o", "--output", required=True, metavar="MODEL", help="bundle to write"
    )
    learn.add_argument(
        "--max-gap",
        type=seconds,
        default=60.0,
        metavar="S",
        help="longest delay between the flows of one pattern, in seconds (default: 60)",
    )
    learn.add_argument(
        "--timezone",
        type=_timezone,
        default="UTC",
        metavar="TZ",
        help="time zone of the rate profile's hours, e.g. Europe/Berlin (default: UTC)",
    )
    learn.add_argument(
        "--session-gap",
        type=seconds,
        default=120.0,
        metavar="S",
        help="pair one-way records into one flow while their gap is below "
        "this, in seconds (default: 120)",
    )
    learn.add_argument(
        "--idle-timeout",
        type=seconds,
        metavar="S",
        help="idle timeout of captured connections, in seconds "
        "(default: TCP 300, UDP and ICMP 60, as Zeek)",
    )
    learn.add_argument(
        "--span",
        type=parse_duration,
        metavar="D",
        help="learn only from the flows of the first D of the inputs (90s, "
        "15m, 1h, 2d); the packet model still learns from every connection",
    )
    learn.add_argument(
        "--packets",
        nargs="+",
        type=Path,
        metavar="CAPTURE",
        help="learn the packet model from these captures or folders instead "
        "of the inputs' captures (flows from NetFlow, packets from a capture)",
    )
    learn.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip malformed records and corrupt captures instead of stopping",
    )
    learn.set_defaults(handler=_run_learn)


def add_generate_command(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``generate`` to the ``fosr`` parser."""
    generate = commands.add_parser(
        "generate",
        parents=[common],
        help="generate flows or a capture from a model bundle",
        description="Draw flow records (--flows) or a whole capture (-o) "
        "from a model bundle over a span of time, faster than real time. "
        "The same model, seed and start give the same traffic; shards i/N "
        "split the stream into N disjoint parts.",
    )
    generate.add_argument("model", type=Path, metavar="MODEL", help="model bundle")
    generate.add_argument(
        "--duration",
        type=parse_duration,
        required=True,
        metavar="D",
        help="span to generate: 90s, 15m, 1h, 2d (a bare number is seconds)",
    )
    generate.add_argument(
        "--start",
        type=_start_time,
        metavar="T",
        help="first instant, ISO 8601 (UTC when no offset is given; "
        "default: the start of the training data)",
    )
    generate.add_argument(
        "--seed", type=_non_negative, default=0, help="random seed (default: 0)"
    )
    generate.add_argument(
        "--shard",
        type=_shard,
        default=(0, 1),
        metavar="I/N",
        help="generate only shard I of N, counting from 0 (default: 0/1)",
    )
    generate.add_argument(
        "--rate-scale",
        type=_rate_scale,
        default=1.0,
        metavar="X",
        help="multiply the learnt rate of flows by X (default: 1)",
    )
    generate.add_argument(
        "--flows",
        metavar="OUT.csv",
        help="flow records to write ('-' for stdout); with -o, the ground "
        "truth of the capture (default: OUT.pcap with .flows.csv)",
    )
    generate.add_argument(
        "-o", "--output", metavar="OUT.pcap", help="capture to write (pcap, ns)"
    )
    generate.add_argument(
        "--topology",
        type=Path,
        metavar="FILE",
        help="topology (TOML) the hosts are mapped onto (default: the "
        "addresses of the training data)",
    )
    generate.set_defaults(handler=_run_generate, parser=generate)


def add_model_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``model show`` to the ``fosr`` parser."""
    model = commands.add_parser("model", help="inspect a model bundle")
    actions = model.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser(
        "show",
        parents=[common],
        help="describe a model bundle in words",
        description="Describe a model bundle: its patterns in words, by "
        "usage, its hourly rate profile and where it comes from.",
    )
    show.add_argument("model", type=Path, metavar="MODEL", help="model bundle")
    show.set_defaults(handler=_run_show)


def parse_duration(text: str) -> float:
    """Return the seconds of a duration such as ``90s``, ``15m``, ``1h``, ``2d``."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(
            f"not a positive duration like 90s, 15m, 1h or 2d: {text!r}"
        )
    return float(match[1]) * _UNIT_S[match[2]]


def _run_learn(args: argparse.Namespace) -> int:
    from fosr.bundle import Provenance
    from fosr.flowmodel import SearchSettings, encode_flows, fit_timing
    from fosr.flowmodel import learn_flow_model as learn
    from fosr.model import save_traffic_model
    from fosr.packetmodel import learn_packet_model
    from fosr.topology import describe_hosts

    began = time.perf_counter()
    flows, connections = load_traffic(
        args.inputs,
        idle_timeout_s=args.idle_timeout,
        session_gap_s=args.session_gap,
        skip_bad=args.skip_bad,
        quiet=args.quiet,
    )
    if args.span is not None and len(flows):
        first = float(flows.start.min())
        flows = flows.take(np.flatnonzero(flows.start < first + args.span))
        if not args.quiet:
            say(f"kept the {len(flows):,} flows of the first {args.span:g} s")
    if args.packets is not None:
        _, connections = load_traffic(
            args.packets,
            idle_timeout_s=args.idle_timeout,
            skip_bad=args.skip_bad,
            quiet=args.quiet,
        )
    if len(flows) < MIN_FLOWS:
        names = ", ".join(str(path) for path in args.inputs)
        raise InputError(
            f"only {len(flows)} flows: learning needs at least {MIN_FLOWS}",
            path=names,
        )

    # the flow model, with one message per accepted pattern unless --quiet
    coded = encode_flows(flows)
    search_log = logging.getLogger("fosr.flowmodel.learn")
    level = search_log.level
    if not args.quiet:
        search_log.setLevel(logging.DEBUG)
    try:
        model = learn(coded, SearchSettings(max_gap_s=args.max_gap))
    finally:
        search_log.setLevel(level)
    timing = fit_timing(model, coded, timezone=args.timezone, max_gap_s=args.max_gap)
    if not args.quiet:
        gain = 100.0 * (1.0 - model.total_bits / model.empty_bits)
        say(
            f"learnt {len(model.patterns)} patterns from {len(flows):,} flows "
            f"in {time.perf_counter() - began:.1f} s: {model.total_bits:,.0f} "
            f"bits against {model.empty_bits:,.0f} for the empty model "
            f"({gain:.1f}% shorter)"
        )

    # the packet model, from the captures' connections
    packets = None
    if connections is not None and len(connections):
        started = time.perf_counter()
        packets = learn_packet_model(
            connections, progress=not args.quiet and sys.stderr.isatty()
        )
        if not args.quiet:
            for line in packets.summary():
                say(line)
            say(f"learnt the packet model in {time.perf_counter() - started:.1f} s")
    elif not args.quiet:
        say(
            "no captures among the inputs: no packet model; generated packets "
            "will follow each protocol's generic automaton"
        )

    # save, with the hosts' roles, the hashes of the data files and the command
    captures, records = classify_inputs([*args.inputs, *(args.packets or [])])
    provenance = Provenance.for_files([*captures, *records], command=args.argv)
    try:
        save_traffic_model(
            args.output,
            flows=(model, timing, coded),
            packets=packets,
            hosts=describe_hosts(flows),
            provenance=provenance,
        )
    except OSError as error:
        raise OutputError(f"{args.output}: cannot write: {error.strerror}") from error
    if not args.quiet:
        say(f"wrote {args.output}")
    return EXIT_OK


def _run_generate(args: argparse.Namespace) -> int:
    from fosr.model import load_traffic_model

    if args.output is None and args.flows is None:
        args.parser.error("give --flows OUT.csv, -o OUT.pcap, or both")
    traffic = load_traffic_model(args.model)
    stored = traffic.flows
    start_s = stored.origin_s if args.start is None else args.start
    if args.output is not None:
        return _generate_capture(args, traffic, start_s)
    shard, shards = args.shard
    sampler = stored.sampler(
        seed=args.seed, shard=shard, shards=shards, rate_scale=args.rate_scale
    )

    # one batch an hour; only the first one keeps the CSV header
    began, count = time.perf_counter(), 0
    n_batches = int(np.ceil(args.duration / _BATCH_S))
    end_s = start_s + args.duration
    with output(args.flows) as stream:
        batches = islice(sampler.batches(start_s, _BATCH_S), n_batches)
        for k, batch in enumerate(batches):
            if k == n_batches - 1:
                batch = batch.take(np.flatnonzero(batch.start < end_s))
            _write_csv(stream, batch, header=k == 0)
            count += len(batch)
    if not args.quiet and args.flows != "-":
        say(
            f"wrote {count:,} flows to {args.flows} in "
            f"{time.perf_counter() - began:.1f} s"
        )
    return EXIT_OK


def _generate_capture(args: argparse.Namespace, traffic: Any, start_s: float) -> int:
    """Write the capture of ``args.duration`` and its ground-truth flows."""
    from fosr.packetmodel import PacketModel
    from fosr.pipeline import Engine
    from fosr.synth import write_pcap, write_pcap_header
    from fosr.topology import HostMap, load_topology

    addresses, roles = traffic.addresses, traffic.roles
    if addresses is None:
        raise InputError("the bundle has no hosts part", path=args.model)
    if args.topology is not None:
        hosts = HostMap.build(
            load_topology(args.topology), addresses, roles, seed=args.seed
        )
    else:
        hosts = HostMap.identity(addresses, roles)
    packets = traffic.packets or PacketModel(services={}, fallbacks={})
    shard, shards = args.shard
    sampler = traffic.flows.sampler(
        seed=args.seed, shard=shard, shards=shards, rate_scale=args.rate_scale
    )
    engine = Engine(sampler, packets, hosts, seed=args.seed, shard=shard, batch_s=60.0)
    flows_path = args.flows or _beside(args.output, ".flows.csv")
    end_ns = int((start_s + args.duration) * 1e9)

    began, n_packets, n_flows = time.perf_counter(), 0, 0
    with output(args.output, binary=True) as capture, output(flows_path) as log:
        write_pcap_header(cast(BinaryIO, capture))
        for k, chunk in enumerate(engine.chunks(start_s)):
            frames, flows = chunk.frames, chunk.flows
            last = chunk.end_ns >= end_ns
            if last:
                frames = take_frames(frames, np.flatnonzero(frames.ts_ns < end_ns))
                flows = flows.take(np.flatnonzero(flows.start * 1e9 < end_ns))
            write_pcap(cast(BinaryIO, capture), frames, header=False)
            _write_csv(log, flows, header=k == 0)
            n_packets += len(frames)
            n_flows += len(flows)
            if last:
                break
    if engine.skipped:
        kinds = ", ".join(f"{n} of protocol {p}" for p, n in engine.skipped.items())
        say(f"skipped flows of protocols synthesis does not build: {kinds}")
    if not args.quiet:
        say(
            f"wrote {n_packets:,} packets of {n_flows:,} flows to {args.output} "
            f"and their ground truth to {flows_path} in "
            f"{time.perf_counter() - began:.1f} s"
        )
    return EXIT_OK


def _write_csv(stream: Any, table: Any, *, header: bool) -> None:
    from fosr.flows.flowcsv import write_flows_csv

    text = io.StringIO(newline="")
    write_flows_csv(table, text)
    written = text.getvalue()
    stream.write(written if header else written.partition("\n")[2])


def _beside(path: str, suffix: str) -> str:
    name = str(path)
    for ext in (".pcapng", ".pcap"):
        if name.endswith(ext):
            return name[: -len(ext)] + suffix
    return name + suffix


def _run_show(args: argparse.Namespace) -> int:
    from fosr._cli_show import describe_model
    from fosr.flowmodel.store import load_flow_model

    print(describe_model(load_flow_model(args.model)), end="")
    return EXIT_OK


def _timezone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ValueError, OSError, LookupError):
        raise argparse.ArgumentTypeError(f"unknown time zone: {text!r}") from None
    return text


def _start_time(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time like 2024-03-04T08:00:00Z: {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment.timestamp() < 0:
        raise argparse.ArgumentTypeError(f"before 1970: {text!r}")
    return moment.timestamp()


def _shard(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if match is None or not 0 <= int(match[1]) < int(match[2]):
        raise argparse.ArgumentTypeError(
            f"not a shard I/N with 0 <= I < N, like 0/4: {text!r}"
        )
    return int(match[1]), int(match[2])


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not an integer >= 0: {text!r}")
    return value


def _rate_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"not a finite number >= 0: {text!r}")
    return value
