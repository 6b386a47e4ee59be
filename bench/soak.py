"""Soak the real fosrd: a day of model time through a pcap ring and a veth.

The script writes a configuration to a temporary folder and runs
``python -m fosrd --config`` there as a child process, at a high speed
factor (96 by default: 24 hours of generated time in 15 minutes), with two
outputs at once:

- a pcap ring of small files (``--file-mb``, ``--max-files``) with a CSV
  flow log beside each file, so that it rotates and deletes many times;
- an interface output on one end of a veth pair joining two network
  namespaces the script creates (IPv6 off in both, so their kernels send
  nothing of their own); a raw packet socket in the peer namespace counts
  the frames that arrive (counts only, no frame is kept).  ``--no-veth``
  runs the ring alone and needs no root.

Every ``--sample-s`` seconds it records the child's resident memory
(VmRSS), open file descriptors, threads and CPU time from /proc, the
status JSON of the control socket (``GET /v1/status``) and the
``fosrd_schedule_lag_seconds`` buckets from the metrics endpoint.  It also
reads the ring files as they grow and counts their packets per generated
second, which gives the packets *due* in every wall-clock minute to set
against the packets emitted in it.  At the end it sends SIGTERM (timing
the exit and keeping the exit code), runs ``capinfos`` on every ring
file, writes ``samples.csv``, ``run.json`` and ``report.txt`` to ``--out``
and prints the report (:mod:`soak_report`, which can also redo it from
those files).

``--batch-s`` and ``--lead-s`` set the engine's batch and lead (the
daemon's ``clock.batch_s`` and ``clock.lead_s``).  A batch has a fixed cost,
so at speed 96 the daemon's default 10 s batches fall behind with the
bundled model on a 2-core machine; batches of several generated minutes
(``--batch-s 600 --lead-s 20``) keep up there.

Usage: .venv/bin/python bench/soak.py [--duration-s 900] [--sample-s 10]
       [--warmup-s 60] [--speed 96] [--model PATH] [--batch-s S]
       [--lead-s S] [--file-mb 8] [--max-files 20] [--no-veth] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import re
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import soak_report  # noqa: E402

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "fosrd" / "data" / "default.fosr"
ETH_P_ALL = 0x0003
SOL_PACKET, PACKET_STATISTICS = 263, 6  # linux/if_packet.h
SO_RCVBUFFORCE = 33  # linux/socket.h
PCAP_HEADER_BYTES, RECORD_HEADER = 24, struct.Struct("<IIII")
CHECK_ON_ROTATE = (
    "import subprocess, sys; "
    "r = subprocess.run(['capinfos', '-c', '-M', sys.argv[2]], capture_output=True); "
    "open(sys.argv[1], 'a').write(f'{sys.argv[2]} {r.returncode}\\n')"
)
LAG_BUCKET = re.compile(r'^fosrd_schedule_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$')


class Lab:
    """Two fresh namespaces joined by a veth pair ``tx`` -> ``rx``, both up."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.tx_ns, self.rx_ns = f"fosr-soak-tx-{tag}", f"fosr-soak-rx-{tag}"
        self.tx, self.rx = f"fst{tag}", f"fsr{tag}"
        self._made: list[str] = []

    def open(self) -> None:
        """Create the namespaces and the pair; bring both ends up."""
        from pyroute2 import IPRoute, netns

        for name in (self.tx_ns, self.rx_ns):
            netns.create(name)
            self._made.append(name)
            _disable_ipv6(name)
        with IPRoute(netns=self.tx_ns, flags=0) as ipr:
            peer = {"ifname": self.rx, "net_ns_fd": self.rx_ns}
            ipr.link("add", ifname=self.tx, kind="veth", peer=peer)
            ipr.link("set", index=ipr.link_lookup(ifname=self.tx)[0], state="up")
        with IPRoute(netns=self.rx_ns, flags=0) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=self.rx)[0], state="up")

    def rx_packets(self) -> int:
        """Return the peer interface's own receive counter."""
        from pyroute2 import IPRoute

        with IPRoute(netns=self.rx_ns, flags=0) as ipr:
            link = ipr.get_links(ipr.link_lookup(ifname=self.rx)[0])[0]
            return int(link.get_attr("IFLA_STATS64")["rx_packets"])

    def close(self) -> None:
        """Remove the namespaces (and with them the pair)."""
        from pyroute2 import netns

        for name in self._made:
            netns.remove(name)
        self._made.clear()


