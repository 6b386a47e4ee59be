"""Tests of fosrd.ring: rotation, names, read-back by tshark, faults."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from ring_builders import (
    T0_NS,
    capinfos_count,
    capinfos_counts,
    capinfos_spans,
    ring_times,
    split_chunk,
    tshark_times,
    udp_chunk,
)

import fosrd.ring
from fosr.errors import ConfigError
from fosr.flows import read_flow_records
from fosr.synth import Frames, write_pcap
from fosrd._capfile import encode_records, file_header
from fosrd.outputs import Chunk
from fosrd.ring import PcapRing

NAME = re.compile(r"fosr_(\d{5})_(\d{14})\.(pcap|pcapng)")


def ring_files(folder: Path, suffix: str = ".pcap*") -> list[Path]:
    return sorted(folder.glob(f"fosr_*{suffix}"))


def wait_until(condition: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# --- encoding -------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "snaplen"),
    [
        (58, 262144),
        ((0, 1400), 262144),
        ((0, 200), 262144),
        ((0, 1400), 96),
        ((0, 1400), 600),
        (58, 60),
    ],
    ids=["one-length", "long", "short", "long-cut-short", "long-cut", "one-cut"],
)
def test_encode_records_equal_fosr_write_pcap(
    payload: int | tuple[int, int], snaplen: int
) -> None:
    frames = udp_chunk(50, payload=payload).frames
    expected = io.BytesIO()
    write_pcap(expected, frames, nanosecond=True, snaplen_bytes=snaplen)
    mine = (
        file_header("pcap-ns", snaplen, 1)
        + encode_records(frames, 0, len(frames), "pcap-ns", snaplen).tobytes()
    )
    assert mine == expected.getvalue()


def without_headroom(frames: Frames) -> Frames:
    """Return the same frames laid back to back."""
    pieces = [frames.frame(i) for i in range(len(frames))]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces])])
    data = np.frombuffer(b"".join(pieces), np.uint8)
    return Frames(data, offsets, frames.ts_ns, frames.flow)


@pytest.mark.parametrize("format", ["pcap", "pcap-ns", "pcapng"])
@pytest.mark.parametrize("payload", [58, (0, 200), (0, 1400)])
@pytest.mark.parametrize("headroom", [16, 28])
def test_encode_records_of_frames_with_headroom(
    format: str, payload: int | tuple[int, int], headroom: int
) -> None:
    roomy = udp_chunk(40, payload=payload, headroom_bytes=headroom).frames
    assert roomy.headroom_bytes == headroom
    plain = without_headroom(roomy)
    for snaplen in (262144, 90):
        expected = encode_records(plain, 3, 40, format, snaplen).tobytes()
        assert encode_records(roomy, 3, 40, format, snaplen).tobytes() == expected


def test_ring_writes_frames_with_headroom_in_place(tmp_path: Path) -> None:
    chunk = udp_chunk(50, payload=(0, 1400), headroom_bytes=16)
    ring = PcapRing("r", tmp_path, max_file_bytes=20_000)
    for part in split_chunk(chunk, 3):
        ring.emit(part)
    ring.close()
    files = ring_files(tmp_path)
    times = ring_times(files, tmp_path)
    assert times == [
        f"{t // 10**9}.{t % 10**9 // 1000:06d}000" for t in chunk.frames.ts_ns
    ]
    expected = io.BytesIO()
    write_pcap(expected, without_headroom(chunk.frames), nanosecond=False)
    joined = b"".join(p.read_bytes()[24:] for p in files)
    assert joined == expected.getvalue()[24:]


def test_encode_records_of_scattered_frames() -> None:
    # frames whose bytes are not back to back (a gap between them)
    data = np.arange(40, dtype=np.uint8)
    frames = Frames(data, np.array([0, 10, 30]), np.array([1, 2]), np.zeros(2))
    out = encode_records(frames, 0, 2, "pcap", 1000).tobytes()
    assert out[16:26] == bytes(range(10))
    assert out[42:62] == bytes(range(10, 30))


# --- names, rotation, formats ---------------------------------------------


def test_ring_names_in_dumpcap_style_with_utc(tmp_path: Path) -> None:
    ring = PcapRing("r", tmp_path, utc_names=True)
    ring.emit(udp_chunk(3))
    ring.close()
    (path,) = ring_files(tmp_path)
    assert path.name == "fosr_00001_20231114221320.pcap"


def test_ring_local_names_follow_tz(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        ring = PcapRing("r", tmp_path, prefix="local", format="pcapng")
        ring.emit(udp_chunk(3))
        ring.close()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert [p.name for p in tmp_path.iterdir()] == ["local_00001_20231114231320.pcapng"]


def test_ring_rotates_by_size(tmp_path: Path) -> None:
    ring = PcapRing("r", tmp_path, max_file_bytes=4000)
    for chunk in split_chunk(udp_chunk(200), 7):
        ring.emit(chunk)
    ring.close()
    files = ring_files(tmp_path)
    assert len(files) >= 400 * 116 // 4000
    assert all(p.stat().st_size <= 4000 for p in files)
    counts = capinfos_counts(files)
    assert sum(counts) == 400 == ring.stats.packets
    # every file is filled as far as the limit allows: 24 + 34 * 116 <= 4000
    assert counts[:-1] == [34] * (len(files) - 1)
    times = ring_times(files, tmp_path)
    assert times == sorted(times) and len(times) == 400
    assert ring.status()["files"] == len(files)
    assert ring.stats.file_bytes == sum(p.stat().st_size for p in files)


def test_ring_gives_a_file_to_a_record_larger_than_the_limit(tmp_path: Path) -> None:
    ring = PcapRing("r", tmp_path, max_file_bytes=100)
    ring.emit(udp_chunk(2))
    ring.close()
    assert capinfos_counts(ring_files(tmp_path)) == [1, 1, 1, 1]


def test_ring_rotates_by_duration_of_traffic_time(tmp_path: Path) -> None:
    # 50 flows 0.1 s apart: 5 s of traffic, a file per 1.5 s from its first packet
    chunk = udp_chunk(50, start_ns=T0_NS + 300_000_000, gap_ns=100_000_000)
    ring = PcapRing("r", tmp_path, max_file_seconds=1.5)
    for part in split_chunk(chunk, 3):
        ring.emit(part)
    ring.close()
    spans = capinfos_spans(ring_files(tmp_path))
    assert len(spans) == 4
    assert all(last - first < 1.5 for first, last in spans)
    # the next file starts with the first packet at or past the limit
    starts = [first for first, _ in spans]
    assert np.allclose(np.diff(starts), 1.5, atol=0.11)


def test_ring_interval_switches_on_exact_multiples(tmp_path: Path) -> None:
    chunk = udp_chunk(40, start_ns=T0_NS + 700_000_000, gap_ns=100_000_000)
    ring = PcapRing("r", tmp_path, max_file_seconds=1, interval=True, utc_names=True)
    ring.emit(chunk)
    ring.close()
    files = ring_files(tmp_path)
    assert [NAME.fullmatch(p.name)[2] for p in files] == [  # type: ignore[index]
        "20231114221320",
        "20231114221321",
        "20231114221322",
        "20231114221323",
        "20231114221324",
    ]
    for second, (first, last) in enumerate(capinfos_spans(files)):
        assert second <= first - 1_700_000_000 <= last - 1_700_000_000 < second + 1


@pytest.mark.parametrize(
    ("format", "digits", "payload"),
    [
        ("pcap", 6, (0, 1400)),
        ("pcap-ns", 9, (0, 1400)),
        ("pcapng", 9, (0, 1400)),
        # short frames take the byte-mask copy, long ones the slice copy
        ("pcapng", 9, (0, 200)),
    ],
)
def test_ring_formats_read_back_by_tshark(
    tmp_path: Path, format: str, digits: int, payload: tuple[int, int]
) -> None:
    chunk = udp_chunk(60, gap_ns=1_234_567, payload=payload)
    ring = PcapRing("r", tmp_path, format=format, max_file_bytes=20_000)
    ring.emit(chunk)
    ring.close()
    files = ring_files(tmp_path)
    assert len(files) > 1
    times = ring_times(files, tmp_path)
    # tshark prints nine digits; microsecond pcap keeps six of them
    ts = chunk.frames.ts_ns // 10 ** (9 - digits) * 10 ** (9 - digits)
    assert times == [f"{t // 10**9}.{t % 10**9:09d}" for t in ts]


def test_ring_cuts_frames_to_snaplen(tmp_path: Path) -> None:
    ring = PcapRing("r", tmp_path, format="pcapng", snaplen_bytes=64)
    ring.emit(udp_chunk(5, payload=500))
    ring.close()
    (path,) = ring_files(tmp_path)
    assert capinfos_count(path) == 10
    data = path.read_bytes()
    # after the section and interface blocks, the first Enhanced Packet
    # Block (type 6): captured and original lengths at 20 and 24
    at = len(file_header("pcapng", 64, 1))
    assert data[at : at + 4] == b"\x06\0\0\0"
    assert data[at + 20 : at + 28] == (64).to_bytes(4, "little") + (542).to_bytes(
        4, "little"
    )


def test_ring_keeps_max_files_deleting_the_oldest(tmp_path: Path) -> None:
    ring = PcapRing("r", tmp_path, max_file_bytes=2000, max_files=3, flow_log="csv")
    for part in split_chunk(udp_chunk(100), 10):
        ring.emit(part)
    ring.close()
    files = ring_files(tmp_path)
    numbers = [int(NAME.fullmatch(p.name)[1]) for p in files]  # type: ignore[index]
    assert len(files) == 3 and numbers == list(range(numbers[0], numbers[0] + 3))
    assert numbers[0] > 3
    # sidecars of deleted files go with them
    assert sorted(p.stem for p in tmp_path.glob("*.csv")) == [p.stem for p in files]
    assert ring.stats.files == 3


def test_ring_file_mode_and_group(tmp_path: Path) -> None:
    ring = PcapRing("r", tmp_path, file_mode=0o640, group=os.getgid())
    ring.emit(udp_chunk(2))
    path = ring.current_path
    assert path is not None
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640 and info.st_gid == os.getgid()
    ring.close()


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"prefix": "../up"}, "prefix"),
        ({"prefix": "a/b"}, "prefix"),
        ({"prefix": ".hidden"}, "prefix"),
        ({"format": "erf"}, "format"),
        ({"max_file_bytes": 0}, "max_file_bytes"),
        ({"max_file_seconds": -1.0}, "max_file_seconds"),
        ({"interval": True}, "interval"),
        ({"max_files": 0}, "max_files"),
        ({"flow_log": "xml"}, "flow_log"),
        ({"on_rotate": "gzip"}, "on_rotate"),
        ({"group": "no-such-group-here"}, "group"),
        ({"snaplen_bytes": 0}, "snaplen_bytes"),
    ],
)
def test_ring_rejects_bad_settings(
    tmp_path: Path, settings: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{field}:"):
        PcapRing("r", tmp_path, **settings)  # type: ignore[arg-type]


# --- publication: readable while written, SIGKILL, restart ----------------


def test_ring_file_in_progress_is_readable(tmp_path: Path) -> None:
    ring = PcapRing("r", tmp_path, format="pcapng")
    chunks = split_chunk(udp_chunk(30), 3)
    for done, chunk in enumerate(chunks, 1):
        ring.emit(chunk)
        path = ring.current_path
        assert path is not None
        assert capinfos_count(path) == 20 * done
    assert path is not None and len(tshark_times(path)) == 60
    ring.close()


CHILD = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{tests!r}, {repo!r}]
    from ring_builders import udp_chunk, split_chunk
    from fosrd.ring import PcapRing
    ring = PcapRing("r", {folder!r}, format={format!r}, max_file_bytes=30000)
    parts = split_chunk(udp_chunk(2000, payload=(0, 1400)), 200)
    while True:
        for part in parts:
            ring.emit(part)
    """
)


