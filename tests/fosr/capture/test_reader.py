"""Tests for fosr/capture/_reader.py: reading files, alone and in batches."""

from __future__ import annotations

import csv
import io
import logging
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from capture_builders import epb, idb, pcap, pcapng, shb
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import PcapNgWriter, PcapWriter, rdpcap

from fosr.capture import read_capture, read_captures
from fosr.errors import CaptureError

ETHER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
SHARED_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


def frames(count: int, sport: int = 1000) -> list[bytes]:
    """Return ``count`` UDP frames with consecutive source ports."""
    return [bytes(ETHER / IP() / UDP(sport=sport + i)) for i in range(count)]


def test_read_captures_batches_files_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pcap", tmp_path / "b.pcapng"
    first.write_bytes(pcap(frames(3, sport=100)))
    second.write_bytes(pcapng(frames(2, sport=200)))
    stream = io.BytesIO(pcap(frames(1, sport=300), nanosecond=True))
    table = read_captures([first, second, stream])
    assert table.paths == (str(first), str(second), "<stream>")
    assert table.file_index.tolist() == [0, 0, 0, 1, 1, 2]
    assert table.frame.tolist() == [0, 1, 2, 0, 1, 0]
    assert table.sport.tolist() == [100, 101, 102, 200, 201, 300]
    sizes = first.stat().st_size + second.stat().st_size + len(stream.getvalue())
    assert table.stats.bytes_read == sizes
    assert (table.stats.frames, table.stats.decoded) == (6, 6)


def test_read_captures_payload_offsets_point_into_the_batch(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.pcap")
        paths[-1].write_bytes(pcap([bytes(ETHER / IP() / TCP() / f"payload {i}")]))
    table = read_captures(paths, keep_payload=True)
    assert [table.payload(i) for i in range(3)] == [
        b"payload 0",
        b"payload 1",
        b"payload 2",
    ]
    assert table.data is not None and not table.data.flags.writeable


def test_read_captures_reports_progress_per_file(tmp_path: Path) -> None:
    paths = [tmp_path / f"{i}.pcap" for i in range(4)]
    for path in paths:
        path.write_bytes(pcap(frames(2)))
    calls: list[int] = []
    read_captures(paths, progress=calls.append)
    assert calls == [1, 1, 1, 1]


def test_read_captures_of_no_files() -> None:
    table = read_captures([])
    assert len(table) == 0
    assert table.paths == ()
    assert table.stats.frames == 0


def test_read_captures_counts_skips_and_cuts_over_all_files(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cut = pcap(frames(3))[:-2]
    odd = pcap(frames(2), link_type=127)
    mixed = shb() + idb(1) + idb(147) + epb(0, 1, frames(1)[0]) + epb(1, 2, b"x" * 20)
    with caplog.at_level(logging.WARNING, logger="fosr.capture"):
        table = read_captures([io.BytesIO(cut), io.BytesIO(odd), io.BytesIO(mixed)])
    assert table.file_index.tolist() == [0, 0, 2]
    assert table.stats.frames == 6
    assert table.stats.skipped == {"link type 127": 2, "link type 147": 1}
    assert table.stats.link_types == {1: 3, 127: 2, 147: 1}
    assert len(table.stats.truncated) == 1
    assert len(caplog.records) == 1


def test_read_captures_skip_bad_reads_the_other_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = tmp_path / "good.pcap"
    good.write_bytes(pcap(frames(2)))
    corrupt = bytearray(pcap(frames(2)))
    corrupt[24 + 8 : 24 + 12] = (0x7FFF_FFF0).to_bytes(4, "little")
    missing = tmp_path / "missing.pcap"
    sources = [good, io.BytesIO(bytes(corrupt)), missing, good]
    with pytest.raises(CaptureError):
        read_captures(sources)

    sources[1].seek(0)
    with caplog.at_level(logging.WARNING, logger="fosr.capture"):
        table = read_captures(sources, skip_bad=True)
    assert table.file_index.tolist() == [0, 0, 3, 3]
    assert table.paths == (str(good), "<stream>", str(missing), str(good))
    assert [path for path, _ in table.stats.bad_files] == ["<stream>", str(missing)]
    assert table.stats.bad_files[0][1].startswith("offset 24: record captured length")
    assert len(caplog.records) == 2
    assert str(missing) in caplog.records[1].getMessage()


def test_read_captures_wants_an_iterable_of_captures(tmp_path: Path) -> None:
    path = tmp_path / "a.pcap"
    path.write_bytes(pcap(frames(1)))
    with pytest.raises(TypeError, match="read_capture for one"):
        read_captures(str(path))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="binary mode"):
        read_capture(io.StringIO("text"))  # type: ignore[arg-type]


def test_read_missing_file_raises_capture_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pcap"
    with pytest.raises(CaptureError) as caught:
        read_capture(missing)
    assert caught.value.path == str(missing)
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_read_truncated_file_named_in_the_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes(pcap(frames(3))[:-3])
    with caplog.at_level(logging.WARNING, logger="fosr.capture"):
        table = read_capture(path)
    assert table.stats.truncated[0][0] == str(path)
    assert str(path) in caplog.text


def test_read_capture_from_a_named_pipe(tmp_path: Path) -> None:
    # a pipe has no size to plan the buffer with; it is read to its end
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(pcap(frames(3)),))
    writer.start()
    table = read_capture(fifo)
    writer.join()
    assert table.sport.tolist() == [1000, 1001, 1002]