def _disable_ipv6(ns: str) -> None:
    from pyroute2 import netns

    # /proc/sys/net shows the namespace of the thread that opens it
    netns.pushns(ns)
    try:
        for scope in ("all", "default"):
            path = f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6"
            if os.path.exists(path):
                Path(path).write_text("1")
    finally:
        netns.popns()


class FrameCounter:
    """Count frames arriving on ``ifname`` in namespace ``ns``, in a thread."""

    def __init__(self, ns: str, ifname: str) -> None:
        from pyroute2 import netns

        self._sock = netns.create_socket(
            ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL), flags=0
        )
        self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        self._sock.bind((ifname, ETH_P_ALL))
        self._sock.settimeout(0.2)
        self.frames = 0
        self.drops = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="count", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buffer = bytearray(65536)
        while not self._stop.is_set():
            try:
                self._sock.recv_into(buffer)
            except TimeoutError:
                continue
            self.frames += 1

    def socket_drops(self) -> int:
        """Return the frames the kernel dropped on this socket so far."""
        raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        self.drops += struct.unpack("II", raw)[1]  # reading resets the counters
        return self.drops

    def close(self) -> None:
        """Stop counting and close the socket."""
        self._stop.set()
        self._thread.join()
        self.socket_drops()
        self._sock.close()


class RingTally:
    """Count the packets of growing pcap files per generated second.

    Each file is read from where the last call stopped, complete records
    only, so a file being written is never misread.  A file the ring
    deletes before it was read to the end would lose its unread packets;
    with the default sizes a file lives for minutes and is read every
    ``--sample-s``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.per_second: dict[int, int] = {}
        self.packets = 0
        self._offsets: dict[str, int] = {}

    def update(self) -> None:
        """Read what every ring file gained since the last call."""
        for path in sorted(self.folder.glob("*.pcap")):
            at = self._offsets.get(path.name, PCAP_HEADER_BYTES)
            try:
                with open(path, "rb") as stream:
                    stream.seek(at)
                    data = stream.read()
            except FileNotFoundError:
                continue
            self._offsets[path.name] = at + self._count(data)
        present = {p.name for p in self.folder.glob("*.pcap")}
        for name in set(self._offsets) - present:
            del self._offsets[name]

    def _count(self, data: bytes) -> int:
        at, end = 0, len(data)
        tally = self.per_second
        while at + 16 <= end:
            seconds, _, caplen, _ = RECORD_HEADER.unpack_from(data, at)
            if at + 16 + caplen > end:
                break
            tally[seconds] = tally.get(seconds, 0) + 1
            self.packets += 1
            at += 16 + caplen
        return at


def write_config(
    args: argparse.Namespace, folder: Path, lab: Lab | None
) -> tuple[Path, int]:
    """Write the daemon's TOML configuration into ``folder``.

    Return its path and the metrics port it names.
    """
    port = _free_port()
    model = "" if args.model is None else str(Path(args.model).resolve())
    check = [sys.executable, "-c", CHECK_ON_ROTATE, str(folder / "rotated.txt")]
    lines = [
        "[model]",
        f"path = {json.dumps(model)}",
        f"seed = {args.seed}",
        "[clock]",
        f"speed = {args.speed}",
        f"batch_s = {args.batch_s}",
        f"lead_s = {args.lead_s}",
        "[[output]]",
        'kind = "ring"',
        'name = "ring"',
        'directory = "ring"',
        f"max_file_bytes = {args.file_mb << 20}",
        f"max_files = {args.max_files}",
        'flow_log = "csv"',
        # every finished file is checked by capinfos before the ring may
        # delete it; the result goes to rotated.txt
        f"on_rotate = {json.dumps(check)}",
    ]
    if lab is not None:
        lines += [
            "[[output]]",
            'kind = "iface"',
            'name = "veth"',
            f'interface = "{lab.tx}"',
            f'netns = "{lab.tx_ns}"',
        ]
    lines += [
        "[control]",
        'socket = "fosrd.sock"',
        "[metrics]",
        f"port = {port}",
        "[logging]",
        'level = "info"',
    ]
    path = folder / "fosrd.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, port


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=5)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self._path)


def get_status(socket_path: Path) -> dict[str, Any]:
    """Return the daemon's ``GET /v1/status`` answer."""
    connection = _UnixHTTPConnection(str(socket_path))
    try:
        connection.request("GET", "/v1/status")
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    if answer.status != 200:
        raise RuntimeError(f"status answered {answer.status}: {body[:200]!r}")
    document: dict[str, Any] = json.loads(body)
    return document