@pytest.mark.parametrize("format", ["pcap", "pcapng"])
def test_ring_sigkill_leaves_files_tshark_reads(tmp_path: Path, format: str) -> None:
    folder = tmp_path / "ring"
    script = CHILD.format(
        tests=str(Path(__file__).parent),
        repo=str(Path(__file__).parents[2]),
        folder=str(folder),
        format=format,
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        wait_until(lambda: len(ring_files(folder)) >= 4, 30)
        time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    # a kill inside a write() may tear the very last record; the ring cuts
    # it off when it starts again in the folder
    files = ring_files(folder)
    assert all(n > 0 for n in capinfos_counts(files[:-1]))
    last = subprocess.run(
        ["capinfos", "-c", str(files[-1])], capture_output=True, text=True
    )
    assert last.returncode == 0 or "cut short in the middle" in last.stderr
    PcapRing("again", folder, format=format).close()
    files = ring_files(folder)
    counts = capinfos_counts(files)
    assert all(n > 0 for n in counts)
    assert len(ring_times(files, tmp_path)) == sum(counts)


def test_ring_restart_continues_the_sequence_and_cuts_a_torn_record(
    tmp_path: Path,
) -> None:
    ring = PcapRing("r", tmp_path, max_file_bytes=3000, max_files=4)
    ring.emit(udp_chunk(40))
    ring.close()
    before = ring_files(tmp_path)
    assert len(before) == 4
    with open(before[-1], "ab") as stream:  # half a record, as after SIGKILL
        stream.write(b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a")
    torn_size = before[-1].stat().st_size

    again = PcapRing("r", tmp_path, max_file_bytes=3000, max_files=4)
    assert before[-1].stat().st_size == torn_size - 10
    assert again.stats.files == 4
    again.emit(udp_chunk(5, start_ns=T0_NS + 10**10))
    again.close()
    after = ring_files(tmp_path)
    numbers = [int(NAME.fullmatch(p.name)[1]) for p in after]  # type: ignore[index]
    last = int(NAME.fullmatch(before[-1].name)[1])  # type: ignore[index]
    assert len(after) == 4 and numbers[-1] == last + 1
    assert len(ring_times(after, tmp_path)) == sum(capinfos_counts(after))


# --- rotate(), on_rotate --------------------------------------------------

HOOK = textwrap.dedent(
    """
    import json, sys
    with open(sys.argv[1], "a") as out:
        out.write(json.dumps(sys.argv[2:]) + "\\n")
    """
)


@pytest.fixture(autouse=True)
def patient_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    # a loaded test machine may take more than the default to start python
    monkeypatch.setattr(fosrd.ring, "HOOK_WAIT_S", 20.0)


def test_on_rotate_gets_each_finished_path_as_argv(tmp_path: Path) -> None:
    script = tmp_path / "hook.py"
    script.write_text(HOOK)
    record = tmp_path / "calls.jsonl"
    folder = tmp_path / "ring"
    ring = PcapRing(
        "r",
        folder,
        on_rotate=[sys.executable, str(script), str(record), "a b; rm -rf /tmp/x"],
    )
    assert ring.rotate() is None  # no file yet
    ring.emit(udp_chunk(5))
    first = ring.rotate()
    ring.emit(udp_chunk(5, start_ns=T0_NS + 10**9))
    second = ring.current_path
    ring.close()
    assert first is not None and second is not None
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    # no shell: the odd argument arrives as one argv item, untouched
    assert sorted(calls) == sorted(
        [["a b; rm -rf /tmp/x", first], ["a b; rm -rf /tmp/x", str(second)]]
    )
    assert ring.stats.errors == {}
    assert capinfos_count(Path(first)) == 10


def test_on_rotate_does_not_hold_up_emission(tmp_path: Path) -> None:
    slow = [sys.executable, "-c", "import time; time.sleep(1)"]
    ring = PcapRing("r", tmp_path, max_file_bytes=1000, on_rotate=slow)
    began = time.monotonic()
    ring.emit(udp_chunk(20))  # about 5 rotations, each starting a command
    ring.rotate()
    assert time.monotonic() - began < 0.5
    ring.close()
    assert ring.stats.errors == {}


def test_on_rotate_failures_are_counted(tmp_path: Path) -> None:
    ring = PcapRing("r", tmp_path / "a", on_rotate=[sys.executable, "-c", "exit(3)"])
    ring.emit(udp_chunk(2))
    ring.rotate()
    ring.emit(udp_chunk(2, start_ns=T0_NS + 10**9))
    ring.close()
    assert ring.stats.errors == {"rotate_command": 2}

    missing = PcapRing("m", tmp_path / "b", on_rotate=[str(tmp_path / "nowhere")])
    missing.emit(udp_chunk(2))
    missing.close()
    assert missing.stats.errors == {"rotate_command": 1}
    assert missing.stats.packets == 4


# --- flow log sidecars ----------------------------------------------------


@pytest.mark.parametrize("numbering", ["exact", "stale"])
def test_ring_flow_log_rows_are_the_flows_of_each_file(
    tmp_path: Path, numbering: str
) -> None:
    chunk = udp_chunk(120, payload=(0, 600))
    ring = PcapRing("r", tmp_path, max_file_bytes=10_000, flow_log="csv")
    for part in split_chunk(chunk, 4):
        if numbering == "stale":
            # a piece whose first_flow does not number its rows: the flows
            # are placed by their start times instead
            part = Chunk(part.frames, part.flows, part.end_ns, 0)
        ring.emit(part)
    ring.close()
    files = ring_files(tmp_path)
    assert len(files) > 2
    times = [int(t.replace(".", "")) // 1000 for t in ring_times(files, tmp_path)]
    ends = np.cumsum(capinfos_counts(files))
    tables = []
    for path, lo, hi in zip(files, [0, *ends[:-1]], ends, strict=True):
        table = read_flow_records(path.with_suffix(".csv"))
        # each flow's first frame is in the file beside its row
        assert all(round(s * 1e6) in times[lo:hi] for s in table.start), path
        tables.append(table)
    assert sum(map(len, tables)) == len(chunk.flows) == ring.stats.flows
    assert ring.stats.errors == {}
    starts = np.concatenate([t.start for t in tables])
    np.testing.assert_allclose(starts, chunk.flows.start, atol=1e-6)
    back = np.concatenate([t.fwd_bytes for t in tables])
    np.testing.assert_array_equal(back, chunk.flows.fwd_bytes)


def test_ring_flow_log_jsonl(tmp_path: Path) -> None:
    chunk = udp_chunk(10)
    ring = PcapRing("r", tmp_path, flow_log="jsonl", utc_names=True)
    ring.emit(chunk)
    ring.close()
    sidecar = tmp_path / "fosr_00001_20231114221320.jsonl"
    rows = [json.loads(line) for line in sidecar.read_text().splitlines()]
    assert len(rows) == 10
    assert rows[0]["start"] == "2023-11-14T22:13:20.000000Z"
    assert rows[0]["proto"] == "UDP" and rows[0]["server_port"] == 53


# --- faults ---------------------------------------------------------------


def test_ring_recreates_a_removed_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ring"
    ring = PcapRing("r", folder, flow_log="csv")
    ring.emit(udp_chunk(5))
    shutil.rmtree(folder)
    ring.emit(udp_chunk(5, start_ns=T0_NS + 10**9))
    ring.close()
    assert ring.stats.errors == {"directory_removed": 1, "directory_recreated": 1}
    (path,) = ring_files(folder)
    assert capinfos_count(path) == 10
    assert len(read_flow_records(path.with_suffix(".csv"))) == 5


def test_ring_replaces_a_removed_file(tmp_path: Path) -> None:
    ring = PcapRing("r", tmp_path)
    ring.emit(udp_chunk(5))
    assert ring.current_path is not None
    ring.current_path.unlink()
    ring.emit(udp_chunk(5, start_ns=T0_NS + 10**9))
    ring.close()
    assert ring.stats.errors == {"file_removed": 1}
    (path,) = ring_files(tmp_path)
    assert NAME.fullmatch(path.name)[1] == "00002"  # type: ignore[index]


def test_ring_after_close_drops_and_counts(tmp_path: Path) -> None:
    ring = PcapRing("r", tmp_path)
    ring.close()
    ring.close()
    ring.emit(udp_chunk(2))
    assert ring.stats.dropped_packets == 4 and ring.stats.errors == {"closed": 1}


def test_ring_emit_never_raises_on_a_broken_chunk(tmp_path: Path) -> None:
    chunk = udp_chunk(3)
    broken = Frames(
        chunk.frames.data[:10],
        chunk.frames.offsets,
        chunk.frames.ts_ns,
        chunk.frames.flow,
    )
    ring = PcapRing("r", tmp_path)
    ring.emit(Chunk(broken, chunk.flows, chunk.end_ns))
    ring.close()
    assert ring.stats.errors.get("internal") == 1


FILE_LIMIT_CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    sys.path[:0] = [{tests!r}, {repo!r}]
    from ring_builders import udp_chunk, split_chunk
    from fosrd.ring import PcapRing
    # writes past 30000 bytes fail with EFBIG instead of killing the process
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (30000, 30000))
    ring = PcapRing("r", {folder!r}, format={format!r}, flow_log="csv")
    for part in split_chunk(udp_chunk(400, payload=(0, 300)), 8):
        ring.emit(part)
    ring.close()
    print(json.dumps(ring.status()))
    """
)


@pytest.mark.parametrize("format", ["pcap-ns", "pcapng"])
def test_ring_cuts_a_refused_write_back_to_whole_records(
    tmp_path: Path, format: str
) -> None:
    # a file size limit makes write() fail half-way, as a full disk does
    script = FILE_LIMIT_CHILD.format(
        tests=str(Path(__file__).parent),
        repo=str(Path(__file__).parents[2]),
        folder=str(tmp_path),
        format=format,
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    status = json.loads(run.stdout)
    assert status["errors"]["EFBIG"] > 0
    assert status["dropped_packets"] > 0
    assert status["packets"] + status["dropped_packets"] == 800
    (path,) = ring_files(tmp_path)
    assert path.stat().st_size <= 30000
    assert capinfos_count(path) == status["packets"]
    assert len(read_flow_records(path.with_suffix(".csv"))) == status["flows"]


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> object:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "small"
    folder.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], check=True
    )
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.root
@pytest.mark.parametrize("format", ["pcap", "pcapng"])
def test_ring_disk_full_keeps_files_valid_and_resumes(
    small_tmpfs: Path, format: str
) -> None:
    ring = PcapRing(
        "r", small_tmpfs, format=format, max_file_bytes=50_000, flow_log="csv"
    )
    parts = split_chunk(udp_chunk(3000, payload=(0, 400)), 60)
    for part in parts[:40]:
        ring.emit(part)
    assert ring.stats.errors.get("ENOSPC", 0) > 0
    assert ring.stats.dropped_packets > 0
    assert ring.stats.packets + ring.stats.dropped_packets == sum(
        len(p.frames) for p in parts[:40]
    )
    # the file in progress and every finished one read cleanly
    files = ring_files(small_tmpfs)
    assert sum(capinfos_counts(files)) == ring.stats.packets
    # failed attempts to open a file used up no sequence number
    numbers = [int(NAME.fullmatch(p.name)[1]) for p in files]  # type: ignore[index]
    assert numbers == list(range(1, len(files) + 1))

    # free space: the ring writes again
    kept = capinfos_count(files[-1])
    for path in files[:-1]:
        path.unlink()
        path.with_suffix(".csv").unlink()
    written = ring.stats.packets
    for part in parts[40:]:
        ring.emit(part)
    ring.close()
    assert ring.stats.packets > written
    files = ring_files(small_tmpfs)
    in_files = len(ring_times(files, small_tmpfs.parent))
    assert in_files == kept + ring.stats.packets - written


def test_ring_leaves_a_foreign_file_with_a_ring_name_alone(tmp_path: Path) -> None:
    foreign = tmp_path / "fosr_00007_20200101000000.pcap"
    foreign.write_bytes(b"not a capture, keep me")
    ring = PcapRing("r", tmp_path)
    ring.emit(udp_chunk(1))
    ring.close()
    assert foreign.read_bytes() == b"not a capture, keep me"
    assert ring_files(tmp_path)[-1].name.startswith("fosr_00008_")