@pytest.mark.parametrize("writer", [PcapWriter, PcapNgWriter])
def test_read_capture_written_by_scapy(tmp_path: Path, writer: type) -> None:
    path = tmp_path / "scapy.cap"
    packets = [ETHER / IP(src="10.1.1.1") / TCP(sport=i, flags="S") for i in range(5)]
    for i, packet in enumerate(packets):
        packet.time = 1_700_000_000 + i / 4
    with writer(str(path)) as out:
        out.write(packets)
    table = read_capture(path)
    assert table.sport.tolist() == [0, 1, 2, 3, 4]
    assert table.ts_ns.tolist() == [
        1_700_000_000_000_000_000 + i * 250_000_000 for i in range(5)
    ]
    assert len(rdpcap(str(path))) == len(table)


# shared data ---------------------------------------------------------------------


def _shared_captures() -> list[Path]:
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"shared data not found at {SHARED_DATA.resolve()}: the public "
            "data sets are not on this machine"
        )
    captures = sorted((SHARED_DATA / "iot-sentinel" / "pcaps").glob("*/*.pcap"))
    captures += sorted(p for p in (SHARED_DATA / "protocols").rglob("*") if p.is_file())
    return captures


def _capinfos_count(path: Path) -> int:
    result = subprocess.run(
        ["capinfos", "-c", "-M", "-T", "-r", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout.strip().split("\t")[-1])


@pytest.mark.shared_data
def test_read_every_shared_capture() -> None:
    captures = _shared_captures()
    table = read_captures(captures)
    assert table.stats.truncated == []
    assert table.stats.frames == table.stats.decoded + sum(table.stats.skipped.values())
    rows_per_file = np.bincount(table.file_index, minlength=len(captures))
    assert np.all(rows_per_file > 0), "every shared capture holds IP packets"

    # frames per file agree with capinfos on a handful of files, pcapng included
    handful = captures[::50] + [p for p in captures if p.suffix == ".pcapng"]
    for path in handful:
        assert read_capture(path).stats.frames == _capinfos_count(path), path


@pytest.mark.shared_data
def test_read_iot_sentinel_counts_match_splits_csv() -> None:
    _shared_captures()
    root = SHARED_DATA / "iot-sentinel"
    with open(root / "splits.csv", newline="") as file:
        rows = list(csv.DictReader(file))[::25]
    table = read_captures([root / "pcaps" / row["f"] for row in rows])
    frames = np.bincount(table.file_index, minlength=len(rows))
    # n counts every frame; skipped ones (ARP, EAPOL, ...) are not rows
    assert table.stats.frames == sum(int(row["n"]) for row in rows)
    assert np.all(frames <= [int(row["n"]) for row in rows])