def get_lag_buckets(port: int) -> dict[str, float]:
    """Return the cumulative lag buckets (le -> count) from the metrics."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    buckets = {}
    for line in text.splitlines():
        match = LAG_BUCKET.match(line)
        if match:
            buckets[match.group(1)] = float(match.group(2))
    return buckets


def read_proc(pid: int) -> dict[str, float]:
    """Return the child's RSS (KiB), threads, open fds and CPU seconds."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "VmRSS":
            fields["rss_kib"] = float(value.split()[0])
        elif key == "Threads":
            fields["threads"] = float(value)
    fields["fds"] = float(len(os.listdir(f"/proc/{pid}/fd")))
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    fields["cpu_s"] = (int(stat[11]) + int(stat[12])) / ticks  # utime + stime
    return fields


def sample(
    began: float,
    child: subprocess.Popen[bytes],
    socket_path: Path,
    port: int,
    tally: RingTally,
    counter: FrameCounter | None,
) -> dict[str, Any]:
    """Take one sample of the child, its status, its lag histogram, the peer."""
    row: dict[str, Any] = {"t_s": round(time.monotonic() - began, 3)}
    row.update(read_proc(child.pid))
    status = get_status(socket_path)
    for key in ("packets", "bytes", "flows", "lag_s", "dropped_late"):
        row[key] = status[key]
    row["queue_packets"] = status["queue_packets"]
    row["generated_time"] = status["generated_time"]
    for output in status["outputs"]:
        name = output["name"]
        row[f"{name}_packets"] = output["packets"]
        row[f"{name}_dropped"] = output["dropped_packets"]
        row[f"{name}_errors"] = sum(output["errors"].values())
        if output["kind"] == "ring":
            row["ring_files"] = output["files"]
    tally.update()
    row["ring_read_packets"] = tally.packets
    if counter is not None:
        row["peer_frames"] = counter.frames
        row["peer_socket_drops"] = counter.socket_drops()
    for bound, count in get_lag_buckets(port).items():
        row[f"lag_le_{bound}"] = count
    return row


def wait_ready(socket_path: Path, child: subprocess.Popen[bytes]) -> None:
    """Wait until the control socket answers; exit if the child died."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if child.poll() is not None:
            sys.exit(f"fosrd exited with {child.returncode} before it was ready")
        try:
            if get_status(socket_path)["state"] == "running":
                return
        except (OSError, RuntimeError):
            pass
        time.sleep(0.2)
    sys.exit("fosrd did not answer on its control socket within 120 s")


def check_ring(folder: Path) -> list[tuple[str, bool, str]]:
    """Run capinfos on every ring file; return (name, readable, message)."""
    results = []
    for path in sorted(folder.glob("*.pcap")):
        done = subprocess.run(
            ["capinfos", "-c", "-M", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        message = (done.stderr or done.stdout).strip().splitlines()
        last = message[-1] if message else ""
        results.append((path.name, done.returncode == 0, last))
    return results


def run(args: argparse.Namespace, folder: Path, lab: Lab | None) -> dict[str, Any]:
    """Run the soak in ``folder``; return the run's facts and samples."""
    config, port = write_config(args, folder, lab)
    command = [sys.executable, "-m", "fosrd", "--config", str(config)]
    log = open(folder / "fosrd.log", "wb")  # closed in the finally below
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    counter = FrameCounter(lab.rx_ns, lab.rx) if lab is not None else None
    tally = RingTally(folder / "ring")
    samples: list[dict[str, Any]] = []
    began = time.monotonic()
    child = subprocess.Popen(command, cwd=folder, stdout=log, stderr=log, env=env)
    try:
        wait_ready(folder / "fosrd.sock", child)
        ready_s = time.monotonic() - began
        print(f"fosrd ready after {ready_s:.1f} s (pid {child.pid})", flush=True)
        next_at = time.monotonic()
        exited_early = False
        while time.monotonic() - began < args.duration_s:
            if child.poll() is not None:
                print(f"fosrd exited early with {child.returncode}", flush=True)
                exited_early = True
                break
            row = sample(began, child, folder / "fosrd.sock", port, tally, counter)
            samples.append(row)
            if len(samples) % max(1, round(60 / args.sample_s)) == 1:
                print(_progress(row), flush=True)
            next_at += args.sample_s
            time.sleep(max(0.0, next_at - time.monotonic()))
        # stop: time from SIGTERM to exit
        stopped = time.monotonic()
        child.send_signal(signal.SIGTERM)
        try:
            code = child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            code = child.wait()
        exit_s = time.monotonic() - stopped
        wall_s = stopped - began
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        log.close()
    tally.update()
    facts: dict[str, Any] = {
        "command": shlex.join(command),
        "config": config.read_text(),
        "speed": args.speed,
        "model": args.model or str(DEFAULT_MODEL),
        "wall_s": wall_s,
        "ready_s": ready_s,
        "exit_s": exit_s,
        "exit_code": code,
        "exited_early": exited_early,
        "warmup_s": args.warmup_s,
        "veth": lab is not None,
        "ring_packets_read": tally.packets,
        "due_per_second": {str(k): v for k, v in sorted(tally.per_second.items())},
    }
    if counter is not None and lab is not None:
        time.sleep(0.5)
        counter.close()
        facts["peer_frames"] = counter.frames
        facts["peer_socket_drops"] = counter.drops
        facts["peer_rx_packets"] = lab.rx_packets()
    facts["final_status_log"] = (folder / "fosrd.log").read_text()[-4000:]
    facts["ring"] = check_ring(folder / "ring")
    rotated = folder / "rotated.txt"
    lines = rotated.read_text().splitlines() if rotated.exists() else []
    facts["rotated"] = [
        (Path(n).name, c == "0") for n, c in (x.rsplit(" ", 1) for x in lines)
    ]
    facts["samples"] = samples
    return facts


def _progress(row: dict[str, Any]) -> str:
    return (
        f"  t={row['t_s']:6.0f} s  packets={row['packets']:>10,}  "
        f"rss={row['rss_kib'] / 1024:6.1f} MiB  fds={row['fds']:.0f}  "
        f"lag={row['lag_s'] * 1e3:7.2f} ms  queue={row['queue_packets']:,}"
    )


def save(facts: dict[str, Any], out: Path) -> None:
    """Write samples.csv and run.json into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    samples = facts["samples"]
    names: list[str] = []
    for row in samples:
        names += [k for k in row if k not in names]
    with open(out / "samples.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=names)
        writer.writeheader()
        writer.writerows(samples)
    (out / "run.json").write_text(json.dumps(facts, indent=1) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration-s", type=float, default=900.0)
    p.add_argument("--sample-s", type=float, default=10.0)
    p.add_argument("--warmup-s", type=float, default=60.0)
    p.add_argument("--speed", type=float, default=96.0)
    p.add_argument("--model", help="model bundle (default: the bundled one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-s", type=float, default=10.0)
    p.add_argument("--lead-s", type=float, default=5.0)
    p.add_argument("--file-mb", type=int, default=8)
    p.add_argument("--max-files", type=int, default=20)
    p.add_argument("--no-veth", action="store_true", help="run the ring alone")
    p.add_argument("--out", type=Path, default=Path("soak-out"))
    args = p.parse_args()
    if args.model is None and not DEFAULT_MODEL.is_file():
        sys.exit(
            f"no bundled model at {DEFAULT_MODEL} yet; give one with --model PATH "
            "(python -m fosr.samples lab.pcap --sessions 300 && "
            "fosr learn lab.pcap -o lab.fosr)"
        )
    if not args.no_veth and os.geteuid() != 0:
        sys.exit("the veth output needs root (namespaces); use --no-veth")

    lab = None if args.no_veth else Lab()
    with tempfile.TemporaryDirectory(prefix="fosr-soak-") as tmp:
        try:
            if lab is not None:
                lab.open()
            facts = run(args, Path(tmp), lab)
        finally:
            if lab is not None:
                lab.close()
    facts["invocation"] = shlex.join([sys.executable, *sys.argv])
    save(facts, args.out)
    report = soak_report.render(facts)
    (args.out / "report.txt").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
